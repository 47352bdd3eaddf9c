import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { createTestDatabase, dropTestDatabase, PostgresEventStore, postgresUnavailableReason } from '@backstop/event-store';
import { measure, report } from './run';

/**
 * The PostgreSQL store against raw node-postgres inserts (one transaction each, a bigserial
 * position, same server, same durability): what the port costs on top, and what the gap-safe
 * position lock costs when 8 writers append at once (they commit one at a time; raw inserts do not).
 * Uses the machine's PostgreSQL (BACKSTOP_TEST_POSTGRES_URL or 127.0.0.1:5432) and a throw-away database.
 */
export default async function postgresEventStoreBench(): Promise<void> {
  const unavailable = postgresUnavailableReason();
  if (unavailable) {
    process.stdout.write(`\nevent store (PostgreSQL): skipped, ${unavailable}\n`);
    return;
  }
  const db = await createTestDatabase();
  const appends = 400;
  const writers = 8;
  const raw = new Pool({ connectionString: db.url, max: writers });
  const store = new PostgresEventStore(db.url, { poolSize: writers });
  try {
    await raw.query('CREATE TABLE e (position bigserial PRIMARY KEY, id text UNIQUE, stream text, data json)');
    const rawInsert = async (i: number) => {
      const client = await raw.connect();
      try {
        await client.query('BEGIN');
        await client.query('INSERT INTO e (id, stream, data) VALUES ($1, $2, $3)', [randomUUID(), `s-${i % 100}`, '{"amount":"100.000000"}']);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    };
    let round = 0;
    const revisions = new Map<string, number>();
    const storeAppend = async (i: number, prefix: string) => {
      const stream = `${prefix}-${round}-${i % 100}`;
      const result = await store.append(stream, [{ id: randomUUID(), type: 'Deposited', data: { amount: '100.000000' } }], revisions.get(stream) ?? 'no_stream');
      revisions.set(stream, result.lastRevision);
    };
    const inParallel = async (work: (i: number) => Promise<void>) => {
      await Promise.all(Array.from({ length: writers }, async (_x, w) => {
        for (let i = w; i < appends; i += writers) await work(i);
      }));
    };

    const rawOne = await measure('raw pg insert (1 tx each, 1 writer)', appends, async () => {
      for (let i = 0; i < appends; i += 1) await rawInsert(i);
    });
    const storeOne = await measure('PostgresEventStore.append (1 writer)', appends, async () => {
      round += 1;
      for (let i = 0; i < appends; i += 1) await storeAppend(i, 'one');
    });
    const rawMany = await measure(`raw pg insert (1 tx each, ${writers} writers)`, appends, () => inParallel(rawInsert));
    const storeMany = await measure(`PostgresEventStore.append (${writers} writers)`, appends, async () => {
      round += 1;
      await inParallel((i) => storeAppend(i, 'many'));
    });
    report('event store (PostgreSQL, synchronous_commit as configured on the server)', [
      rawOne,
      { ...storeOne, baseline: rawOne.name, note: 'adds position lock, revision check, id dedupe, hash chain, NOTIFY' },
      rawMany,
      { ...storeMany, baseline: rawMany.name, note: 'appends commit one at a time: the gap-safe position lock' },
    ]);
  } finally {
    await store.close();
    await raw.end();
    await dropTestDatabase(db.name);
  }
}
