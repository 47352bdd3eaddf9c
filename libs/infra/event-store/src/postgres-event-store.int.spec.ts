import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { startCatchUpSubscription } from './catch-up-subscription';
import { eventStoreContract } from './contract-suite';
import { PostgresEventStore } from './postgres-event-store';
import { DuplicateEventIdError, NewEvent, StoreUnavailableError, WrongExpectedRevisionError } from './port';
import { describePostgres } from './testing/postgres';

const ev = (type: string, data: Record<string, unknown> = {}): NewEvent => ({ id: randomUUID(), type, data });

describePostgres('PostgreSQL event store', (db) => {
  eventStoreContract('PostgreSQL (node-postgres)', async () => new PostgresEventStore(db().url));

  describe('PostgreSQL specifics', () => {
    const stores: PostgresEventStore[] = [];
    const open = (options: ConstructorParameters<typeof PostgresEventStore>[1] = {}) => {
      const store = new PostgresEventStore(db().url, { poolSize: 2, ...options });
      stores.push(store);
      return store;
    };
    afterAll(async () => {
      for (const s of stores) await s.close();
    });

    it('hands a subscriber every event of many concurrent writers exactly once, in increasing position order', async () => {
      const schema = `gaps_${randomUUID().slice(0, 8)}`;
      // Each writer has its own pool (its own connections, as a separate process would) and holds
      // every append transaction open for a random while before COMMIT, so with positions taken
      // from a bare sequence later numbers would routinely commit first and be skipped.
      const writers = Array.from({ length: 8 }, () =>
        open({ schema, beforeCommit: () => new Promise((r) => setTimeout(r, Math.floor(Math.random() * 15))) }),
      );
      const reader = open({ schema });
      // Two readers: a tail that polls readAll as fast as it can (always at the frontier, where a
      // gap would show), and the checkpointed catch-up subscription the services use.
      const tailed: { id: string; position: bigint; stream: string; revision: number }[] = [];
      let tailing = true;
      const tail = (async () => {
        const tailStore = open({ schema });
        let after = 0n;
        while (tailing) {
          const page = await tailStore.readAll({ after, maxCount: 50 });
          page.forEach((e) => tailed.push({ id: e.id, position: e.position, stream: e.stream, revision: e.revision }));
          if (page.length > 0) after = page[page.length - 1].position;
          else await new Promise((r) => setTimeout(r, 1));
        }
      })();
      const subscribed: typeof tailed = [];
      const sub = await startCatchUpSubscription(reader, {
        name: 'gap-check',
        pollMs: 1,
        pageSize: 7,
        handle: async (e) => {
          subscribed.push({ id: e.id, position: e.position, stream: e.stream, revision: e.revision });
        },
      });
      const written: string[] = [];
      const results = await Promise.all(
        writers.map(async (store, w) => {
          let last = 0n;
          for (let i = 0; i < 15; i += 1) {
            const batch = Array.from({ length: 1 + (i % 3) }, (_x, k) => ev('W', { w, i, k }));
            batch.forEach((e) => written.push(e.id));
            last = (await store.append(`writer-${w}`, batch, 'any')).position;
            await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 4)));
          }
          return last;
        }),
      );
      const top = results.reduce((a, b) => (a > b ? a : b));
      await sub.waitFor(top, 20_000);
      await sub.stop();
      for (let waited = 0; tailed.length < written.length && waited < 5_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
      tailing = false;
      await tail;

      const all = await reader.readAll({ maxCount: 4_096 });
      expect(all.map((e) => e.id).sort()).toEqual([...written].sort());
      for (const seen of [tailed, subscribed]) {
        expect(seen.map((e) => e.id)).toEqual(all.map((e) => e.id)); // every event once, in the store's order
        seen.slice(1).forEach((e, i) => expect(e.position > seen[i].position).toBe(true));
        // Each writer's stream arrives in revision order 0, 1, 2, ...
        for (let w = 0; w < writers.length; w += 1) {
          const revisions = seen.filter((e) => e.stream === `writer-${w}`).map((e) => e.revision);
          expect(revisions).toEqual(revisions.map((_r, i) => i));
        }
      }
    });

    it('lets exactly one of several processes (separate pools) win a race on one expected revision', async () => {
      const schema = `occ_${randomUUID().slice(0, 8)}`;
      const racers = Array.from({ length: 5 }, () => open({ schema, beforeCommit: () => new Promise((r) => setTimeout(r, 5)) }));
      await racers[0].append('race', [ev('Start')], 'no_stream');
      const results = await Promise.allSettled(racers.map((store, w) => store.append('race', [ev(`W${w}`), ev(`W${w}`)], 0)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      results
        .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
        .forEach((r) => expect(r.reason).toBeInstanceOf(WrongExpectedRevisionError));
      const types = (await racers[4].readStream('race')).map((e) => e.type);
      expect(types).toHaveLength(3);
      expect(types[1]).toBe(types[2]);
    });

    it('numbers positions 1, 2, 3 ... with no hole, even after a rejected append', async () => {
      const store = open({ schema: `holes_${randomUUID().slice(0, 8)}` });
      await store.append('s', [ev('A'), ev('B')], 'no_stream');
      await expect(store.append('s', [ev('X')], 'no_stream')).rejects.toBeInstanceOf(WrongExpectedRevisionError);
      await store.append('t', [ev('C')], 'no_stream');
      expect((await store.readAll({ maxCount: 10 })).map((e) => e.position)).toEqual([1n, 2n, 3n]);
    });

    it('writes nothing of an append that fails part-way through its rows, and leaves no hole in positions', async () => {
      const store = open({ schema: `atomic_${randomUUID().slice(0, 8)}` });
      await store.append('s', [ev('A')], 'no_stream');
      const repeated = ev('Twice');
      // The second row violates the unique id after the first row was inserted in the same transaction.
      await expect(store.append('s', [ev('B'), repeated, repeated], 0)).rejects.toBeInstanceOf(DuplicateEventIdError);
      expect((await store.readStream('s')).map((e) => e.type)).toEqual(['A']);
      const next = await store.append('s', [ev('C')], 0);
      expect(next).toEqual({ lastRevision: 1, position: 2n, duplicate: false });
    });

    it('keeps each schema a separate store (one per service)', async () => {
      const a = open({ schema: `svc_a_${randomUUID().slice(0, 8)}` });
      const b = open({ schema: `svc_b_${randomUUID().slice(0, 8)}` });
      await a.append('only-in-a', [ev('A')], 'no_stream');
      await b.saveCheckpoint('cp', 7n);
      expect(await b.readAll({ maxCount: 10 })).toEqual([]);
      expect(await b.readStream('only-in-a')).toEqual([]);
      expect(await a.loadCheckpoint('cp')).toBeUndefined();
      expect((await a.readAll({ maxCount: 10 })).map((e) => e.stream)).toEqual(['only-in-a']);
    });

    it('wakes a subscriber in another process (another pool) at commit, long before its poll', async () => {
      const schema = `wake_${randomUUID().slice(0, 8)}`;
      const writer = open({ schema });
      const other = open({ schema });
      const elsewhere = open({ schema: `wake_other_${randomUUID().slice(0, 8)}` });
      await writer.append('warm-up', [ev('A')], 'no_stream'); // tables exist before anyone listens
      await elsewhere.readAll({ maxCount: 1 });
      let wokenElsewhere = 0;
      elsewhere.onAppend(() => (wokenElsewhere += 1));
      const sub = await startCatchUpSubscription(other, { name: 'wake', pollMs: 60_000, handle: async () => undefined });
      await sub.waitFor(1n, 5_000);
      await new Promise((r) => setTimeout(r, 200)); // the LISTEN connection is up
      const started = Date.now();
      const appended = await writer.append('wake', [ev('B')], 'no_stream');
      await sub.waitFor(appended.position, 5_000);
      expect(Date.now() - started).toBeLessThan(5_000);
      await sub.stop();
      expect(wokenElsewhere).toBe(0); // another schema's appends are not this store's
    });

    it('reports killed connections as an unavailable store and recovers on the next call, losing nothing', async () => {
      const store = open({ schema: `killed_${randomUUID().slice(0, 8)}`, poolSize: 3 });
      await store.append('before', [ev('A')], 'no_stream');
      const admin = new Client({ connectionString: db().url });
      await admin.connect();
      try {
        // Kill this store's connections mid-life (a failover, an admin, a network cut).
        const killed = await admin.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
        );
        expect(killed.rowCount).toBeGreaterThan(0);
      } finally {
        await admin.end();
      }
      const first = await store.readAll({ maxCount: 10 }).then(
        (events) => ({ ok: events.length }),
        (err: unknown) => ({ err }),
      );
      if ('err' in first) expect(first.err).toBeInstanceOf(StoreUnavailableError);
      else expect(first.ok).toBe(1);
      await store.append('before', [ev('B')], 0);
      expect((await store.readStream('before')).map((e) => e.type)).toEqual(['A', 'B']);
    });

    it("uses the URL's search_path when no schema is set (a per-service schema made by the DBA)", async () => {
      const admin = new Client({ connectionString: db().url });
      await admin.connect();
      try {
        await admin.query('CREATE SCHEMA IF NOT EXISTS from_url');
        const url = new URL(db().url);
        url.searchParams.set('options', '-c search_path=from_url');
        const store = new PostgresEventStore(url.toString());
        stores.push(store);
        await store.append('in-from-url', [ev('A')], 'no_stream');
        const rows = await admin.query<{ stream: string }>('SELECT stream FROM from_url.events');
        expect(rows.rows.map((r) => r.stream)).toEqual(['in-from-url']);
      } finally {
        await admin.end();
      }
    });

    it('rejects a schema name that is not a plain identifier, naming the setting', () => {
      expect(() => new PostgresEventStore(db().url, { schema: 'x"; DROP TABLE events; --' })).toThrow(/BACKSTOP_POSTGRES_SCHEMA must match/);
    });
  });
});

describe('PostgreSQL event store without a server', () => {
  it('reports the store as unavailable, with the redacted location', async () => {
    const store = new PostgresEventStore('postgres://postgres:secret@127.0.0.1:1/none');
    const failure = await store.readAll({ maxCount: 1 }).catch((err: unknown) => err);
    await store.close();
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect(store.location).toBe('postgres://postgres:***@127.0.0.1:1/none');
    expect(String((failure as Error).message)).not.toContain('secret');
  });
});
