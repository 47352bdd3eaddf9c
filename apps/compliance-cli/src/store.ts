import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Client } from 'pg';
import { EventStore, EventStoreDbEventStore, PostgresEventStore, SqliteEventStore } from '@backstop/event-store';
import { CliError, EXIT, usage } from './errors';

const PROBE_TIMEOUT_MS = 10_000;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Where the store is, from the command line (each overrides its environment variable). */
export interface StoreFlags {
  readonly data?: string;
  readonly postgresUrl?: string;
  readonly postgresSchema?: string;
}

/**
 * The store the CLI reads: --data <file> (embedded), else --postgres-url / BACKSTOP_POSTGRES_URL
 * (PostgreSQL, in --postgres-schema / BACKSTOP_POSTGRES_SCHEMA), else EVENTSTORE_CONNECTION_STRING
 * (EventStoreDB), else BACKSTOP_DATA_FILE or ./data/backstop.db (embedded) — the services'
 * precedence, with the flags first. A missing file or table is an error, never created.
 */
export async function openStoreFor(flags: StoreFlags, env: NodeJS.ProcessEnv, cwd: string): Promise<EventStore> {
  const dataFlag = flags.data;
  if (dataFlag !== undefined && flags.postgresUrl !== undefined) throw usage('give --data or --postgres-url, not both');
  if (flags.postgresSchema !== undefined && flags.postgresUrl === undefined && !env.BACKSTOP_POSTGRES_URL) {
    throw usage('--postgres-schema needs --postgres-url (or BACKSTOP_POSTGRES_URL)');
  }
  if (dataFlag === undefined) {
    const url = flags.postgresUrl ?? (env.BACKSTOP_POSTGRES_URL || undefined);
    if (url !== undefined) {
      if (flags.postgresUrl === undefined && env.EVENTSTORE_CONNECTION_STRING) {
        throw usage('EVENTSTORE_CONNECTION_STRING and BACKSTOP_POSTGRES_URL are both set: unset one, or name the store with --postgres-url or --data');
      }
      const schema = flags.postgresSchema ?? (env.BACKSTOP_POSTGRES_SCHEMA || undefined);
      const from = flags.postgresUrl !== undefined ? '--postgres-url' : 'BACKSTOP_POSTGRES_URL';
      return openPostgres(url, schema, from, flags.postgresSchema !== undefined ? '--postgres-schema' : 'BACKSTOP_POSTGRES_SCHEMA');
    }
  }
  if (dataFlag === undefined && env.EVENTSTORE_CONNECTION_STRING) return openEventStoreDb(env.EVENTSTORE_CONNECTION_STRING);
  const path = resolve(cwd, dataFlag ?? env.BACKSTOP_DATA_FILE ?? 'data/backstop.db');
  const from = dataFlag !== undefined ? '--data' : env.BACKSTOP_DATA_FILE ? 'BACKSTOP_DATA_FILE' : 'the default ./data/backstop.db';
  if (!existsSync(path)) {
    throw new CliError(EXIT.storeUnavailable, `no event store file at ${path} (from ${from}); give --data <file> or set BACKSTOP_DATA_FILE`);
  }
  if (!statSync(path).isFile()) throw new CliError(EXIT.storeUnavailable, `${path} (from ${from}) is not a file`);
  let store: EventStore;
  try {
    // verify walks the chains itself and names the first broken link; replay books what is there.
    store = new SqliteEventStore(path, undefined, { verifyOnRead: false });
    await store.readAll({ after: 0n, maxCount: 1 });
  } catch (err) {
    throw new CliError(EXIT.storeUnavailable, `cannot read the event store file ${path} (from ${from}): ${(err as Error).message}`);
  }
  return store;
}

async function openEventStoreDb(connectionString: string): Promise<EventStore> {
  const store = new EventStoreDbEventStore(connectionString);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      store.readAll({ after: 0n, maxCount: 1 }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${PROBE_TIMEOUT_MS / 1000} s`)), PROBE_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    await store.close().catch(() => undefined);
    throw new CliError(EXIT.storeUnavailable, `cannot reach EventStoreDB at ${store.location} (EVENTSTORE_CONNECTION_STRING): ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  return store;
}

/**
 * PostgreSQL: the events table must already be there (the CLI reads; it never creates a store,
 * which the adapter would do on first use).
 */
async function openPostgres(url: string, schema: string | undefined, from: string, schemaFrom: string): Promise<EventStore> {
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw usage(`${schemaFrom} "${schema}" is not a schema name: lower-case letters, digits and _, starting with a letter or _ (at most 63)`);
  }
  const where = `${redact(url)}${schema ? ` schema ${schema}` : ''} (from ${from})`;
  const client = new Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  let table: string | null;
  try {
    await client.connect();
    const result = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [schema ? `"${schema}".events` : 'events']);
    table = result.rows[0]?.t ?? null;
  } catch (err) {
    throw new CliError(EXIT.storeUnavailable, `cannot reach PostgreSQL at ${where}: ${(err as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
  if (table === null) throw new CliError(EXIT.storeUnavailable, `no Backstop event store at ${where}: it has no events table`);
  const store = new PostgresEventStore(url, { schema, poolSize: 2 });
  try {
    await store.readAll({ after: 0n, maxCount: 1 });
  } catch (err) {
    await store.close().catch(() => undefined);
    throw new CliError(EXIT.storeUnavailable, `cannot read the event store at ${where}: ${(err as Error).message}`);
  }
  return store;
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]+):[^@/]*@/, '$1:***@');
}
