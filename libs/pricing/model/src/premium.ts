import { ContractTerms, floatToMinor, invariant, Side, Violations, YEAR_MS } from '@backstop/kernel';
import { CreditProfile, defaultProbabilityBetween, hazardRateAnnual, pdAnnualOf } from './credit';
import { simulateExposureProfile, simulationViolations, stressedExposure } from './exposure';

/** Defaults a quote uses when the request or the pricing config leaves a parameter out. */
export const PRICING_DEFAULTS = {
  /** Loss given default on the unpaid exposure; between Basel II foundation IRB's 45% (senior) and 75% (subordinated), ¶287–288. */
  lgd: 0.6,
  /** Annual return providers ask on the capital the coverage ties up. */
  costOfCapitalAnnual: 0.1,
  /** Margin for model risk and expenses, as a fraction of EL + capital charge. */
  loadingFraction: 0.1,
  /** One-sided confidence of the stress move when no stress contribution is given. */
  stressQuantile: 0.99,
  paths: 2_000,
  steps: 50,
} as const;

export interface CoverageInput {
  readonly terms: ContractTerms;
  readonly protectedSide: Side;
  readonly spot: number;
  readonly volAnnual: number;
  /** Collateral the protected side holds from the counterparty, currency units. */
  readonly collateralHeld: number;
  /** The most the pool pays on this coverage, currency units, > 0. */
  readonly coverageLimit: number;
  readonly startMs: number;
  readonly termMs: number;
  /** The counterparty's credit profile: an annual PD or a rating. */
  readonly credit: CreditProfile;
  readonly lgd?: number;
  readonly costOfCapitalAnnual?: number;
  readonly loadingFraction?: number;
  /**
   * The coverage's contribution to the pool's stress loss (Cover 2 engine), currency units.
   * Absent: min(limit, stressedExposure at stressQuantile) — see stressedExposure.
   */
  readonly stressContribution?: number;
  readonly stressQuantile?: number;
  readonly rateAnnual?: number;
  readonly seed: number;
  readonly paths?: number;
  readonly steps?: number;
}

export interface ExpectedExposureSummary {
  /** max over the grid of EE(tᵢ), net of collateral, uncapped. */
  readonly peakEe: number;
  /** Mean of EE(t₁..t_n) (equal steps, so the time average; Basel's EPE without the "effective"). */
  readonly averageEe: number;
  readonly timesMs: readonly number[];
  readonly ee: readonly number[];
  /** E[min(exposure, limit)] per grid time: what the pool could pay, and what EL uses. */
  readonly eeCapped: readonly number[];
  readonly standardError: readonly number[];
}

/** Every component of a coverage price, so a desk can see why (doubles, currency units). */
export interface CoveragePrice {
  readonly expectedExposureSummary: ExpectedExposureSummary;
  readonly pdAnnual: number;
  readonly hazardRateAnnual: number;
  /** Probability the counterparty defaults within the coverage term: 1 − e^{−λT}. */
  readonly pdTerm: number;
  readonly lgd: number;
  readonly expectedLoss: number;
  readonly stressContribution: number;
  readonly capitalCharge: number;
  readonly loading: number;
  readonly premiumTotal: number;
  /** premiumTotal / coverageLimit / term in years. */
  readonly premiumRateAnnual: number;
  readonly coverageLimit: number;
  readonly termMs: number;
  /** The part of the term with exposure: cut at expiry for dated contracts. */
  readonly horizonMs: number;
  readonly paths: number;
  readonly steps: number;
  readonly seed: number;
}

/**
 * Prices protection of one contract against the counterparty's default (SPEC §4 "Premium"):
 *   EL      = LGD × Σᵢ EE_L(tᵢ) × PD(tᵢ₋₁, tᵢ)        (a CVA sum: Gregory, "The xVA Challenge",
 *             with EE_L(t) = E[min(max(V(t) − C, 0), L)]    unilateral CVA formula)
 *   capital = costOfCapitalAnnual × stressContribution × horizon in years
 *   loading = loadingFraction × (EL + capital)
 *   premium = EL + capital + loading
 * EE is capped path by path at the limit L, since the pool never pays more. The sum runs over the
 * exposure horizon (the term, cut at expiry); capital is held for that horizon too.
 * Pure and reproducible: the same input and seed give the same price, bit for bit.
 */
export function priceCoverage(input: CoverageInput): CoveragePrice {
  const paths = input.paths ?? PRICING_DEFAULTS.paths;
  const steps = input.steps ?? PRICING_DEFAULTS.steps;
  const lgd = input.lgd ?? PRICING_DEFAULTS.lgd;
  const costOfCapitalAnnual = input.costOfCapitalAnnual ?? PRICING_DEFAULTS.costOfCapitalAnnual;
  const loadingFraction = input.loadingFraction ?? PRICING_DEFAULTS.loadingFraction;
  const stressQuantile = input.stressQuantile ?? PRICING_DEFAULTS.stressQuantile;
  coverageViolations(input).throwIfAny();

  const simulation = { ...input, paths, steps, exposureCap: input.coverageLimit };
  const profile = simulateExposureProfile(simulation);
  const pdAnnual = pdAnnualOf(input.credit);
  const lambda = hazardRateAnnual(pdAnnual);

  let expectedLoss = 0;
  for (let i = 1; i < profile.timesYears.length; i++) {
    expectedLoss += profile.expectedExposureCapped[i] * defaultProbabilityBetween(lambda, profile.timesYears[i - 1], profile.timesYears[i]);
  }
  expectedLoss *= lgd;

  const horizonYears = profile.horizonMs / YEAR_MS;
  const stressContribution = input.stressContribution ?? Math.min(input.coverageLimit, stressedExposure({ ...input, horizonMs: profile.horizonMs, steps, quantile: stressQuantile }));
  const capitalCharge = costOfCapitalAnnual * stressContribution * horizonYears;
  const loading = loadingFraction * (expectedLoss + capitalCharge);
  const premiumTotal = expectedLoss + capitalCharge + loading;
  const termYears = input.termMs / YEAR_MS;
  invariant(premiumTotal >= 0 && Number.isFinite(premiumTotal), `premium must be finite and ≥ 0, got ${premiumTotal}`);

  return {
    expectedExposureSummary: summarize(profile.timesMs, profile.expectedExposure, profile.expectedExposureCapped, profile.standardError),
    pdAnnual,
    hazardRateAnnual: lambda,
    pdTerm: defaultProbabilityBetween(lambda, 0, termYears),
    lgd,
    expectedLoss,
    stressContribution,
    capitalCharge,
    loading,
    premiumTotal,
    premiumRateAnnual: premiumTotal / input.coverageLimit / termYears,
    coverageLimit: input.coverageLimit,
    termMs: input.termMs,
    horizonMs: profile.horizonMs,
    paths: profile.paths,
    steps,
    seed: input.seed,
  };
}

/**
 * The premium charged for one charging interval, in minor units: the price accrues evenly over the
 * term, premiumTotal × intervalMs / termMs, rounded UP (SPEC §2: rounding favours the pool;
 * premiums up). A last, shorter interval passes its own length.
 */
export function premiumPerIntervalMinor(price: Pick<CoveragePrice, 'premiumTotal' | 'termMs'>, scale: number, intervalMs: number): bigint {
  if (!(intervalMs > 0 && intervalMs <= price.termMs)) throw new RangeError(`intervalMs must be in (0, termMs = ${price.termMs}], got ${intervalMs}`);
  if (!Number.isInteger(scale) || scale < 0) throw new RangeError(`scale must be a non-negative integer, got ${scale}`);
  return floatToMinor((price.premiumTotal * intervalMs) / price.termMs, scale, 'up');
}

/** Every problem with a coverage price request at once. */
export function coverageViolations(input: CoverageInput): Violations {
  const violations = simulationViolations({ ...input, paths: input.paths ?? PRICING_DEFAULTS.paths, steps: input.steps ?? PRICING_DEFAULTS.steps });
  const inUnit = (x: number | undefined): boolean => x === undefined || (x >= 0 && x <= 1);
  violations.check(input.coverageLimit > 0 && Number.isFinite(input.coverageLimit), 'coverageLimit', 'positive', 'coverageLimit must be a finite number > 0');
  violations.check(inUnit(input.lgd), 'lgd', 'range', 'lgd must be in [0, 1]');
  violations.check(inUnit(input.costOfCapitalAnnual), 'costOfCapitalAnnual', 'range', 'costOfCapitalAnnual must be in [0, 1]');
  violations.check(input.loadingFraction === undefined || (input.loadingFraction >= 0 && input.loadingFraction <= 10), 'loadingFraction', 'range', 'loadingFraction must be in [0, 10]');
  violations.check(input.stressContribution === undefined || (input.stressContribution >= 0 && Number.isFinite(input.stressContribution)), 'stressContribution', 'non-negative', 'stressContribution must be a finite number ≥ 0');
  violations.check(input.stressQuantile === undefined || (input.stressQuantile >= 0.5 && input.stressQuantile < 1), 'stressQuantile', 'range', 'stressQuantile must be in [0.5, 1)');
  violations.check(input.termMs <= 10 * YEAR_MS, 'termMs', 'range', 'termMs must be at most 10 years');
  try {
    pdAnnualOf(input.credit);
  } catch (error) {
    violations.add('credit', 'credit-profile', (error as Error).message);
  }
  return violations;
}

function summarize(timesMs: readonly number[], ee: readonly number[], eeCapped: readonly number[], standardError: readonly number[]): ExpectedExposureSummary {
  let peakEe = 0;
  let sum = 0;
  for (let i = 1; i < ee.length; i++) {
    peakEe = Math.max(peakEe, ee[i]);
    sum += ee[i];
  }
  peakEe = Math.max(peakEe, ee[0]);
  return { peakEe, averageEe: sum / (ee.length - 1), timesMs, ee, eeCapped, standardError };
}
