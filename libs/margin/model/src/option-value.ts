/**
 * Black-76 for margining, on the pricing model's implementation (one formula in the codebase),
 * plus the degenerate cases margining meets (expired, zero vol, non-positive scenario price). Black, F. (1976) "The pricing of commodity contracts", J. Financial Economics 3;
 * textbook form in Hull, "Options, Futures and Other Derivatives", section "Black's model".
 */
import type { OptionType } from '@backstop/kernel';
import { black76ValueUnchecked, normalCdf } from '@backstop/pricing-model';

/** Standard normal CDF: the pricing model's (Hart 1968 / West 2005), one implementation for both. */
export const normCdf = normalCdf;

/** Payoff at expiry per unit: max(S − K, 0) for a call, max(K − S, 0) for a put. */
export function intrinsicValue(optionType: OptionType, underlyingPrice: number, strike: number): number {
  return optionType === 'CALL' ? Math.max(underlyingPrice - strike, 0) : Math.max(strike - underlyingPrice, 0);
}

/**
 * Black-76 value per unit (Hull, "Black's model"):
 *   c = e^(−rT)·[F·N(d1) − K·N(d2)],  p = e^(−rT)·[K·N(−d2) − F·N(−d1)],
 *   d1 = (ln(F/K) + σ²T/2)/(σ√T),  d2 = d1 − σ√T.
 * Degenerate inputs (T ≤ 0, σ ≤ 0, F ≤ 0) give the discounted intrinsic value at max(F, 0),
 * which is the limit of the formula. Scalar arguments only: this runs on the revaluation hot path.
 */
export function black76(
  optionType: OptionType,
  forwardPrice: number,
  strike: number,
  volAnnual: number,
  timeYears: number,
  rateAnnual = 0,
): number {
  const discount = timeYears > 0 ? Math.exp(-rateAnnual * timeYears) : 1;
  if (!(volAnnual * Math.sqrt(Math.max(timeYears, 0)) > 0) || !(forwardPrice > 0)) {
    return discount * intrinsicValue(optionType, Math.max(forwardPrice, 0), strike);
  }
  return black76ValueUnchecked(optionType === 'CALL', forwardPrice, strike, volAnnual, timeYears, discount);
}

// Bound once: a call through the package's re-export is a property read on every call (hot loop).
const black76Hot = black76ValueUnchecked;

/**
 * The revaluation hot loop's form of valuation.ts optionValue, with the time to expiry in years
 * given (the caller computes it once per contract per tick): intrinsic at or after expiry, Black-76
 * with rate 0 before, and the same degenerate cases as black76. The same bits as optionValue.
 */
export function optionValueAtTerm(isCall: boolean, forwardPrice: number, strike: number, volAnnual: number, timeYears: number): number {
  if (timeYears <= 0) return isCall ? Math.max(forwardPrice - strike, 0) : Math.max(strike - forwardPrice, 0);
  if (!(volAnnual * Math.sqrt(timeYears) > 0) || !(forwardPrice > 0)) {
    const f = Math.max(forwardPrice, 0);
    return isCall ? Math.max(f - strike, 0) : Math.max(strike - f, 0);
  }
  return black76Hot(isCall, forwardPrice, strike, volAnnual, timeYears, 1);
}
