import { eventStoreContract } from './contract-suite';
import { EventStoreDbEventStore } from './eventstoredb-event-store';
import { StoreUnavailableError } from './port';

/**
 * Runs the same contract against a real EventStoreDB / KurrentDB when EVENTSTORE_CONNECTION_STRING
 * is set, e.g.
 *   docker compose up -d eventstore
 *   EVENTSTORE_CONNECTION_STRING='kurrentdb://localhost:2113?tls=false' npm run test:eventstoredb
 */
const connectionString = process.env.EVENTSTORE_CONNECTION_STRING;

if (connectionString) {
  eventStoreContract('EventStoreDB (@kurrent/kurrentdb-client)', async () => new EventStoreDbEventStore(connectionString));
} else {
  describe('event store contract: EventStoreDB', () => {
    it.skip('not run: EVENTSTORE_CONNECTION_STRING is not set (see README: docker compose up -d eventstore)', () => undefined);
  });
}

describe('EventStoreDB adapter without a server', () => {
  it('loads the kurrentdb client and reports a closed port as an unavailable store', async () => {
    const store = new EventStoreDbEventStore('kurrentdb://127.0.0.1:1?tls=false');
    const failure = await store.readAll({ maxCount: 1 }).catch((err: unknown) => err);
    await store.close();
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect((failure as Error).message).toContain('kurrentdb://127.0.0.1:1');
  });
});
