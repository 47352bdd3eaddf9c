import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoredEvent } from '@backstop/event-store';
import { buildStore, runCli } from './testing/fixture';

/** verify against a store file: intact, then with one row altered directly in SQLite. */
describe('compliance CLI: verify', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-verify-'));
  const file = join(dir, 'backstop.db');
  let events: StoredEvent[];

  beforeAll(async () => {
    events = await buildStore(file);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('passes an intact store with the counts, then names the one altered event and exits 1', async () => {
    const intact = await runCli(['verify', '--data', file]);
    expect(intact.stderr).toBe('');
    expect(intact.code).toBe(0);
    expect(intact.stdout).toMatch(/^OK: 20 events in 10 streams verified; every hash link holds \(embedded .*backstop\.db\)\n$/);

    // someone edits a deposit's amount in place: 15000 → 15001
    const victim = events.find((e) => e.type === 'CollateralDeposited' && e.data.partyId === 'cp1')!;
    const db = new Database(file);
    const changed = db.prepare("UPDATE events SET data = json_set(data, '$.amount', '15001') WHERE id = ?").run(victim.id);
    db.close();
    expect(changed.changes).toBe(1);

    const [tampered, replayed] = await Promise.all([runCli(['verify', '--data', file]), runCli(['replay', '--data', file, '--quiet'])]);
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toContain(`BROKEN: the first broken link is event ${victim.id} (stream contract-c1, revision 1, position ${victim.position}): ALTERED`);
    expect(tampered.stdout).toMatch(/checked 6 events in 5 streams before it/);
    // replay does not verify: it books what is there, and the altered amount no longer matches intake's stated balance
    expect(replayed.code).toBe(5);
    expect(replayed.stderr).toMatch(/the ledger cannot book CollateralDeposited .*states balance 15000.000000 USDC for collateral:cp1:c1; the ledger has 15001.000000/);
  });

  it('names an event whose row is not JSON (stream, revision, position) and exits 1, never crashing with 70', async () => {
    // Regression (issue 9, defect 10): a row with bad JSON made verify crash with "unexpected failure", exit 70.
    const broken = join(dir, 'badjson.db');
    const stored = await buildStore(broken);
    const victim = stored.find((e) => e.type === 'PoolCapitalDeposited' || e.stream === 'pool-main')!;
    const db = new Database(broken);
    expect(db.prepare("UPDATE events SET data = '{\"amount\": 5000' WHERE id = ?").run(victim.id).changes).toBe(1);
    db.close();
    const [verified, replayed] = await Promise.all([runCli(['verify', '--data', broken]), runCli(['replay', '--data', broken, '--quiet'])]);
    expect(verified.code).toBe(1);
    expect(verified.stdout).toContain(`BROKEN: the first broken link is event ${victim.id} (stream pool-main, revision 0, position ${victim.position}): UNREADABLE`);
    expect(verified.stdout).toContain(`checked ${Number(victim.position)} events`);
    expect(replayed.code).toBe(1);
    expect(replayed.stderr).toContain(`event ${victim.id} (stream pool-main, revision 0, position ${victim.position}) cannot be read: UNREADABLE`);
  });

  it('says which file is missing or not a store, with exit code 4', async () => {
    const junk = join(dir, 'junk.db');
    writeFileSync(junk, 'not a database at all, just text');
    const [missing, notDb, fromEnv] = await Promise.all([
      runCli(['verify', '--data', join(dir, 'nope.db')]),
      runCli(['verify', '--data', junk]),
      runCli(['verify'], { BACKSTOP_DATA_FILE: join(dir, 'env.db') }),
    ]);
    expect(missing).toMatchObject({ code: 4, stderr: `error: no event store file at ${join(dir, 'nope.db')} (from --data); give --data <file> or set BACKSTOP_DATA_FILE\n` });
    expect(notDb.code).toBe(4);
    expect(notDb.stderr).toMatch(new RegExp(`cannot read the event store file ${junk} \\(from --data\\): file is not a database`));
    expect(fromEnv.stderr).toContain(`no event store file at ${join(dir, 'env.db')} (from BACKSTOP_DATA_FILE)`);
  });
});
