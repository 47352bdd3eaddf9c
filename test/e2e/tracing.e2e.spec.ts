import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@backstop/event-store';
import { commandEnvelope } from '@backstop/platform';
import { bearer, RunningApp, startApp } from '@backstop/testing';

/**
 * The app as deployed (a child process, `node -r tools/register.js`), exporting its spans over
 * OTLP/HTTP to a collector stand-in on 127.0.0.1 that records what it receives: a command sent
 * with a traceparent gets a span in that trace, and the events it wrote name that span as parent.
 */
describe('traces exported over OTLP from a running app', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-tracing-'));
  const dataFile = join(dir, 'backstop.db');
  const posts: { path: string; body: string }[] = [];
  let collector: Server;
  let collectorUrl: string;
  let app: RunningApp | undefined;

  beforeAll(async () => {
    collector = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        posts.push({ path: req.url ?? '', body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    collectorUrl = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await app?.stop();
    collector.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('continues the caller\'s trace in a command span, names it in the events, and flushes it on SIGTERM', async () => {
    app = await startApp('apps/backstop/src/main.ts', { BACKSTOP_DATA_FILE: dataFile, KAFKA_BROKERS: '', OTEL_EXPORTER_OTLP_ENDPOINT: collectorUrl }, 90_000);
    expect(app.output()).toContain(`"traces":"otlp ${collectorUrl}/v1/traces"`);
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const callerSpan = 'b7ad6b7169203331';
    const envelope = { ...commandEnvelope('RegisterParty', { partyId: 'traced1', name: 'Traced', role: 'DESK', credit: { rating: 'A' } }), traceparent: `00-${traceId}-${callerSpan}-01` };
    const res = await fetch(`${app.url}/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer() }, body: JSON.stringify(envelope) });
    expect(res.status).toBe(200);

    expect(await app.stop()).toBe(0);
    app = undefined;
    const exported = posts.filter((p) => p.path === '/v1/traces').map((p) => p.body).join('\n');
    expect(exported).toContain('command RegisterParty');
    expect(exported).toContain(traceId);
    expect(exported).toContain(callerSpan); // the command span's parent

    const store = new SqliteEventStore(dataFile);
    try {
      const [registered] = await store.readStream('party-traced1');
      const traceparent = String(registered.metadata.traceparent);
      expect(traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      const commandSpan = traceparent.split('-')[2];
      expect(commandSpan).not.toBe(callerSpan);
      expect(exported).toContain(commandSpan);
    } finally {
      await store.close();
    }
  }, 120_000);
});
