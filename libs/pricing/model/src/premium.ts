import { ContractTerms, floatToMinor, invariant, Side, Violations, YEAR_MS } from '@backstop/kernel';
import { CreditProfile, defaultProbabilityBetween, hazardRateAnnual, pdAnnualOf } from './credit';
import { simulateExposureProfile, simulationViolations } from './exposure';

/** Defaults a quote uses when the request or the pricing config leaves a parameter out. */
export const PRICING_DEFAULTS = {
  /** Loss given default on the unpaid exposure; between Basel II foundation IRB's 45% (senior) and 75% (subordinated), ¶287–288. */
  lgd: 0.6,
  /** Annual return providers ask on the capital the coverage ties up. */
  costOfCapitalAnnual: 0.1,
  /** Margin for model risk and expenses, as a fraction of EL + capital charge. */
  loadingFraction: 0.1,
  /**
   * Capital is held for the term plus the margin period of risk: a default on the coverage's last
   * day still takes an MPOR to close out (EMIR RTS 153/2013 art. 26: 5 days for OTC).
   */
  closeOutDays: 5,
  /**
   * Wrong-way risk: default intensity λ(t) = λ₀·(S(t)/S₀)^(−β) for a counterparty long the
   * underlying, (S(t)/S₀)^(+β) for one short it. β = 2 for a long: a leveraged long fails when the
   * market falls (the measurement: EL 1.7× at β = 2 for the same term PD); 0 for a short
   * by default (no comparable evidence; configurable).
   */
  wrongWayBetaLong: 2,
  wrongWayBetaShort: 0,
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
   * The coverage's marginal contribution to the pool's Cover-2 requirement, currency units: the
   * margin model's cover2Contribution, the number the capacity gate reserves (one computation).
   */
  readonly stressContribution: number;
  /** Days capital stays held after the term (default PRICING_DEFAULTS.closeOutDays). */
  readonly closeOutDays?: number;
  /** β of the wrong-way intensity for a counterparty long / short the underlying (file comment). */
  readonly wrongWayBetaLong?: number;
  readonly wrongWayBetaShort?: number;
  readonly rateAnnual?: number;
  readonly seed: number;
  readonly paths?: number;
  readonly steps?: number;
  /** The simulation's use of E[S(t)] = S₀ (exposure.ts; default: the unbiased control variate). */
  readonly martingaleCorrection?: boolean | 'empirical';
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
  /** EL with a default intensity independent of the market (the CVA sum above). */
  readonly expectedLoss: number;
  /** EL with the path-dependent intensity minus expectedLoss, at the same term PD (may be < 0: right-way). */
  readonly wrongWayRisk: number;
  /** β applied (signed: > 0 when the counterparty's default grows likelier as the price falls). */
  readonly wrongWayBeta: number;
  readonly stressContribution: number;
  /** Years the capital is charged for: exposure horizon + closeOutDays. */
  readonly capitalYears: number;
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
 *   WWR     = LGD × E[Σᵢ E_L,k(tᵢ)·(e^{−Λₖ(tᵢ₋₁)} − e^{−Λₖ(tᵢ)})] − EL,   Λₖ(t) = λ₀·Σ_{tⱼ≤t} (Sₖ(tⱼ)/S₀)^{∓β}·Δt
 *             (Hull & White, "CVA and wrong-way risk", FAJ 68(5), 2012: hazard rate a function of the
 *             exposure's driver), λ₀ solved so the term PD E[1 − e^{−Λ(T)}] equals the credit profile's
 *   capital = costOfCapitalAnnual × stressContribution × (horizon + closeOutDays) in years
 *   loading = loadingFraction × (EL + WWR + capital)
 *   premium = EL + WWR + capital + loading
 * EE is capped path by path at the limit L, since the pool never pays more. The sum runs over the
 * exposure horizon (the term, cut at expiry). At β = 0, Λ = λt and WWR = 0 up to rounding.
 * Pure and reproducible: the same input and seed give the same price, bit for bit.
 */
export function priceCoverage(input: CoverageInput): CoveragePrice {
  const paths = input.paths ?? PRICING_DEFAULTS.paths;
  const steps = input.steps ?? PRICING_DEFAULTS.steps;
  const lgd = input.lgd ?? PRICING_DEFAULTS.lgd;
  const costOfCapitalAnnual = input.costOfCapitalAnnual ?? PRICING_DEFAULTS.costOfCapitalAnnual;
  const loadingFraction = input.loadingFraction ?? PRICING_DEFAULTS.loadingFraction;
  const closeOutDays = input.closeOutDays ?? PRICING_DEFAULTS.closeOutDays;
  coverageViolations(input).throwIfAny();

  const simulation = { ...input, paths, steps, exposureCap: input.coverageLimit };
  const beta = wrongWayBeta(input);
  const wrongWay = new WrongWayAccumulator(paths, steps, input.spot, beta, input.coverageLimit);
  const profile = simulateExposureProfile(simulation, (step, prices, exposures) => wrongWay.observe(step, prices, exposures));
  const pdAnnual = pdAnnualOf(input.credit);
  const lambda = hazardRateAnnual(pdAnnual);

  let expectedLoss = 0;
  for (let i = 1; i < profile.timesYears.length; i++) {
    expectedLoss += profile.expectedExposureCapped[i] * defaultProbabilityBetween(lambda, profile.timesYears[i - 1], profile.timesYears[i]);
  }
  expectedLoss *= lgd;

  const horizonYears = profile.horizonMs / YEAR_MS;
  const pdHorizon = defaultProbabilityBetween(lambda, 0, horizonYears);
  const wrongWayRisk = lgd * wrongWay.expectedLoss(pdHorizon, profile.timesYears) - expectedLoss;
  const stressContribution = input.stressContribution;
  const capitalYears = horizonYears + closeOutDays / 365.25;
  const capitalCharge = costOfCapitalAnnual * stressContribution * capitalYears;
  const loading = loadingFraction * (expectedLoss + wrongWayRisk + capitalCharge);
  const premiumTotal = Math.max(0, expectedLoss + wrongWayRisk + capitalCharge + loading);
  const termYears = input.termMs / YEAR_MS;
  invariant(premiumTotal >= 0 && Number.isFinite(premiumTotal), `premium must be finite and ≥ 0, got ${premiumTotal}`);

  return {
    expectedExposureSummary: summarize(profile.timesMs, profile.expectedExposure, profile.expectedExposureCapped, profile.standardError),
    pdAnnual,
    hazardRateAnnual: lambda,
    pdTerm: defaultProbabilityBetween(lambda, 0, termYears),
    lgd,
    expectedLoss,
    wrongWayRisk,
    wrongWayBeta: beta,
    stressContribution,
    capitalYears,
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
  violations.check(input.stressContribution >= 0 && Number.isFinite(input.stressContribution), 'stressContribution', 'non-negative', 'stressContribution must be a finite number ≥ 0 (the Cover-2 contribution)');
  violations.check(input.closeOutDays === undefined || (input.closeOutDays >= 0 && input.closeOutDays <= 365), 'closeOutDays', 'range', 'closeOutDays must be in [0, 365]');
  const betaOk = (b: number | undefined) => b === undefined || (b >= 0 && b <= 20);
  violations.check(betaOk(input.wrongWayBetaLong), 'wrongWayBetaLong', 'range', 'wrongWayBetaLong must be in [0, 20]');
  violations.check(betaOk(input.wrongWayBetaShort), 'wrongWayBetaShort', 'range', 'wrongWayBetaShort must be in [0, 20]');
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

/**
 * The signed β of the counterparty's intensity: λ ∝ (S/S₀)^(−β). The counterparty holds the side
 * opposite the protected one; it is long the underlying when it is long a perpetual, a future or a
 * call, or short a put (positive delta).
 */
export function wrongWayBeta(input: Pick<CoverageInput, 'terms' | 'protectedSide' | 'wrongWayBetaLong' | 'wrongWayBetaShort'>): number {
  const counterpartyLongContract = input.protectedSide === 'SHORT';
  const isPut = input.terms.kind === 'OPTION' && input.terms.optionType === 'PUT';
  const longUnderlying = counterpartyLongContract !== isPut;
  return longUnderlying
    ? (input.wrongWayBetaLong ?? PRICING_DEFAULTS.wrongWayBetaLong)
    : -(input.wrongWayBetaShort ?? PRICING_DEFAULTS.wrongWayBetaShort);
}

/**
 * Collects, path by path, the capped exposure E_k(tᵢ) and the intensity integral
 * A_k(tᵢ) = Σ_{j≤i} (S_k(tⱼ)/S₀)^(−β)·Δt (right-point rule, the same grid point as EE(tᵢ)), so that
 * Λ_k = λ₀·A_k for any λ₀. Memory: 2 × paths × steps doubles (bounded by SIMULATION_LIMITS).
 */
class WrongWayAccumulator {
  private readonly exposure: Float64Array;
  private readonly integral: Float64Array;

  constructor(
    private readonly paths: number,
    private readonly steps: number,
    private readonly spot: number,
    private readonly beta: number,
    private readonly cap: number,
  ) {
    this.exposure = new Float64Array(paths * steps);
    this.integral = new Float64Array(paths * steps);
  }

  observe(step: number, prices: Float64Array, exposures: Float64Array): void {
    const row = (step - 1) * this.paths;
    const previous = (step - 2) * this.paths;
    for (let k = 0; k < this.paths; k++) {
      // β = 0 gives exactly 1 per step (x ** 0 = 1 even for x = 0), so A = i·Δt.
      const weight = this.beta === 0 ? 1 : Math.max(prices[k], 1e-300 * this.spot) / this.spot;
      const w = this.beta === 0 ? 1 : Math.min(weight ** -this.beta, 1e300);
      this.integral[row + k] = (step > 1 ? this.integral[previous + k] : 0) + w;
      this.exposure[row + k] = Math.min(exposures[k], this.cap);
    }
  }

  /** E[Σᵢ E_k(tᵢ)(e^{−λ₀A_k(tᵢ₋₁)} − e^{−λ₀A_k(tᵢ)})], λ₀ matching the horizon PD (integrals in steps of Δt). */
  expectedLoss(pdHorizon: number, timesYears: readonly number[]): number {
    if (pdHorizon <= 0) return 0;
    const dt = timesYears[timesYears.length - 1] / this.steps;
    const last = (this.steps - 1) * this.paths;
    const termPd = (lambda0: number) => {
      let sum = 0;
      for (let k = 0; k < this.paths; k++) sum += -Math.expm1(-lambda0 * this.integral[last + k] * dt);
      return sum / this.paths;
    };
    const lambda0 = pdHorizon >= 1 ? Number.POSITIVE_INFINITY : solveIncreasing(termPd, pdHorizon);
    let total = 0;
    for (let k = 0; k < this.paths; k++) {
      let survivalBefore = 1;
      for (let i = 0; i < this.steps; i++) {
        const a = this.integral[i * this.paths + k] * dt;
        const survival = lambda0 === Number.POSITIVE_INFINITY ? 0 : Math.exp(-lambda0 * a);
        total += this.exposure[i * this.paths + k] * (survivalBefore - survival);
        survivalBefore = survival;
      }
    }
    return total / this.paths;
  }
}

/** x with f(x) = target for an increasing f on [0, ∞) with f(0) = 0: bracket by doubling, then bisect. */
function solveIncreasing(f: (x: number) => number, target: number): number {
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 200 && f(hi) < target; i++) hi *= 2;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) < target) lo = mid;
    else hi = mid;
    if (hi - lo <= 1e-15 * hi) break;
  }
  return (lo + hi) / 2;
}
