/**
 * Mark-to-market of a contract for one side (SPEC §4 "Exposure").
 *
 * - PERPETUAL / FUTURE: LONG = (mark − entryPrice)·size; SHORT = the negative.
 * - OPTION: LONG = (value − entryPrice)·size, where entryPrice is the premium per unit the long
 *   paid and value is Black-76 at (forward = mark, strike, implied vol, time to expiry) with no
 *   discounting (rate 0: crypto option venues quote against the forward, and the MPOR horizons
 *   here are days). SHORT = the negative. At or after expiry the value is the intrinsic value
 *   at the mark.
 *
 * So both sides of one contract always sum to zero: what one side gains the other owes.
 */
import { assertNever, ContractTerms, OptionType, Side, YEAR_MS } from '@backstop/kernel';
import { black76, intrinsicValue } from './option-value';

/** What the market says about one underlying at one instant. */
export interface MarketPoint {
  readonly mark: number;
  /** Implied (options) or realised volatility of the underlying, annualised, e.g. 0.6. */
  readonly volAnnual: number;
  readonly nowMs: number;
}

export interface Position {
  readonly terms: ContractTerms;
  readonly side: Side;
}

export function sideSign(side: Side): 1 | -1 {
  return side === 'LONG' ? 1 : -1;
}

/** Option value per unit at `nowMs`: Black-76 before expiry, intrinsic at and after it. */
export function optionValue(
  optionType: OptionType,
  strike: number,
  expiryMs: number,
  mark: number,
  volAnnual: number,
  nowMs: number,
): number {
  const timeYears = (expiryMs - nowMs) / YEAR_MS;
  if (timeYears <= 0) return intrinsicValue(optionType, mark, strike);
  return black76(optionType, mark, strike, volAnnual, timeYears, 0);
}

/** Scalar kernel shared with PortfolioBook so the flat path and this one agree exactly. */
export function linearPnl(sign: number, size: number, entryPrice: number, mark: number): number {
  return sign * (mark - entryPrice) * size;
}

/** Scalar kernel shared with PortfolioBook; `premium` is the entry price per unit. */
export function optionPnl(
  sign: number,
  size: number,
  premium: number,
  optionType: OptionType,
  strike: number,
  expiryMs: number,
  mark: number,
  volAnnual: number,
  nowMs: number,
): number {
  return sign * (optionValue(optionType, strike, expiryMs, mark, volAnnual, nowMs) - premium) * size;
}

/** Why these terms cannot be valued, or an empty list. */
export function valuationProblems(terms: ContractTerms): string[] {
  const problems: string[] = [];
  if (!(terms.size > 0) || !Number.isFinite(terms.size)) problems.push('size must be a finite number > 0');
  if (!Number.isFinite(terms.entryPrice)) problems.push('entryPrice must be finite');
  if (terms.kind === 'OPTION') {
    if (terms.optionType !== 'CALL' && terms.optionType !== 'PUT') problems.push('an OPTION needs optionType CALL or PUT');
    if (!(terms.strike !== undefined && terms.strike > 0 && Number.isFinite(terms.strike))) problems.push('an OPTION needs a finite strike > 0');
    if (!(terms.expiryMs !== undefined && Number.isFinite(terms.expiryMs))) problems.push('an OPTION needs expiryMs');
    if (!(terms.entryPrice >= 0)) problems.push('an OPTION premium (entryPrice) must be ≥ 0');
  }
  return problems;
}

export function assertValuable(terms: ContractTerms): void {
  const problems = valuationProblems(terms);
  if (problems.length > 0) throw new RangeError(`cannot value ${terms.kind} ${terms.underlying}: ${problems.join('; ')}`);
}

/** Mark-to-market of `side` of a contract, in settlement currency (a double; see equity.ts for amounts). */
export function markToMarket(terms: ContractTerms, side: Side, market: MarketPoint): number {
  assertValuable(terms);
  const sign = sideSign(side);
  switch (terms.kind) {
    case 'PERPETUAL':
    case 'FUTURE':
      return linearPnl(sign, terms.size, terms.entryPrice, market.mark);
    case 'OPTION':
      return optionPnl(
        sign,
        terms.size,
        terms.entryPrice,
        terms.optionType as OptionType,
        terms.strike as number,
        terms.expiryMs as number,
        market.mark,
        market.volAnnual,
        market.nowMs,
      );
    default:
      return assertNever(terms.kind, 'instrument kind');
  }
}
