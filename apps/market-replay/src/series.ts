import { createHash } from 'node:crypto';
import { Envelope, makeEnvelope } from '@backstop/messaging';

/** One price observation of the CSV, in time order. */
export interface PricePoint {
  /** ISO-8601 UTC. */
  readonly at: string;
  readonly atMs: number;
  /** A decimal string with at most 12 fraction digits (MarkPrice's rule). */
  readonly price: string;
  /** 1-based line of the CSV it came from (for messages). */
  readonly line: number;
}

export interface SkippedRow {
  readonly line: number;
  readonly reason: string;
}

export interface ParsedSeries {
  readonly points: readonly PricePoint[];
  readonly skipped: readonly SkippedRow[];
}

export class ReplayInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayInputError';
  }
}

const DECIMAL = /^(0|[1-9][0-9]*)(\.[0-9]+)?$/;
const COINGECKO_TIME = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) UTC$/;

/**
 * A CoinGecko price export (`snapped_at,price,market_cap,total_volume`, one row per snapshot,
 * e.g. `2020-03-12 00:00:00 UTC,7911.43,...`). Rows without a usable time or a positive price are
 * skipped and reported, not fatal: real exports have gaps. Rows come back sorted by time; a second
 * row for the same instant replaces the first.
 */
export function parseCoinGeckoCsv(text: string): ParsedSeries {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').trim().toLowerCase().split(',');
  const timeColumn = header.indexOf('snapped_at');
  const priceColumn = header.indexOf('price');
  if (timeColumn < 0 || priceColumn < 0) {
    throw new ReplayInputError(`not a CoinGecko price CSV: the first line must name the columns snapped_at and price (got "${(lines[0] ?? '').slice(0, 80)}")`);
  }
  const byTime = new Map<number, PricePoint>();
  const skipped: SkippedRow[] = [];
  for (let i = 1; i < lines.length; i++) {
    const row = lines[i].trim();
    if (row === '') continue;
    const cells = row.split(',');
    const line = i + 1;
    const atMs = parseTime(cells[timeColumn]?.trim() ?? '');
    if (atMs === undefined) {
      skipped.push({ line, reason: `snapped_at "${cells[timeColumn] ?? ''}" is not a time` });
      continue;
    }
    const price = normalisePrice(cells[priceColumn]?.trim() ?? '');
    if (price === undefined) {
      skipped.push({ line, reason: `price "${cells[priceColumn] ?? ''}" is not a positive number` });
      continue;
    }
    byTime.set(atMs, { at: new Date(atMs).toISOString(), atMs, price, line });
  }
  const points = [...byTime.values()].sort((a, b) => a.atMs - b.atMs);
  return { points, skipped };
}

function parseTime(text: string): number | undefined {
  const coingecko = COINGECKO_TIME.exec(text);
  const iso = coingecko ? `${coingecko[1]}T${coingecko[2]}Z` : text;
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z)?$/.test(iso)) return undefined;
  const ms = Date.parse(iso.length === 10 ? `${iso}T00:00:00Z` : iso);
  return Number.isNaN(ms) ? undefined : ms;
}

function normalisePrice(text: string): string | undefined {
  const value = Number(text);
  if (!(value > 0) || !Number.isFinite(value)) return undefined;
  if (DECIMAL.test(text) && (text.split('.')[1] ?? '').length <= 12) return text;
  // An exponent or more digits than a MarkPrice carries: rounded to 12 fraction digits.
  const fixed = value.toFixed(12).replace(/0+$/, '').replace(/\.$/, '');
  return fixed === '0' ? undefined : fixed;
}

/**
 * Realised volatility, annualised, at each point: the sample standard deviation of the last
 * `windowReturns` log returns ln(Pᵢ/Pᵢ₋₁) ending at that point, scaled by √(periods per year) with
 * the period the mean spacing of those returns (crypto trades every day: 365 days a year).
 * Undefined until at least `minReturns` returns are in the window.
 */
export function realizedVols(points: readonly PricePoint[], windowReturns: number, minReturns = Math.min(windowReturns, 5)): (number | undefined)[] {
  if (!Number.isInteger(windowReturns) || windowReturns < 2) throw new ReplayInputError('the vol window must be at least 2 returns');
  const returns: { r: number; dtMs: number }[] = [];
  return points.map((point, i) => {
    if (i === 0) return undefined;
    returns.push({ r: Math.log(Number(point.price) / Number(points[i - 1].price)), dtMs: point.atMs - points[i - 1].atMs });
    const window = returns.slice(-windowReturns);
    if (window.length < Math.max(minReturns, 2)) return undefined;
    const mean = window.reduce((s, x) => s + x.r, 0) / window.length;
    const variance = window.reduce((s, x) => s + (x.r - mean) ** 2, 0) / (window.length - 1);
    const meanDtMs = window.reduce((s, x) => s + x.dtMs, 0) / window.length;
    return Math.sqrt(variance * ((365 * 86_400_000) / meanDtMs));
  });
}

export interface MarkOptions {
  readonly underlying: string;
  /** A fixed vol for every mark, or undefined to use `vols`. */
  readonly fixedVol?: string;
  /** Stamp marks with the send time instead of the CSV's time (and fresh ids). */
  readonly restamp?: boolean;
}

/** The largest vol a MarkPrice may carry (the platform's MarkPriceDto). */
export const VOL_ANNUAL_MAX = 10;

/**
 * The MarkPrice envelope of one point. Its id derives from the underlying, time, price and vol, so
 * a replay that is interrupted and run again publishes the same message ids and consumers (which
 * dedupe by id) do not apply a mark twice; --restamp marks are new observations with new ids.
 */
export function markEnvelope(point: PricePoint, vol: number | undefined, options: MarkOptions, nowIso?: string): Envelope {
  const at = options.restamp && nowIso ? nowIso : point.at;
  const volAnnual = options.fixedVol ?? (vol !== undefined && vol <= VOL_ANNUAL_MAX ? vol.toFixed(6) : undefined);
  const payload = { underlying: options.underlying, price: point.price, ...(volAnnual !== undefined ? { volAnnual } : {}), at };
  return makeEnvelope({
    ...(options.restamp ? {} : { id: nameUuid('market-replay', options.underlying, point.at, point.price, volAnnual ?? '') }),
    type: 'MarkPrice',
    key: options.underlying,
    time: at,
    payload,
  });
}

/** A UUID (version 5 layout, SHA-1) from a name. */
export function nameUuid(...parts: readonly string[]): string {
  const hash = createHash('sha1').update(parts.join('\u0000')).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
