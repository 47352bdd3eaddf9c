import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { resourceAttributesFromEnv, startTracing, TracingConfigError, TracingHandle } from '@backstop/telemetry';
import { commandEnvelope, startTestBackstop, TestBackstop } from './testing';

/** Issue 12 item 4 (traces): W3C traceparent honoured from HTTP headers, OTEL_RESOURCE_ATTRIBUTES honoured. */
describe('trace context from HTTP headers and resource attributes from the environment', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: TracingHandle;
  let app: TestBackstop;
  beforeAll(async () => {
    tracing = startTracing({ serviceName: 'backstop', env: { OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod,k8s.namespace.name=back%2Cstop' }, exporter });
    app = await startTestBackstop({ modules: [] });
  });
  afterAll(async () => {
    await app?.close();
    await tracing?.shutdown();
  });

  it('continues the trace of a traceparent header when the envelope has none, and tags the resource', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const res = await fetch(`${app.url}/v1/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${app.runtime.auth.tokenFor('operator')}`, traceparent: `00-${traceId}-b7ad6b7169203331-01` },
      body: JSON.stringify(commandEnvelope('NoSuchCommand', { x: 1 })),
    });
    expect(res.status).toBe(422);
    const span = exporter.getFinishedSpans().find((s) => s.name === 'command NoSuchCommand')!;
    expect(span.spanContext().traceId).toBe(traceId);
    expect(span.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(span.resource.attributes).toMatchObject({ 'deployment.environment.name': 'prod', 'k8s.namespace.name': 'back,stop', 'service.name': 'backstop' });
  });

  it('refuses a malformed OTEL_RESOURCE_ATTRIBUTES naming the variable', () => {
    expect(() => resourceAttributesFromEnv('novalue')).toThrow(TracingConfigError);
    expect(() => resourceAttributesFromEnv('a=%E0%A4%A')).toThrow(/OTEL_RESOURCE_ATTRIBUTES/);
    expect(resourceAttributesFromEnv(undefined)).toEqual({});
  });
});
