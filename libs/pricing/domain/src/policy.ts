import { DAY_MS, HOUR_MS } from '@backstop/kernel';
import { PRICING_DEFAULTS } from '@backstop/pricing-model';

const MINUTE_MS = 60_000;

/**
 * Every knob of the pricing service, carried inside each command so a decision can be replayed
 * with the parameters it was made with (the events record the ones that matter).
 */
export interface PricingPolicy {
  /** Premium charging interval (like perpetual funding): premiums accrue and are charged in arrears. */
  readonly intervalMs: number;
  /** An unpaid charge may be paid until periodEnd + graceMs; unpaid then, the coverage lapses. */
  readonly graceMs: number;
  /** How long a quote can be bound. */
  readonly quoteValidityMs: number;
  /** A mark older than this (at quote/reprice time) is stale: no quote on it. 0 = no check. */
  readonly markAgeMaxMs: number;
  readonly termDaysMax: number;
  /** Repricing triggers, against the inputs the coverage was last priced on. */
  readonly reprice: RepriceThresholds;
  readonly model: ModelParameters;
  /**
   * How long after a CapacityAssessed the settlement service may still not have counted a coverage
   * bound before it: reservations this recent are subtracted from its headroom (docs/events.md).
   */
  readonly capacityAssessmentLagMs: number;
}

export interface RepriceThresholds {
  /** |mark / priced mark − 1| at or above this reprices, e.g. 0.10 = a 10% move. */
  readonly priceMoveFraction: number;
  /** |vol − priced vol| at or above this (absolute, annual vol points) reprices, e.g. 0.10. */
  readonly volMoveAbsolute: number;
  /** |PD / priced PD − 1| at or above this reprices, e.g. 0.25 (any move from a PD of 0). */
  readonly pdMoveFraction: number;
}

export interface ModelParameters {
  readonly lgd: number;
  readonly costOfCapitalAnnual: number;
  readonly loadingFraction: number;
  readonly paths: number;
  readonly steps: number;
}

export const DEFAULT_PRICING_POLICY: PricingPolicy = {
  intervalMs: 8 * HOUR_MS,
  graceMs: 24 * HOUR_MS,
  quoteValidityMs: 15 * MINUTE_MS,
  markAgeMaxMs: DAY_MS,
  termDaysMax: 365,
  reprice: { priceMoveFraction: 0.1, volMoveAbsolute: 0.1, pdMoveFraction: 0.25 },
  model: {
    lgd: PRICING_DEFAULTS.lgd,
    costOfCapitalAnnual: PRICING_DEFAULTS.costOfCapitalAnnual,
    loadingFraction: PRICING_DEFAULTS.loadingFraction,
    paths: PRICING_DEFAULTS.paths,
    steps: PRICING_DEFAULTS.steps,
  },
  capacityAssessmentLagMs: 60_000,
};

/** Limits on the work one call may do (TigerBeetle habit: a bound on everything). */
export const PRICING_LIMITS = {
  /** Premium periods one collection pass settles for one coverage (a long outage catches up over passes). */
  periodsPerPassMax: 200,
  /** Points of the EE profile shown in a quote (the full grid is in the model, not on the wire). */
  profilePointsMax: 13,
  /** Bound quotes the capacity book remembers (only those still within their validity matter). */
  recentQuotesMax: 10_000,
} as const;
