import { createLogger } from '@backstop/telemetry';
import { commandEnvelope, startTestBackstop, TestBackstop } from './testing';

/**
 * pino-http access log of the real app: one line per request with method, route template, path
 * without the query, status, duration and the caller's trace id; never a header (Authorization).
 */
describe('HTTP access log (pino-http)', () => {
  const lines: Record<string, unknown>[] = [];
  let app: TestBackstop;
  const token = () => app.runtime.auth.tokenFor('operator')!;

  beforeAll(async () => {
    const logger = createLogger({ service: 'access-log-spec' }, { format: 'json', level: 'debug', write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    app = await startTestBackstop({ modules: [], logger });
  });
  afterAll(() => app?.close());

  const accessLines = () => lines.filter((l) => l.component === 'http');
  const waitForAccess = async (count: number) => {
    for (let i = 0; i < 100 && accessLines().length < count; i += 1) await new Promise((r) => setTimeout(r, 20));
    return accessLines();
  };

  it('logs a command request with method, route, status, duration and the caller\'s trace id, and no Authorization header', async () => {
    const before = accessLines().length;
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const started = Date.now();
    const res = await fetch(`${app.url}/v1/commands?note=x`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token()}`, traceparent: `00-${traceId}-00f067aa0ba902b7-01`, cookie: 'session=cookie-secret-value' },
      body: JSON.stringify(commandEnvelope('NoSuchCommand', { partyId: 'p1' })),
    });
    const elapsedMs = Date.now() - started;
    expect(res.status).toBe(422);
    const [line] = (await waitForAccess(before + 1)).slice(before);
    expect(line).toMatchObject({ level: 'info', component: 'http', service: 'access-log-spec', method: 'POST', route: '/v1/commands', path: '/v1/commands', status: 422, trace_id: traceId, message: 'POST /v1/commands 422' });
    expect(typeof line.duration_ms).toBe('number');
    expect(line.duration_ms as number).toBeGreaterThanOrEqual(0);
    expect(line.duration_ms as number).toBeLessThanOrEqual(elapsedMs + 5);
    expect(new Date(String(line.time)).toISOString()).toBe(line.time);
    const all = JSON.stringify(lines);
    expect(all).not.toContain(token());
    expect(all).not.toContain('cookie-secret-value');
    expect(all.toLowerCase()).not.toContain('authorization');
  });

  it('names no route for an unmatched path, drops the query string, and logs probes at debug', async () => {
    const before = accessLines().length;
    expect((await fetch(`${app.url}/nowhere/at-all?access_token=query-secret-123`)).status).toBe(404);
    expect((await fetch(`${app.url}/health/live`)).status).toBe(200);
    const [missing, probe] = (await waitForAccess(before + 2)).slice(before);
    expect(missing).toMatchObject({ level: 'info', method: 'GET', route: null, path: '/nowhere/at-all', status: 404 });
    expect(missing.trace_id).toBeUndefined();
    expect(probe).toMatchObject({ level: 'debug', method: 'GET', route: '/health/live', status: 200 });
    expect(JSON.stringify(lines)).not.toContain('query-secret-123');
  });
});
