import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { Envelope, KafkaConnectionConfig, kafkaConnectionFromEnv } from '@backstop/messaging';
import { markEnvelope, parseCoinGeckoCsv, PricePoint, realizedVols, ReplayInputError } from './series';
import { HttpTarget, KafkaTarget, MarkTarget, StdoutTarget } from './targets';

export const USAGE = `market-replay: publish a CSV price series as MarkPrice messages (backstop.market.marks)

Usage:
  npm run market-replay -- --file <prices.csv> [options] (--http <url> | --brokers <host:port,...> | --dry-run)

Input:
  --file <path>          CoinGecko CSV: snapped_at,price,market_cap,total_volume (e.g. ../shared/data/btc-usd-daily.csv)
  --underlying <name>    e.g. BTC-USD (default: from the file name, btc-usd-daily.csv → BTC-USD)
  --from <YYYY-MM-DD>    first day to publish (inclusive; default: the first row)
  --to <YYYY-MM-DD>      last day to publish (inclusive; default: the last row)
  --vol <decimal>        a fixed annual vol on every mark, e.g. 0.65
  --vol-window <n>       otherwise: realised vol over the last n returns (default 30), from the whole file,
                         so the first days of --from already have history; none until 5 returns exist
  --restamp              stamp each mark with the time it is sent (and a fresh message id) instead of
                         the CSV's time; use it to drive a live app whose quotes reject stale marks

Target (one):
  --http <url>           a running Backstop app, e.g. http://127.0.0.1:3000 (POST /v1/market/marks, in batches)
  --token <token>        bearer token for --http (or BACKSTOP_TOKEN)
  --brokers <list>       Kafka brokers (or KAFKA_BROKERS); topic prefix from --topic-prefix or KAFKA_TOPIC_PREFIX;
                         TLS, SASL and compression from the services' KAFKA_* variables (README, Settings)
  --dry-run              print the envelopes as NDJSON on stdout instead of sending them

Pace and output:
  --speed <factor>       market time per wall-clock time: 86400 = one day per second; 0 = as fast as possible (default 0)
  --batch <n>            marks per HTTP request / Kafka send, 1-1000 (default 500)
  --quiet                no progress bar (stderr)
  --help                 this text

Message ids derive from the underlying, time, price and vol: replaying the same file again publishes
the same ids, which consumers ignore as already handled (use --restamp for new observations).
Exit codes: 0 done, 1 the target failed, 2 bad arguments or input.`;

export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown; isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
  /** Stops the replay between batches (SIGINT). */
  readonly signal?: AbortSignal;
  readonly now?: () => number;
}

export interface ReplayOptions {
  readonly file: string;
  readonly underlying: string;
  readonly fromMs?: number;
  readonly toMs?: number;
  readonly fixedVol?: string;
  readonly volWindow: number;
  readonly restamp: boolean;
  readonly speed: number;
  readonly batch: number;
  readonly quiet: boolean;
  readonly target: { kind: 'http'; url: string; token?: string } | { kind: 'kafka'; brokers: string[]; topicPrefix: string; connection?: KafkaConnectionConfig } | { kind: 'dry-run' };
}

/** Runs the CLI; returns the exit code (never throws). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let options: ReplayOptions | 'help';
  try {
    options = parseOptions(argv, io.env);
  } catch (err) {
    io.stderr.write(`market-replay: ${(err as Error).message}\nRun with --help for usage.\n`);
    return 2;
  }
  if (options === 'help') {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    const summary = await replay(options, io);
    io.stderr.write(`${summary}\n`);
    return 0;
  } catch (err) {
    io.stderr.write(`${io.stderr.isTTY ? '\n' : ''}market-replay: ${(err as Error).message}\n`);
    return err instanceof ReplayInputError ? 2 : 1;
  }
}

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): ReplayOptions | 'help' {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new ReplayInputError((err as Error).message.replace(/^Unknown option/, 'unknown option'));
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const file = v.file ?? parsed.positionals[0];
  if (!file) throw new ReplayInputError('--file is required (a CoinGecko CSV such as ../shared/data/btc-usd-daily.csv)');
  if (!existsSync(file)) throw new ReplayInputError(`cannot read ${file}: no such file`);
  const underlying = v.underlying ?? underlyingFromFileName(file);
  if (!/^[A-Z0-9]{2,10}-[A-Z]{3,5}$/.test(underlying)) throw new ReplayInputError(`--underlying must look like BTC-USD, got "${underlying}"`);
  const fromMs = v.from === undefined ? undefined : day(v.from, '--from');
  const toMs = v.to === undefined ? undefined : day(v.to, '--to') + 86_400_000 - 1;
  if (fromMs !== undefined && toMs !== undefined && fromMs > toMs) throw new ReplayInputError(`--from ${v.from} is after --to ${v.to}`);
  if (v.vol !== undefined && !(/^(0|[1-9][0-9]*)(\.[0-9]{1,12})?$/.test(v.vol) && Number(v.vol) <= 10)) {
    throw new ReplayInputError(`--vol must be a decimal annual vol from 0 to 10 such as 0.65, got "${v.vol}"`);
  }
  const volWindow = integer(v['vol-window'] ?? '30', '--vol-window', 2, 10_000);
  const speed = Number(v.speed ?? '0');
  if (!Number.isFinite(speed) || speed < 0) throw new ReplayInputError(`--speed must be a number ≥ 0 (0 = as fast as possible), got "${v.speed}"`);
  const batch = integer(v.batch ?? '500', '--batch', 1, 1_000);
  const brokers = (v.brokers ?? env.KAFKA_BROKERS ?? '').split(',').map((b) => b.trim()).filter(Boolean);
  const chosen = [v.http !== undefined, v['dry-run'] === true, v.brokers !== undefined].filter(Boolean).length;
  if (chosen > 1) throw new ReplayInputError('give one target: --http, --brokers or --dry-run');
  const target: ReplayOptions['target'] = v['dry-run']
    ? { kind: 'dry-run' }
    : v.http !== undefined
      ? { kind: 'http', url: v.http, ...((v.token ?? env.BACKSTOP_TOKEN) ? { token: v.token ?? env.BACKSTOP_TOKEN } : {}) }
      : brokers.length > 0
        ? { kind: 'kafka', brokers, topicPrefix: v['topic-prefix'] ?? env.KAFKA_TOPIC_PREFIX ?? '', connection: kafkaConnection(env) }
        : (() => {
            throw new ReplayInputError('no target: give --http <url> (a running app), --brokers <host:port> (or KAFKA_BROKERS), or --dry-run');
          })();
  return {
    file,
    underlying,
    ...(fromMs !== undefined ? { fromMs } : {}),
    ...(toMs !== undefined ? { toMs } : {}),
    ...(v.vol !== undefined ? { fixedVol: v.vol } : {}),
    volWindow,
    restamp: v.restamp === true,
    speed,
    batch,
    quiet: v.quiet === true,
    target,
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      file: { type: 'string' },
      underlying: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      vol: { type: 'string' },
      'vol-window': { type: 'string' },
      restamp: { type: 'boolean' },
      http: { type: 'string' },
      token: { type: 'string' },
      brokers: { type: 'string' },
      'topic-prefix': { type: 'string' },
      'dry-run': { type: 'boolean' },
      speed: { type: 'string' },
      batch: { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function underlyingFromFileName(file: string): string {
  const match = /^([a-z0-9]{2,10})-([a-z]{3,5})\b/i.exec(basename(file));
  if (!match) throw new ReplayInputError(`cannot tell the underlying from the file name "${basename(file)}": give --underlying, e.g. BTC-USD`);
  return `${match[1]}-${match[2]}`.toUpperCase();
}

function day(text: string, flag: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}$/.test(text) ? Date.parse(`${text}T00:00:00Z`) : Number.NaN;
  if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== text) throw new ReplayInputError(`${flag} must be a date YYYY-MM-DD, got "${text}"`);
  return ms;
}

function integer(text: string, flag: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) throw new ReplayInputError(`${flag} must be a whole number from ${min} to ${max}, got "${text}"`);
  return value;
}

function readSeries(options: ReplayOptions): { points: PricePoint[]; vols: (number | undefined)[]; skippedNote: string } {
  let text: string;
  try {
    text = readFileSync(options.file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ReplayInputError(`cannot read ${options.file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message}`);
  }
  const series = parseCoinGeckoCsv(text);
  const allVols = options.fixedVol === undefined ? realizedVols(series.points, options.volWindow) : series.points.map(() => undefined);
  const inRange = (p: PricePoint) => (options.fromMs === undefined || p.atMs >= options.fromMs) && (options.toMs === undefined || p.atMs <= options.toMs);
  const points: PricePoint[] = [];
  const vols: (number | undefined)[] = [];
  series.points.forEach((p, i) => {
    if (!inRange(p)) return;
    points.push(p);
    vols.push(allVols[i]);
  });
  if (points.length === 0) {
    const span = series.points.length > 0 ? ` (the file covers ${series.points[0].at.slice(0, 10)} to ${series.points[series.points.length - 1].at.slice(0, 10)})` : ' (the file has no usable rows)';
    throw new ReplayInputError(`no prices between the dates given${span}`);
  }
  const shown = series.skipped.slice(0, 3).map((s) => `line ${s.line}: ${s.reason}`).join('; ');
  const skippedNote = series.skipped.length === 0 ? '' : `; skipped ${series.skipped.length} unusable row(s) (${shown}${series.skipped.length > 3 ? '; …' : ''})`;
  return { points, vols, skippedNote };
}

/** TLS, SASL, compression and client id from the same KAFKA_* variables as the services. */
function kafkaConnection(env: NodeJS.ProcessEnv): KafkaConnectionConfig {
  try {
    return kafkaConnectionFromEnv(env);
  } catch (err) {
    throw new ReplayInputError((err as Error).message);
  }
}

function targetFor(options: ReplayOptions, io: CliIo): MarkTarget {
  switch (options.target.kind) {
    case 'http':
      return new HttpTarget(options.target.url, options.target.token);
    case 'kafka':
      return new KafkaTarget(options.target.brokers, options.target.topicPrefix, undefined, options.target.connection);
    case 'dry-run':
      return new StdoutTarget(io.stdout);
  }
}

/** Publishes the series at the requested pace; returns a one-line summary. */
export async function replay(options: ReplayOptions, io: CliIo): Promise<string> {
  const now = io.now ?? Date.now;
  const { points, vols, skippedNote } = readSeries(options);
  const target = targetFor(options, io);
  const progress = new Progress(io.stderr, points.length, options.quiet || options.target.kind === 'dry-run', options.underlying);
  const started = now();
  let sent = 0;
  let pending: Envelope[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    await target.send(pending);
    sent += pending.length;
    progress.update(sent, points[sent - 1]);
    pending = [];
  };
  await target.open();
  try {
    for (let i = 0; i < points.length; i++) {
      if (io.signal?.aborted) break;
      if (options.speed > 0) {
        const dueMs = started + (points[i].atMs - points[0].atMs) / options.speed;
        if (dueMs > now()) {
          await flush();
          await sleep(dueMs - now(), io.signal);
          if (io.signal?.aborted) break;
        }
      }
      pending.push(markEnvelope(points[i], vols[i], { underlying: options.underlying, fixedVol: options.fixedVol, restamp: options.restamp }, new Date(now()).toISOString()));
      if (pending.length >= options.batch) await flush();
    }
    if (!io.signal?.aborted) await flush();
  } finally {
    progress.done();
    await target.close().catch(() => undefined);
  }
  const seconds = ((now() - started) / 1000).toFixed(1);
  const span = sent > 0 ? ` (${options.underlying} ${points[0].at.slice(0, 10)} → ${points[sent - 1].at.slice(0, 10)})` : '';
  const interrupted = io.signal?.aborted ? `interrupted: ` : '';
  return `${interrupted}published ${sent} of ${points.length} MarkPrice${span} to ${target.description} in ${seconds} s${skippedNote}`;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** A progress bar on stderr: redrawn in place on a terminal, a line per 10% otherwise. */
class Progress {
  private lastDrawMs = 0;
  private lastTenth = -1;
  constructor(
    private readonly err: CliIo['stderr'],
    private readonly total: number,
    private readonly silent: boolean,
    private readonly underlying: string,
  ) {}

  update(done: number, point: PricePoint | undefined): void {
    if (this.silent || !point) return;
    const fraction = done / this.total;
    const text = `${bar(fraction)} ${(fraction * 100).toFixed(0).padStart(3)}% ${done}/${this.total} ${point.at.slice(0, 10)} ${this.underlying} ${point.price}`;
    if (this.err.isTTY) {
      const nowMs = Date.now();
      if (nowMs - this.lastDrawMs < 100 && done < this.total) return;
      this.lastDrawMs = nowMs;
      this.err.write(`\r${text}\u001b[K`);
      return;
    }
    const tenth = Math.floor(fraction * 10);
    if (tenth === this.lastTenth) return;
    this.lastTenth = tenth;
    this.err.write(`${text}\n`);
  }

  done(): void {
    if (!this.silent && this.err.isTTY) this.err.write('\n');
  }
}

function bar(fraction: number, width = 30): string {
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}
