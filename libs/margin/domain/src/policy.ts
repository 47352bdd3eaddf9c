/**
 * The knobs of margin monitoring (SPEC §3.7-3.8, §4), one place, validated once. The service builds
 * a policy from its configuration; the deciders and the monitor receive it, never read the environment.
 */
import { DAY_MS, HOUR_MS } from '@backstop/kernel';
import { MarginParams, marginParamsProblems, OTC_MARGIN_PARAMS } from '@backstop/margin-model';

export interface MarkSanityPolicy {
  /** Largest accepted |mark / last sane mark − 1|, e.g. 0.15. */
  readonly bandFraction: number;
  /** Largest accepted age of a mark when it reaches us (message time − mark time). */
  readonly maxStaleMs: number;
  /**
   * A move beyond the band becomes sane once this many consecutive marks agree on the new level
   * (each within the band of the previous one); 0 = never (an operator must intervene).
   */
  readonly jumpConfirmations: number;
}

export interface MarginPolicy {
  readonly sanity: MarkSanityPolicy;
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
 * Defaults: contracts here are bilateral OTC derivatives, so EMIR RTS 153/2013 art. 24/26 OTC
 * parameters (5 days, 99.5%) and Hyperliquid's maintenance = ½ initial (OTC_MARGIN_PARAMS).
 */
export const DEFAULT_MARGIN_POLICY: MarginPolicy = {
  sanity: { bandFraction: 0.15, maxStaleMs: 60_000, jumpConfirmations: 3 },
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
  const { bandFraction, maxStaleMs, jumpConfirmations } = policy.sanity;
  if (!(bandFraction > 0 && bandFraction < 1)) problems.push('sanity.bandFraction must be in (0, 1)');
  if (!(Number.isInteger(maxStaleMs) && maxStaleMs >= 0)) problems.push('sanity.maxStaleMs must be an integer ≥ 0');
  if (!(Number.isInteger(jumpConfirmations) && jumpConfirmations >= 0 && jumpConfirmations <= 100)) problems.push('sanity.jumpConfirmations must be an integer in [0, 100]');
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
