import { eventStoreContract } from './contract-suite';
import { EventStoreDbEventStore } from './eventstoredb-event-store';

/**
 * Runs the same contract against a real EventStoreDB when EVENTSTORE_CONNECTION_STRING is set, e.g.
 *   docker compose up -d eventstore
 *   EVENTSTORE_CONNECTION_STRING='esdb://localhost:2113?tls=false' npm run test:eventstoredb
 */
const connectionString = process.env.EVENTSTORE_CONNECTION_STRING;

if (connectionString) {
  eventStoreContract('EventStoreDB', async () => new EventStoreDbEventStore(connectionString));
} else {
  describe('event store contract: EventStoreDB', () => {
    it.skip('needs EVENTSTORE_CONNECTION_STRING (see README: docker compose up -d eventstore)', () => undefined);
  });
}
