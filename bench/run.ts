/**
 * `npm run bench`: runs every bench/*.bench.ts (or the ones named: `npm run bench -- event-store`),
 * each in its own child process (no state, heap or open handle leaks from one into the next), then
 * prints one summary table of every row written in this run, each with its baseline measured in the
 * same run and the ratio. Every bench writes its rows as JSON under bench/results/<bench>.json.
 * Benchmarks print; they never assert on time (that belongs nowhere near a unit test).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, join } from 'node:path';

export const RESULTS_DIR = join(__dirname, 'results');

export interface BenchResult {
  readonly name: string;
  readonly opsPerSec: number;
  readonly baseline?: string;
  readonly note?: string;
}

export async function measure(name: string, ops: number, run: () => void | Promise<void>): Promise<BenchResult> {
  await run(); // warm-up pass (JIT, page cache), not measured
  const started = process.hrtime.bigint();
  await run();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { name, opsPerSec: ops / seconds };
}

/** Prints ops/s rows with their ratios (single pass each), and records the rows that have a baseline for the summary. */
export function report(title: string, results: readonly BenchResult[]): void {
  process.stdout.write(`\n${title}\n`);
  const byName = new Map(results.map((r) => [r.name, r]));
  const rows: Row[] = [];
  for (const r of results) {
    const base = r.baseline ? byName.get(r.baseline) : undefined;
    const ratio = base ? `  ${(r.opsPerSec / base.opsPerSec).toFixed(2)}x of ${base.name}` : '';
    process.stdout.write(`  ${r.name.padEnd(48)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(14)} ops/s${ratio}${r.note ? `  (${r.note})` : ''}\n`);
    if (base) {
      rows.push(row({ measure: `${title}: ${r.name}`, unit: 'ops/s', higherIsBetter: true, value: stats([r.opsPerSec]), baseline: base.name, baselineValue: stats([base.opsPerSec]), note: r.note }));
    }
  }
  if (rows.length > 0) writeResults(benchFileName(), rows);
}

/** Median and spread (min, max) of the rounds of one figure. */
export interface Stats {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly rounds: readonly number[];
}

export function stats(values: readonly number[]): Stats {
  if (values.length === 0) throw new RangeError('stats of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], rounds: values };
}

/** One line of the summary: a measure and its baseline from the same run. */
export interface Row {
  readonly bench: string;
  readonly measure: string;
  readonly unit: string;
  /** True for throughputs (ratio = value / baseline), false for times (ratio = value / baseline too, lower is better). */
  readonly higherIsBetter: boolean;
  readonly value: Stats;
  readonly baseline: string;
  readonly baselineValue: Stats;
  readonly ratio: number;
  /** The issue's target, e.g. '>= 0.8x' or '<= 2x'; `met` says whether this run met it. */
  readonly target?: string;
  readonly met?: boolean;
  readonly note?: string;
}

export function row(r: Omit<Row, 'ratio' | 'bench' | 'met'> & { bench?: string; targetRatio?: number }): Row {
  const ratio = r.value.median / r.baselineValue.median;
  const { targetRatio, ...rest } = r;
  const met = targetRatio === undefined ? undefined : r.higherIsBetter ? ratio >= targetRatio : ratio <= targetRatio;
  return { bench: r.bench ?? benchFileName(), ...rest, ratio, ...(met === undefined ? {} : { met }) };
}

/** Runs `round` n times (after `warmup` unmeasured ones), alternating nothing: callers interleave their baseline themselves. */
export async function rounds(n: number, round: (i: number) => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i += 1) out.push(await round(i));
  return out;
}

export function fmt(value: number, unit: string): string {
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })} ${unit}`;
}

export function formatRow(r: Row): string {
  const spread = (s: Stats) => `[${fmt(s.min, '').trim()}..${fmt(s.max, '').trim()}]`;
  const target = r.target ? `  target ${r.target}: ${r.met === undefined ? '-' : r.met ? 'met' : 'NOT met'}` : '';
  return `${r.measure}: ${fmt(r.value.median, r.unit)} ${spread(r.value)} vs ${r.baseline} ${fmt(r.baselineValue.median, r.unit)} ${spread(r.baselineValue)} = ${r.ratio.toFixed(2)}x${target}`;
}

/** Prints the rows and writes them (with the machine) to bench/results/<bench>.json. */
export function writeResults(bench: string, rows: readonly Row[]): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  for (const r of rows) process.stdout.write(`  ${formatRow(r)}\n`);
  const file = join(RESULTS_DIR, `${bench}.json`);
  writeFileSync(file, `${JSON.stringify({ bench, at: new Date().toISOString(), machine: machine(), rows }, null, 2)}\n`);
  process.stdout.write(`  -> ${file}\n`);
}

export function machine(): Record<string, unknown> {
  const cpu = cpus();
  return { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version, platform: `${process.platform} ${process.arch}` };
}

/** The bench file running in this process (bench/x.bench.ts → 'x'), from the runner's environment. */
function benchFileName(): string {
  return process.env.BENCH_FILE ?? basename(process.argv[1] ?? 'bench').replace(/\.bench\.ts$|\.ts$/, '');
}

function summaryTable(started: number): void {
  const rows: Row[] = [];
  for (const f of readdirSync(RESULTS_DIR).filter((n) => n.endsWith('.json'))) {
    const parsed = JSON.parse(readFileSync(join(RESULTS_DIR, f), 'utf8')) as { at: string; rows: Row[] };
    if (Date.parse(parsed.at) >= started) rows.push(...parsed.rows);
  }
  const cell = (s: Stats, unit: string) => `${fmt(s.median, unit)} (${fmt(s.min, '').trim()}..${fmt(s.max, '').trim()}, n=${s.rounds.length})`;
  const lines = [
    '| bench | measure | median (spread, rounds) | baseline | baseline median (spread) | ratio | target |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.bench} | ${r.measure} | ${cell(r.value, r.unit)} | ${r.baseline} | ${cell(r.baselineValue, r.unit)} | ${r.ratio.toFixed(2)}x | ${r.target ? `${r.target} ${r.met ? 'met' : 'NOT met'}` : '-'} |`),
  ];
  const m = machine();
  process.stdout.write(`\nSummary (${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, node ${m.node}):\n${lines.join('\n')}\n`);
  writeFileSync(join(RESULTS_DIR, 'summary.md'), `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, node ${m.node}, ${m.platform}; run ${new Date(started).toISOString()}\n\n${lines.join('\n')}\n`);
}

async function runOne(file: string): Promise<void> {
  process.env.BENCH_FILE = file.replace(/\.bench\.ts$/, '');
  const mod = (await import(join(__dirname, file))) as { default: () => Promise<void> };
  await mod.default();
}

function main(): void {
  const args = process.argv.slice(2);
  if (args[0] === '--one') {
    runOne(args[1]).then(
      () => process.exit(0),
      (err: Error) => {
        process.stderr.write(`${err.stack}\n`);
        process.exit(1);
      },
    );
    return;
  }
  const files = readdirSync(__dirname).filter((f) => f.endsWith('.bench.ts') && (args.length === 0 || args.some((o) => f.includes(o)))).sort();
  if (files.length === 0) throw new Error(`no benchmark matches ${args.join(', ')}`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const started = Date.now();
  const failed: string[] = [];
  for (const file of files) {
    const t0 = Date.now();
    process.stdout.write(`\n=== ${file}\n`);
    const child = spawnSync(process.execPath, ['-r', join(__dirname, '..', 'tools', 'register.js'), __filename, '--one', file], { stdio: 'inherit', env: process.env });
    process.stdout.write(`=== ${file}: ${child.status === 0 ? 'done' : `FAILED (exit ${child.status ?? child.signal})`} in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    if (child.status !== 0) failed.push(file);
  }
  summaryTable(started);
  process.stdout.write(`\nAll benches: ${((Date.now() - started) / 1000).toFixed(0)} s${failed.length > 0 ? `; FAILED: ${failed.join(', ')}` : ''}\n`);
  if (failed.length > 0) process.exitCode = 1;
}

if (require.main === module) main();
