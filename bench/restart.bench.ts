/**
 * Restart to ready of the whole app (`npm start`'s entry) on a store of LARGE events against the
 * same on SMALL events (issue 13 targets: ready at 1M <= 2x ready at 10k; HTTP listens, not ready,
 * within 1 s at any size, and probes answer meanwhile). Times are from spawn; the first start on
 * each store is a warm-up (it writes the subscriptions' checkpoints), then rounds alternate sizes.
 * Per round: when HTTP first answered (/health/ready, any status), when it answered 200, and the
 * slowest probe answer in between.
 *
 * The stores are filled with chained events in streams no service owns (bench/fill.ts): every
 * start-up scan (chain verification, live ledger, margin rebuild) reads them all, consumers ignore them.
 * BENCH_RESTART_EVENTS (default 100,000; the figure is 1,000,000, about 10 minutes on a
 * 2-core machine) and BENCH_RESTART_SMALL (default 10,000) set the sizes, BENCH_ROUNDS the rounds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp } from './app-process';
import { fillStore } from './fill';
import { row, stats, writeResults } from './run';

const LARGE = Number(process.env.BENCH_RESTART_EVENTS ?? 100_000);
const SMALL = Number(process.env.BENCH_RESTART_SMALL ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const READY_TIMEOUT_MS = 30 * 60_000;

interface Start {
  readonly listenMs: number;
  readonly readyMs: number;
  readonly slowestProbeMs: number;
}

async function timedStatus(port: number): Promise<{ status: number; ms: number }> {
  const { httpStatus } = await import('./app-process');
  const t0 = performance.now();
  const status = await httpStatus(port, '/health/ready', 10_000);
  return { status, ms: performance.now() - t0 };
}

async function restart(file: string): Promise<Start> {
  const app = await startApp({ BACKSTOP_DATA_FILE: file });
  try {
    let listenMs: number | undefined;
    let slowestProbeMs = 0;
    for (;;) {
      if (app.child.exitCode !== null) throw new Error(`the app exited with code ${app.child.exitCode} while starting`);
      if (performance.now() - app.startedAt > READY_TIMEOUT_MS) throw new Error('not ready in time');
      const probe = await timedStatus(app.port);
      if (probe.status !== 0) {
        listenMs ??= performance.now() - app.startedAt - probe.ms / 2;
        slowestProbeMs = Math.max(slowestProbeMs, probe.ms);
        if (probe.status === 200) return { listenMs, readyMs: performance.now() - app.startedAt, slowestProbeMs };
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    await app.stop();
  }
}

export default async function restartBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-bench-restart-'));
  try {
    const files = { small: join(dir, 'small.db'), large: join(dir, 'large.db') };
    const filled = Date.now();
    await fillStore(files.small, SMALL);
    await fillStore(files.large, LARGE);
    process.stdout.write(`  filled ${SMALL.toLocaleString('en-US')} + ${LARGE.toLocaleString('en-US')} events in ${((Date.now() - filled) / 1000).toFixed(1)} s\n`);
    const warm = { small: await restart(files.small), large: await restart(files.large) };
    process.stdout.write(`  first start (warm-up, not counted): small ready ${warm.small.readyMs.toFixed(0)} ms, large ready ${warm.large.readyMs.toFixed(0)} ms\n`);
    const small: Start[] = [];
    const large: Start[] = [];
    for (let r = 0; r < ROUNDS; r += 1) {
      small.push(await restart(files.small));
      large.push(await restart(files.large));
      const f = (s: Start) => `listen ${s.listenMs.toFixed(0)} ms, ready ${s.readyMs.toFixed(0)} ms, slowest probe ${s.slowestProbeMs.toFixed(0)} ms`;
      process.stdout.write(`  round ${r + 1}/${ROUNDS}: ${SMALL} events: ${f(small[r])}; ${LARGE} events: ${f(large[r])}\n`);
    }
    const n = (v: number) => v.toLocaleString('en-US');
    const pick = (starts: Start[], k: keyof Start) => stats(starts.map((s) => s[k]));
    writeResults('restart', [
      row({ measure: `restart to ready, ${n(LARGE)} events`, unit: 'ms', higherIsBetter: false, value: pick(large, 'readyMs'), baseline: `the same at ${n(SMALL)} events`, baselineValue: pick(small, 'readyMs'), target: '<= 2x (at 1M vs 10k)', targetRatio: 2 }),
      row({ measure: `restart: HTTP listens (not ready), ${n(LARGE)} events`, unit: 'ms', higherIsBetter: false, value: pick(large, 'listenMs'), baseline: `the same at ${n(SMALL)} events`, baselineValue: pick(small, 'listenMs'), note: 'from spawn, includes compiling the TypeScript sources (tools/register.js)' }),
      row({ measure: `restart: slowest probe answer while starting, ${n(LARGE)} events`, unit: 'ms', higherIsBetter: false, value: pick(large, 'slowestProbeMs'), baseline: `the same at ${n(SMALL)} events`, baselineValue: pick(small, 'slowestProbeMs') }),
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
