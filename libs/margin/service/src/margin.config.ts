/**
 * margin-monitor's settings from the environment (defaults in DEFAULT_MARGIN_POLICY), validated once
 * at start-up: a bad value stops the service with the rule it broke, never a silent default.
 *
 * | variable | default | what |
 * |---|---|---|
 * | MARGIN_MARK_BAND | 0.15 | largest move from the last accepted mark accepted at once |
 * | MARGIN_MARK_MAX_STALE_MS | 60000 | largest age of a mark when it reaches us (receiving clock) |
 * | MARGIN_JUMP_CONFIRMATIONS | 3 | consecutive consistent marks that accept a level beyond the band (0 = by time only) |
 * | MARGIN_MARK_PERSIST_MS | 300000 (5 min) | ... or two consistent marks at least this far apart (0 = by count only) |
 * | MARGIN_MARK_FUTURE_TOLERANCE_MS | 5000 | a mark dated further ahead of the receiving clock is flagged FUTURE |
 * | MARGIN_MARK_PRICE_MIN / MARGIN_MARK_PRICE_MAX | 1e-9 / 1e12 | the sane absolute price range |
 * | MARGIN_MARK_SOURCES | (none) | comma-separated feed names; with two or more the view is their median |
 * | MARGIN_MARK_SOURCE_WINDOW_MS | 60000 | a source's mark counts toward the median while this fresh |
 * | MARGIN_MARK_ALARM_STALE_MS | 300000 (5 min) | last accepted mark older than this (receiving clock) raises MarkStale (0 = off) |
 * | MARGIN_EXPIRY_WINDOW_BEFORE_MS / _AFTER_MS | 1800000 / 0 | expiry settles at the TWAP of accepted marks in [expiry − before, expiry + after] |
 * | MARGIN_CALL_GRACE_MS | 14400000 (4 h) | margin call deadline after issue |
 * | MARGIN_SECOND_GRACE_MS | 86400000 (24 h) | second deadline after the first |
 * | MARGIN_FUNDING_INTERVAL_MS | 28800000 (8 h) | perpetual funding instants (multiples since the epoch) |
 * | MARGIN_MPOR_DAYS / MARGIN_CONFIDENCE | 5 / 0.995 | default SPAN margin period of risk and confidence (EMIR OTC) |
 * | MARGIN_MAINTENANCE_FRACTION | 0.5 | maintenance = fraction × initial |
 * | MARGIN_PARAMS | {} | JSON per underlying, e.g. {"BTC-USD":{"mporDays":2,"confidence":0.99,"volShiftFraction":0.25,"maintenanceFraction":0.5}} |
 * | MARGIN_DEFAULT_VOL | 0.8 | scan-range vol before any mark carried one (MARGIN_VOLS: JSON per underlying) |
 * | MARGIN_TICK_MS | 1000 | how often the clock ticker looks at deadlines |
 */
import { assertMarginPolicy, DEFAULT_MARGIN_POLICY, MarginPolicy } from '@backstop/margin';
import { MarginParams } from '@backstop/margin-model';

export interface MarginServiceConfig {
  readonly policy: MarginPolicy;
  readonly tickEveryMs: number;
}

function num(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new RangeError(`${name} must be a number, got "${text}"`);
  return value;
}

function json<T>(env: NodeJS.ProcessEnv, name: string, fallback: T): T {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new RangeError(`${name} must be JSON: ${(err as Error).message}`);
  }
}

export function marginConfigFromEnv(env: NodeJS.ProcessEnv = process.env): MarginServiceConfig {
  const d = DEFAULT_MARGIN_POLICY;
  const defaultMarginParams: MarginParams = {
    ...d.defaultMarginParams,
    mporDays: num(env, 'MARGIN_MPOR_DAYS', d.defaultMarginParams.mporDays),
    confidence: num(env, 'MARGIN_CONFIDENCE', d.defaultMarginParams.confidence),
    maintenanceFraction: num(env, 'MARGIN_MAINTENANCE_FRACTION', d.defaultMarginParams.maintenanceFraction),
  };
  const policy = assertMarginPolicy({
    sanity: {
      bandFraction: num(env, 'MARGIN_MARK_BAND', d.sanity.bandFraction),
      maxStaleMs: num(env, 'MARGIN_MARK_MAX_STALE_MS', d.sanity.maxStaleMs),
      jumpConfirmations: num(env, 'MARGIN_JUMP_CONFIRMATIONS', d.sanity.jumpConfirmations),
      persistMs: num(env, 'MARGIN_MARK_PERSIST_MS', d.sanity.persistMs),
      futureToleranceMs: num(env, 'MARGIN_MARK_FUTURE_TOLERANCE_MS', d.sanity.futureToleranceMs),
      priceMin: num(env, 'MARGIN_MARK_PRICE_MIN', d.sanity.priceMin),
      priceMax: num(env, 'MARGIN_MARK_PRICE_MAX', d.sanity.priceMax),
      sources: (env.MARGIN_MARK_SOURCES ?? '').split(',').map((s) => s.trim()).filter((s) => s !== ''),
      sourceWindowMs: num(env, 'MARGIN_MARK_SOURCE_WINDOW_MS', d.sanity.sourceWindowMs),
      alarmStaleMs: num(env, 'MARGIN_MARK_ALARM_STALE_MS', d.sanity.alarmStaleMs),
    },
    expiry: {
      windowBeforeMs: num(env, 'MARGIN_EXPIRY_WINDOW_BEFORE_MS', d.expiry.windowBeforeMs),
      windowAfterMs: num(env, 'MARGIN_EXPIRY_WINDOW_AFTER_MS', d.expiry.windowAfterMs),
    },
    callGraceMs: num(env, 'MARGIN_CALL_GRACE_MS', d.callGraceMs),
    secondGraceMs: num(env, 'MARGIN_SECOND_GRACE_MS', d.secondGraceMs),
    fundingIntervalMs: num(env, 'MARGIN_FUNDING_INTERVAL_MS', d.fundingIntervalMs),
    fundingCatchUpMax: d.fundingCatchUpMax,
    marginParams: json<Record<string, MarginParams>>(env, 'MARGIN_PARAMS', d.marginParams),
    defaultMarginParams,
    volAnnualByUnderlying: json<Record<string, number>>(env, 'MARGIN_VOLS', d.volAnnualByUnderlying),
    defaultVolAnnual: num(env, 'MARGIN_DEFAULT_VOL', d.defaultVolAnnual),
  });
  const tickEveryMs = num(env, 'MARGIN_TICK_MS', 1_000);
  if (!(Number.isInteger(tickEveryMs) && tickEveryMs >= 100 && tickEveryMs <= 3_600_000)) throw new RangeError('MARGIN_TICK_MS must be an integer in [100, 3600000]');
  return { policy, tickEveryMs };
}
