/**
 * Cover-2 stress (SPEC §6; CPMI-IOSCO "Principles for financial market infrastructures" (2012),
 * principle 4, key consideration 4: resources to cover the default of the two participants that
 * would cause the largest aggregate credit exposure in extreme but plausible conditions).
 *
 * For each scenario and each counterparty, the pool's loss if that counterparty defaulted:
 *   gainᵢ = max(0, MTM of the protected side of coverage i at the shocked marks)
 *   one coverage:  loss = min(limit, max(0, gain − collateral))
 *   several:       the collateral is shared pro rata by gains (the waterfall's rule, SPEC §5),
 *                  lossᵢ = min(limitᵢ, gainᵢ·max(0, 1 − collateral/Σgain)), loss = Σ lossᵢ.
 * A defaulter's gain on one contract does not offset its loss on another (no netting set between
 * different protected parties is assumed). Shocks move the price over the margin period of risk
 * (historical: the worst MPOR-day windows of the data; hypothetical: ±Nσ·√MPOR), scenarios may
 * shock vols (options), and closing out costs liquidationCostFraction of the notional at the
 * shocked mark (the replacement trade crosses a stressed spread), added to the protected gain.
 * Cover-2 of a scenario = the sum of its two largest counterparty losses; the requirement is the
 * largest over scenarios.
 *
 * cover2Contribution is the one place a coverage's stress capital is measured: the capacity gate
 * reserves it, the premium charges the cost of holding it, and CapacityAssessed publishes cover2 of
 * the same book with the same scenarios.
 */
import { ContractTerms, iso, Side } from '@backstop/kernel';
import { markToMarket } from './valuation';

export const STRESS_SCENARIOS_MAX = 10_000;
export const WORST_MOVES_MAX = 1_000;
export const SIGMA_LEVELS_MAX = 100;

export interface StressCoverage {
  readonly terms: ContractTerms;
  /** The side the pool protects; its gain is what the defaulter would owe. */
  readonly protectedSide: Side;
  readonly coverageLimit: number;
}

export interface CounterpartyExposure {
  readonly counterpartyId: string;
  readonly collateral: number;
  readonly coverages: readonly StressCoverage[];
}

export interface StressScenario {
  readonly name: string;
  /** Underlying → relative price shock, e.g. { 'BTC-USD': -0.35 }; absent underlyings do not move. */
  readonly shocks: Readonly<Record<string, number>>;
  /** Underlying → relative vol shock, e.g. { 'BTC-USD': 0.5 } = vol × 1.5; absent: unchanged. */
  readonly volShocks?: Readonly<Record<string, number>>;
}

export interface StressMarket {
  readonly nowMs: number;
  readonly underlyings: Readonly<Record<string, { readonly mark: number; readonly volAnnual: number }>>;
  /** Close-out cost as a fraction of |size| × shocked mark, added to the protected gain (default 0). */
  readonly liquidationCostFraction?: number;
}

export interface CounterpartyLoss {
  readonly counterpartyId: string;
  readonly loss: number;
}

export interface ScenarioCover2 {
  readonly scenario: string;
  /** Largest loss first. */
  readonly losses: readonly CounterpartyLoss[];
  /** Sum of the two largest losses. */
  readonly cover2: number;
}

export interface Cover2Result {
  readonly requirement: number;
  /** Name of the scenario that sets the requirement, undefined with no scenario. */
  readonly worstScenario: string | undefined;
  /** The (up to) two counterparties behind it. */
  readonly worstCounterparties: readonly string[];
  readonly scenarios: readonly ScenarioCover2[];
}

function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

function protectedGain(coverage: StressCoverage, scenario: StressScenario, market: StressMarket): number {
  const underlying = coverage.terms.underlying;
  const point = own(market.underlyings, underlying);
  if (point === undefined) throw new RangeError(`no market for underlying "${underlying}"`);
  const shock = own(scenario.shocks, underlying) ?? 0;
  if (!(shock >= -1) || !Number.isFinite(shock)) throw new RangeError(`scenario "${scenario.name}": shock ${shock} on ${underlying} must be finite and ≥ −1`);
  const volShock = scenario.volShocks ? (own(scenario.volShocks, underlying) ?? 0) : 0;
  if (!(volShock >= -1) || !Number.isFinite(volShock)) throw new RangeError(`scenario "${scenario.name}": vol shock ${volShock} on ${underlying} must be finite and ≥ −1`);
  const liquidation = market.liquidationCostFraction ?? 0;
  if (!(liquidation >= 0 && liquidation < 1)) throw new RangeError(`liquidationCostFraction must be in [0, 1), got ${liquidation}`);
  const mark = point.mark * (1 + shock);
  const value = markToMarket(coverage.terms, coverage.protectedSide, { mark, volAnnual: point.volAnnual * (1 + volShock), nowMs: market.nowMs });
  return Math.max(0, value + liquidation * coverage.terms.size * mark);
}

/** The pool's loss in `scenario` if this counterparty defaulted (formula in the file comment). */
export function counterpartyStressLoss(exposure: CounterpartyExposure, scenario: StressScenario, market: StressMarket): number {
  if (!(exposure.collateral >= 0)) throw new RangeError(`${exposure.counterpartyId}: collateral must be ≥ 0`);
  for (const c of exposure.coverages) {
    if (!(c.coverageLimit >= 0)) throw new RangeError(`${exposure.counterpartyId}: coverageLimit must be ≥ 0`);
  }
  const gains = exposure.coverages.map((c) => protectedGain(c, scenario, market));
  const totalGain = gains.reduce((sum, g) => sum + g, 0);
  if (totalGain <= exposure.collateral) return 0;
  const unpaidShare = 1 - exposure.collateral / totalGain;
  let loss = 0;
  exposure.coverages.forEach((coverage, i) => {
    loss += Math.min(coverage.coverageLimit, gains[i] * unpaidShare);
  });
  return loss;
}

function scenarioCover2(exposures: readonly CounterpartyExposure[], scenario: StressScenario, market: StressMarket): ScenarioCover2 {
  const losses = exposures
    .map((e) => ({ counterpartyId: e.counterpartyId, loss: counterpartyStressLoss(e, scenario, market) }))
    .sort((a, b) => b.loss - a.loss || (a.counterpartyId < b.counterpartyId ? -1 : 1));
  const cover2 = (losses[0]?.loss ?? 0) + (losses[1]?.loss ?? 0);
  return { scenario: scenario.name, losses, cover2 };
}

/** Cover-2 requirement: max over scenarios of the two largest counterparty losses. */
export function cover2(exposures: readonly CounterpartyExposure[], scenarios: readonly StressScenario[], market: StressMarket): Cover2Result {
  if (scenarios.length > STRESS_SCENARIOS_MAX) throw new RangeError(`at most ${STRESS_SCENARIOS_MAX} scenarios, got ${scenarios.length}`);
  const ids = new Set(exposures.map((e) => e.counterpartyId));
  if (ids.size !== exposures.length) throw new RangeError('each counterparty must appear once');
  const results = scenarios.map((s) => scenarioCover2(exposures, s, market));
  let worst: ScenarioCover2 | undefined;
  for (const r of results) if (worst === undefined || r.cover2 > worst.cover2) worst = r;
  return {
    requirement: worst?.cover2 ?? 0,
    worstScenario: worst?.scenario,
    worstCounterparties: worst ? worst.losses.slice(0, 2).filter((l) => l.loss > 0).map((l) => l.counterpartyId) : [],
    scenarios: results,
  };
}

export interface Cover2Contribution {
  /** cover2(book + addition) − cover2(book), ≥ 0 up to float noise (floored at 0). */
  readonly contribution: number;
  readonly before: Cover2Result;
  readonly after: Cover2Result;
}

/**
 * The coverage's marginal contribution to the pool's Cover-2 requirement: the requirement with it
 * minus the requirement without it, on the same scenarios. The addition's coverages join the
 * counterparty's existing ones and share its collateral; `addition.collateral` is the collateral
 * not yet in the book (a new contract's, as settlement sums it per contract; 0 for another coverage
 * on a contract already counted).
 */
export function cover2Contribution(
  book: readonly CounterpartyExposure[],
  addition: CounterpartyExposure,
  scenarios: readonly StressScenario[],
  market: StressMarket,
): Cover2Contribution {
  const before = cover2(book, scenarios, market);
  const existing = book.find((e) => e.counterpartyId === addition.counterpartyId);
  const merged: CounterpartyExposure = existing
    ? { ...existing, collateral: existing.collateral + addition.collateral, coverages: [...existing.coverages, ...addition.coverages] }
    : addition;
  const after = cover2([...book.filter((e) => e.counterpartyId !== addition.counterpartyId), merged], scenarios, market);
  return { contribution: Math.max(0, after.requirement - before.requirement), before, after };
}

export interface PricePoint {
  readonly dateMs: number;
  readonly price: number;
}

export interface HistoricalMove {
  readonly fromMs: number;
  readonly toMs: number;
  /** price(to)/price(from) − 1. */
  readonly relativeMove: number;
}

export interface HistoricalShocks {
  /** Most negative first. */
  readonly down: readonly HistoricalMove[];
  /** Most positive first. */
  readonly up: readonly HistoricalMove[];
}

/**
 * The worst N moves down and up over `horizonDays` (the margin period of risk): from each
 * observation to the first one at least horizonDays later (so a gap in the data makes a window
 * longer, visible in fromMs/toMs). Windows picked do not overlap, so one crash is one scenario, not
 * N copies of it shifted by a day. Input order does not matter. horizonDays = 1: day-to-day moves.
 */
export function historicalShocks(prices: readonly PricePoint[], worstN: number, horizonDays = 1): HistoricalShocks {
  if (!Number.isInteger(worstN) || worstN < 0 || worstN > WORST_MOVES_MAX) throw new RangeError(`worstN must be an integer in [0, ${WORST_MOVES_MAX}]`);
  if (!(horizonDays > 0 && horizonDays <= 365)) throw new RangeError(`horizonDays must be in (0, 365], got ${horizonDays}`);
  const sorted = [...prices].sort((a, b) => a.dateMs - b.dateMs);
  for (let i = 0; i < sorted.length; i++) {
    const { price, dateMs } = sorted[i];
    if (!(price > 0) || !Number.isFinite(price) || !Number.isFinite(dateMs)) throw new RangeError(`price point ${i} (${price} at ${dateMs}) must be a finite positive price at a finite time`);
  }
  const moves: HistoricalMove[] = [];
  const horizonMs = horizonDays * 86_400_000;
  let j = 0;
  for (let i = 0; i < sorted.length; i++) {
    if (j <= i) j = i + 1;
    // A tolerance of a minute: snapshots are not always exactly on the hour.
    while (j < sorted.length && sorted[j].dateMs < sorted[i].dateMs + horizonMs - 60_000) j++;
    if (j >= sorted.length) break;
    moves.push({ fromMs: sorted[i].dateMs, toMs: sorted[j].dateMs, relativeMove: sorted[j].price / sorted[i].price - 1 });
  }
  const pick = (candidates: HistoricalMove[]): HistoricalMove[] => {
    const chosen: HistoricalMove[] = [];
    for (const m of candidates) {
      if (chosen.length >= worstN) break;
      if (chosen.every((c) => m.toMs <= c.fromMs || m.fromMs >= c.toMs)) chosen.push(m);
    }
    return chosen;
  };
  const down = moves.filter((m) => m.relativeMove < 0).sort((a, b) => a.relativeMove - b.relativeMove);
  const up = moves.filter((m) => m.relativeMove > 0).sort((a, b) => b.relativeMove - a.relativeMove);
  return { down: pick(down), up: pick(up) };
}

export interface HypotheticalShock {
  /** Signed number of standard deviations. */
  readonly sigmas: number;
  readonly relativeMove: number;
}

/**
 * ±N σ shocks over a horizon: a move of ±N·σ·√(horizonDays/365) in the log-price (GBM without
 * drift), so relativeMove = exp(±N·σ·√(h/365)) − 1 and a down shock never passes −100%.
 */
export function hypotheticalShocks(volAnnual: number, sigmas: readonly number[], horizonDays: number): HypotheticalShock[] {
  if (!(volAnnual >= 0) || !Number.isFinite(volAnnual)) throw new RangeError(`volAnnual must be finite and ≥ 0, got ${volAnnual}`);
  if (!(horizonDays > 0 && horizonDays <= 365)) throw new RangeError(`horizonDays must be in (0, 365], got ${horizonDays}`);
  if (sigmas.length > SIGMA_LEVELS_MAX) throw new RangeError(`at most ${SIGMA_LEVELS_MAX} sigma levels`);
  const sd = volAnnual * Math.sqrt(horizonDays / 365);
  const shocks: HypotheticalShock[] = [];
  for (const n of sigmas) {
    if (!(n > 0) || !Number.isFinite(n)) throw new RangeError(`sigma levels must be finite and > 0, got ${n}`);
    shocks.push({ sigmas: -n, relativeMove: Math.exp(-n * sd) - 1 });
    shocks.push({ sigmas: n, relativeMove: Math.exp(n * sd) - 1 });
  }
  return shocks;
}

const day = (msSinceEpoch: number): string => iso(msSinceEpoch).slice(0, 10);
const percent = (move: number): string => `${move >= 0 ? '+' : ''}${(move * 100).toFixed(2)}%`;

/** One single-underlying scenario per historical move, named after its dates. */
export function historicalScenarios(underlying: string, shocks: HistoricalShocks): StressScenario[] {
  return [...shocks.down, ...shocks.up].map((m) => ({
    name: `historical ${underlying} ${day(m.fromMs)}→${day(m.toMs)} ${percent(m.relativeMove)}`,
    shocks: { [underlying]: m.relativeMove },
  }));
}

/** One single-underlying scenario per hypothetical shock. */
export function hypotheticalScenarios(underlying: string, shocks: readonly HypotheticalShock[]): StressScenario[] {
  return shocks.map((s) => ({
    name: `hypothetical ${underlying} ${s.sigmas > 0 ? '+' : ''}${s.sigmas}σ ${percent(s.relativeMove)}`,
    shocks: { [underlying]: s.relativeMove },
  }));
}
