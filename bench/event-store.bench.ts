import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@backstop/event-store';
import { measure, report } from './run';

/**
 * The embedded store against a raw better-sqlite3 insert loop with the same durability settings
 * (WAL, synchronous=FULL, one transaction per append): what the port, the optimistic-concurrency
 * check, id dedupe and the hash chain cost on top of the disk.
 */
export default async function eventStoreBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-bench-'));
  const appends = 2_000;
  try {
    const raw = new Database(join(dir, 'raw.db'));
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = FULL');
    raw.exec('CREATE TABLE e (position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, stream TEXT, data TEXT)');
    const insert = raw.prepare('INSERT INTO e (id, stream, data) VALUES (?, ?, ?)');
    const rawOne = raw.transaction((id: string, stream: string) => insert.run(id, stream, '{"amount":"100.000000"}'));
    const baseline = await measure('raw sqlite insert (1 tx each)', appends, () => {
      for (let i = 0; i < appends; i += 1) rawOne(randomUUID(), `s-${i % 100}`);
    });

    const store = new SqliteEventStore(join(dir, 'store.db'));
    let round = 0;
    const revisions = new Map<string, number>();
    const append = await measure('SqliteEventStore.append (expected revision)', appends, async () => {
      round += 1;
      for (let i = 0; i < appends; i += 1) {
        const stream = `s-${round}-${i % 100}`;
        const result = await store.append(stream, [{ id: randomUUID(), type: 'Deposited', data: { amount: '100.000000' } }], revisions.get(stream) ?? 'no_stream');
        revisions.set(stream, result.lastRevision);
      }
    });
    const readAll = await measure('SqliteEventStore.readAll (pages of 1000)', appends * 2, async () => {
      let after = 0n;
      for (;;) {
        const page = await store.readAll({ after, maxCount: 1_000 });
        if (page.length === 0) break;
        after = page[page.length - 1].position;
      }
    });
    const rawRead = await measure('raw sqlite select (pages of 1000)', appends * 2, () => {
      const select = raw.prepare('SELECT * FROM e WHERE position > ? ORDER BY position LIMIT 1000');
      let after = 0;
      for (;;) {
        const rows = select.all(after) as { position: number }[];
        if (rows.length === 0) break;
        after = rows[rows.length - 1].position;
      }
    });
    report('event store (embedded, WAL, synchronous=FULL)', [
      baseline,
      { ...append, baseline: baseline.name, note: 'adds revision check, id dedupe, hash chain' },
      rawRead,
      { ...readAll, baseline: rawRead.name, note: 'adds JSON parse per event' },
    ]);
    raw.close();
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
