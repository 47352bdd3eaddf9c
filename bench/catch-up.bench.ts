/**
 * Catch-up with no checkpoint (a new consumer, or lost checkpoints): a catch-up subscription reads
 * the whole store from position 0 through the port and hands every event to a handler that takes
 * it (so checkpoints are written as in production), against a raw better-sqlite3 scan of the same
 * file that JSON-parses each row's data and metadata (issue 13 target: >= 0.3x).
 * Each round opens the store afresh, so the integrity check on read (verifyOnRead: each event's
 * hash recomputed once per process) is paid as at a real start. BENCH_CATCHUP_EVENTS sets the size
 * (default 50,000), BENCH_ROUNDS the rounds (default 3).
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore, startCatchUpSubscription } from '@backstop/event-store';
import { fillStore } from './fill';
import { row, stats, writeResults } from './run';

const EVENTS = Number(process.env.BENCH_CATCHUP_EVENTS ?? 50_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

export default async function catchUpBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-bench-catchup-'));
  const file = join(dir, 'store.db');
  try {
    const filled = Date.now();
    await fillStore(file, EVENTS);
    process.stdout.write(`  filled ${EVENTS.toLocaleString('en-US')} events in ${((Date.now() - filled) / 1000).toFixed(1)} s\n`);

    const rawScan = (): number => {
      const db = new Database(file, { readonly: true });
      const started = process.hrtime.bigint();
      let n = 0;
      let sum = 0;
      for (const r of db.prepare('SELECT * FROM events ORDER BY position').iterate() as IterableIterator<{ data: string; metadata: string }>) {
        const data = JSON.parse(r.data) as { amount: string };
        const metadata = JSON.parse(r.metadata) as { hash: string };
        sum += data.amount.length + metadata.hash.length;
        n += 1;
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      db.close();
      if (n !== EVENTS || sum === 0) throw new Error(`raw scan read ${n} events, expected ${EVENTS}`);
      return n / seconds;
    };
    let round = 0;
    const catchUp = async (): Promise<number> => {
      round += 1;
      const store = new SqliteEventStore(file);
      let n = 0;
      const started = process.hrtime.bigint();
      const sub = await startCatchUpSubscription(store, {
        name: `bench-catch-up-${round}`,
        handle: async (event) => {
          if (event.data.amount === undefined) throw new Error('event without amount');
          n += 1;
        },
      });
      await sub.waitFor(BigInt(EVENTS), 600_000);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      await sub.stop();
      await store.close();
      if (n !== EVENTS) throw new Error(`catch-up handled ${n} events, expected ${EVENTS}`);
      return n / seconds;
    };
    rawScan(); // warm-up: page cache, JIT
    const raw: number[] = [];
    const port: number[] = [];
    for (let r = 0; r < ROUNDS; r += 1) {
      raw.push(rawScan());
      port.push(await catchUp());
      process.stdout.write(`  round ${r + 1}/${ROUNDS}: raw scan+parse ${raw[r].toFixed(0)} events/s, catch-up ${port[r].toFixed(0)} events/s\n`);
    }
    writeResults('catch-up', [
      row({ measure: `catch-up with no checkpoint, ${EVENTS.toLocaleString('en-US')} events`, unit: 'events/s', higherIsBetter: true, value: stats(port), baseline: 'raw better-sqlite3 scan + JSON.parse of the same rows', baselineValue: stats(raw), target: '>= 0.3x', targetRatio: 0.3 }),
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
