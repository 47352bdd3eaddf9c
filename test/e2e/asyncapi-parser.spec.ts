import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
import { ASYNCAPI_FILE } from '@backstop/asyncapi';

/**
 * Issue 12 item 5: docs/asyncapi.yaml parses with the official AsyncAPI parser without errors, and a
 * desk finds in it the wire formats, the correlation id, the Kafka bindings and how to connect securely.
 */
describe('docs/asyncapi.yaml with @asyncapi/parser', () => {
  it('parses without errors and carries formats, correlation ids, Kafka bindings and security', async () => {
    const { document, diagnostics } = await new Parser().parse(readFileSync(ASYNCAPI_FILE, 'utf8'));
    expect(diagnostics.filter((d) => d.severity === 0).map((d) => `${d.path.join('/')}: ${d.message}`)).toEqual([]);
    expect(document).toBeDefined();
    const json = document!.json() as unknown as {
      components: { schemas: { Envelope: { properties: Record<string, { format?: string }>; examples: unknown[] } }; securitySchemes: Record<string, { type: string }>; messages: Record<string, { correlationId?: unknown; headers?: { properties: Record<string, unknown> }; bindings?: { kafka?: unknown } }> };
      channels: Record<string, { bindings?: { kafka?: { topic: string } } }>;
      servers: Record<string, { security?: unknown[] }>;
    };
    expect(json.components.schemas.Envelope.properties.id.format).toBe('uuid');
    expect(json.components.schemas.Envelope.properties.time.format).toBe('date-time');
    expect(json.components.schemas.Envelope.examples.length).toBeGreaterThan(0);
    expect(Object.values(json.components.securitySchemes).map((s) => s.type).sort()).toEqual(['X509', 'scramSha512']);
    expect(json.servers['kafka-secure'].security).toHaveLength(2);
    const enveloped = Object.entries(json.components.messages).filter(([name]) => name !== 'DeadLetter');
    for (const [, message] of enveloped) {
      expect(message.correlationId).toBeDefined();
      expect(Object.keys(message.headers!.properties)).toEqual(expect.arrayContaining(['correlation-id', 'causation-id', 'traceparent']));
      expect(message.bindings?.kafka).toBeDefined();
    }
    const withBindings = Object.values(json.channels).filter((c) => c.bindings?.kafka?.topic);
    expect(withBindings.length).toBe(Object.keys(json.channels).length - 1);
  }, 60_000);
});
