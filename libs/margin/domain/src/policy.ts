/**
 * The knobs of margin monitoring (SPEC §3.7-3.8, §4), one place, validated once. The service builds
 * a policy from its configuration; the deciders and the monitor receive it, never read the environment.
 */
import { DAY_MS, HOUR_MS } from '@backstop/kernel';
import { MarginParams, marginParamsProblems, OTC_MARGIN_PARAMS } from '@backstop/margin-model';

export interface MarkSanityPolicy {
  /** Largest |mark / last accepted mark − 1| accepted at once, e.g. 0.15. */
  readonly bandFraction: number;
  /** Largest age of a mark when it reaches us (receiving clock − mark time). */
  readonly maxStaleMs: number;
  /**
   * A move beyond the band is accepted once this many consecutive consistent marks (this one
   * included) carry it (same side, none turning back by more than the band); 0 = not by count.
   */
  readonly jumpConfirmations: number;
  /** ... or once at least two consistent marks span this long (mark time); 0 = not by time. */
  readonly persistMs: number;
  /** A mark dated ahead of the receiving clock by more than this is flagged FUTURE (clock skew allowance). */
  readonly futureToleranceMs: number;
  /** The sane absolute price range; outside it a mark is flagged OUT_OF_RANGE. */
  readonly priceMin: number;
  readonly priceMax: number;
  /** Independent feeds (MarkPrice.source); with more than one, the view is their median. Empty = one feed. */
  readonly sources: readonly string[];
  /** A source's last mark counts toward the median while at most this much older than the newest. */
  readonly sourceWindowMs: number;
  /** The last accepted mark older than this by the receiving clock raises MarkStale; 0 = no alarm. */
  readonly alarmStaleMs: number;
}

/** When and at what price dated contracts settle at expiry (SPEC §3.6). */
export interface ExpirySettlementPolicy {
  /** The settlement price is the time-weighted average of accepted marks in [expiry − windowBeforeMs, expiry + windowAfterMs]. */
  readonly windowBeforeMs: number;
  readonly windowAfterMs: number;
}

export interface MarginPolicy {
  readonly sanity: MarkSanityPolicy;
  readonly expiry: ExpirySettlementPolicy;
  /** Margin call deadline = issue time + callGraceMs. */
  readonly callGraceMs: number;
  /** Second deadline = first deadline + secondGraceMs: still short then → default. */
  readonly secondGraceMs: number;
  /** Perpetual funding is exchanged at every multiple of this interval since the epoch (8 h: 00, 08, 16 UTC). */
  readonly fundingIntervalMs: number;
  /** Limit on funding periods settled for one contract in one pass (a feed outage catch-up). */
  readonly fundingCatchUpMax: number;
  /** SPAN parameters (MPOR, confidence, vol shift, maintenance fraction) per underlying. */
  readonly marginParams: Readonly<Record<string, MarginParams>>;
  readonly defaultMarginParams: MarginParams;
  /** Volatility for the scan range when no mark of the underlying has carried one yet. */
  readonly volAnnualByUnderlying: Readonly<Record<string, number>>;
  readonly defaultVolAnnual: number;
}

/**
 * A move beyond 15% waits for a second consistent mark, or a third within a few minutes of a
 * real-time feed: a daily feed falling 40% a day is followed one mark behind, a bad tick never.
 */
export const DEFAULT_SANITY_POLICY: MarkSanityPolicy = {
  bandFraction: 0.15,
  maxStaleMs: 60_000,
  jumpConfirmations: 3,
  persistMs: 5 * 60_000,
  futureToleranceMs: 5_000,
  priceMin: 1e-9,
  priceMax: 1e12,
  sources: [],
  sourceWindowMs: 60_000,
  alarmStaleMs: 5 * 60_000,
};

/**
 * Defaults: contracts here are bilateral OTC derivatives, so EMIR RTS 153/2013 art. 24/26 OTC
 * parameters (5 days, 99.5%) and Hyperliquid's maintenance = ½ initial (OTC_MARGIN_PARAMS).
 */
export const DEFAULT_MARGIN_POLICY: MarginPolicy = {
  sanity: DEFAULT_SANITY_POLICY,
  // Deribit settles at a 30-minute TWAP of its index before expiry; CME crypto futures at the CF
  // reference rate, itself an average over an hour's window.
  expiry: { windowBeforeMs: 30 * 60_000, windowAfterMs: 0 },
  callGraceMs: 4 * HOUR_MS,
  secondGraceMs: DAY_MS,
  fundingIntervalMs: 8 * HOUR_MS,
  fundingCatchUpMax: 90,
  marginParams: {},
  defaultMarginParams: OTC_MARGIN_PARAMS,
  volAnnualByUnderlying: {},
  defaultVolAnnual: 0.8,
};

export function marginPolicyProblems(policy: MarginPolicy): string[] {
  const problems: string[] = [];
  problems.push(...sanityPolicyProblems(policy.sanity));
  const { windowBeforeMs, windowAfterMs } = policy.expiry;
  if (!(Number.isInteger(windowBeforeMs) && windowBeforeMs >= 0 && windowBeforeMs <= DAY_MS)) problems.push('expiry.windowBeforeMs must be an integer in [0, 86400000]');
  if (!(Number.isInteger(windowAfterMs) && windowAfterMs >= 0 && windowAfterMs <= DAY_MS)) problems.push('expiry.windowAfterMs must be an integer in [0, 86400000]');
  if (!(Number.isInteger(policy.callGraceMs) && policy.callGraceMs > 0)) problems.push('callGraceMs must be an integer > 0');
  if (!(Number.isInteger(policy.secondGraceMs) && policy.secondGraceMs > 0)) problems.push('secondGraceMs must be an integer > 0');
  if (!(Number.isInteger(policy.fundingIntervalMs) && policy.fundingIntervalMs >= 60_000)) problems.push('fundingIntervalMs must be an integer ≥ 60000');
  if (!(Number.isInteger(policy.fundingCatchUpMax) && policy.fundingCatchUpMax >= 1 && policy.fundingCatchUpMax <= 10_000)) problems.push('fundingCatchUpMax must be an integer in [1, 10000]');
  for (const [underlying, params] of [['(default)', policy.defaultMarginParams], ...Object.entries(policy.marginParams)] as const) {
    for (const p of marginParamsProblems(params)) problems.push(`marginParams ${underlying}: ${p}`);
  }
  for (const [underlying, vol] of [['(default)', policy.defaultVolAnnual], ...Object.entries(policy.volAnnualByUnderlying)] as const) {
    if (!(vol > 0 && vol <= 10)) problems.push(`volAnnual ${underlying} must be in (0, 10]`);
  }
  return problems;
}

export function sanityPolicyProblems(sanity: MarkSanityPolicy): string[] {
  const problems: string[] = [];
  const { bandFraction, maxStaleMs, jumpConfirmations, persistMs, futureToleranceMs, priceMin, priceMax, sources, sourceWindowMs, alarmStaleMs } = sanity;
  const msField = (name: string, value: number) => {
    if (!(Number.isInteger(value) && value >= 0)) problems.push(`sanity.${name} must be an integer ≥ 0`);
  };
  if (!(bandFraction > 0 && bandFraction < 1)) problems.push('sanity.bandFraction must be in (0, 1)');
  msField('maxStaleMs', maxStaleMs);
  msField('persistMs', persistMs);
  msField('futureToleranceMs', futureToleranceMs);
  msField('sourceWindowMs', sourceWindowMs);
  msField('alarmStaleMs', alarmStaleMs);
  if (!(Number.isInteger(jumpConfirmations) && jumpConfirmations >= 0 && jumpConfirmations <= 100)) problems.push('sanity.jumpConfirmations must be an integer in [0, 100]');
  // Without either rule a real crash would never be followed (issue 8 defect 1): one must be on.
  if (jumpConfirmations === 0 && persistMs === 0) problems.push('sanity: jumpConfirmations and persistMs cannot both be 0 (a new level could never be accepted)');
  if (jumpConfirmations === 1) problems.push('sanity.jumpConfirmations must not be 1 (a single print beyond the band would be accepted)');
  if (!(priceMin > 0 && Number.isFinite(priceMax) && priceMax > priceMin)) problems.push('sanity: need 0 < priceMin < priceMax < ∞');
  if (!Array.isArray(sources) || sources.some((s) => typeof s !== 'string' || s.length === 0) || new Set(sources).size !== sources.length) problems.push('sanity.sources must be distinct non-empty names');
  return problems;
}

export function assertMarginPolicy(policy: MarginPolicy): MarginPolicy {
  const problems = marginPolicyProblems(policy);
  if (problems.length > 0) throw new RangeError(`invalid margin policy: ${problems.join('; ')}`);
  return policy;
}

function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

export function marginParamsFor(policy: MarginPolicy, underlying: string): MarginParams {
  return own(policy.marginParams, underlying) ?? policy.defaultMarginParams;
}

export function fallbackVolFor(policy: MarginPolicy, underlying: string): number {
  return own(policy.volAnnualByUnderlying, underlying) ?? policy.defaultVolAnnual;
}

/** Funding instants in (afterMs, upToMs], oldest first, at most `max`. */
export function fundingInstants(intervalMs: number, afterMs: number, upToMs: number, max: number): number[] {
  const instants: number[] = [];
  let next = (Math.floor(afterMs / intervalMs) + 1) * intervalMs;
  while (next <= upToMs && instants.length < max) {
    instants.push(next);
    next += intervalMs;
  }
  return instants;
}
