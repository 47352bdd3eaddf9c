import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describePostgres, PostgresEventStore, SqliteEventStore } from '@backstop/event-store';
import { replay } from '@backstop/ledger';
import { buildStore, runCli } from './testing/fixture';

/** The real CLI against a PostgreSQL store (the ledger service's own store may be one). */
describePostgres('compliance CLI on a PostgreSQL store', (db) => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-cli-pg-'));
  const schema = 'cli_ledger';
  let expectedDigest: string;
  let expectedAtEight: string;

  beforeAll(async () => {
    // The fixture's events, copied into PostgreSQL in the same order (same streams and ids).
    const events = await buildStore(join(dir, 'source.db'));
    const pg = new PostgresEventStore(db().url, { schema });
    for (const e of events) await pg.append(e.stream, [{ id: e.id, type: e.type, data: e.data, metadata: e.metadata }], 'any');
    const read = (after: bigint, maxCount: number) => pg.readAll({ after, maxCount });
    expectedDigest = (await replay(read)).digest();
    expectedAtEight = (await replay(read, { until: { kind: 'position', position: 8n } })).digest();
    await pg.close();
    // The same events in the embedded store give the same books: the digest does not depend on the adapter.
    const sqlite = new SqliteEventStore(join(dir, 'source.db'));
    expect((await replay((after, maxCount) => sqlite.readAll({ after, maxCount }))).digest()).toBe(expectedDigest);
    await sqlite.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('replays from --postgres-url / --postgres-schema, and from BACKSTOP_POSTGRES_URL / BACKSTOP_POSTGRES_SCHEMA', async () => {
    const [flags, env, verify] = await Promise.all([
      runCli(['digest', '--postgres-url', db().url, '--postgres-schema', schema]),
      runCli(['digest', '--position', '8'], { BACKSTOP_POSTGRES_URL: db().url, BACKSTOP_POSTGRES_SCHEMA: schema }),
      runCli(['verify', '--postgres-url', db().url, '--postgres-schema', schema]),
    ]);
    expect(flags).toMatchObject({ code: 0, stderr: '' });
    expect(flags.stdout.trim()).toBe(`${expectedDigest}  position 20  all accounts`);
    expect(env).toMatchObject({ code: 0, stderr: '' });
    expect(env.stdout.trim()).toBe(`${expectedAtEight}  position 8  all accounts`);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/OK/);
  });

  it('names the store when it has no events table (exit 4), and never creates one', async () => {
    const run = await runCli(['digest', '--postgres-url', db().url, '--postgres-schema', 'no_such_store']);
    expect(run.code).toBe(4);
    expect(run.stderr).toMatch(/no Backstop event store at .* schema no_such_store \(from --postgres-url\): it has no events table/);
    const again = await runCli(['digest', '--postgres-url', db().url, '--postgres-schema', 'no_such_store']);
    expect(again.code).toBe(4);
  });

  it('refuses conflicting or malformed store options as usage errors (exit 2)', async () => {
    const [both, schemaAlone, badSchema] = await Promise.all([
      runCli(['digest', '--data', join(dir, 'source.db'), '--postgres-url', db().url]),
      runCli(['digest', '--postgres-schema', schema], { BACKSTOP_POSTGRES_URL: '' }),
      runCli(['digest', '--postgres-url', db().url, '--postgres-schema', 'Bad-Name']),
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/give --data or --postgres-url, not both/);
    expect(schemaAlone.code).toBe(2);
    expect(schemaAlone.stderr).toMatch(/--postgres-schema needs --postgres-url/);
    expect(badSchema.code).toBe(2);
    expect(badSchema.stderr).toMatch(/--postgres-schema "Bad-Name" is not a schema name/);
  });
});
