import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventStoreContract } from './contract-suite';
import { SqliteEventStore } from './sqlite-event-store';
import { verifyChains } from './hash-chain';

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
