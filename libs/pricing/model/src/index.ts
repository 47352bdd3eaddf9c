/**
 * @backstop/pricing-model: pure pricing math for coverage quotes (SPEC §4 "Exposure", "Premium").
 * Doubles in, doubles out; the one conversion to ledger minor units is premiumPerIntervalMinor.
 */
export { normalPdf, normalCdf, inverseNormalCdf, inverseNormalCdfFast } from './normal';
export type { BlackScholesInput, Black76Input, OptionValuation } from './black';
export { black76, black76Value, black76ValueUnchecked, blackScholes, blackScholesValue } from './black';
export type { RngState } from './rng';
export { rngState, rngStateFromWords, nextUint32, nextUniform, nextStandardNormal, fillStandardNormals, standardNormals } from './rng';
export type { CreditProfile, RatingGrade } from './credit';
export {
  ONE_YEAR_DEFAULT_RATE_BY_RATING,
  PD_ANNUAL_FLOOR,
  ratingGrade,
  pdAnnualOf,
  hazardRateAnnual,
  survivalProbability,
  defaultProbabilityBetween,
} from './credit';
export type { MarketPoint, ExposureSimulationInput, ExposureProfile, ForwardExposureInput, SliceObserver } from './exposure';
export {
  SIMULATION_LIMITS,
  contractValue,
  simulateExposureProfile,
  exposureHorizonMs,
  forwardExpectedExposure,
  simulationViolations,
  termsViolations,
} from './exposure';
export type { CoverageInput, CoveragePrice, ExpectedExposureSummary } from './premium';
export { PRICING_DEFAULTS, priceCoverage, premiumPerIntervalMinor, coverageViolations } from './premium';
