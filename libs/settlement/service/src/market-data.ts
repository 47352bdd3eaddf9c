import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { PricePoint } from '@backstop/margin-model';
import { FALLBACK_CRASH_DAYS, HistoricalDay, historicalDays, StressPolicy } from '@backstop/settlement';
import type { Logger } from '@backstop/telemetry';

/** The price history behind the historical stress days, read once at start-up. */
export interface MarketHistory {
  readonly days: readonly HistoricalDay[];
  /** Where they came from: the CSV directory, or the built-in crash days. */
  readonly source: string;
  readonly underlyings: readonly string[];
}

const FILE = /^([a-z0-9]+)-([a-z]+)-daily\.csv$/i;
const FILE_BYTES_MAX = 50 * 1024 * 1024;
const LINES_MAX = 200_000;

/**
 * Reads `<base>-<quote>-daily.csv` files (CoinGecko snapshots: `snapped_at,price,...`, e.g.
 * `2020-03-12 00:00:00 UTC,7935.52,...`). Missing or empty: logs why and uses the built-in
 * crash days, so capacity still has a historical stress.
 */
export function loadMarketHistory(dir: string, policy: StressPolicy, logger: Logger): MarketHistory {
  const fallback = (reason: string): MarketHistory => {
    logger.warn(`market data: ${reason}; Cover-2 historical stress uses the ${FALLBACK_CRASH_DAYS.length} built-in crash days (set BACKSTOP_MARKET_DATA_DIR)`, { dir });
    return { days: FALLBACK_CRASH_DAYS, source: 'built-in crash days', underlyings: [...new Set(FALLBACK_CRASH_DAYS.flatMap((d) => Object.keys(d.moves)))].sort() };
  };
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return fallback(`directory ${dir} not found`);
  const series: Record<string, PricePoint[]> = {};
  let skipped = 0;
  for (const name of readdirSync(dir).filter((f) => FILE.test(f)).sort()) {
    const path = join(dir, name);
    if (statSync(path).size > FILE_BYTES_MAX) {
      logger.warn('market data: file too large, skipped', { path, bytesMax: FILE_BYTES_MAX });
      continue;
    }
    const [, base, quote] = FILE.exec(name)!;
    const parsed = parseDailyCsv(readFileSync(path, 'utf8'));
    skipped += parsed.skipped;
    if (parsed.points.length > 1) series[`${base.toUpperCase()}-${quote.toUpperCase()}`] = parsed.points;
  }
  if (Object.keys(series).length === 0) return fallback(`no *-daily.csv price files in ${dir}`);
  const days = historicalDays(series, policy);
  logger.info('market data loaded for the Cover-2 historical stress', {
    dir,
    underlyings: Object.keys(series),
    points: Object.values(series).reduce((s, p) => s + p.length, 0),
    skippedLines: skipped,
    stressDays: days.length,
  });
  return { days, source: dir, underlyings: Object.keys(series).sort() };
}

export function parseDailyCsv(text: string): { points: PricePoint[]; skipped: number } {
  const lines = text.split(/\r?\n/).slice(1, LINES_MAX + 1);
  const points: PricePoint[] = [];
  let skipped = 0;
  for (const line of lines) {
    if (line.trim() === '') continue;
    const [snappedAt, priceText] = line.split(',');
    const dateMs = Date.parse((snappedAt ?? '').trim().replace(' UTC', 'Z').replace(' ', 'T'));
    const price = Number(priceText);
    if (!Number.isFinite(dateMs) || !(price > 0) || !Number.isFinite(price)) {
      skipped += 1;
      continue;
    }
    points.push({ dateMs, price });
  }
  return { points, skipped };
}
