import { HOUR_MS } from '@backstop/kernel';
import { DEFAULT_PRICING_POLICY, PricingPolicy } from '@backstop/pricing';
import { SIMULATION_LIMITS } from '@backstop/pricing-model';

export interface PricingSettings {
  readonly policy: PricingPolicy;
  /** How often the premium ticker runs (real time); each run charges whatever has fallen due. */
  readonly tickMs: number;
}

/**
 * The pricing service's settings from the environment (README-style: every knob has a default a
 * newcomer can run with). A bad value stops the service at start-up with the variable named.
 */
export function pricingSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): PricingSettings {
  const d = DEFAULT_PRICING_POLICY;
  const num = (name: string, fallback: number, min: number, max: number): number => {
    const text = env[name];
    if (text === undefined || text === '') return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < min || value > max) throw new RangeError(`${name} must be a number from ${min} to ${max}, got "${text}"`);
    return value;
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const value = num(name, fallback, min, max);
    if (!Number.isInteger(value)) throw new RangeError(`${name} must be a whole number, got "${env[name]}"`);
    return value;
  };
  const intervalHours = num('PRICING_INTERVAL_HOURS', d.intervalMs / HOUR_MS, 0.01, 24 * 30);
  const policy: PricingPolicy = {
    intervalMs: Math.round(intervalHours * HOUR_MS),
    graceMs: Math.round(num('PRICING_GRACE_HOURS', d.graceMs / HOUR_MS, 0, 24 * 90) * HOUR_MS),
    quoteValidityMs: Math.round(num('PRICING_QUOTE_VALID_MINUTES', d.quoteValidityMs / 60_000, 0.1, 24 * 60) * 60_000),
    markAgeMaxMs: Math.round(num('PRICING_MARK_AGE_MAX_HOURS', d.markAgeMaxMs / HOUR_MS, 0, 24 * 365) * HOUR_MS),
    termDaysMax: d.termDaysMax,
    reprice: {
      priceMoveFraction: num('PRICING_REPRICE_PRICE_MOVE', d.reprice.priceMoveFraction, 0.0001, 10),
      volMoveAbsolute: num('PRICING_REPRICE_VOL_MOVE', d.reprice.volMoveAbsolute, 0.0001, 10),
      pdMoveFraction: num('PRICING_REPRICE_PD_MOVE', d.reprice.pdMoveFraction, 0.0001, 100),
    },
    model: {
      lgd: num('PRICING_LGD', d.model.lgd, 0, 1),
      costOfCapitalAnnual: num('PRICING_COST_OF_CAPITAL', d.model.costOfCapitalAnnual, 0, 1),
      loadingFraction: num('PRICING_LOADING', d.model.loadingFraction, 0, 10),
      paths: int('PRICING_MC_PATHS', d.model.paths, 2, SIMULATION_LIMITS.pathsMax),
      steps: int('PRICING_MC_STEPS', d.model.steps, 1, SIMULATION_LIMITS.stepsMax),
    },
    capacityAssessmentLagMs: Math.round(num('PRICING_CAPACITY_LAG_SECONDS', d.capacityAssessmentLagMs / 1_000, 0, 86_400) * 1_000),
  };
  if (policy.model.paths * policy.model.steps > SIMULATION_LIMITS.pathStepsMax) {
    throw new RangeError(`PRICING_MC_PATHS × PRICING_MC_STEPS must be at most ${SIMULATION_LIMITS.pathStepsMax}`);
  }
  return { policy, tickMs: Math.round(num('PRICING_TICK_SECONDS', 60, 0.1, 86_400) * 1_000) };
}
