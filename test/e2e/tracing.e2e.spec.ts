import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@backstop/event-store';
import { commandEnvelope } from '@backstop/platform';
import { encodeEnvelope, KafkaBus, TOPICS, TopicNames } from '@backstop/messaging';
import { bearer, describeKafka, RunningApp, startApp, uniquePrefix, waitUntil } from '@backstop/testing';

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

  it('auto-instruments HTTP: a server span continuing the traceparent header, the command span under it, no span for probes', async () => {
    posts.length = 0;
    app = await startApp('apps/backstop/src/main.ts', { BACKSTOP_DATA_FILE: join(dir, 'http.db'), KAFKA_BROKERS: '', OTEL_EXPORTER_OTLP_ENDPOINT: collectorUrl }, 90_000);
    const traceId = '5bf92f3577b34da6a3ce929d0e0e4737';
    const callerSpan = '10f067aa0ba902b8';
    const envelope = commandEnvelope('RegisterParty', { partyId: 'traced2', name: 'Traced', role: 'DESK', credit: { rating: 'A' } });
    const res = await fetch(`${app.url}/v1/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(), traceparent: `00-${traceId}-${callerSpan}-01` },
      body: JSON.stringify(envelope),
    });
    expect(res.status).toBe(200);
    expect((await fetch(`${app.url}/health/live`)).status).toBe(200);
    expect(await app.stop()).toBe(0);
    app = undefined;

    const spans = exportedSpans(posts.filter((p) => p.path === '/v1/traces').map((p) => p.body));
    const http = spans.filter((s) => s.scope === '@opentelemetry/instrumentation-http');
    // OTLP's SPAN_KIND_SERVER is 2; the server span continues the caller's trace from the header.
    const server = http.find((s) => s.kind === 2 && s.traceId === traceId);
    expect(server).toBeDefined();
    expect(server!.parentSpanId).toBe(callerSpan);
    expect(server!.name).toMatch(/^POST\b/);
    expect(server!.attributes['http.route'] ?? server!.attributes['url.path'] ?? server!.attributes['http.target']).toMatch(/^\/v1\/commands/);
    // Probes make no spans.
    expect(http.filter((s) => /health/.test(JSON.stringify(s.attributes)))).toEqual([]);
    // The command span is in the same trace, below the HTTP span (directly, or through express's spans).
    const command = spans.find((s) => s.name === 'command RegisterParty' && s.traceId === traceId);
    expect(command).toBeDefined();
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const ancestors: string[] = [];
    for (let at = command!.parentSpanId; at && byId.has(at); at = byId.get(at)!.parentSpanId) ancestors.push(at);
    expect(ancestors).toContain(server!.spanId);
    expect(spans.find((s) => s.scope === '@opentelemetry/instrumentation-express' && s.traceId === traceId)).toBeDefined();
  }, 120_000);
});

describeKafka('kafkajs auto-instrumentation in a service on the real broker', (brokers) => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-kafka-tracing-'));
  const prefix = uniquePrefix('trace');
  const topics = new TopicNames(prefix);
  const posts: string[] = [];
  let collector: Server;
  let app: RunningApp | undefined;
  let client: KafkaBus | undefined;

  beforeAll(async () => {
    collector = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        if (req.url === '/v1/traces') posts.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await app?.stop();
    await client?.close();
    collector.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exports a kafkajs consumer span for the command topic and producer spans for what the service sends, with messaging attributes', async () => {
    const collectorUrl = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    app = await startApp('apps/contract-intake/src/main.ts', {
      BACKSTOP_DATA_FILE: join(dir, 'intake.db'), KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: prefix, OTEL_EXPORTER_OTLP_ENDPOINT: collectorUrl,
    }, 90_000);
    await waitUntil(async () => (await fetch(`${app!.url}/health/ready`)).ok || undefined, 60_000, 'contract-intake ready');
    client = new KafkaBus({ brokers, clientId: 'tracing-e2e' });
    await client.publish(topics.of(TOPICS.intakeCommands), [encodeEnvelope(commandEnvelope('RegisterParty', { partyId: 'kdesk1', name: 'K', role: 'DESK', credit: { rating: 'A' } }))]);
    // Spans are exported in batches: wait until the consumer and the producer spans have arrived.
    const kafkaSpans = () => exportedSpans(posts).filter((x) => x.scope === '@opentelemetry/instrumentation-kafkajs');
    await waitUntil(() => (kafkaSpans().some((x) => x.kind === 5) && kafkaSpans().some((x) => x.kind === 4)) || undefined, 30_000, 'kafkajs spans at the collector');
    expect(await app.stop()).toBe(0);
    app = undefined;
    const spans = kafkaSpans();
    // OTLP SPAN_KIND_CONSUMER is 5, PRODUCER 4.
    const consumed = spans.filter((x) => x.kind === 5 && Object.values(x.attributes).includes(topics.of(TOPICS.intakeCommands)));
    expect(consumed.length).toBeGreaterThan(0);
    expect(consumed[0].attributes['messaging.system']).toBe('kafka');
    const produced = spans.filter((x) => x.kind === 4);
    expect(produced.map((x) => x.attributes['messaging.system'])).toContain('kafka');
    expect(produced.flatMap((x) => Object.values(x.attributes))).toContain(topics.of(TOPICS.replies));
  }, 150_000);
});

interface ExportedSpan {
  scope: string;
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, string | number | undefined>;
}

/** The spans in OTLP/HTTP JSON export requests (ids as hex, as the JSON encoding has them). */
function exportedSpans(bodies: string[]): ExportedSpan[] {
  type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
  type Request = { resourceSpans?: { scopeSpans?: { scope?: { name?: string }; spans?: { name: string; kind: number; traceId: string; spanId: string; parentSpanId?: string; attributes?: { key: string; value: AnyValue }[] }[] }[] }[] };
  const out: ExportedSpan[] = [];
  for (const body of bodies) {
    for (const rs of (JSON.parse(body) as Request).resourceSpans ?? []) {
      for (const ss of rs.scopeSpans ?? []) {
        for (const span of ss.spans ?? []) {
          const attributes: ExportedSpan['attributes'] = {};
          for (const a of span.attributes ?? []) attributes[a.key] = a.value.stringValue ?? (a.value.intValue !== undefined ? Number(a.value.intValue) : a.value.doubleValue);
          out.push({ scope: ss.scope?.name ?? '', name: span.name, kind: span.kind, traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId || undefined, attributes });
        }
      }
    }
  }
  return out;
}
