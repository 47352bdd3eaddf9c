/**
 * Builds a large embedded store quickly for the benches: the same rows the store writes (hash
 * chain included, via chainEvent), inserted in big transactions with synchronous=OFF while filling.
 * Not a bench itself (no .bench.ts suffix).
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { chainEvent, GENESIS_HASH, SqliteEventStore, toJson } from '@backstop/event-store';

export interface FillOptions {
  /** Streams the events are spread over, round robin (default 1,000). */
  readonly streams?: number;
  /** Stream name prefix; streams no service owns are read by every start-up scan and ignored by every consumer. */
  readonly prefix?: string;
}

export async function fillStore(file: string, events: number, options: FillOptions = {}): Promise<void> {
  await new SqliteEventStore(file).close(); // the schema, exactly as the store creates it
  const streams = options.streams ?? 1_000;
  const prefix = options.prefix ?? 'bench-';
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const insert = db.prepare('INSERT INTO events (id, stream, revision, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const heads = new Map<string, { revision: number; hash: string }>();
  const recordedAt = '2026-01-01T00:00:00.000Z';
  const batch = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i += 1) {
      const stream = `${prefix}${i % streams}`;
      const head = heads.get(stream);
      const revision = head ? head.revision + 1 : 0;
      const event = {
        id: randomUUID(),
        type: 'CollateralDeposited',
        data: { contractId: `c-${i % 5_000}`, partyId: `p-${i % 700}`, side: 'LONG', amount: '1250.000000', currency: 'USDC', balance: '98000.000000', at: recordedAt },
        metadata: { causationId: randomUUID(), correlationId: 'bench', occurredAt: recordedAt, schemaVersion: 1 },
      };
      const chain = chainEvent(stream, revision, event, head?.hash ?? GENESIS_HASH);
      insert.run(event.id, stream, revision, event.type, toJson(event.data), toJson({ ...event.metadata, ...chain }), recordedAt);
      heads.set(stream, { revision, hash: chain.hash });
    }
  });
  for (let i = 0; i < events; i += 10_000) batch(i, Math.min(events, i + 10_000));
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}
