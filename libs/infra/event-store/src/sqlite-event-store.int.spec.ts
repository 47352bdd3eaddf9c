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

