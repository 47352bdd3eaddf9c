import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { describePostgres } from '@backstop/event-store';
import { commandEnvelope } from '@backstop/platform';
import { bearer, RunningApp, startApp } from '@backstop/testing';

describePostgres('npm start with BACKSTOP_POSTGRES_URL: the four services on PostgreSQL', (db) => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-pg-start-'));
  const dataFile = join(dir, 'must-not-exist.db');
  const schema = 'backstop_start';
  let app: RunningApp;

  beforeAll(async () => {
    app = await startApp('apps/backstop/src/main.ts', {
      BACKSTOP_POSTGRES_URL: db().url,
      BACKSTOP_POSTGRES_SCHEMA: schema,
      BACKSTOP_DATA_FILE: dataFile,
      KAFKA_BROKERS: '',
    });
  }, 90_000);
  afterAll(async () => {
    await app?.kill().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports PostgreSQL as its store and writes accepted commands there, not to a file', async () => {
    const ready = await fetch(`${app.url}/health/ready`, { headers: bearer() }); // the location is for operators only
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { store: { kind: string; location: string } };
    expect(body.store.kind).toBe('postgres');
    expect(body.store.location).toContain(db().name);
    expect(body.store.location).toContain(`schema ${schema}`);

    const envelope = commandEnvelope('RegisterParty', { partyId: 'pg-party-1', name: 'PG One', role: 'DESK', credit: { rating: 'A' } });
    const sent = await fetch(`${app.url}/v1/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: JSON.stringify(envelope),
    });
    expect(sent.status).toBeLessThan(300);

    const client = new Client({ connectionString: db().url });
    await client.connect();
    try {
      const rows = await client.query<{ stream: string; type: string }>(`SELECT stream, type FROM ${schema}.events WHERE data::text LIKE '%pg-party-1%'`);
      expect(rows.rows.length).toBeGreaterThanOrEqual(1);
      expect(rows.rows.map((r) => r.type)).toContain('PartyRegistered');
    } finally {
      await client.end();
    }
    expect(existsSync(dataFile)).toBe(false);
  });

  it('stops cleanly on SIGTERM', async () => {
    expect(await app.stop()).toBe(0);
  });
});
