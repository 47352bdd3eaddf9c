/**
 * Probability of default from a party's credit profile: a rating or an explicit annual PD, turned
 * into a constant hazard rate so the default probability of any slice of the coverage term follows.
 */

export type RatingGrade = 'AAA' | 'AA' | 'A' | 'BBB' | 'BB' | 'B' | 'CCC' | 'D';

/** A credit profile as onboarding or the credit feed gives it: an explicit PD wins over a rating. */
export type CreditProfile =
  | { readonly pdAnnual: number }
  | { readonly rating: string };

/**
 * One-year default rates by S&P rating category: the one-year column of S&P Global Ratings'
 * global corporate average cumulative default rates since 1981 (issuer-weighted), as tabulated in
 * Hull, "Risk Management and Financial Institutions" (chapter on external and internal credit
 * ratings): AAA 0.00%, AA 0.02%, A 0.06%, BBB 0.18%, BB 0.72%, B 3.76%, CCC/C 26.78%.
 * D (already in default) is 1. Through-the-cycle averages: a credit feed's point-in-time PD,
 * when there is one, should be passed as pdAnnual instead.
 */
export const ONE_YEAR_DEFAULT_RATE_BY_RATING: Readonly<Record<RatingGrade, number>> = {
  AAA: 0.0,
  AA: 0.0002,
  A: 0.0006,
  BBB: 0.0018,
  BB: 0.0072,
  B: 0.0376,
  CCC: 0.2678,
  D: 1,
};

/**
 * Floor on every PD, rated or given: an AAA's historical 0.00% (or a feed's PD of 0) would price
 * protection at zero. Basel II (BCBS, June 2006), paragraph 285: the PD for corporate and bank
 * exposures is the greater of the one-year PD and 0.03%.
 */
export const PD_ANNUAL_FLOOR = 0.0003;

/**
 * The grade of a rating string: S&P/Fitch letters with an optional +/− notch ("BBB-" → BBB),
 * CC and C grouped with CCC (S&P reports CCC/C together), SD/RD/D as default.
 */
export function ratingGrade(rating: string): RatingGrade {
  const letters = rating.trim().toUpperCase().replace(/[+\-−]$/, '');
  switch (letters) {
    case 'AAA':
    case 'AA':
    case 'A':
    case 'BBB':
    case 'BB':
    case 'B':
    case 'CCC':
      return letters;
    case 'CC':
    case 'C':
      return 'CCC';
    case 'D':
    case 'SD':
    case 'RD':
      return 'D';
    default:
      throw new RangeError(`unknown rating "${rating}" (expected AAA, AA, A, BBB, BB, B, CCC, CC, C or D, with an optional + or -)`);
  }
}

/** Annual PD of a profile: the explicit PD or the rating's table value, floored at 0.03% either way. */
export function pdAnnualOf(profile: CreditProfile): number {
  if ('pdAnnual' in profile) {
    assertProbability(profile.pdAnnual, 'pdAnnual');
    return Math.max(profile.pdAnnual, PD_ANNUAL_FLOOR);
  }
  if (typeof profile.rating !== 'string') throw new RangeError('a credit profile needs pdAnnual or a rating string');
  return Math.max(ONE_YEAR_DEFAULT_RATE_BY_RATING[ratingGrade(profile.rating)], PD_ANNUAL_FLOOR);
}

/**
 * Constant hazard rate λ matching an annual PD: survival e^{−λ·1} = 1 − PD, so λ = −ln(1 − PD)
 * (Hull, Options, Futures and Other Derivatives, chapter on credit risk: hazard rates).
 * PD = 1 gives λ = ∞ (default is certain, immediately).
 */
export function hazardRateAnnual(pdAnnual: number): number {
  assertProbability(pdAnnual, 'pdAnnual');
  return -Math.log1p(-pdAnnual);
}

/** S(t) = e^{−λt}; S(0) = 1 even when λ = ∞. */
export function survivalProbability(hazardRate: number, tYears: number): number {
  if (tYears <= 0) return 1;
  return Math.exp(-hazardRate * tYears);
}

/**
 * Probability of default in (t₁, t₂]: PD(t₁, t₂) = S(t₁) − S(t₂) = e^{−λt₁} − e^{−λt₂}
 * (the marginal default probability of a CVA sum; Gregory, "The xVA Challenge", chapter on CVA).
 */
export function defaultProbabilityBetween(hazardRate: number, t1Years: number, t2Years: number): number {
  if (!(hazardRate >= 0)) throw new RangeError(`hazard rate must be ≥ 0, got ${hazardRate}`);
  if (!(t2Years >= t1Years) || !(t1Years >= 0)) throw new RangeError(`need 0 ≤ t1 ≤ t2, got t1=${t1Years}, t2=${t2Years}`);
  return Math.max(survivalProbability(hazardRate, t1Years) - survivalProbability(hazardRate, t2Years), 0);
}

function assertProbability(p: number, field: string): void {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`${field} must be a probability in [0, 1], got ${p}`);
}
