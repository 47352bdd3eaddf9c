import { join } from 'node:path';
import { Clock, systemClock } from '@backstop/kernel';
import { EventStore } from './port';
import { SqliteEventStore } from './sqlite-event-store';
import { EventStoreDbEventStore } from './eventstoredb-event-store';
import { PostgresEventStore } from './postgres-event-store';

export interface EventStoreConfig {
  /** EVENTSTORE_CONNECTION_STRING: when set, EventStoreDB / KurrentDB. */
  readonly connectionString?: string;
  /** BACKSTOP_POSTGRES_URL: when set, PostgreSQL (e.g. postgres://postgres@127.0.0.1:5432/backstop). */
  readonly postgresUrl?: string;
  /** BACKSTOP_POSTGRES_SCHEMA: the schema for this service's tables (default: the URL's search_path). */
  readonly postgresSchema?: string;
  /** BACKSTOP_DATA_FILE: the embedded store's file (default ./data/backstop.db). */
  readonly dataFile?: string;
}

export function eventStoreConfigFromEnv(env: NodeJS.ProcessEnv = process.env): EventStoreConfig {
  return {
    connectionString: env.EVENTSTORE_CONNECTION_STRING || undefined,
    postgresUrl: env.BACKSTOP_POSTGRES_URL || undefined,
    postgresSchema: env.BACKSTOP_POSTGRES_SCHEMA || undefined,
    dataFile: env.BACKSTOP_DATA_FILE || join(process.cwd(), 'data', 'backstop.db'),
  };
}

/** The one place that picks an adapter: swap the store here and nowhere else. */
export function openEventStore(config: EventStoreConfig, clock: Clock = systemClock): EventStore {
  if (config.connectionString && config.postgresUrl) {
    throw new Error('EVENTSTORE_CONNECTION_STRING and BACKSTOP_POSTGRES_URL are both set: set one, the store to run on');
  }
  if (config.postgresSchema && !config.postgresUrl) {
    throw new Error('BACKSTOP_POSTGRES_SCHEMA is set without BACKSTOP_POSTGRES_URL: set the URL too, or unset the schema');
  }
  if (config.postgresUrl) return new PostgresEventStore(config.postgresUrl, { schema: config.postgresSchema, clock });
  if (config.connectionString) return new EventStoreDbEventStore(config.connectionString);
  return new SqliteEventStore(config.dataFile ?? join(process.cwd(), 'data', 'backstop.db'), clock);
}
