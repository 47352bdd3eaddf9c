import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { EventStore, EventStoreDbEventStore, SqliteEventStore } from '@backstop/event-store';
import { CliError, EXIT } from './errors';

const PROBE_TIMEOUT_MS = 10_000;

/**
 * The store the CLI reads: --data <file> (embedded), else EVENTSTORE_CONNECTION_STRING
 * (EventStoreDB), else BACKSTOP_DATA_FILE or ./data/backstop.db (embedded) — the services'
 * precedence, with --data first. A missing file is an error, never created.
 */
export async function openStoreFor(dataFlag: string | undefined, env: NodeJS.ProcessEnv, cwd: string): Promise<EventStore> {
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
