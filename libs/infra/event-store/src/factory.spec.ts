import { eventStoreConfigFromEnv, openEventStore } from './factory';

describe('openEventStore: the one place an adapter is chosen', () => {
  it('picks PostgreSQL when BACKSTOP_POSTGRES_URL is set, in the schema BACKSTOP_POSTGRES_SCHEMA names', async () => {
    const store = openEventStore(
      eventStoreConfigFromEnv({ BACKSTOP_POSTGRES_URL: 'postgres://svc:pw@127.0.0.1:1/backstop', BACKSTOP_POSTGRES_SCHEMA: 'pricing' }),
    );
    expect(store.kind).toBe('postgres');
    expect(store.location).toBe('postgres://svc:***@127.0.0.1:1/backstop (schema pricing)');
    await store.close();
  });

  it('picks the embedded file when no networked store is configured', async () => {
    const store = openEventStore({ dataFile: ':memory:' });
    expect(store.kind).toBe('embedded');
    await store.close();
  });

  it('refuses two networked stores at once, and a schema without a URL, naming the settings', () => {
    expect(() =>
      openEventStore(eventStoreConfigFromEnv({ BACKSTOP_POSTGRES_URL: 'postgres://127.0.0.1/x', EVENTSTORE_CONNECTION_STRING: 'kurrentdb://127.0.0.1:2113?tls=false' })),
    ).toThrow(/EVENTSTORE_CONNECTION_STRING and BACKSTOP_POSTGRES_URL are both set/);
    expect(() => openEventStore(eventStoreConfigFromEnv({ BACKSTOP_POSTGRES_SCHEMA: 'pricing' }))).toThrow(/BACKSTOP_POSTGRES_SCHEMA is set without BACKSTOP_POSTGRES_URL/);
    expect(() => openEventStore({ postgresUrl: 'postgres://127.0.0.1/x', postgresSchema: 'Bad-Name' })).toThrow(/BACKSTOP_POSTGRES_SCHEMA must match/);
  });
});
