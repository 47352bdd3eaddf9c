import { decimal } from './numbers';
import { PricingBasis } from './price';
import { RepriceThresholds } from './policy';

export interface ObservedInputs {
  readonly underlying: string;
  readonly spot: number;
  readonly volAnnual: number;
  readonly pdAnnual: number;
}

/**
 * Why a coverage should be re-priced for its next interval (SPEC §3 step 5): one sentence per
 * input that moved past its threshold since the coverage was last priced; empty = leave it.
 */
export function repriceReasons(basis: PricingBasis, observed: ObservedInputs, thresholds: RepriceThresholds): string[] {
  const reasons: string[] = [];
  const spot0 = Number(basis.spot);
  const priceMove = observed.spot / spot0 - 1;
  if (Math.abs(priceMove) >= thresholds.priceMoveFraction) {
    reasons.push(`${observed.underlying} mark moved ${percent(priceMove)} (${basis.spot} → ${decimal(observed.spot, 8)}), threshold ${percent(thresholds.priceMoveFraction, false)}`);
  }
  const vol0 = Number(basis.volAnnual);
  const volMove = observed.volAnnual - vol0;
  if (Math.abs(volMove) >= thresholds.volMoveAbsolute) {
    reasons.push(`${observed.underlying} vol moved ${volMove > 0 ? '+' : ''}${decimal(volMove, 4)} (${basis.volAnnual} → ${decimal(observed.volAnnual, 6)}), threshold ${decimal(thresholds.volMoveAbsolute, 4)}`);
  }
  const pd0 = Number(basis.pdAnnual);
  const pdMoved = pd0 === 0 ? observed.pdAnnual > 0 : Math.abs(observed.pdAnnual / pd0 - 1) >= thresholds.pdMoveFraction;
  if (pdMoved) {
    reasons.push(`counterparty PD moved ${pd0 === 0 ? 'from 0' : percent(observed.pdAnnual / pd0 - 1)} (${basis.pdAnnual} → ${decimal(observed.pdAnnual, 12)}), threshold ${percent(thresholds.pdMoveFraction, false)}`);
  }
  return reasons;
}

export interface CuttableCoverage {
  readonly coverageId: string;
  readonly limitMinor: bigint;
  readonly stressMinor: bigint;
}

export interface LimitCut {
  readonly coverageId: string;
  readonly oldLimitMinor: bigint;
  readonly newLimitMinor: bigint;
}

/**
 * Limit cuts that free `deficitMinor` of stress capacity (SPEC §3 step 5, "limits can be cut when
 * capacity is stressed"): every coverage's stress contribution shrinks by the same fraction,
 * (S − D) / S, rounded down, and its limit is capped at its new contribution — the pool never pays
 * more than the limit, so the contribution (min(limit, stressed exposure)) is then at most that.
 * Σ new contributions ≤ S − D. Coverages are only ever cut, never raised; no coverage is dropped.
 */
export function limitCuts(coverages: readonly CuttableCoverage[], deficitMinor: bigint): LimitCut[] {
  if (deficitMinor <= 0n) return [];
  const total = coverages.reduce((sum, c) => sum + c.stressMinor, 0n);
  if (total === 0n) return [];
  const keep = total > deficitMinor ? total - deficitMinor : 0n;
  return coverages.flatMap((c) => {
    const newStress = (c.stressMinor * keep) / total;
    const newLimit = c.limitMinor < newStress ? c.limitMinor : newStress;
    return newLimit < c.limitMinor ? [{ coverageId: c.coverageId, oldLimitMinor: c.limitMinor, newLimitMinor: newLimit }] : [];
  });
}

function percent(fraction: number, signed = true): string {
  const text = `${decimal(fraction * 100, 2)}%`;
  return signed && fraction > 0 ? `+${text}` : text;
}
