import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@backstop/event-store';
import { LedgerProjection, replay } from '@backstop/ledger';
import { buildStore, runCli } from './testing/fixture';

/** The real CLI (`npm run compliance -- …`) against a store file this test writes. */
describe('compliance CLI: replay, digest, explain-default', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-cli-'));
  const file = join(dir, 'backstop.db');
  let full: LedgerProjection;
  let atEight: LedgerProjection;

  beforeAll(async () => {
    await buildStore(file);
    const store = new SqliteEventStore(file);
    const read = (after: bigint, maxCount: number) => store.readAll({ after, maxCount });
    full = await replay(read);
    atEight = await replay(read, { until: { kind: 'position', position: 8n } });
    await store.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the balances and the digest of a full replay, the same digest an in-process replay gives', async () => {
    const { code, stdout, stderr } = await runCli(['replay', '--data', file]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/Backstop ledger as of position 20 \(recorded 2026-01-20T00:00:00.000Z\); 20 events; all accounts/);
    expect(stdout).toMatch(/cash:external:desk1\s+external\s+USDC\s+-7950.000000\s+debit/);
    expect(stdout).toMatch(/pool-recoverable:junior:p1:cp1\s+equity\s+USDC\s+4900.000000\s+credit/);
    expect(stdout).toContain(`digest ${full.digest()}`);
  });

  it('replays as of an instant or a position, scoped to a party, as JSON, CSV or one digest line', async () => {
    const [json, csv, digest] = await Promise.all([
      runCli(['replay', '--data', file, '--as-of', '2026-01-08T12:00:00Z', '--party', 'desk1', '--format', 'json']),
      runCli(['replay', '--data', file, '--position', '8', '--format', 'csv', '--out', join(dir, 'b.csv')]),
      runCli(['digest', '--position', '8'], { BACKSTOP_DATA_FILE: file }),
    ]);
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout) as { position: string; asOf: string; digest: string; balances: { account: string; balance: string }[] };
    expect(body).toMatchObject({ position: '8', asOf: '2026-01-08T12:00:00Z', digest: atEight.digest({ party: 'desk1' }) });
    expect(body.balances.map((l) => `${l.account} ${l.balance}`)).toEqual(['cash:external:desk1 12000.000000', 'collateral:desk1:c1 12000.000000']);
    expect(csv.code).toBe(0);
    expect(csv.stdout).toMatch(/^wrote .*b\.csv: 6 balances as of position 8, digest [0-9a-f]{64}\n$/);
    expect(csv.stderr).toBe(`digest ${atEight.digest()} (position 8, all accounts)\n`);
    expect(readFileSync(join(dir, 'b.csv'), 'utf8').split('\n').slice(0, 2)).toEqual([
      'account,kind,class,normal_side,currency,balance,balance_minor',
      'cash:external:cp1,cash-external,external,debit,USDC,15000.000000,15000000000',
    ]);
    expect(digest.stdout).toBe(`${atEight.digest()}  position 8  all accounts\n`);
  });

  it('explains a default layer by layer with the event ids, and says when there is no such default', async () => {
    const [explained, missing] = await Promise.all([runCli(['explain-default', 'cp1', '--data', file]), runCli(['explain-default', 'nope', '--data', file])]);
    expect(explained.code).toBe(0);
    expect(explained.stdout).toMatch(/Default cp1: defaulter cp1, USDC; replayed to position 20/);
    expect(explained.stdout).toMatch(/ 1\. DEFAULTER_CONTRACT_COLLATERAL\s+15100.000000\s+LossAllocated [0-9a-f-]{36} @16/);
    expect(explained.stdout).toMatch(/Dr variation-margin:cp1:c1 \/ Cr claim-on-defaulter:cp1 {2}100.000000/);
    expect(explained.stdout).toMatch(/ 3\. JUNIOR_TRANCHE\s+4900.000000/);
    expect(explained.stdout).toMatch(/loss owed 20000.000000; paid by the defaulter 15100.000000, by the pool 4900.000000; paid out 20000.000000/);
    expect(explained.stdout).toMatch(/Checks: layers took what was paid out: yes; paid out \+ unpaid = loss owed: yes/);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toBe('error: default nope was never declared (no DefaultDeclared with that defaultId)\n');
  });

  it('answers bad input with the flag, the expected format and a documented exit code', async () => {
    const [badInstant, ghost, missingFile, unknown] = await Promise.all([
      runCli(['replay', '--data', file, '--as-of', 'yesterday']),
      runCli(['replay', '--data', file, '--party', 'ghost']),
      runCli(['replay', '--data', join(dir, 'missing.db')]),
      runCli(['replay', '--data', file, '--frobnicate']),
    ]);
    expect(badInstant).toMatchObject({ code: 2, stdout: '' });
    expect(badInstant.stderr).toMatch(/--as-of "yesterday" is not an instant: expected ISO-8601 UTC such as 2026-01-31T08:00:00Z/);
    expect(ghost.code).toBe(3);
    expect(ghost.stderr).toBe('error: no postings for party ghost (not a registered party) up to position 20\n');
    expect(missingFile.code).toBe(4);
    expect(missingFile.stderr).toContain(`no event store file at ${join(dir, 'missing.db')} (from --data)`);
    expect(unknown).toMatchObject({ code: 2, stderr: 'error: unknown option --frobnicate (see --help)\n' });
  });
});
