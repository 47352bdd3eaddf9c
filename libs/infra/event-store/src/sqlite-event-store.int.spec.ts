import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventStoreContract } from './contract-suite';
import { SqliteEventStore } from './sqlite-event-store';
import { verifyChains } from './hash-chain';
import { EventIntegrityError, storeErrorKind } from './store-errors';
import { StoreUnavailableError } from './port';

const dir = mkdtempSync(join(tmpdir(), 'backstop-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

eventStoreContract('embedded (SQLite file)', async () => new SqliteEventStore(join(dir, 'contract.db')));

describe('embedded store specifics', () => {
  it('numbers positions 1, 2, 3 ... with no gap, even after a rejected append', async () => {
    const store = new SqliteEventStore(join(dir, 'gapless.db'));
    await store.append('s', [{ id: 'a0000000-0000-4000-8000-000000000001', type: 'A', data: {} }], 'no_stream');
    await expect(store.append('s', [{ id: 'a0000000-0000-4000-8000-000000000002', type: 'B', data: {} }], 'no_stream')).rejects.toThrow(/expected revision/);
    await store.append('t', [{ id: 'a0000000-0000-4000-8000-000000000003', type: 'C', data: {} }], 'no_stream');
    expect((await store.readAll({ maxCount: 10 })).map((e) => e.position)).toEqual([1n, 2n]);
    await store.close();
  });
});

describe('tamper evidence on the embedded store file', () => {
  const fileFor = (name: string) => join(dir, `${name}.db`);
  const seed = async (file: string) => {
    const store = new SqliteEventStore(file);
    for (let i = 0; i < 4; i += 1) {
      await store.append('contract-c1', [{ id: `b0000000-0000-4000-8000-00000000000${i}`, type: 'CollateralDeposited', data: { amount: `${i}00.000000` } }], 'any');
    }
    await store.close();
  };
  const tamper = (file: string, sql: string) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Database = require('better-sqlite3');
    const db = new Database(file);
    db.exec(sql);
    db.close();
  };

  it('names an altered event', async () => {
    const file = fileFor('altered');
    await seed(file);
    tamper(file, `UPDATE events SET data = '{"amount":"999999.000000"}' WHERE stream = 'contract-c1' AND revision = 2`);
    const store = new SqliteEventStore(file);
    const result = await verifyChains(store);
    await store.close();
    expect(result.firstBreak).toMatchObject({ stream: 'contract-c1', revision: 2, problem: 'ALTERED', eventId: 'b0000000-0000-4000-8000-000000000002' });
  });

  it('names the link after a removed event', async () => {
    const file = fileFor('removed');
    await seed(file);
    tamper(file, `DELETE FROM events WHERE stream = 'contract-c1' AND revision = 1`);
    const store = new SqliteEventStore(file);
    const result = await verifyChains(store);
    await store.close();
    expect(result.firstBreak).toMatchObject({ revision: 2, problem: 'REORDERED_OR_REMOVED' });
  });

  it('passes an untouched file', async () => {
    const file = fileFor('clean');
    await seed(file);
    const store = new SqliteEventStore(file);
    expect((await verifyChains(store)).firstBreak).toBeUndefined();
    await store.close();
  });
});

describe('integrity on read and a vanished data file (issue 9, defect 10)', () => {
  const fileFor = (name: string) => join(dir, `${name}.db`);
  const id = (n: number) => `c0000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

  it('refuses to serve an altered event, naming it, while the other streams still read', async () => {
    const file = fileFor('served');
    const store = new SqliteEventStore(file);
    await store.append('contract-c1', [{ id: id(1), type: 'CollateralDeposited', data: { amount: '100.000000' } }], 'no_stream');
    await store.append('contract-c1', [{ id: id(2), type: 'CollateralDeposited', data: { amount: '200.000000' } }], 0);
    await store.append('party-p1', [{ id: id(3), type: 'PartyRegistered', data: { partyId: 'p1' } }], 'no_stream');
    const Database = require('better-sqlite3');
    const db = new Database(file);
    db.prepare(`UPDATE events SET data = '{"amount":"999999.000000"}' WHERE id = ?`).run(id(2));
    db.close();
    const refused = await store.readStream('contract-c1').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(EventIntegrityError);
    expect((refused as EventIntegrityError).message).toMatch(/stream contract-c1, revision 1, position 2\) fails its integrity check: ALTERED/);
    await expect(store.readAll({ after: 0n, maxCount: 10 })).rejects.toThrow(/stream contract-c1, revision 1/);
    expect((await store.readStream('party-p1')).map((e) => e.id)).toEqual([id(3)]);
    await store.close();
  });

  it('notices its data file was deleted or replaced: every call fails as unavailable (transient), nothing is acknowledged', async () => {
    for (const how of ['deleted', 'replaced'] as const) {
      const file = fileFor(`vanish-${how}`);
      const store = new SqliteEventStore(file);
      await store.append('s', [{ id: id(10), type: 'A', data: {} }], 'no_stream');
      if (how === 'deleted') rmSync(file);
      else {
        writeFileSync(`${file}.new`, '');
        renameSync(`${file}.new`, file);
      }
      const failure = await store.append('s', [{ id: id(11), type: 'B', data: {} }], 0).catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(StoreUnavailableError);
      expect((failure as Error).message).toMatch(how === 'deleted' ? /deleted while open/ : /replaced while open/);
      expect(storeErrorKind(failure)).toBe('transient');
      await expect(store.loadCheckpoint('readiness-probe')).rejects.toThrow(StoreUnavailableError);
      await expect(store.recordProcessed('c', 'm', 'r')).rejects.toThrow(StoreUnavailableError);
      await store.close();
    }
  });
});


describe('embedded store performance paths (issue 13)', () => {
  const ev = (n: number) => ({ id: `c0000000-0000-4000-8000-${String(n).padStart(12, '0')}`, type: 'N', data: { n } });

  it('group commit: appends made in the same tick share one transaction, each with its own revision check and outcome', async () => {
    const store = new SqliteEventStore(join(dir, 'group.db'));
    let signals = 0;
    store.onAppend(() => (signals += 1));
    await store.append('g-a', [ev(1)], 'no_stream');
    signals = 0;
    const outcomes = await Promise.allSettled([
      store.append('g-a', [ev(2)], 0), // ok: revision 1
      store.append('g-a', [ev(3)], 0), // refused: the previous one (same group) moved the head to 1
      store.append('g-b', [ev(4), ev(5)], 'no_stream'),
      store.append('g-c', [ev(2)], 'no_stream'), // id 2 is already in g-a (same group): refused
      store.append('g-a', [ev(2)], 'any'), // the same append again: a duplicate, nothing written
      store.append('g-b', [ev(6)], 1),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const value = (i: number) => (outcomes[i] as PromiseFulfilledResult<{ lastRevision: number; position: bigint; duplicate: boolean }>).value;
    expect(value(0)).toEqual({ lastRevision: 1, position: 2n, duplicate: false });
    expect((outcomes[1] as PromiseRejectedResult).reason.name).toBe('WrongExpectedRevisionError');
    expect(value(2)).toEqual({ lastRevision: 1, position: 4n, duplicate: false });
    expect((outcomes[3] as PromiseRejectedResult).reason.name).toBe('DuplicateEventIdError');
    expect(value(4)).toEqual({ lastRevision: 1, position: 2n, duplicate: true });
    expect(value(5)).toEqual({ lastRevision: 2, position: 5n, duplicate: false });
    expect(signals).toBe(1); // one commit for the whole group
    const all = await store.readAll({ maxCount: 100 });
    expect(all.map((e) => [e.stream, e.revision, e.position])).toEqual([
      ['g-a', 0, 1n], ['g-a', 1, 2n], ['g-b', 0, 3n], ['g-b', 1, 4n], ['g-b', 2, 5n],
    ]);
    expect((await verifyChains(store)).firstBreak).toBeUndefined();
    await store.close();
  });

  it('checkpoints in batches, skips writes for ignored events, and stores the last handled position at stop', async () => {
    const { startCatchUpSubscription } = await import('./catch-up-subscription');
    const store = new SqliteEventStore(join(dir, 'batched.db'));
    const writes: bigint[] = [];
    const save = store.saveCheckpoint.bind(store);
    store.saveCheckpoint = async (name, position) => {
      if (name === 'batched') writes.push(position);
      return save(name, position);
    };
    for (let i = 0; i < 10; i += 1) await store.append('b-mine', Array.from({ length: 100 }, (_x, k) => ev(100 + i * 100 + k)), 'any');
    const seen: number[] = [];
    const sub = await startCatchUpSubscription(store, {
      name: 'batched',
      pollMs: 20,
      checkpointEvery: 256,
      checkpointMs: 60_000,
      idleCheckpointMs: 60_000,
      handle: async (e) => {
        if (e.stream !== 'b-mine') return false;
        seen.push(e.data.n as number);
      },
    });
    await sub.waitFor(1_000n, 10_000);
    expect(seen).toHaveLength(1_000);
    expect(writes).toEqual([256n, 512n, 768n]); // every 256 handled events; the rest waits (timer far away)
    const ignored = await store.append('b-other', [ev(5_000)], 'no_stream');
    await sub.waitFor(ignored.position, 10_000);
    expect(writes).toHaveLength(3); // an ignored event writes nothing
    await sub.stop();
    expect(writes).toEqual([256n, 512n, 768n, ignored.position]);
    expect(await store.loadCheckpoint('batched')).toBe(ignored.position);
    await store.close();
  });

  it('one poller for all subscriptions: subscriptions at the same position share each page read', async () => {
    const { startCatchUpSubscription } = await import('./catch-up-subscription');
    const store = new SqliteEventStore(join(dir, 'fan-out.db'));
    let rowsRead = 0;
    const readAll = store.readAll.bind(store);
    store.readAll = async (options) => {
      const page = await readAll(options);
      rowsRead += page.length;
      return page;
    };
    const seen = Array.from({ length: 5 }, () => [] as number[]);
    const subs = await Promise.all(seen.map((list, i) => startCatchUpSubscription(store, { name: `fan-${i}`, pollMs: 50, handle: async (e) => void list.push(e.data.n as number) })));
    let last = 0n;
    for (let i = 0; i < 20; i += 1) last = (await store.append('fan', Array.from({ length: 10 }, (_x, k) => ev(10_000 + i * 10 + k)), 'any')).position;
    await Promise.all(subs.map((sub) => sub.waitFor(last, 10_000)));
    const expected = Array.from({ length: 200 }, (_x, k) => 10_000 + k);
    seen.forEach((list) => expect(list).toEqual(expected)); // each subscription still gets every event once, in order
    expect(rowsRead).toBeLessThan(2 * 200); // without sharing: 5 x 200
    await Promise.all(subs.map((sub) => sub.stop()));
    await store.close();
  });

  it('a full scan gives the event loop turns (timers and I/O run while start-up verifies the chain)', async () => {
    const store = new SqliteEventStore(join(dir, 'yield.db'));
    for (let i = 0; i < 20; i += 1) await store.append(`y-${i % 4}`, Array.from({ length: 500 }, (_x, k) => ev(100_000 + i * 500 + k)), 'any');
    await store.close();
    const fresh = new SqliteEventStore(join(dir, 'yield.db')); // cold: every row is hash-checked once
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 1);
    const result = await verifyChains(fresh);
    clearInterval(timer);
    expect(result.eventsChecked).toBe(10_000);
    expect(result.firstBreak).toBeUndefined();
    // A synchronous store behind async methods used to run the whole scan without one timer turn.
    expect(ticks).toBeGreaterThanOrEqual(3);
    await fresh.close();
  });

  it('checkpoints handled events within checkpointMs when the store goes quiet', async () => {
    const { startCatchUpSubscription } = await import('./catch-up-subscription');
    const store = new SqliteEventStore(join(dir, 'timed.db'));
    const sub = await startCatchUpSubscription(store, { name: 'timed', pollMs: 1_000, checkpointMs: 50, handle: async () => undefined });
    const last = await store.append('t-a', [ev(1), ev(2), ev(3)], 'no_stream');
    await sub.waitFor(last.position, 5_000);
    const started = Date.now();
    while ((await store.loadCheckpoint('timed')) !== last.position) {
      if (Date.now() - started > 2_000) throw new Error('checkpoint not written within 2 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(Date.now() - started).toBeLessThan(1_000); // well before the 1 s poll: the checkpoint timer woke it
    await sub.stop();
    await store.close();
  });
});
