/**
 * SPAN-like initial and maintenance margin (SPEC §4 "Initial / maintenance margin").
 *
 * Sources:
 * - CME Group, "CME SPAN: Standard Portfolio Analysis of Risk" (2010) and the CME SPAN methodology
 *   overview: a risk array of 16 scenarios per contract — price unchanged and ±1/3, ±2/3, ±3/3 of
 *   the price scan range, each with volatility up and down (1–14), plus two extreme moves
 *   (15–16) at a multiple of the scan range of which only a fraction (35%) of the loss counts.
 *   The scan risk of a position is its worst scenario loss; positions on one underlying
 *   ("combined commodity") are netted scenario by scenario before taking the worst.
 * - Regulation (EU) No 153/2013 (EMIR RTS on CCPs), art. 24 (confidence: 99.5% for OTC
 *   derivatives, 99% for other instruments), art. 25 (look-back) and art. 26 (liquidation period,
 *   i.e. MPOR: at least 5 business days for OTC derivatives, 2 for other instruments).
 * - Hyperliquid docs, "Margining": maintenance margin is half of the initial margin at max leverage.
 *
 * - CME SPAN: short option minimum charge (a floor per short option, since a far out-of-the-money
 *   short option loses nothing in any scan scenario yet can lose much in a jump), intra-commodity
 *   spread charge (a calendar or basis spread nets to zero in the scan but its legs do not move
 *   one for one), extreme scenarios at 3× the scan range with 35% of the loss counted (CME
 *   "extreme move" for most products; some use 2× at 100%).
 * - Deribit "Margin: options" (standard margin): short option initial margin
 *   max(0.15 − OTM amount / underlying, 0.10) × underlying (+ the option's mark, which our equity
 *   already counts as a liability, so it is not added again here).
 * - Regulation (EU) No 153/2013, art. 28 (anti-procyclicality): option (c), the margin is never lower
 *   than with the volatility of a 10-year look-back: volFloorAnnual (see volatility.ts).
 *
 * Our choices (not from a rulebook): moves are lognormal, scenario price = mark·exp(m·L) with
 * L = k·σ·√(MPOR/365), so a down move never passes −100% and an up move is as likely as its
 * mirror in log terms (a linear short is charged e^L − 1, more than a long's 1 − e^−L); k is the
 * quantile of a unit-variance Student-t with tailDegreesOfFreedom (default 4: daily crypto returns
 * have kurtosis far above the normal's; ν = 0 gives the normal quantile); the vol scan is relative,
 * σ·(1 ± volShiftFraction); scenario values are taken at now + MPOR (CME shortens the time to
 * expiry by its look-ahead likewise); MPOR is in calendar days over 365 because crypto trades
 * every day. Calibration and the backtest that checks it: README "Margin model and backtest".
 *
 * Long vs short: the log grid is symmetric, so a linear short is charged more than a long (the
 * lognormal up-move is larger). Options: the buyer can lose at most the option's value, the writer
 * much more, and the vol and time moves favour one side.
 */
import { DAY_MS } from '@backstop/kernel';
import { normCdf } from './option-value';
import { markToMarket, MarketPoint, Position, sideSign } from './valuation';

export interface MarginParams {
  /** Margin period of risk, calendar days. */
  readonly mporDays: number;
  /** One-sided confidence of the scan range, e.g. 0.99. */
  readonly confidence: number;
  /** Relative volatility scan: scenarios use σ·(1 ± volShiftFraction). */
  readonly volShiftFraction: number;
  /** Maintenance = maintenanceFraction × initial. */
  readonly maintenanceFraction: number;
  /** Extreme scenarios 15–16 move by this multiple of the scan range (default 2). */
  readonly extremeMoveMultiple?: number;
  /** Share of the extreme scenarios' loss that counts (CME: 35%). */
  readonly extremeCoverFraction?: number;
  /** ν of the unit-variance Student-t whose quantile is k (default 4); 0 = the normal quantile. */
  readonly tailDegreesOfFreedom?: number;
  /** Anti-procyclicality floor on the scan vol (EMIR RTS 153/2013 art. 28(1)(c)): σ_used = max(σ, floor). */
  readonly volFloorAnnual?: number;
  /** Short option minimum: at least this fraction of the underlying per unit sold (Deribit 0.10). */
  readonly shortOptionMinimumFraction?: number;
  /** …rising to this fraction at the money, less the out-of-the-money share (Deribit 0.15). */
  readonly shortOptionAtTheMoneyFraction?: number;
  /** Spread charge per unit of offsetting linear position across tiers (perp vs each expiry), × mark. */
  readonly spreadChargeFraction?: number;
}

export const EXTREME_MOVE_MULTIPLE_DEFAULT = 3;
export const EXTREME_COVER_FRACTION_DEFAULT = 0.35;
export const TAIL_DEGREES_OF_FREEDOM_DEFAULT = 4;
export const SHORT_OPTION_MINIMUM_FRACTION_DEFAULT = 0.1;
export const SHORT_OPTION_ATM_FRACTION_DEFAULT = 0.15;
export const SPREAD_CHARGE_FRACTION_DEFAULT = 0.03;

/** Listed instruments: EMIR RTS 153/2013 art. 24 and 26 — 2 days at 99%. */
export const LISTED_MARGIN_PARAMS: MarginParams = {
  mporDays: 2,
  confidence: 0.99,
  volShiftFraction: 0.25,
  maintenanceFraction: 0.5,
};

/** OTC derivatives: EMIR RTS 153/2013 art. 24 and 26 — 5 days at 99.5%. */
export const OTC_MARGIN_PARAMS: MarginParams = {
  mporDays: 5,
  confidence: 0.995,
  volShiftFraction: 0.25,
  maintenanceFraction: 0.5,
};

export const SPAN_SCENARIO_COUNT = 16;

export interface SpanScenario {
  /** 1..16, CME's numbering. */
  readonly number: number;
  /** Price move as a multiple of the scan range: 0, ±1/3, ±2/3, ±1, ±extremeMoveMultiple. */
  readonly priceMoveMultiple: number;
  /** −1 vol down, 0 unchanged, +1 vol up. */
  readonly volDirection: -1 | 0 | 1;
  /** Share of the loss that counts: 1, or extremeCoverFraction for 15–16. */
  readonly coverFraction: number;
}

export function marginParamsProblems(params: MarginParams): string[] {
  const problems: string[] = [];
  const extreme = params.extremeMoveMultiple ?? EXTREME_MOVE_MULTIPLE_DEFAULT;
  const cover = params.extremeCoverFraction ?? EXTREME_COVER_FRACTION_DEFAULT;
  if (!(params.mporDays > 0 && params.mporDays <= 365)) problems.push('mporDays must be in (0, 365]');
  if (!(params.confidence > 0.5 && params.confidence < 1)) problems.push('confidence must be in (0.5, 1)');
  if (!(params.volShiftFraction >= 0 && params.volShiftFraction < 1)) problems.push('volShiftFraction must be in [0, 1)');
  if (!(params.maintenanceFraction > 0 && params.maintenanceFraction <= 1)) problems.push('maintenanceFraction must be in (0, 1]');
  if (!(extreme >= 1 && extreme <= 10)) problems.push('extremeMoveMultiple must be in [1, 10]');
  if (!(cover >= 0 && cover <= 1)) problems.push('extremeCoverFraction must be in [0, 1]');
  const dof = params.tailDegreesOfFreedom ?? TAIL_DEGREES_OF_FREEDOM_DEFAULT;
  if (!(dof === 0 || (Number.isInteger(dof) && dof >= 3 && dof <= 1000))) problems.push('tailDegreesOfFreedom must be 0 (normal) or an integer in [3, 1000]');
  const floor = params.volFloorAnnual ?? 0;
  if (!(floor >= 0 && floor <= 20)) problems.push('volFloorAnnual must be in [0, 20]');
  const somMin = params.shortOptionMinimumFraction ?? SHORT_OPTION_MINIMUM_FRACTION_DEFAULT;
  const somAtm = params.shortOptionAtTheMoneyFraction ?? SHORT_OPTION_ATM_FRACTION_DEFAULT;
  if (!(somMin >= 0 && somMin <= 1)) problems.push('shortOptionMinimumFraction must be in [0, 1]');
  if (!(somAtm >= somMin && somAtm <= 1)) problems.push('shortOptionAtTheMoneyFraction must be in [shortOptionMinimumFraction, 1]');
  const spread = params.spreadChargeFraction ?? SPREAD_CHARGE_FRACTION_DEFAULT;
  if (!(spread >= 0 && spread <= 1)) problems.push('spreadChargeFraction must be in [0, 1]');
  return problems;
}

function assertParams(params: MarginParams): void {
  const problems = marginParamsProblems(params);
  if (problems.length > 0) throw new RangeError(`invalid margin params: ${problems.join('; ')}`);
}

/**
 * Standard normal quantile: P. J. Acklam's rational approximation (rel. error 1.15e-9) refined
 * by one Halley step on normCdf, which brings it to double precision.
 */
export function normQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`probability must be in (0, 1), got ${p}`);
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const pLow = 0.02425;
  let x: number;
  if (p < pLow || p > 1 - pLow) {
    const q = Math.sqrt(-2 * Math.log(p < pLow ? p : 1 - p));
    const tail = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    x = p < pLow ? tail : -tail;
  } else {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  const e = normCdf(x) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

/** The one-sided normal quantile (99% → 2.326, 99.5% → 2.576). */
export function confidenceZ(confidence: number): number {
  return normQuantile(confidence);
}

/**
 * Student-t CDF for an integer ν ≥ 1, by the finite sums of Abramowitz & Stegun 26.7.3 (ν odd)
 * and 26.7.4 (ν even): A(t|ν) = P(|T| < t), CDF = (1 ± A)/2.
 */
export function studentTCdf(t: number, dof: number): number {
  if (!(Number.isInteger(dof) && dof >= 1)) throw new RangeError(`degrees of freedom must be an integer ≥ 1, got ${dof}`);
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  const theta = Math.atan(Math.abs(t) / Math.sqrt(dof));
  const c2 = Math.cos(theta) ** 2;
  const sin = Math.sin(theta);
  let a: number;
  if (dof % 2 === 1) {
    let term = Math.cos(theta);
    let sum = dof > 1 ? term : 0;
    for (let j = 3; j <= dof - 2; j += 2) {
      term *= (c2 * (j - 1)) / j;
      sum += term;
    }
    a = (2 / Math.PI) * (theta + sin * sum);
  } else {
    let term = 1;
    let sum = 1;
    for (let j = 2; j <= dof - 2; j += 2) {
      term *= (c2 * (j - 1)) / j;
      sum += term;
    }
    a = sin * sum;
  }
  return t >= 0 ? (1 + a) / 2 : (1 - a) / 2;
}

/** Student-t quantile for an integer ν ≥ 1, by bisection on studentTCdf (monotone; 200 halvings). */
export function studentTQuantile(p: number, dof: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`probability must be in (0, 1), got ${p}`);
  if (p < 0.5) return -studentTQuantile(1 - p, dof);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, dof) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-14 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, dof) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * k of the scan range: the confidence quantile of a unit-variance Student-t with ν degrees of
 * freedom, t_q(ν)·√((ν−2)/ν), so k·σ is a quantile of a fat-tailed move with vol σ (ν = 0: normal).
 */
export function scanMultiplier(params: MarginParams): number {
  const dof = params.tailDegreesOfFreedom ?? TAIL_DEGREES_OF_FREEDOM_DEFAULT;
  if (dof === 0) return confidenceZ(params.confidence);
  return studentTQuantile(params.confidence, dof) * Math.sqrt((dof - 2) / dof);
}

/** The vol the scan uses: the market's, floored by the anti-procyclicality floor. */
export function scanVolAnnual(volAnnual: number, params: MarginParams): number {
  return Math.max(volAnnual, params.volFloorAnnual ?? 0);
}

/**
 * Scan range in log-price: L = k·σ·√(MPOR/365) (square-root-of-time scaling), with σ floored by
 * volFloorAnnual. A scenario at m × the range moves the price to mark·exp(m·L) (scenarioMark).
 */
export function scanRangeFraction(volAnnual: number, params: MarginParams): number {
  assertParams(params);
  if (!(volAnnual >= 0) || !Number.isFinite(volAnnual)) throw new RangeError(`volAnnual must be finite and ≥ 0, got ${volAnnual}`);
  return scanMultiplier(params) * scanVolAnnual(volAnnual, params) * Math.sqrt(params.mporDays / 365);
}

/** The scenario price: lognormal, mark·exp(m·L), so never below 0 however large the move. */
export function scenarioMark(mark: number, priceMoveMultiple: number, scanRange: number): number {
  return mark * Math.exp(priceMoveMultiple * scanRange);
}

/** The 16 scenarios in CME's order. */
export function spanScenarios(params: MarginParams): readonly SpanScenario[] {
  const extreme = params.extremeMoveMultiple ?? EXTREME_MOVE_MULTIPLE_DEFAULT;
  const cover = params.extremeCoverFraction ?? EXTREME_COVER_FRACTION_DEFAULT;
  const scenarios: SpanScenario[] = [];
  for (const move of [0, 1 / 3, -1 / 3, 2 / 3, -2 / 3, 1, -1]) {
    scenarios.push({ number: scenarios.length + 1, priceMoveMultiple: move, volDirection: 1, coverFraction: 1 });
    scenarios.push({ number: scenarios.length + 1, priceMoveMultiple: move, volDirection: -1, coverFraction: 1 });
  }
  scenarios.push({ number: 15, priceMoveMultiple: extreme, volDirection: 0, coverFraction: cover });
  scenarios.push({ number: 16, priceMoveMultiple: -extreme, volDirection: 0, coverFraction: cover });
  return scenarios;
}

/**
 * Loss of the position in each of the 16 scenarios (positive = loss, negative = gain):
 * loss_k = −(MTM_k − MTM_now) × cover_k.
 */
export function riskArray(position: Position, market: MarketPoint, params: MarginParams): Float64Array {
  const scanRange = scanRangeFraction(market.volAnnual, params);
  const base = markToMarket(position.terms, position.side, market);
  const horizonMs = market.nowMs + params.mporDays * DAY_MS;
  const losses = new Float64Array(SPAN_SCENARIO_COUNT);
  for (const s of spanScenarios(params)) {
    const shocked: MarketPoint = {
      mark: scenarioMark(market.mark, s.priceMoveMultiple, scanRange),
      volAnnual: market.volAnnual * (1 + s.volDirection * params.volShiftFraction),
      nowMs: horizonMs,
    };
    // `+ 0` turns a −0 (a zero gain) into 0.
    losses[s.number - 1] = -(markToMarket(position.terms, position.side, shocked) - base) * s.coverFraction + 0;
  }
  return losses;
}

export interface MarginRequirement {
  /** Worst scenario loss, ≥ 0. */
  readonly initial: number;
  /** maintenanceFraction × initial. */
  readonly maintenance: number;
  readonly scanRangeFraction: number;
  /** CME number (1..16) of the worst scenario, or 0 when no scenario loses. */
  readonly worstScenario: number;
}

function worstOf(losses: Float64Array): { loss: number; scenario: number } {
  let loss = 0;
  let scenario = 0;
  for (let i = 0; i < losses.length; i++) {
    if (losses[i] > loss) {
      loss = losses[i];
      scenario = i + 1;
    }
  }
  return { loss, scenario };
}

export function maintenanceMargin(initial: number, params: MarginParams): number {
  return params.maintenanceFraction * initial;
}

/**
 * Short option minimum of one position (0 unless it sells an option before expiry), CME SPAN's
 * floor with Deribit's sizes: size·mark·max(atmFraction − OTM/mark, minimumFraction).
 */
export function shortOptionMinimum(position: Position, market: MarketPoint, params: MarginParams): number {
  const terms = position.terms;
  if (terms.kind !== 'OPTION' || position.side !== 'SHORT') return 0;
  if ((terms.expiryMs as number) <= market.nowMs) return 0;
  const strike = terms.strike as number;
  const outOfTheMoney = terms.optionType === 'CALL' ? Math.max(strike - market.mark, 0) : Math.max(market.mark - strike, 0);
  const minimum = params.shortOptionMinimumFraction ?? SHORT_OPTION_MINIMUM_FRACTION_DEFAULT;
  const atTheMoney = params.shortOptionAtTheMoneyFraction ?? SHORT_OPTION_ATM_FRACTION_DEFAULT;
  const fraction = market.mark > 0 ? Math.max(atTheMoney - outOfTheMoney / market.mark, minimum) : minimum;
  return terms.size * market.mark * fraction;
}

/**
 * Intra-commodity spread charge of linear positions on one underlying (CME SPAN's
 * intra-commodity spread charge): the scan nets a long perpetual against a short future one for one,
 * but basis moves, so each unit of position offset across tiers (the perpetual, each future expiry)
 * pays spreadChargeFraction × mark.
 */
export function spreadCharge(positions: readonly Position[], market: MarketPoint, params: MarginParams): number {
  const byTier = new Map<string, number>();
  for (const p of positions) {
    if (p.terms.kind === 'OPTION') continue;
    const tier = p.terms.kind === 'PERPETUAL' ? 'perpetual' : `future ${p.terms.expiryMs}`;
    byTier.set(tier, (byTier.get(tier) ?? 0) + sideSign(p.side) * p.terms.size);
  }
  let longUnits = 0;
  let shortUnits = 0;
  for (const delta of byTier.values()) {
    if (delta > 0) longUnits += delta;
    else shortUnits -= delta;
  }
  return (params.spreadChargeFraction ?? SPREAD_CHARGE_FRACTION_DEFAULT) * market.mark * Math.min(longUnits, shortUnits);
}

/** Initial and maintenance margin of one position: the scan risk, floored by the short option minimum. */
export function marginRequirement(position: Position, market: MarketPoint, params: MarginParams): MarginRequirement {
  const scan = worstOf(riskArray(position, market, params));
  const minimum = shortOptionMinimum(position, market, params);
  const worst = minimum > scan.loss ? { loss: minimum, scenario: scan.scenario } : scan;
  return {
    initial: worst.loss,
    maintenance: maintenanceMargin(worst.loss, params),
    scanRangeFraction: scanRangeFraction(market.volAnnual, params),
    worstScenario: worst.scenario,
  };
}

export function initialMargin(position: Position, market: MarketPoint, params: MarginParams): number {
  return marginRequirement(position, market, params).initial;
}

/**
 * Initial margin of a party's positions, netted per underlying as SPAN nets a combined commodity:
 * risk arrays of one underlying are summed scenario by scenario, the worst sum counts, floored by
 * the sum of the short option minimums, plus the spread charge; the underlyings are added with no
 * inter-commodity credit. Never more than the sum of the positions' own initial margins (a hedge
 * never costs more than no hedge).
 */
export function portfolioInitialMargin(
  positions: readonly Position[],
  markets: Readonly<Record<string, MarketPoint>>,
  paramsOf: (underlying: string) => MarginParams,
): number {
  const groups = new Map<string, { sum: Float64Array; minimum: number; alone: number; positions: Position[] }>();
  for (const position of positions) {
    const underlying = position.terms.underlying;
    if (!Object.prototype.hasOwnProperty.call(markets, underlying)) throw new RangeError(`no market for underlying "${underlying}"`);
    const market = markets[underlying];
    const params = paramsOf(underlying);
    const losses = riskArray(position, market, params);
    const group = groups.get(underlying) ?? { sum: new Float64Array(SPAN_SCENARIO_COUNT), minimum: 0, alone: 0, positions: [] };
    for (let i = 0; i < SPAN_SCENARIO_COUNT; i++) group.sum[i] += losses[i];
    const minimum = shortOptionMinimum(position, market, params);
    group.minimum += minimum;
    group.alone += Math.max(worstOf(losses).loss, minimum);
    group.positions.push(position);
    groups.set(underlying, group);
  }
  let total = 0;
  for (const [underlying, group] of groups) {
    const charge = spreadCharge(group.positions, markets[underlying], paramsOf(underlying));
    total += Math.min(Math.max(worstOf(group.sum).loss, group.minimum) + charge, group.alone);
  }
  return total;
}
