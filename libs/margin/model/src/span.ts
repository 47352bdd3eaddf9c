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
 * Our choices (not from a rulebook): moves are relative to the mark and the scenario price is
 * floored at 0; the vol scan is relative, σ·(1 ± volShiftFraction); scenario values are taken at
 * now + MPOR (CME shortens the time to expiry by its look-ahead likewise); MPOR is in calendar days
 * over 365 because crypto trades every day.
 *
 * Long vs short: the price grid is symmetric, so a linear long and the opposite short get the same
 * initial margin (as long as no scenario price is floored at 0). Options do not: the buyer can lose
 * at most the option's value, the writer much more, and the vol and time moves favour one side.
 */
import { DAY_MS } from '@backstop/kernel';
import { normCdf } from './option-value';
import { markToMarket, MarketPoint, Position } from './valuation';

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
}

export const EXTREME_MOVE_MULTIPLE_DEFAULT = 2;
export const EXTREME_COVER_FRACTION_DEFAULT = 0.35;

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

/** k of the scan range: the one-sided normal quantile (99% → 2.326, 99.5% → 2.576). */
export function confidenceZ(confidence: number): number {
  return normQuantile(confidence);
}

/** Scan range as a fraction of the mark: k·σ·√(MPOR/365) (square-root-of-time scaling). */
export function scanRangeFraction(volAnnual: number, params: MarginParams): number {
  assertParams(params);
  if (!(volAnnual >= 0) || !Number.isFinite(volAnnual)) throw new RangeError(`volAnnual must be finite and ≥ 0, got ${volAnnual}`);
  return confidenceZ(params.confidence) * volAnnual * Math.sqrt(params.mporDays / 365);
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
      mark: Math.max(0, market.mark * (1 + s.priceMoveMultiple * scanRange)),
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

/** Initial and maintenance margin of one position. */
export function marginRequirement(position: Position, market: MarketPoint, params: MarginParams): MarginRequirement {
  const worst = worstOf(riskArray(position, market, params));
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
 * risk arrays of one underlying are summed scenario by scenario, the worst sum counts, and the
 * underlyings are added with no inter-commodity credit. Never more than the sum of the positions'
 * own initial margins.
 */
export function portfolioInitialMargin(
  positions: readonly Position[],
  markets: Readonly<Record<string, MarketPoint>>,
  paramsOf: (underlying: string) => MarginParams,
): number {
  const sums = new Map<string, Float64Array>();
  for (const position of positions) {
    const underlying = position.terms.underlying;
    if (!Object.prototype.hasOwnProperty.call(markets, underlying)) throw new RangeError(`no market for underlying "${underlying}"`);
    const losses = riskArray(position, markets[underlying], paramsOf(underlying));
    const sum = sums.get(underlying) ?? new Float64Array(SPAN_SCENARIO_COUNT);
    for (let i = 0; i < SPAN_SCENARIO_COUNT; i++) sum[i] += losses[i];
    sums.set(underlying, sum);
  }
  let total = 0;
  for (const sum of sums.values()) total += worstOf(sum).loss;
  return total;
}
