/**
 * The revaluation engine (SPEC §3.7: every sane mark re-values every open contract on its
 * underlying). It holds what valuation needs and nothing else; the projection (projection.ts)
 * tells it what changed, and it is only ever driven from there, so its figures change only when an
 * event is applied. Reads (pnlOf, initialOf) are pure.
 *
 * Layout, per underlying, so a mark touches only its own underlying's rows:
 * - an "exposure" is one account's positions on one underlying (SPAN's combined commodity);
 * - linear rows (perpetuals, futures) are not valued row by row: their MTM and scenario losses are
 *   linear in the price, so an exposure keeps Σ sign·size, Σ sign·size·entry, the long and short
 *   sizes and the net per tier (spread charge), and a tick is O(exposures) for them;
 * - options sit in a struct-of-arrays per underlying, one slot per contract (both sides), so
 *   Black-76 runs once per contract per scenario and the long's loss is the short's gain.
 * The engine's tick allocates a few small objects (the scenario list), none per row or exposure.
 *
 * The requirement of an exposure is portfolioInitialMargin's for those positions (span.ts):
 *   min(max(worst netted scan loss, Σ short option minimums) + spread charge, Σ each position alone)
 * and at least the loss at each flagged candidate level (market.ts), which may only raise it.
 * A perpetual-only exposure is its netted scan risk (the minimum and spread charge are 0 and the
 * sum of the positions alone is never below it).
 */
import { ContractTerms, DAY_MS, invariant, Side, YEAR_MS } from '@backstop/kernel';
import {
  MarginParams,
  MarketPoint,
  optionValueAtTerm,
  scanRangeFraction,
  scenarioMark,
  SHORT_OPTION_ATM_FRACTION_DEFAULT,
  SHORT_OPTION_MINIMUM_FRACTION_DEFAULT,
  SPAN_SCENARIO_COUNT,
  spanScenarios,
  SPREAD_CHARGE_FRACTION_DEFAULT,
} from '@backstop/margin-model';

const S = SPAN_SCENARIO_COUNT;
// Bound once: a call through the package's re-export is a property read on every call (hot loop).
const valueAt = optionValueAtTerm;
/** Scenario columns per exposure: SPAN's 16 and two at the lowest and highest flagged candidate levels. */
const C = S + 2;
const PERPETUAL_TIER = -1;
/** Upper bounds (a limit on everything): option contracts per underlying, exposures in all. */
export const OPTION_SLOTS_MAX = 4_000_000;
export const EXPOSURES_MAX = 4_000_000;

/** What the engine needs to know about an underlying when it values it. */
export interface UnderlyingInputs {
  /** The last accepted mark with its vol; undefined = not marked yet (nothing valued). */
  readonly point: MarketPoint | undefined;
  readonly params: MarginParams;
  /** Flagged candidate levels to stress in full (0–2 of them). */
  readonly flagged: readonly number[];
}

interface LinearRow {
  readonly sign: number;
  readonly size: number;
  readonly entry: number;
  readonly tier: number;
}

interface Exposure {
  readonly index: number;
  readonly accountIndex: number;
  readonly underlyingIndex: number;
  /** Linear rows by row key (contract key × 2 + side bit), insertion order = open order. */
  readonly linear: Map<number, LinearRow>;
  /** Option contract keys this exposure holds a side of. */
  readonly options: Set<number>;
  netQty: number;
  cost: number;
  longSize: number;
  shortSize: number;
  /** Net signed size per tier (perpetual, each future expiry): the spread charge. */
  readonly tiers: Map<number, number>;
  /** Rows that are not perpetuals (futures, options): the add-ons may apply. */
  nonPerpetualRows: number;
}

/** Option contracts of one underlying, struct-of-arrays, in opening order (dead slots squeezed out in order). */
class OptionSlots {
  count = 0;
  dead = 0;
  capacity: number;
  keys: Float64Array;
  longExposure: Int32Array;
  shortExposure: Int32Array;
  size: Float64Array;
  premium: Float64Array;
  strike: Float64Array;
  expiryMs: Float64Array;
  isCall: Uint8Array;
  readonly slotByKey = new Map<number, number>();

  constructor(capacity: number) {
    this.capacity = capacity;
    this.keys = new Float64Array(capacity);
    this.longExposure = new Int32Array(capacity);
    this.shortExposure = new Int32Array(capacity);
    this.size = new Float64Array(capacity);
    this.premium = new Float64Array(capacity);
    this.strike = new Float64Array(capacity);
    this.expiryMs = new Float64Array(capacity);
    this.isCall = new Uint8Array(capacity);
  }

  add(key: number, terms: ContractTerms): number {
    if (this.count === this.capacity && this.dead > 0) this.compact();
    if (this.count === this.capacity) this.grow();
    const slot = this.count++;
    this.keys[slot] = key;
    this.longExposure[slot] = -1;
    this.shortExposure[slot] = -1;
    this.size[slot] = terms.size;
    this.premium[slot] = terms.entryPrice;
    this.strike[slot] = terms.strike as number;
    this.expiryMs[slot] = terms.expiryMs as number;
    this.isCall[slot] = terms.optionType === 'CALL' ? 1 : 0;
    this.slotByKey.set(key, slot);
    return slot;
  }

  /**
   * Removes a contract, keeping the order of the others: its slot is marked dead (key −1, no
   * exposures, skipped by the loop) and the dead are squeezed out in order once they are half the
   * slots. Every exposure's sums are then always taken in the contracts' opening order, so a
   * monitor rebuilt from the same events has the same bits (a swap-remove would reorder the
   * sums of exposures that a close does not re-value).
   */
  remove(key: number): void {
    const slot = this.slotByKey.get(key);
    if (slot === undefined) return;
    this.slotByKey.delete(key);
    this.keys[slot] = -1;
    this.longExposure[slot] = -1;
    this.shortExposure[slot] = -1;
    this.dead += 1;
    if (this.dead >= 64 && this.dead * 2 >= this.count) this.compact();
  }

  private compact(): void {
    let w = 0;
    for (let r = 0; r < this.count; r++) {
      if (this.keys[r] < 0) continue;
      if (w !== r) {
        this.keys[w] = this.keys[r];
        this.longExposure[w] = this.longExposure[r];
        this.shortExposure[w] = this.shortExposure[r];
        this.size[w] = this.size[r];
        this.premium[w] = this.premium[r];
        this.strike[w] = this.strike[r];
        this.expiryMs[w] = this.expiryMs[r];
        this.isCall[w] = this.isCall[r];
        this.slotByKey.set(this.keys[w], w);
      }
      w++;
    }
    this.count = w;
    this.dead = 0;
  }

  private grow(): void {
    const capacity = this.capacity * 2;
    invariant(capacity <= OPTION_SLOTS_MAX, `more than ${OPTION_SLOTS_MAX} option contracts on one underlying`);
    const f = (a: Float64Array) => {
      const b = new Float64Array(capacity);
      b.set(a);
      return b;
    };
    const i = (a: Int32Array) => {
      const b = new Int32Array(capacity);
      b.set(a);
      return b;
    };
    this.keys = f(this.keys);
    this.longExposure = i(this.longExposure);
    this.shortExposure = i(this.shortExposure);
    this.size = f(this.size);
    this.premium = f(this.premium);
    this.strike = f(this.strike);
    this.expiryMs = f(this.expiryMs);
    const calls = new Uint8Array(capacity);
    calls.set(this.isCall);
    this.isCall = calls;
    this.capacity = capacity;
  }
}

interface UnderlyingBook {
  readonly options: OptionSlots;
  /** Exposures on this underlying, in creation order. */
  readonly exposures: number[];
  /** Open position rows (sides) on this underlying. */
  rows: number;
}

export class RevaluationEngine {
  private readonly books: UnderlyingBook[] = [];
  private readonly exposures: Exposure[] = [];
  private readonly exposureIndex = new Map<string, number>();
  // Results per exposure (read by the views) and per-tick accumulators.
  private pnl = new Float64Array(64);
  private initial = new Float64Array(64);
  private optionPnl = new Float64Array(64);
  private minimumSum = new Float64Array(64);
  private aloneSum = new Float64Array(64);
  private scenarioLoss = new Float64Array(64 * C);
  // Per-tick scenario inputs (fixed size: no allocation on a tick).
  private readonly scenarioMarks = new Float64Array(S);
  private readonly scenarioVols = new Float64Array(S);
  private readonly scenarioCovers = new Float64Array(S);
  private readonly flaggedLevels = new Float64Array(2);
  private flaggedCount = 0;
  private horizonMs = 0;
  private minimumFraction = SHORT_OPTION_MINIMUM_FRACTION_DEFAULT;
  private atTheMoneyFraction = SHORT_OPTION_ATM_FRACTION_DEFAULT;

  constructor(private readonly optionCapacity = 1_024) {}

  /** Registers underlying `index` (dense, in order). */
  addUnderlying(index: number): void {
    invariant(index === this.books.length, `underlying ${index} registered out of order`);
    this.books.push({ options: new OptionSlots(this.optionCapacity), exposures: [], rows: 0 });
  }

  /** The exposure of (account, underlying), created on first use. */
  exposureOf(accountIndex: number, underlyingIndex: number): number {
    const id = `${accountIndex}:${underlyingIndex}`;
    const known = this.exposureIndex.get(id);
    if (known !== undefined) return known;
    const index = this.exposures.length;
    invariant(index < EXPOSURES_MAX, `more than ${EXPOSURES_MAX} (account, underlying) exposures`);
    this.exposures.push({ index, accountIndex, underlyingIndex, linear: new Map(), options: new Set(), netQty: 0, cost: 0, longSize: 0, shortSize: 0, tiers: new Map(), nonPerpetualRows: 0 });
    this.exposureIndex.set(id, index);
    this.books[underlyingIndex].exposures.push(index);
    this.ensureExposureCapacity(index + 1);
    return index;
  }

  /** Opens one side of a contract (key: the caller's stable contract id) in exposure `e`. */
  openSide(key: number, side: Side, terms: ContractTerms, e: number): void {
    const x = this.exposures[e];
    const book = this.books[x.underlyingIndex];
    book.rows += 1;
    if (terms.kind !== 'PERPETUAL') x.nonPerpetualRows += 1;
    if (terms.kind === 'OPTION') {
      let slot = book.options.slotByKey.get(key);
      if (slot === undefined) slot = book.options.add(key, terms);
      if (side === 'LONG') book.options.longExposure[slot] = e;
      else book.options.shortExposure[slot] = e;
      x.options.add(key);
      return;
    }
    const row: LinearRow = { sign: side === 'LONG' ? 1 : -1, size: terms.size, entry: terms.entryPrice, tier: terms.kind === 'PERPETUAL' ? PERPETUAL_TIER : (terms.expiryMs as number) };
    x.linear.set(rowKey(key, side), row);
    addLinear(x, row);
  }

  /** Closes every open side of contract `key`; `sides` maps each open side to its exposure. */
  closeContract(key: number, terms: ContractTerms, sides: Partial<Record<Side, number>>): void {
    for (const side of ['LONG', 'SHORT'] as const) {
      const e = sides[side];
      if (e === undefined) continue;
      const x = this.exposures[e];
      this.books[x.underlyingIndex].rows -= 1;
      if (terms.kind !== 'PERPETUAL') x.nonPerpetualRows -= 1;
      if (terms.kind === 'OPTION') {
        x.options.delete(key);
        continue;
      }
      x.linear.delete(rowKey(key, side));
      // Re-summed from the rows left, in open order: the same bits as if the closed row had never
      // been there (a replay of the same events gives the same figures), and no residue at zero.
      x.netQty = 0;
      x.cost = 0;
      x.longSize = 0;
      x.shortSize = 0;
      x.tiers.clear();
      for (const row of x.linear.values()) addLinear(x, row);
    }
    if (terms.kind === 'OPTION') {
      const first = sides.LONG ?? sides.SHORT;
      if (first !== undefined) this.books[this.exposures[first].underlyingIndex].options.remove(key);
    }
  }

  /** Re-values every exposure on the underlying; returns the number of position rows on it. */
  revalueUnderlying(underlyingIndex: number, inputs: UnderlyingInputs): number {
    const book = this.books[underlyingIndex];
    for (const e of book.exposures) this.reset(e);
    if (inputs.point === undefined) return 0;
    this.prepare(inputs.point, inputs);
    const o = book.options;
    for (let slot = 0; slot < o.count; slot++) this.valueOption(o, slot, -1, inputs.point);
    for (const e of book.exposures) this.finish(e, inputs.point, inputs.params);
    return book.rows;
  }

  /** Re-values one exposure (after one of its positions opened or closed), in the same order as a full pass. */
  revalueExposure(e: number, inputs: UnderlyingInputs): void {
    this.reset(e);
    if (inputs.point === undefined) return;
    const x = this.exposures[e];
    const o = this.books[x.underlyingIndex].options;
    this.prepare(inputs.point, inputs);
    const slots: number[] = [];
    for (const key of x.options) slots.push(o.slotByKey.get(key) as number);
    slots.sort((a, b) => a - b);
    for (const slot of slots) this.valueOption(o, slot, e, inputs.point);
    this.finish(e, inputs.point, inputs.params);
  }

  rowsOn(underlyingIndex: number): number {
    return this.books[underlyingIndex]?.rows ?? 0;
  }

  rowsOf(e: number): number {
    const x = this.exposures[e];
    return x.linear.size + x.options.size;
  }

  accountOf(e: number): number {
    return this.exposures[e].accountIndex;
  }

  underlyingOf(e: number): number {
    return this.exposures[e].underlyingIndex;
  }

  exposuresOn(underlyingIndex: number): readonly number[] {
    return this.books[underlyingIndex]?.exposures ?? [];
  }

  /** MTM of the exposure's positions at the last accepted mark (0 before any). */
  pnlOf(e: number): number {
    return this.pnl[e];
  }

  /** Initial margin of the exposure (scenario-netted, add-ons, flagged levels), 0 before any mark. */
  initialOf(e: number): number {
    return this.initial[e];
  }

  // ---- the hot path ------------------------------------------------------------------------------

  private reset(e: number): void {
    this.pnl[e] = 0;
    this.initial[e] = 0;
    this.optionPnl[e] = 0;
    this.minimumSum[e] = 0;
    this.aloneSum[e] = 0;
    this.scenarioLoss.fill(0, e * C, e * C + C);
  }

  /** The 16 scenario prices, vols and covers at now + MPOR (span.ts riskArray), once per tick. */
  private prepare(point: MarketPoint, inputs: UnderlyingInputs): void {
    const params = inputs.params;
    const scan = scanRangeFraction(point.volAnnual, params);
    for (const scenario of spanScenarios(params)) {
      const s = scenario.number - 1;
      this.scenarioMarks[s] = scenarioMark(point.mark, scenario.priceMoveMultiple, scan);
      this.scenarioVols[s] = point.volAnnual * (1 + scenario.volDirection * params.volShiftFraction);
      this.scenarioCovers[s] = scenario.coverFraction;
    }
    this.horizonMs = point.nowMs + params.mporDays * DAY_MS;
    this.minimumFraction = params.shortOptionMinimumFraction ?? SHORT_OPTION_MINIMUM_FRACTION_DEFAULT;
    this.atTheMoneyFraction = params.shortOptionAtTheMoneyFraction ?? SHORT_OPTION_ATM_FRACTION_DEFAULT;
    this.flaggedCount = Math.min(inputs.flagged.length, 2);
    for (let k = 0; k < this.flaggedCount; k++) this.flaggedLevels[k] = inputs.flagged[k];
  }

  /**
   * One option contract: Black-76 once per scenario; the long side's scenario loss, the short's
   * is its negation (what one side loses the other gains). Only exposure `only` when ≥ 0.
   */
  private valueOption(o: OptionSlots, slot: number, only: number, point: MarketPoint): void {
    const le = o.longExposure[slot];
    const se = o.shortExposure[slot];
    const wantLong = le >= 0 && (only < 0 || le === only);
    const wantShort = se >= 0 && (only < 0 || se === only);
    if (!wantLong && !wantShort) return;
    const isCall = o.isCall[slot] === 1;
    const strike = o.strike[slot];
    const expiryMs = o.expiryMs[slot];
    const size = o.size[slot];
    const premium = o.premium[slot];
    // valuation.ts optionValue/optionPnl for the long (sign 1), the time to expiry taken once; the
    // short's pnl and losses are the exact negations.
    const yearsNow = (expiryMs - point.nowMs) / YEAR_MS;
    const yearsAtHorizon = (expiryMs - this.horizonMs) / YEAR_MS;
    const pnlLong = (valueAt(isCall, point.mark, strike, point.volAnnual, yearsNow) - premium) * size;
    let worstLong = 0;
    let worstShort = 0;
    for (let s = 0; s < S; s++) {
      const shocked = (valueAt(isCall, this.scenarioMarks[s], strike, this.scenarioVols[s], yearsAtHorizon) - premium) * size;
      const loss = -(shocked - pnlLong) * this.scenarioCovers[s] + 0;
      if (wantLong) {
        this.scenarioLoss[le * C + s] += loss;
        if (loss > worstLong) worstLong = loss;
      }
      if (wantShort) {
        this.scenarioLoss[se * C + s] -= loss;
        if (-loss > worstShort) worstShort = -loss;
      }
    }
    for (let k = 0; k < this.flaggedCount; k++) {
      const at = (valueAt(isCall, this.flaggedLevels[k], strike, point.volAnnual, yearsNow) - premium) * size;
      const loss = -(at - pnlLong);
      if (wantLong) this.scenarioLoss[le * C + S + k] += loss;
      if (wantShort) this.scenarioLoss[se * C + S + k] -= loss;
    }
    if (wantLong) {
      this.optionPnl[le] += pnlLong;
      this.aloneSum[le] += worstLong;
    }
    if (wantShort) {
      this.optionPnl[se] += -pnlLong;
      const minimum = shortOptionMinimum(isCall, strike, expiryMs, size, point.mark, point.nowMs, this.minimumFraction, this.atTheMoneyFraction);
      this.minimumSum[se] += minimum;
      this.aloneSum[se] += Math.max(worstShort, minimum);
    }
  }

  /** Linear rows in closed form, then the exposure's requirement. */
  private finish(e: number, point: MarketPoint, params: MarginParams): void {
    const x = this.exposures[e];
    const mark = point.mark;
    const base = e * C;
    let worstLongUnit = 0;
    let worstShortUnit = 0;
    for (let s = 0; s < S; s++) {
      const move = (this.scenarioMarks[s] - mark) * this.scenarioCovers[s];
      this.scenarioLoss[base + s] += -(x.netQty * move) + 0;
      if (-move > worstLongUnit) worstLongUnit = -move;
      if (move > worstShortUnit) worstShortUnit = move;
    }
    for (let k = 0; k < this.flaggedCount; k++) this.scenarioLoss[base + S + k] += -(x.netQty * (this.flaggedLevels[k] - mark));
    this.pnl[e] = x.netQty * mark - x.cost + this.optionPnl[e];
    let worst = 0;
    for (let s = 0; s < S; s++) if (this.scenarioLoss[base + s] > worst) worst = this.scenarioLoss[base + s];
    let flaggedLoss = 0;
    for (let k = 0; k < this.flaggedCount; k++) if (this.scenarioLoss[base + S + k] > flaggedLoss) flaggedLoss = this.scenarioLoss[base + S + k];
    let requirement = worst;
    if (x.nonPerpetualRows > 0) {
      const alone = this.aloneSum[e] + x.longSize * worstLongUnit + x.shortSize * worstShortUnit;
      requirement = Math.min(Math.max(worst, this.minimumSum[e]) + spreadCharge(x, mark, params), alone);
    }
    this.initial[e] = Math.max(requirement, flaggedLoss);
  }

  private ensureExposureCapacity(count: number): void {
    if (count <= this.pnl.length) return;
    const size = Math.max(count, this.pnl.length * 2);
    const grow = (a: Float64Array, n: number) => {
      const b = new Float64Array(n);
      b.set(a);
      return b;
    };
    this.pnl = grow(this.pnl, size);
    this.initial = grow(this.initial, size);
    this.optionPnl = grow(this.optionPnl, size);
    this.minimumSum = grow(this.minimumSum, size);
    this.aloneSum = grow(this.aloneSum, size);
    this.scenarioLoss = grow(this.scenarioLoss, size * C);
  }
}

function rowKey(contractKey: number, side: Side): number {
  return contractKey * 2 + (side === 'LONG' ? 0 : 1);
}

function addLinear(x: Exposure, row: LinearRow): void {
  x.netQty += row.sign * row.size;
  x.cost += row.sign * row.size * row.entry;
  if (row.sign > 0) x.longSize += row.size;
  else x.shortSize += row.size;
  x.tiers.set(row.tier, (x.tiers.get(row.tier) ?? 0) + row.sign * row.size);
}

/** span.ts spreadCharge over the exposure's tiers. */
function spreadCharge(x: Exposure, mark: number, params: MarginParams): number {
  if (x.tiers.size < 2) return 0;
  let longUnits = 0;
  let shortUnits = 0;
  for (const delta of x.tiers.values()) {
    if (delta > 0) longUnits += delta;
    else shortUnits -= delta;
  }
  return (params.spreadChargeFraction ?? SPREAD_CHARGE_FRACTION_DEFAULT) * mark * Math.min(longUnits, shortUnits);
}

/** span.ts shortOptionMinimum for a short option, over scalars. */
function shortOptionMinimum(isCall: boolean, strike: number, expiryMs: number, size: number, mark: number, nowMs: number, minimum: number, atTheMoney: number): number {
  if (expiryMs <= nowMs) return 0;
  const outOfTheMoney = isCall ? Math.max(strike - mark, 0) : Math.max(mark - strike, 0);
  const fraction = mark > 0 ? Math.max(atTheMoney - outOfTheMoney / mark, minimum) : minimum;
  return size * mark * fraction;
}
