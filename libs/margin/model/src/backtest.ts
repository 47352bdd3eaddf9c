/**
 * Margin backtest (SPEC §4: "the margin must actually hold its confidence"), pure: CSV text in,
 * report out; the CLI (apps/backtest) only reads the file and prints.
 *
 * Each day t of a daily series: the margin model sizes the initial margin of a one-unit position
 * opened at the day's price with the vol known at t (EWMA, floored by the 10-year look-back for
 * anti-procyclicality, volatility.ts); the realised loss is the position's loss from t to the first
 * observation at least MPOR days later. A breach is a loss above the margin. Windows overlap (one
 * per day), as CCPs' daily backtests do (EMIR RTS 153/2013 art. 49).
 *
 * Kupiec, P. (1995) "Techniques for verifying the accuracy of risk measurement models", Journal of
 * Derivatives 3(2): proportion-of-failures likelihood ratio
 *   LR = −2 ln[(1−p)^{n−x} p^x] + 2 ln[(1−x/n)^{n−x} (x/n)^x]  ~  χ²(1) under H₀: rate = p,
 * with p-value P(χ²(1) > LR) = 2·(1 − Φ(√LR)).
 */
import type { ContractTerms, Side } from '@backstop/kernel';
import { normCdf } from './option-value';
import { MarginParams, marginRequirement, OTC_MARGIN_PARAMS, portfolioInitialMargin } from './span';
import { markToMarket, Position } from './valuation';
import { DailyObservation, volatilityPath } from './volatility';

const DAY_MS = 86_400_000;
export const BACKTEST_LINES_MAX = 200_000;

export class BacktestInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BacktestInputError';
  }
}

export interface ParsedPriceSeries {
  readonly observations: readonly (DailyObservation & { readonly line: number })[];
  /** Observations more than one day after the previous one. */
  readonly gaps: number;
}

const COINGECKO_TIME = /^(\d{4}-\d{2}-\d{2})(?: (\d{2}:\d{2}:\d{2}) UTC|T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z)?$/;
const DECIMAL = /^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/**
 * A CoinGecko daily export (`snapped_at,price,market_cap,total_volume`). Strict, because a margin
 * backtest on silently dropped rows is not the backtest asked for: any row without a UTC time or
 * with a price that is not a finite number > 0, or out of time order, is an error naming its line.
 */
export function parsePriceCsv(text: string): ParsedPriceSeries {
  const lines = text.split(/\r?\n/);
  if (lines.length > BACKTEST_LINES_MAX) throw new BacktestInputError(`at most ${BACKTEST_LINES_MAX} lines, got ${lines.length}`);
  const header = (lines[0] ?? '').replace(/^\uFEFF/, '').trim().toLowerCase().split(',').map((c) => c.trim());
  const timeColumn = header.indexOf('snapped_at');
  const priceColumn = header.indexOf('price');
  if (timeColumn < 0 || priceColumn < 0) {
    throw new BacktestInputError(`line 1: the header must name the columns snapped_at and price (got "${(lines[0] ?? '').slice(0, 80)}")`);
  }
  const observations: (DailyObservation & { line: number })[] = [];
  let gaps = 0;
  for (let i = 1; i < lines.length; i++) {
    const row = lines[i].trim();
    if (row === '') continue;
    const line = i + 1;
    const cells = row.split(',');
    const timeText = (cells[timeColumn] ?? '').trim();
    const match = COINGECKO_TIME.exec(timeText);
    const atMs = match ? Date.parse(`${match[1]}T${match[2] ?? match[3] ?? '00:00:00'}Z`) : Number.NaN;
    if (Number.isNaN(atMs)) throw new BacktestInputError(`line ${line}: snapped_at "${timeText.slice(0, 40)}" is not a UTC time like 2020-03-12 00:00:00 UTC`);
    const priceText = (cells[priceColumn] ?? '').trim();
    const price = DECIMAL.test(priceText) ? Number(priceText) : Number.NaN;
    if (!(price > 0) || !Number.isFinite(price)) throw new BacktestInputError(`line ${line}: price "${priceText.slice(0, 40)}" must be a finite number > 0`);
    const previous = observations[observations.length - 1];
    if (previous !== undefined) {
      if (atMs <= previous.atMs) throw new BacktestInputError(`line ${line}: snapped_at ${timeText} is not after line ${previous.line}'s; rows must be in time order, one per instant`);
      if (atMs - previous.atMs > 1.5 * DAY_MS) gaps++;
    }
    observations.push({ atMs, price, line });
  }
  if (observations.length < 2) throw new BacktestInputError('the file needs at least two price rows');
  return { observations, gaps };
}

/** Kupiec's POF statistic and its χ²(1) p-value (file comment). 0·ln 0 = 0. */
export function kupiecPof(days: number, breaches: number, target: number): { statistic: number; pValue: number } {
  if (!(Number.isInteger(days) && days > 0)) throw new RangeError(`days must be an integer > 0, got ${days}`);
  if (!(Number.isInteger(breaches) && breaches >= 0 && breaches <= days)) throw new RangeError(`breaches must be an integer in [0, days], got ${breaches}`);
  if (!(target > 0 && target < 1)) throw new RangeError(`target must be in (0, 1), got ${target}`);
  const xlogy = (x: number, y: number) => (x === 0 ? 0 : x * Math.log(y));
  const rate = breaches / days;
  const statistic = Math.max(0, 2 * (xlogy(breaches, rate / target) + xlogy(days - breaches, (1 - rate) / (1 - target))));
  return { statistic, pValue: chiSquare1Survival(statistic) };
}

/** P(χ²(1) > x) = P(|Z| > √x) = 2·Φ(−√x). */
export function chiSquare1Survival(x: number): number {
  if (!(x >= 0)) throw new RangeError(`x must be ≥ 0, got ${x}`);
  return Math.min(1, 2 * normCdf(-Math.sqrt(x)));
}

export type BacktestBook = 'PERPETUAL' | 'OPTIONS';

export interface BacktestOptions {
  readonly underlying: string;
  readonly mporDays: number;
  readonly confidence: number;
  /** Margin parameters besides MPOR and confidence (default: OTC_MARGIN_PARAMS). */
  readonly params?: Partial<MarginParams>;
  /** Observations that seed the EWMA before the first tested day (default 30). */
  readonly warmupObservations?: number;
  readonly books?: readonly BacktestBook[];
  readonly sides?: readonly Side[];
  /** Option book: a strangle, strikes at (1 ± moneyness)·price, this many days to expiry. */
  readonly optionMoneyness?: number;
  readonly optionDays?: number;
  /** Weight of the 10-year look-back vol in the APC floor (default 1: EMIR art. 28(1)(c) in full). */
  readonly lookbackFloorWeight?: number;
}

export interface DayResult {
  readonly atMs: number;
  /** Initial margin / notional at t. */
  readonly requirement: number;
  /** Loss / notional from t to t + MPOR (negative = gain). */
  readonly loss: number;
}

export interface SideResult {
  readonly book: BacktestBook;
  readonly side: Side;
  readonly days: number;
  readonly breaches: number;
  readonly breachRate: number;
  readonly target: number;
  readonly kupiecStatistic: number;
  readonly kupiecPValue: number;
  /** Too many breaches and Kupiec rejects at 95%: the margin does not hold its confidence. */
  readonly rejected: boolean;
  /** Too few breaches and Kupiec rejects at 95%: over-margined (reported, not a failure). */
  readonly conservative: boolean;
  /** Largest (loss − requirement) / notional, with its date; undefined with no breach. */
  readonly worstBreach: { readonly atMs: number; readonly excess: number; readonly loss: number; readonly requirement: number } | undefined;
  readonly path: readonly DayResult[];
}

export interface BacktestReport {
  readonly underlying: string;
  readonly mporDays: number;
  readonly confidence: number;
  readonly observations: number;
  readonly gaps: number;
  readonly firstMs: number;
  readonly lastMs: number;
  readonly results: readonly SideResult[];
}

export const BACKTEST_REJECTION_LEVEL = 0.05;

/** Runs the margin model through the series (file comment). */
export function runBacktest(series: ParsedPriceSeries, options: BacktestOptions): BacktestReport {
  const obs = series.observations;
  const params: MarginParams = { ...OTC_MARGIN_PARAMS, ...options.params, mporDays: options.mporDays, confidence: options.confidence };
  const warmup = options.warmupObservations ?? 30;
  const vols = volatilityPath(obs, { seedObservations: Math.max(2, Math.min(warmup, obs.length - 1)) });
  const books = options.books ?? ['PERPETUAL', 'OPTIONS'];
  const sides = options.sides ?? ['LONG', 'SHORT'];
  const paths = new Map<string, DayResult[]>();
  const key = (b: BacktestBook, s: Side) => `${b}/${s}`;
  for (const b of books) for (const s of sides) paths.set(key(b, s), []);
  let horizon = 0;
  for (let i = 0; i < obs.length; i++) {
    const vol = vols[i];
    if (vol === undefined) continue;
    const targetMs = obs[i].atMs + options.mporDays * DAY_MS;
    if (horizon < i) horizon = i;
    while (horizon < obs.length && obs[horizon].atMs < targetMs - 1) horizon++;
    if (horizon >= obs.length) break;
    const later = vols[horizon] ?? vol;
    const atParams: MarginParams = { ...params, volFloorAnnual: Math.max(params.volFloorAnnual ?? 0, (options.lookbackFloorWeight ?? 1) * vol.lookbackVolAnnual) };
    for (const b of books) {
      for (const s of sides) {
        const day = b === 'PERPETUAL'
          ? perpetualDay(obs[i], obs[horizon], s, vol.ewmaVolAnnual, atParams)
          : optionsDay(obs[i], obs[horizon], s, vol.ewmaVolAnnual, later.ewmaVolAnnual, atParams, options);
        paths.get(key(b, s))!.push(day);
      }
    }
  }
  const results: SideResult[] = [];
  for (const b of books) for (const s of sides) results.push(summarise(b, s, paths.get(key(b, s))!, 1 - options.confidence));
  return {
    underlying: options.underlying,
    mporDays: options.mporDays,
    confidence: options.confidence,
    observations: obs.length,
    gaps: series.gaps,
    firstMs: obs[0].atMs,
    lastMs: obs[obs.length - 1].atMs,
    results,
  };
}

function perpetualDay(now: DailyObservation, later: DailyObservation, side: Side, volAnnual: number, params: MarginParams): DayResult {
  const terms: ContractTerms = { kind: 'PERPETUAL', underlying: 'X', size: 1, entryPrice: now.price };
  const im = marginRequirement({ terms, side }, { mark: now.price, volAnnual, nowMs: now.atMs }, params).initial;
  const pnl = markToMarket(terms, side, { mark: later.price, volAnnual, nowMs: later.atMs });
  return { atMs: now.atMs, requirement: im / now.price, loss: -pnl / now.price };
}

function optionsDay(
  now: DailyObservation, later: DailyObservation, side: Side, volAnnual: number, laterVolAnnual: number, params: MarginParams, options: BacktestOptions,
): DayResult {
  const moneyness = options.optionMoneyness ?? 0.1;
  const expiryMs = now.atMs + (options.optionDays ?? 30) * DAY_MS;
  const leg = (optionType: 'CALL' | 'PUT', strike: number): Position => ({
    terms: { kind: 'OPTION', underlying: 'X', size: 1, entryPrice: 0, optionType, strike, expiryMs },
    side,
  });
  const book = [leg('CALL', now.price * (1 + moneyness)), leg('PUT', now.price * (1 - moneyness))];
  // Implied vol proxy: the EWMA vol (the series has no option quotes); at t + MPOR the EWMA then.
  const at = { mark: now.price, volAnnual, nowMs: now.atMs };
  const then = { mark: later.price, volAnnual: laterVolAnnual, nowMs: later.atMs };
  const im = portfolioInitialMargin(book, { X: at }, () => params);
  let pnl = 0;
  for (const p of book) pnl += markToMarket(p.terms, p.side, then) - markToMarket(p.terms, p.side, at);
  return { atMs: now.atMs, requirement: im / now.price, loss: -pnl / now.price };
}

function summarise(book: BacktestBook, side: Side, path: DayResult[], target: number): SideResult {
  const days = path.length;
  let breaches = 0;
  let worst: SideResult['worstBreach'];
  for (const d of path) {
    if (d.loss > d.requirement) {
      breaches++;
      const excess = d.loss - d.requirement;
      if (worst === undefined || excess > worst.excess) worst = { atMs: d.atMs, excess, loss: d.loss, requirement: d.requirement };
    }
  }
  const { statistic, pValue } = days > 0 ? kupiecPof(days, breaches, target) : { statistic: 0, pValue: 1 };
  const rate = days > 0 ? breaches / days : 0;
  const significant = days > 0 && pValue < BACKTEST_REJECTION_LEVEL;
  return {
    book, side, days, breaches, breachRate: rate, target,
    kupiecStatistic: statistic, kupiecPValue: pValue,
    rejected: significant && rate > target,
    conservative: significant && rate < target,
    worstBreach: worst,
    path,
  };
}

const BARS = '▁▂▃▄▅▆▇█';

/**
 * Two sparklines on one scale, `width` columns, each column the largest value of its days:
 * the requirement and the realised loss; a third line marks columns with a breach.
 */
export function sparkline(path: readonly DayResult[], width = 72): { requirement: string; loss: string; breaches: string } {
  if (path.length === 0) return { requirement: '', loss: '', breaches: '' };
  const columns = Math.min(width, path.length);
  const req: number[] = [];
  const loss: number[] = [];
  const hit: boolean[] = [];
  for (let c = 0; c < columns; c++) {
    const from = Math.floor((c * path.length) / columns);
    const to = Math.floor(((c + 1) * path.length) / columns);
    let r = 0;
    let l = 0;
    let h = false;
    for (let i = from; i < to; i++) {
      r = Math.max(r, path[i].requirement);
      l = Math.max(l, path[i].loss);
      h = h || path[i].loss > path[i].requirement;
    }
    req.push(r);
    loss.push(l);
    hit.push(h);
  }
  const top = Math.max(...req, ...loss, 1e-12);
  const bar = (x: number) => BARS[Math.min(BARS.length - 1, Math.max(0, Math.round((x / top) * (BARS.length - 1))))];
  return { requirement: req.map(bar).join(''), loss: loss.map(bar).join(''), breaches: hit.map((h) => (h ? '!' : ' ')).join('') };
}

const pct = (x: number, digits = 2) => `${(x * 100).toFixed(digits)}%`;
const date = (msSinceEpoch: number) => new Date(msSinceEpoch).toISOString().slice(0, 10);

/** The report as text: a table, then each side's sparkline. */
export function formatReport(report: BacktestReport): string {
  const out: string[] = [];
  out.push(`${report.underlying}: ${report.observations} daily prices ${date(report.firstMs)} → ${date(report.lastMs)}, ${report.gaps} gap(s); MPOR ${report.mporDays} d, confidence ${pct(report.confidence, 1)}`);
  out.push('');
  out.push('| book | side | days | breaches | breach rate | target | Kupiec LR | p-value | worst breach (loss − margin, of notional) | verdict |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---|---|');
  for (const r of report.results) {
    const worst = r.worstBreach ? `${pct(r.worstBreach.excess)} on ${date(r.worstBreach.atMs)} (loss ${pct(r.worstBreach.loss)} vs ${pct(r.worstBreach.requirement)})` : 'none';
    const verdict = r.rejected ? 'REJECTED (too many breaches)' : r.conservative ? 'pass (conservative)' : 'pass';
    out.push(`| ${r.book === 'PERPETUAL' ? 'perpetual' : 'option strangle'} | ${r.side.toLowerCase()} | ${r.days} | ${r.breaches} | ${pct(r.breachRate)} | ${pct(r.target)} | ${r.kupiecStatistic.toFixed(2)} | ${r.kupiecPValue.toFixed(3)} | ${worst} | ${verdict} |`);
  }
  for (const r of report.results) {
    const s = sparkline(r.path);
    out.push('');
    out.push(`${r.book === 'PERPETUAL' ? 'perpetual' : 'option strangle'} ${r.side.toLowerCase()}: requirement vs realised ${report.mporDays}-day loss (max per column, one scale)`);
    out.push(`  margin   ${s.requirement}`);
    out.push(`  loss     ${s.loss}`);
    out.push(`  breach   ${s.breaches}`);
  }
  return out.join('\n');
}
