import type { OptionType } from '@backstop/kernel';
import { normalCdf, normalPdf } from './normal';

/**
 * European option values and sensitivities.
 * Black–Scholes–Merton on spot with a continuous dividend (or funding) yield q, and Black-76 on a
 * forward with a discount factor. Units: rates and vols per year (continuously compounded), time in
 * years. At expiry (termYears = 0) or zero vol the value is the discounted intrinsic value.
 */

export interface BlackScholesInput {
  readonly optionType: OptionType;
  readonly spot: number;
  readonly strike: number;
  readonly rateAnnual: number;
  /** Continuous dividend / carry yield; 0 for a non-paying underlying. */
  readonly dividendYieldAnnual?: number;
  readonly volAnnual: number;
  readonly termYears: number;
}

export interface Black76Input {
  readonly optionType: OptionType;
  readonly forward: number;
  readonly strike: number;
  readonly volAnnual: number;
  readonly termYears: number;
  /** P(0, T): e^{−rT} for a flat rate r; 1 when undiscounted. */
  readonly discountFactor: number;
}

export interface OptionValuation {
  readonly value: number;
  /** ∂value/∂spot (Black–Scholes) or ∂value/∂forward (Black-76). */
  readonly delta: number;
  /** ∂value/∂σ per unit of vol (1.00 = 100 vol points). */
  readonly vega: number;
}

/**
 * Black-76 (F. Black, "The pricing of commodity contracts", J. Financial Economics 3, 1976;
 * Hull, Options, Futures and Other Derivatives, chapter on futures options and Black's model):
 *   d₁ = (ln(F/K) + σ²T/2) / (σ√T),  d₂ = d₁ − σ√T
 *   call = D·(F·N(d₁) − K·N(d₂)),  put = D·(K·N(−d₂) − F·N(−d₁))
 *   delta_F = D·N(d₁) (call), D·(N(d₁) − 1) (put);  vega = D·F·φ(d₁)·√T
 */
export function black76(input: Black76Input): OptionValuation {
  assertBlackInputs(input.forward, input.strike, input.volAnnual, input.termYears);
  if (!(input.discountFactor > 0)) throw new RangeError(`discountFactor must be > 0, got ${input.discountFactor}`);
  return black76Unchecked(input.optionType === 'CALL', input.forward, input.strike, input.volAnnual, input.termYears, input.discountFactor);
}

export function black76Value(input: Black76Input): number {
  return black76(input).value;
}

/**
 * Black–Scholes–Merton (Black & Scholes 1973, Merton 1973; Hull, chapters on the Black–Scholes–
 * Merton model and on options on indices): the Black-76 formula on the forward F = S·e^{(r−q)T}
 * discounted with D = e^{−rT}; delta to spot = e^{−qT}·N(d₁) (call), e^{−qT}·(N(d₁) − 1) (put),
 * vega = S·e^{−qT}·φ(d₁)·√T.
 */
export function blackScholes(input: BlackScholesInput): OptionValuation {
  const q = input.dividendYieldAnnual ?? 0;
  assertBlackInputs(input.spot, input.strike, input.volAnnual, input.termYears);
  if (!Number.isFinite(input.rateAnnual) || !Number.isFinite(q)) throw new RangeError('rateAnnual and dividendYieldAnnual must be finite');
  const discountFactor = Math.exp(-input.rateAnnual * input.termYears);
  const carry = Math.exp((input.rateAnnual - q) * input.termYears); // F / S
  const onForward = black76Unchecked(input.optionType === 'CALL', input.spot * carry, input.strike, input.volAnnual, input.termYears, discountFactor);
  // dV/dS = dV/dF · dF/dS; D·carry = e^{−qT}.
  return { value: onForward.value, delta: onForward.delta * carry, vega: onForward.vega };
}

export function blackScholesValue(input: BlackScholesInput): number {
  return blackScholes(input).value;
}

/**
 * The hot-loop form (no input object, no validation): the caller guarantees forward > 0,
 * strike > 0, volAnnual ≥ 0, termYears ≥ 0, discountFactor > 0. Same formula as black76.
 */
export function black76ValueUnchecked(isCall: boolean, forward: number, strike: number, volAnnual: number, termYears: number, discountFactor: number): number {
  const stdDev = volAnnual * Math.sqrt(termYears);
  if (stdDev <= 0) return discountFactor * Math.max(isCall ? forward - strike : strike - forward, 0);
  const d1 = Math.log(forward / strike) / stdDev + 0.5 * stdDev;
  const d2 = d1 - stdDev;
  const value = isCall
    ? discountFactor * (forward * normalCdf(d1) - strike * normalCdf(d2))
    : discountFactor * (strike * normalCdf(-d2) - forward * normalCdf(-d1));
  // Far out of the money the difference can round to a hair below zero; an option is never a debt.
  return Math.max(value, 0);
}

function black76Unchecked(isCall: boolean, forward: number, strike: number, volAnnual: number, termYears: number, discountFactor: number): OptionValuation {
  const value = black76ValueUnchecked(isCall, forward, strike, volAnnual, termYears, discountFactor);
  const stdDev = volAnnual * Math.sqrt(termYears);
  if (stdDev <= 0) {
    const inTheMoney = isCall ? forward > strike : forward < strike;
    return { value, delta: inTheMoney ? discountFactor * (isCall ? 1 : -1) : 0, vega: 0 };
  }
  const d1 = Math.log(forward / strike) / stdDev + 0.5 * stdDev;
  const delta = isCall ? discountFactor * normalCdf(d1) : discountFactor * (normalCdf(d1) - 1);
  const vega = discountFactor * forward * normalPdf(d1) * Math.sqrt(termYears);
  return { value, delta, vega };
}

function assertBlackInputs(underlying: number, strike: number, volAnnual: number, termYears: number): void {
  if (!(underlying > 0) || !Number.isFinite(underlying)) throw new RangeError(`underlying price must be a finite number > 0, got ${underlying}`);
  if (!(strike > 0) || !Number.isFinite(strike)) throw new RangeError(`strike must be a finite number > 0, got ${strike}`);
  if (!(volAnnual >= 0) || !Number.isFinite(volAnnual)) throw new RangeError(`volAnnual must be a finite number ≥ 0, got ${volAnnual}`);
  if (!(termYears >= 0) || !Number.isFinite(termYears)) throw new RangeError(`termYears must be a finite number ≥ 0, got ${termYears}`);
}
