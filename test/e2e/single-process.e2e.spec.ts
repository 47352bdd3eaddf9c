import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandEnvelope } from '@backstop/platform';
import { bearer, RunningApp, startApp } from '@backstop/testing';

describe('npm start: the four services in one process on the embedded store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-start-'));
  const dataFile = join(dir, 'backstop.db');
  let app: RunningApp;

  beforeAll(async () => {
    app = await startApp('apps/backstop/src/main.ts', { BACKSTOP_DATA_FILE: dataFile, KAFKA_BROKERS: '' });
  }, 90_000);
  afterAll(async () => {
    await app?.kill().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers its health endpoints and says where its data lives', async () => {
    expect((await fetch(`${app.url}/health/live`)).status).toBe(200);
    // Where the data lives is for the operator (an anonymous probe gets the verdict only).
    const ready = await fetch(`${app.url}/health/ready`, { headers: bearer('operator') });
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { services: string[]; mode: string; store: { kind: string; location: string } };
    expect(body.services).toEqual(['contract-intake', 'premium-pricing', 'margin-monitor', 'default-settlement']);
    expect(body.mode).toBe('single-process');
    expect(body.store).toEqual({ kind: 'embedded', location: dataFile });
    expect(existsSync(dataFile)).toBe(true);
    expect(app.output()).toContain(dataFile);
  });

  it('serves metrics and OpenAPI docs', async () => {
    const metrics = await fetch(`${app.url}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/text\/plain/);
    const docs = await fetch(`${app.url}/docs-json`);
    const openapi = (await docs.json()) as { paths: Record<string, unknown> };
    expect(Object.keys(openapi.paths)).toContain('/v1/commands');
  });

  it('documents a bearer token on every /v1 operation (no endpoint is left open)', async () => {
    const openapi = (await (await fetch(`${app.url}/docs-json`)).json()) as { paths: Record<string, Record<string, { security?: unknown[] }>> };
    const open = Object.entries(openapi.paths)
      .filter(([path]) => path.startsWith('/v1/'))
      .flatMap(([path, operations]) => Object.entries(operations).filter(([, op]) => !op.security?.length).map(([method]) => `${method.toUpperCase()} ${path}`));
    expect(open).toEqual([]);
    const anonymous = await Promise.all(
      Object.keys(openapi.paths)
        .filter((path) => path.startsWith('/v1/') && openapi.paths[path].get)
        .map(async (path) => [path, (await fetch(`${app.url}${path.replace(/\{[^}]+\}/g, 'x')}`)).status] as const),
    );
    expect(anonymous.length).toBeGreaterThan(10);
    expect(anonymous.filter(([, status]) => status !== 401)).toEqual([]);
  });

  it('refuses commands without a bearer token, or from a role that may not send them', async () => {
    const envelope = commandEnvelope('DeclareDefault', { partyId: 'cp1', reason: 'test' });
    const anonymous = await fetch(`${app.url}/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(envelope) });
    expect(anonymous.status).toBe(401);
    const desk = await fetch(`${app.url}/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer('desk') }, body: JSON.stringify(envelope) });
    expect(desk.status).toBe(403);
    expect(((await desk.json()) as { violations: { field: string; rule: string }[] }).violations).toEqual([expect.objectContaining({ field: 'authorization', rule: 'commandRole' })]);
    const marks = await fetch(`${app.url}/v1/market/marks`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer('desk') }, body: '[]' });
    expect(marks.status).toBe(403);
  });

  it('rejects a body that is not an envelope with the field and rule, and keeps serving', async () => {
    const bad = await fetch(`${app.url}/v1/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: JSON.stringify({ type: 'RegisterParty', payload: {} }),
    });
    expect(bad.status).toBe(400);
    const reply = (await bad.json()) as { violations: { field: string; rule: string }[] };
    expect(reply.violations.map((v) => v.field)).toEqual(expect.arrayContaining(['id', 'schemaVersion', 'time', 'key', 'correlationId']));
    expect((await fetch(`${app.url}/health/live`)).status).toBe(200);
  });

  it('shuts down gracefully on SIGTERM', async () => {
    expect(await app.stop()).toBe(0);
    expect(app.output()).toMatch(/runtime stopped/);
  });
});
