import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { currentTraceCarrier, inSpan, startTracing, TracingConfigError } from './tracing';

describe('tracing (OpenTelemetry SDK from the OTEL_* variables)', () => {
  it('is off unless an exporter is configured, and says how to turn it on', async () => {
    const handle = startTracing({ serviceName: 'backstop', env: {} });
    expect(handle.description).toMatch(/^off \(set OTEL_EXPORTER_OTLP_ENDPOINT/);
    await handle.shutdown();
  });

  it('refuses an unknown exporter or a malformed endpoint, naming the variable', () => {
    expect(() => startTracing({ serviceName: 'b', env: { OTEL_TRACES_EXPORTER: 'zipkin' } })).toThrow(TracingConfigError);
    expect(() => startTracing({ serviceName: 'b', env: { OTEL_TRACES_EXPORTER: 'zipkin' } })).toThrow(/OTEL_TRACES_EXPORTER must be otlp, console or none, got "zipkin"/);
    expect(() => startTracing({ serviceName: 'b', env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' } })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT must be a URL/);
  });

  it('records spans that continue the trace of the incoming traceparent (the OTLP export runs in test/e2e/tracing)', async () => {
    const exporter = new InMemorySpanExporter();
    const handle = startTracing({ serviceName: 'backstop-contract-intake', env: {}, exporter });
    try {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const parent = { traceparent: `00-${traceId}-00f067aa0ba902b7-01` };
      const inside = await inSpan('command RegisterParty', SpanKind.SERVER, parent, { 'backstop.command.id': 'c-1' }, async () => currentTraceCarrier());
      // The active span inside is a child in the same trace, with a span id of its own.
      expect(inside.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      const [span] = exporter.getFinishedSpans();
      expect(span.name).toBe('command RegisterParty');
      expect(span.spanContext().traceId).toBe(traceId);
      expect(span.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
      expect(inside.traceparent).toContain(span.spanContext().spanId);
      expect(span.resource.attributes['service.name']).toBe('backstop-contract-intake');
      await expect(inSpan('fails', SpanKind.CONSUMER, {}, {}, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
      expect(exporter.getFinishedSpans()[1]).toMatchObject({ name: 'fails', status: { code: 2, message: 'boom' } });
    } finally {
      await handle.shutdown();
    }
  });
});
