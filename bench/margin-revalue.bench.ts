/**
 * The margin revaluation hot path (SPEC §3.7: every mark re-values every open contract), measured
 * in one run against a naive baseline, so the ratio means something on any machine:
 *
 *   naive   one object per position side, markToMarket(terms, side, market) per object
 *           (what a straightforward "for each contract" implementation does)
 *   book    PortfolioBook.revalue over struct-of-arrays, writing a Float64Array
 *   monitor MarginMonitor.revalue: the whole tick the service runs — MTM, the 16 SPAN scenario
 *           passes (requirements netted per account), equity per account, call detection
 *
 * Run: `npm run bench -- margin-revalue` (or `npm run bench` for all). MARGIN_BENCH_CONTRACTS
 * changes the size (default 100000). Prints throughput (position rows re-valued per second) and
 * ratios; asserts nothing about time (machines differ), only that the two paths agree.
 */
import { performance } from 'node:perf_hooks';
import { ContractTerms, DAY_MS, iso, Side } from '@backstop/kernel';
import { MarginMonitor, DEFAULT_MARGIN_POLICY, PositionSpec } from '@backstop/margin';
import { markToMarket, MarketPoint, PortfolioBook } from '@backstop/margin-model';
import { measure, report } from './run';

const CONTRACTS = Number(process.env.MARGIN_BENCH_CONTRACTS ?? 100_000);
const PARTIES = 2_000;
const NOW_MS = Date.UTC(2026, 0, 1);
/** Ticks per measured pass (measure() times one pass after one warm-up pass). */
const TICKS = 10;

/** Deterministic data: a small LCG (Numerical Recipes constants), not Math.random. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

interface Row {
  readonly terms: ContractTerms;
  readonly side: Side;
  readonly party: number;
}

function contracts(count: number, optionShare: number): { specs: PositionSpec[]; rows: Row[] } {
  const rnd = lcg(42);
  const specs: PositionSpec[] = [];
  const rows: Row[] = [];
  for (let i = 0; i < count; i++) {
    const option = rnd() < optionShare;
    const kind = option ? 'OPTION' : rnd() < 0.5 ? 'PERPETUAL' : 'FUTURE';
    const long = Math.floor(rnd() * PARTIES);
    const short = (long + 1 + Math.floor(rnd() * (PARTIES - 1))) % PARTIES;
    const expiryMs = NOW_MS + (7 + Math.floor(rnd() * 180)) * DAY_MS;
    const spec: PositionSpec = {
      contractId: `k${i}`,
      side: 'LONG',
      kind,
      underlying: 'BTC-USD',
      size: (0.01 + rnd() * 5).toFixed(4),
      entryPrice: option ? (1_000 + rnd() * 6_000).toFixed(2) : (50_000 + rnd() * 20_000).toFixed(2),
      ...(option ? { optionType: rnd() < 0.5 ? ('CALL' as const) : ('PUT' as const), strike: (45_000 + rnd() * 30_000).toFixed(0) } : {}),
      ...(kind !== 'PERPETUAL' ? { expiry: iso(expiryMs) } : {}),
      currency: 'USDC',
      longPartyId: `p${long}`,
      shortPartyId: `p${short}`,
    };
    specs.push(spec);
    const terms: ContractTerms = {
      kind,
      underlying: 'BTC-USD',
      size: Number(spec.size),
      entryPrice: Number(spec.entryPrice),
      ...(option ? { optionType: spec.optionType, strike: Number(spec.strike), expiryMs } : kind === 'FUTURE' ? { expiryMs } : {}),
    };
    rows.push({ terms, side: 'LONG', party: long }, { terms, side: 'SHORT', party: short });
  }
  return { specs, rows };
}

/** Marks wander within ±1% of 60000 so every iteration does real work. */
const markOf = (iteration: number) => 60_000 * (1 + 0.01 * Math.sin(iteration));

async function runCase(name: string, optionShare: number): Promise<void> {
  const { specs, rows } = contracts(CONTRACTS, optionShare);
  const book = new PortfolioBook(rows.length);
  rows.forEach((r, key) => book.add({ key, terms: r.terms, side: r.side, underlyingIndex: 0, partyIndex: r.party }));
  const pnl = new Float64Array(rows.length);
  const naiveOut = new Array<number>(rows.length).fill(0);
  let tick = 0;

  const sums = { naive: 0, book: 0 };
  const naive = await measure('naive: markToMarket per position object', rows.length * TICKS, () => {
    for (let t = 0; t < TICKS; t++) {
      const market: MarketPoint = { mark: markOf(t), volAnnual: 0.6, nowMs: NOW_MS };
      let sum = 0;
      for (let i = 0; i < rows.length; i++) {
        naiveOut[i] = markToMarket(rows[i].terms, rows[i].side, market);
        sum += naiveOut[i];
      }
      sums.naive = sum;
    }
  });
  const flat = await measure('PortfolioBook.revalue (flat arrays)', rows.length * TICKS, () => {
    for (let t = 0; t < TICKS; t++) {
      book.revalue(0, markOf(t), 0.6, NOW_MS, pnl);
      let sum = 0;
      for (let i = 0; i < rows.length; i++) sum += pnl[i];
      sums.book = sum;
    }
  });
  if (Math.abs(sums.naive - sums.book) > 1e-6 * Math.max(1, Math.abs(sums.naive))) throw new Error(`paths disagree: naive Σ ${sums.naive}, book Σ ${sums.book}`);

  const monitor = new MarginMonitor(DEFAULT_MARGIN_POLICY, 1_024);
  const revisions = new Map<string, number>();
  const apply = (stream: string, type: string, data: Record<string, unknown>) => {
    const revision = (revisions.get(stream) ?? -1) + 1;
    revisions.set(stream, revision);
    monitor.apply({ stream, revision, type, data });
  };
  const loadStarted = performance.now();
  for (const spec of specs) {
    apply(`margin-${spec.longPartyId}`, 'PositionOpened', { ...spec, side: 'LONG', partyId: spec.longPartyId, at: iso(NOW_MS - DAY_MS) });
    apply(`margin-${spec.shortPartyId}`, 'PositionOpened', { ...spec, side: 'SHORT', partyId: spec.shortPartyId, at: iso(NOW_MS - DAY_MS) });
  }
  const loadMs = performance.now() - loadStarted;
  let markAtMs = NOW_MS;
  const full = await measure('MarginMonitor.revalue (MTM + 16 SPAN scenarios + equity)', rows.length * TICKS, () => {
    for (let t = 0; t < TICKS; t++) {
      markAtMs += 1_000;
      tick += 1;
      apply('market-BTC-USD', 'MarkRecorded', { underlying: 'BTC-USD', price: markOf(tick).toFixed(2), volAnnual: '0.6', sane: true, at: iso(markAtMs) });
      monitor.accountsNeedingDecision('BTC-USD'); // recording the mark re-valued the book
    }
  });

  report(`margin revaluation, ${name}: ${CONTRACTS.toLocaleString('en-US')} contracts = ${rows.length.toLocaleString('en-US')} position rows on one underlying, ${PARTIES} parties (ops = rows re-valued)`, [
    naive,
    { ...flat, baseline: naive.name, note: 'the hot path' },
    { ...full, baseline: flat.name, note: `one whole tick: 17 book passes, netting per account, equity; ${(1e3 * rows.length / full.opsPerSec).toFixed(1)} ms per tick` },
  ]);
  process.stdout.write(`  monitor rebuild: ${rows.length.toLocaleString('en-US')} PositionOpened applied in ${loadMs.toFixed(0)} ms\n`);
}

export default async function marginRevalueBench(): Promise<void> {
  await runCase('linear (perpetuals, futures)', 0);
  await runCase('mixed (30% options, Black-76)', 0.3);
}
