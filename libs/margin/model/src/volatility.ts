/**
 * Volatility inputs of the margin scan, from a daily price history (pure: prices in, vols out).
 *
 * - EWMA variance of daily log returns, λ = 0.94: J.P. Morgan/Reuters, "RiskMetrics — Technical
 *   Document" (4th ed., 1996), §5.2: σ²ₜ = λσ²ₜ₋₁ + (1 − λ)r²ₜ. Reacts within days to a crash.
 * - Anti-procyclicality floor: Regulation (EU) No 153/2013 art. 28(1)(c), "ensuring that its margin
 *   requirements are not lower than those that would be calculated using volatility estimated over
 *   a 10 year historical look-back period": the equally weighted vol of up to 3,650 days of returns.
 *   A calm year then cannot shrink margin to what the calm alone would ask, which is what makes
 *   margins procyclical (they would jump exactly when the crash comes).
 * A gap of d days between observations counts as d days of variance: r²/d per day.
 */
export const EWMA_LAMBDA_DEFAULT = 0.94;
export const APC_LOOKBACK_DAYS_DEFAULT = 3_650;
export const DAYS_PER_YEAR = 365;

export interface DailyObservation {
  /** Start of the UTC day (or any instant); only differences between observations matter. */
  readonly atMs: number;
  readonly price: number;
}

export interface VolatilityPoint {
  /** EWMA vol, annualised by √365 (crypto trades every day). */
  readonly ewmaVolAnnual: number;
  /** Equally weighted vol of the look-back window, annualised: the APC floor. */
  readonly lookbackVolAnnual: number;
}

export interface VolatilityOptions {
  readonly lambda?: number;
  readonly lookbackDays?: number;
  /** Observations used to seed the EWMA with their equally weighted variance (≥ 2). */
  readonly seedObservations: number;
}

const DAY_MS = 86_400_000;

/**
 * The vol known at each observation (using returns up to and including it); undefined while the
 * seed window is not full. Prices must be > 0 and times strictly increasing.
 */
export function volatilityPath(observations: readonly DailyObservation[], options: VolatilityOptions): (VolatilityPoint | undefined)[] {
  const lambda = options.lambda ?? EWMA_LAMBDA_DEFAULT;
  const lookbackDays = options.lookbackDays ?? APC_LOOKBACK_DAYS_DEFAULT;
  if (!(lambda > 0 && lambda < 1)) throw new RangeError(`lambda must be in (0, 1), got ${lambda}`);
  if (!(Number.isInteger(options.seedObservations) && options.seedObservations >= 2)) throw new RangeError('seedObservations must be an integer ≥ 2');
  const out: (VolatilityPoint | undefined)[] = [undefined];
  // Per-day variance of each return and the days it spans, for the look-back window.
  const windowVar: number[] = [];
  const windowDays: number[] = [];
  let head = 0;
  let sumSq = 0;
  let sumDays = 0;
  let ewma: number | undefined;
  for (let i = 1; i < observations.length; i++) {
    const prev = observations[i - 1];
    const cur = observations[i];
    if (!(prev.price > 0 && cur.price > 0)) throw new RangeError(`observation ${i}: prices must be > 0`);
    const days = Math.max((cur.atMs - prev.atMs) / DAY_MS, 1e-9);
    const r = Math.log(cur.price / prev.price);
    const perDay = (r * r) / days;
    windowVar.push(r * r);
    windowDays.push(days);
    sumSq += r * r;
    sumDays += days;
    while (sumDays - windowDays[head] >= lookbackDays && head < windowVar.length - 1) {
      sumSq -= windowVar[head];
      sumDays -= windowDays[head];
      head++;
    }
    if (ewma === undefined) {
      if (i < options.seedObservations) {
        out.push(undefined);
        continue;
      }
      ewma = sumSq / sumDays;
    } else {
      ewma = lambda * ewma + (1 - lambda) * perDay;
    }
    out.push({ ewmaVolAnnual: Math.sqrt(ewma * DAYS_PER_YEAR), lookbackVolAnnual: Math.sqrt((Math.max(sumSq, 0) / sumDays) * DAYS_PER_YEAR) });
  }
  return out;
}
