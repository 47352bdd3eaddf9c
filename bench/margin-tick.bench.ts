/**
 * One margin tick at scale (issue 13): a mark of an underlying holding 100k contracts (30% options,
 * Black-76), as margin-monitor runs it: the MarkRecorded applied to the monitor (MTM, the 16 SPAN
 * scenarios and the flagged levels per exposure, add-ons) and the accounts needing a decision
 * read off it. Baseline in the same run: a linear mark-to-market pass over typed arrays
 * (Float64Array sign·(mark − entry)·size for every position row), the floor any revaluation pays.
 * Also printed for reference: PortfolioBook.revalue, one MTM pass with Black-76 for the options.
 *
 * Prints the median of ROUNDS rounds (each TICKS ticks) with the spread, the ratio to the baseline,
 * and the process RSS with the monitor holding the 100k contracts; writes
 * bench/results/margin-tick.json. Runs in a child process of its own, so the RSS is the monitor's
 * and not other benchmarks'.
 *
 *   npm run bench -- margin-tick            (MARGIN_TICK_CONTRACTS, MARGIN_TICK_ROUNDS to change)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { DAY_MS, iso } from '@backstop/kernel';
import { DEFAULT_MARGIN_POLICY, MarginMonitor, PositionSpec, positionTerms } from '@backstop/margin';
import { PortfolioBook } from '@backstop/margin-model';

const CONTRACTS = Number(process.env.MARGIN_TICK_CONTRACTS ?? 100_000);
const ROUNDS = Math.max(3, Number(process.env.MARGIN_TICK_ROUNDS ?? 5));
const TICKS = 10;
const PARTIES = 2_000;
const OPTION_SHARE = 0.3;
const NOW_MS = Date.UTC(2026, 0, 1);
const UNDERLYING = 'BTC-USD';

/** Deterministic data: a small LCG (Numerical Recipes constants), not Math.random. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

/** The same book as margin-revalue.bench.ts: one underlying, 2,000 parties, unique strikes. */
function* contracts(count: number): Generator<PositionSpec> {
  const rnd = lcg(42);
  for (let i = 0; i < count; i++) {
    const option = rnd() < OPTION_SHARE;
    const kind = option ? 'OPTION' : rnd() < 0.5 ? 'PERPETUAL' : 'FUTURE';
    const long = Math.floor(rnd() * PARTIES);
    const short = (long + 1 + Math.floor(rnd() * (PARTIES - 1))) % PARTIES;
    const expiryMs = NOW_MS + (7 + Math.floor(rnd() * 180)) * DAY_MS;
    yield {
      contractId: `k${i}`,
      side: 'LONG',
      kind,
      underlying: UNDERLYING,
      size: (0.01 + rnd() * 5).toFixed(4),
      entryPrice: option ? (1_000 + rnd() * 6_000).toFixed(2) : (50_000 + rnd() * 20_000).toFixed(2),
      ...(option ? { optionType: rnd() < 0.5 ? ('CALL' as const) : ('PUT' as const), strike: (45_000 + rnd() * 30_000).toFixed(0) } : {}),
      ...(kind !== 'PERPETUAL' ? { expiry: iso(expiryMs) } : {}),
      currency: 'USDC',
      longPartyId: `p${long}`,
      shortPartyId: `p${short}`,
    };
  }
}

/** Marks wander within ±1% of 60000 (inside the sanity band), so every tick does real work. */
const markOf = (tick: number) => (60_000 * (1 + 0.01 * Math.sin(tick))).toFixed(2);

interface Spread {
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly roundsMs: number[];
}

function spread(roundsMs: number[]): Spread {
  const sorted = [...roundsMs].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)], minMs: sorted[0], maxMs: sorted[sorted.length - 1], roundsMs };
}

function timePerTick(run: () => void): number {
  const started = process.hrtime.bigint();
  for (let t = 0; t < TICKS; t++) run();
  return Number(process.hrtime.bigint() - started) / 1e6 / TICKS;
}

function measureInChild(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  const rssBeforeMb = process.memoryUsage().rss / 2 ** 20;
  const monitor = new MarginMonitor(DEFAULT_MARGIN_POLICY);
  const revisions = new Map<string, number>();
  const apply = (stream: string, type: string, data: Record<string, unknown>) => {
    const revision = (revisions.get(stream) ?? -1) + 1;
    revisions.set(stream, revision);
    monitor.apply({ stream, revision, type, data });
  };
  const loadStarted = process.hrtime.bigint();
  for (const spec of contracts(CONTRACTS)) {
    const at = iso(NOW_MS - DAY_MS);
    apply(`margin-${spec.longPartyId}`, 'PositionOpened', { ...spec, side: 'LONG', partyId: spec.longPartyId, at });
    apply(`margin-${spec.shortPartyId}`, 'PositionOpened', { ...spec, side: 'SHORT', partyId: spec.shortPartyId, at });
  }
  const loadMs = Number(process.hrtime.bigint() - loadStarted) / 1e6;
  let tick = 0;
  let markAtMs = NOW_MS;
  let decisions = 0;
  const marginTick = () => {
    tick += 1;
    markAtMs += 1_000;
    const at = iso(markAtMs);
    apply(`market-${UNDERLYING}`, 'MarkRecorded', { underlying: UNDERLYING, price: markOf(tick), volAnnual: '0.6', sane: true, at, receivedAt: at });
    decisions += monitor.accountsNeedingDecision(UNDERLYING).needDecision.length;
  };
  // RSS with the monitor holding the contracts, valued (before the baseline's own arrays exist).
  for (let i = 0; i < 3; i++) marginTick();
  gc?.();
  const memory = process.memoryUsage();
  // The typed-array baseline's rows (struct-of-arrays, both sides of every contract).
  const rows = 2 * CONTRACTS;
  const sign = new Float64Array(rows);
  const size = new Float64Array(rows);
  const entry = new Float64Array(rows);
  const book = new PortfolioBook(rows);
  let r = 0;
  for (const spec of contracts(CONTRACTS)) {
    const terms = positionTerms(spec);
    for (const s of [1, -1]) {
      sign[r] = s;
      size[r] = terms.size;
      entry[r] = terms.entryPrice;
      book.add({ key: r, terms, side: s === 1 ? 'LONG' : 'SHORT', underlyingIndex: 0, partyIndex: 0 });
      r++;
    }
  }
  const out = new Float64Array(rows);
  let sink = 0;
  const linearMtm = () => {
    tick += 1;
    const mark = Number(markOf(tick));
    for (let i = 0; i < rows; i++) out[i] = sign[i] * (mark - entry[i]) * size[i];
    sink += out[tick % rows];
  };
  const bookMtm = () => {
    tick += 1;
    book.revalue(0, Number(markOf(tick)), 0.6, NOW_MS, out);
    sink += out[tick % rows];
  };
  // Warm-up (JIT), not measured.
  for (let i = 0; i < 3; i++) {
    marginTick();
    linearMtm();
    bookMtm();
  }
  const tickRounds: number[] = [];
  const linearRounds: number[] = [];
  const bookRounds: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    linearRounds.push(timePerTick(linearMtm));
    bookRounds.push(timePerTick(bookMtm));
    tickRounds.push(timePerTick(marginTick));
  }
  const result = {
    bench: 'margin-tick',
    at: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, totalMemMb: Math.round(totalmem() / 2 ** 20), node: process.version },
    contracts: CONTRACTS,
    optionShare: OPTION_SHARE,
    positionRows: monitor.rowCount,
    parties: PARTIES,
    rounds: ROUNDS,
    ticksPerRound: TICKS,
    tick: spread(tickRounds),
    baselineLinearMtm: spread(linearRounds),
    referenceBookMtm: spread(bookRounds),
    ratioToBaseline: spread(tickRounds).medianMs / spread(linearRounds).medianMs,
    ratioToBookMtm: spread(tickRounds).medianMs / spread(bookRounds).medianMs,
    targets: { tickMsMax: 60, ratioMax: 4, rssMbMax: 400 },
    rssMb: memory.rss / 2 ** 20,
    heapUsedMb: memory.heapUsed / 2 ** 20,
    rssBeforeLoadMb: rssBeforeMb,
    gcBeforeRss: gc !== undefined,
    loadMs,
    decisionsSeen: decisions,
    sink,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function line(label: string, s: Spread, note = ''): string {
  return `  ${label.padEnd(52)} ${s.medianMs.toFixed(2).padStart(8)} ms  (${s.minMs.toFixed(2)}–${s.maxMs.toFixed(2)})${note}\n`;
}

export default async function marginTickBench(): Promise<void> {
  const stdout = execFileSync(process.execPath, ['--expose-gc', '-r', join(__dirname, '..', 'tools', 'register.js'), __filename, '--child'], {
    encoding: 'utf8',
    env: process.env,
    maxBuffer: 16 * 2 ** 20,
  });
  const result = JSON.parse(stdout.trim().split('\n').pop() as string);
  const out = process.stdout;
  out.write(`\nmargin tick: ${result.contracts.toLocaleString('en-US')} contracts (${result.optionShare * 100}% options) = ${result.positionRows.toLocaleString('en-US')} position rows, ${result.parties} parties, one underlying; median of ${result.rounds} rounds × ${result.ticksPerRound} ticks (min–max)\n`);
  out.write(line('baseline: linear MTM pass over typed arrays', result.baselineLinearMtm));
  out.write(line('reference: PortfolioBook.revalue (MTM, Black-76)', result.referenceBookMtm));
  out.write(line('margin tick (apply mark + decisions)', result.tick, `  ${result.ratioToBaseline.toFixed(1)}x baseline, ${result.ratioToBookMtm.toFixed(1)}x book MTM (targets ≤ 4x, ≤ 60 ms)`));
  out.write(`  RSS with ${result.contracts.toLocaleString('en-US')} contracts loaded: ${result.rssMb.toFixed(0)} MB (heap ${result.heapUsedMb.toFixed(0)} MB; target ≤ 400 MB); load ${result.loadMs.toFixed(0)} ms\n`);
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'margin-tick.json'), `${JSON.stringify(result, null, 2)}\n`);
  out.write(`  written: bench/results/margin-tick.json\n`);
}

if (require.main === module) {
  if (process.argv.includes('--child')) measureInChild();
  else
    marginTickBench().catch((err: Error) => {
      process.stderr.write(`${err.stack}\n`);
      process.exit(1);
    });
}
