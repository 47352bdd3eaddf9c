/**
 * Embedded store appends against raw better-sqlite3 with the same durability (WAL,
 * synchronous=FULL, one transaction per append), for appends of 1 and of 10 events, plus group
 * commit: WRITERS concurrent appenders against the same raw per-append figure (issue 13 targets:
 * >= 0.8x sequentially; with group commit above the raw per-append rate).
 * The raw rows are the store's row shape and size (metadata as long as the hash-chain fields), so
 * the ratio is the store's own work: revision check, id dedupe, hashing, the port. Rounds alternate store and raw so drift on a shared machine hits both. BENCH_APPENDS sets the
 * appends per round (default 400), BENCH_ROUNDS the rounds (default 3).
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@backstop/event-store';
import { row, Row, stats, writeResults } from './run';

const APPENDS = Number(process.env.BENCH_APPENDS ?? 400);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WRITERS = 32;
const STREAMS = 100;

/** The raw rows carry metadata of the same size as the store's hash-chain fields, so both write the same bytes. */
const RAW_METADATA = JSON.stringify({ prevHash: 'a'.repeat(64), hash: 'b'.repeat(64) });

/** An event body of the size the services write (a collateral change). */
const payload = (i: number) => ({ contractId: `c-${i % 5_000}`, partyId: `p-${i % 700}`, side: 'LONG', amount: '1250.000000', currency: 'USDC', balance: '98000.000000', at: '2026-01-01T00:00:00.000Z' });

export default async function eventStoreAppendBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-bench-append-'));
  try {
    const raw = new Database(join(dir, 'raw.db'));
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = FULL');
    raw.exec(`CREATE TABLE events (position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL,
      revision INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at TEXT NOT NULL, UNIQUE (stream, revision))`);
    const insert = raw.prepare('INSERT INTO events (id, stream, revision, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const rawRevisions = new Map<string, number>();
    const rawAppend = raw.transaction((stream: string, count: number, base: number) => {
      let revision = rawRevisions.get(stream) ?? -1;
      for (let k = 0; k < count; k += 1) {
        revision += 1;
        insert.run(randomUUID(), stream, revision, 'CollateralDeposited', JSON.stringify(payload(base + k)), RAW_METADATA, new Date().toISOString());
      }
      rawRevisions.set(stream, revision);
    });
    const store = new SqliteEventStore(join(dir, 'store.db'));
    const revisions = new Map<string, number>();
    let seq = 0;
    const storeAppend = async (stream: string, count: number) => {
      const events = Array.from({ length: count }, () => ({ id: randomUUID(), type: 'CollateralDeposited', data: payload((seq += 1)) }));
      const result = await store.append(stream, events, revisions.get(stream) ?? 'no_stream');
      revisions.set(stream, result.lastRevision);
    };
    const time = async (work: () => Promise<void> | void): Promise<number> => {
      const started = process.hrtime.bigint();
      await work();
      return APPENDS / (Number(process.hrtime.bigint() - started) / 1e9);
    };
    const rawLoop = (count: number, tag: string) => () => {
      for (let i = 0; i < APPENDS; i += 1) rawAppend(`${tag}-${i % STREAMS}`, count, i * count);
    };
    const storeLoop = (count: number, tag: string) => async () => {
      for (let i = 0; i < APPENDS; i += 1) await storeAppend(`${tag}-${i % STREAMS}`, count);
    };
    const storeConcurrent = (tag: string) => async () => {
      const per = Math.ceil(APPENDS / WRITERS);
      await Promise.all(Array.from({ length: WRITERS }, async (_x, w) => {
        for (let i = 0; i < per; i += 1) await storeAppend(`${tag}-w${w}-${i % 4}`, 1);
      }));
    };

    // warm-up (JIT, page cache, file growth), not measured
    await time(rawLoop(1, 'warm'));
    await time(storeLoop(1, 'warm'));
    const figures = { raw1: [] as number[], store1: [] as number[], raw10: [] as number[], store10: [] as number[], group: [] as number[] };
    for (let r = 0; r < ROUNDS; r += 1) {
      figures.raw1.push(await time(rawLoop(1, `r${r}a`)));
      figures.store1.push(await time(storeLoop(1, `r${r}a`)));
      figures.raw10.push(await time(rawLoop(10, `r${r}b`)));
      figures.store10.push(await time(storeLoop(10, `r${r}b`)));
      figures.group.push(await time(storeConcurrent(`r${r}c`)));
      process.stdout.write(`  round ${r + 1}/${ROUNDS}: raw1 ${figures.raw1[r].toFixed(0)}/s, store1 ${figures.store1[r].toFixed(0)}/s, raw10 ${figures.raw10[r].toFixed(0)}/s, store10 ${figures.store10[r].toFixed(0)}/s, group ${figures.group[r].toFixed(0)}/s\n`);
    }
    const rows: Row[] = [
      row({ measure: 'embedded store append, 1 event', unit: 'appends/s', higherIsBetter: true, value: stats(figures.store1), baseline: 'raw better-sqlite3, 1 tx per append', baselineValue: stats(figures.raw1), target: '>= 0.8x', targetRatio: 0.8 }),
      row({ measure: 'embedded store append, 10 events', unit: 'appends/s', higherIsBetter: true, value: stats(figures.store10), baseline: 'raw better-sqlite3, 1 tx per append of 10', baselineValue: stats(figures.raw10), target: '>= 0.8x', targetRatio: 0.8 }),
      row({ measure: `embedded store, ${WRITERS} concurrent appenders (group commit), 1 event each`, unit: 'appends/s', higherIsBetter: true, value: stats(figures.group), baseline: 'raw better-sqlite3, 1 tx per append', baselineValue: stats(figures.raw1), target: '> 1x', targetRatio: 1.000001 }),
    ];
    writeResults('event-store-append', rows);
    raw.close();
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
