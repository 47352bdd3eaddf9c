import { join } from 'node:path';
import { Clock, systemClock } from '@backstop/kernel';
import { EventStore } from './port';
import { SqliteEventStore } from './sqlite-event-store';
import { EventStoreDbEventStore } from './eventstoredb-event-store';

export interface EventStoreConfig {
  /** EVENTSTORE_CONNECTION_STRING: when set, EventStoreDB; otherwise the embedded file. */
  readonly connectionString?: string;
  /** BACKSTOP_DATA_FILE: the embedded store's file (default ./data/backstop.db). */
  readonly dataFile?: string;
}

export function eventStoreConfigFromEnv(env: NodeJS.ProcessEnv = process.env): EventStoreConfig {
  return {
    connectionString: env.EVENTSTORE_CONNECTION_STRING || undefined,
    dataFile: env.BACKSTOP_DATA_FILE || join(process.cwd(), 'data', 'backstop.db'),
  };
}

/** The one place that picks an adapter: swap the store here and nowhere else. */
export function openEventStore(config: EventStoreConfig, clock: Clock = systemClock): EventStore {
  if (config.connectionString) return new EventStoreDbEventStore(config.connectionString);
  return new SqliteEventStore(config.dataFile ?? join(process.cwd(), 'data', 'backstop.db'), clock);
}
