import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';

/**
 * PostgreSQL for specs, the way Kafka is: the machine's local server (BACKSTOP_TEST_POSTGRES_URL,
 * default postgres://postgres@127.0.0.1:5432/postgres). Each spec file gets a fresh database,
 * dropped when it ends. Unreachable: the specs are skipped with the reason, unless
 * REQUIRE_POSTGRES=1 (CI), where the run fails.
 */
export const TEST_POSTGRES_ADMIN_URL = process.env.BACKSTOP_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

let probed: string | undefined | null = null;

/** Why PostgreSQL cannot be used, or undefined when it answers. Synchronous (describe bodies are). */
export function postgresUnavailableReason(): string | undefined {
  if (probed !== null) return probed;
  const script = `const { Client } = require('pg');
const c = new Client({ connectionString: process.argv[1], connectionTimeoutMillis: 3000 });
c.connect().then(() => c.query('SELECT 1')).then(() => c.end()).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); });`;
  const probe = spawnSync(process.execPath, ['-e', script, TEST_POSTGRES_ADMIN_URL], { encoding: 'utf8', timeout: 10_000, cwd: __dirname });
  probed = probe.status === 0 ? undefined : `${redactUrl(TEST_POSTGRES_ADMIN_URL)}: ${(probe.stderr || probe.error?.message || 'no answer').trim()}`;
  return probed;
}

export interface TestDatabase {
  /** Connection string of the fresh database. */
  readonly url: string;
  readonly name: string;
}

/**
 * describe() over a fresh database: `db()` is valid inside tests and beforeAll hooks of the body
 * (the database is created in an outer beforeAll and dropped in an outer afterAll, after the body's
 * own afterAll hooks have closed their connections).
 */
export function describePostgres(name: string, body: (db: () => TestDatabase) => void): void {
  const reason = postgresUnavailableReason();
  if (reason !== undefined) {
    if (process.env.REQUIRE_POSTGRES === '1') {
      describe(name, () => {
        it('has a reachable PostgreSQL (REQUIRE_POSTGRES=1)', () => {
          throw new Error(`REQUIRE_POSTGRES=1 but PostgreSQL is unreachable: ${reason}`);
        });
      });
      return;
    }
    describe.skip(`${name} (skipped: PostgreSQL unavailable: ${reason}; set REQUIRE_POSTGRES=1 to fail instead)`, () =>
      body(() => {
        throw new Error('PostgreSQL unavailable');
      }),
    );
    return;
  }
  describe(`${name} [PostgreSQL at ${redactUrl(TEST_POSTGRES_ADMIN_URL)}]`, () => {
    let database: TestDatabase | undefined;
    beforeAll(async () => {
      database = await createTestDatabase();
    });
    afterAll(async () => {
      if (database) await dropTestDatabase(database.name);
    });
    body(() => {
      if (!database) throw new Error('the test database is created in beforeAll; use db() inside hooks and tests');
      return database;
    });
  });
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `backstop_test_${Date.now().toString(36)}_${randomUUID().slice(0, 8)}`;
  await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(TEST_POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return { name, url: url.toString() };
}

export async function dropTestDatabase(name: string): Promise<void> {
  if (!/^backstop_test_[a-z0-9_]+$/.test(name)) throw new Error(`refusing to drop "${name}": not a test database`);
  await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

async function withAdmin<T>(work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: TEST_POSTGRES_ADMIN_URL, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]+):[^@/]*@/, '$1:***@');
}
