import { context, propagation, ROOT_CONTEXT, Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter } from '@opentelemetry/sdk-trace-base';

/**
 * W3C trace context across Kafka hops: the envelope carries traceparent/tracestate; a consumer
 * continues the producer's trace, and the events a command writes carry its span as their parent.
 * Spans record once startTracing registered the SDK (an exporter chosen by the standard OTEL_*
 * variables); without it the trace ids still flow end to end through envelopes and event metadata.
 */
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
// Active context across awaits (AsyncLocalStorage), so a span started for a command is the parent of
// what the command does, with or without a recording SDK.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

export const tracer = trace.getTracer('backstop');

export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

/** The current trace context as envelope fields (empty when there is none). */
export function currentTraceCarrier(): TraceCarrier {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return {
    ...(carrier.traceparent ? { traceparent: carrier.traceparent } : {}),
    ...(carrier.tracestate ? { tracestate: carrier.tracestate } : {}),
  };
}

export interface TracingHandle {
  /** What was registered, for the start-up log: "otlp http://collector:4318/v1/traces", "console", "off". */
  readonly description: string;
  /** Flushes buffered spans and stops exporting (bounded by the exporter's own timeout). */
  shutdown(): Promise<void>;
}

export class TracingConfigError extends Error {}

/**
 * Registers the OpenTelemetry SDK for this process from the standard variables:
 * - OTEL_TRACES_EXPORTER: `otlp` (default when OTEL_EXPORTER_OTLP_ENDPOINT or
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set), `console`, or `none` (default otherwise);
 * - OTEL_EXPORTER_OTLP_ENDPOINT (base URL, `/v1/traces` appended) or
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (full URL): OTLP over HTTP (JSON);
 * - OTEL_SERVICE_NAME overrides the service name.
 * `exporter` (tests) takes precedence and exports each span as it ends.
 */
export function startTracing(options: { serviceName: string; env?: NodeJS.ProcessEnv; exporter?: SpanExporter }): TracingHandle {
  const env = options.env ?? process.env;
  const tracesEndpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const baseEndpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const chosen = (env.OTEL_TRACES_EXPORTER?.trim() || (tracesEndpoint || baseEndpoint ? 'otlp' : 'none')).toLowerCase();
  let exporter: SpanExporter | undefined = options.exporter;
  let description = 'test exporter';
  if (!exporter) {
    if (chosen === 'none') return { description: 'off (set OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_TRACES_EXPORTER=console)', shutdown: async () => undefined };
    if (chosen === 'console') {
      exporter = new ConsoleSpanExporter();
      description = 'console';
    } else if (chosen === 'otlp') {
      const url = tracesEndpoint || `${(baseEndpoint || 'http://localhost:4318').replace(/\/+$/, '')}/v1/traces`;
      try {
        new URL(url);
      } catch {
        throw new TracingConfigError(`OTEL_EXPORTER_OTLP_ENDPOINT must be a URL such as http://otel-collector:4318, got "${url}"`);
      }
      exporter = new OTLPTraceExporter({ url });
      description = `otlp ${url}`;
    } else {
      throw new TracingConfigError(`OTEL_TRACES_EXPORTER must be otlp, console or none, got "${env.OTEL_TRACES_EXPORTER}"`);
    }
  }
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ ...resourceAttributesFromEnv(env.OTEL_RESOURCE_ATTRIBUTES), 'service.name': env.OTEL_SERVICE_NAME?.trim() || options.serviceName }),
    spanProcessors: [options.exporter ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)],
  });
  if (!trace.setGlobalTracerProvider(provider)) {
    throw new TracingConfigError('an OpenTelemetry tracer provider is already registered in this process');
  }
  return {
    description,
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
    },
  };
}

/**
 * OTEL_RESOURCE_ATTRIBUTES as the OpenTelemetry spec defines it: `key=value` pairs, comma separated,
 * values percent-encoded (e.g. `deployment.environment.name=prod,k8s.namespace.name=backstop`).
 * A malformed pair is refused naming the variable, rather than silently dropped.
 */
export function resourceAttributesFromEnv(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (raw ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new TracingConfigError(`OTEL_RESOURCE_ATTRIBUTES must be key=value pairs separated by commas, got "${pair}"`);
    try {
      out[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
    } catch {
      throw new TracingConfigError(`OTEL_RESOURCE_ATTRIBUTES has a malformed percent-encoding in "${pair}"`);
    }
  }
  return out;
}

/**
 * Runs `work` in a span that continues the trace in `carrier` (an envelope's traceparent), as a
 * SERVER or CONSUMER span. The span is active inside `work`: currentTraceCarrier() names it.
 */
export function inSpan<T>(name: string, kind: SpanKind, carrier: TraceCarrier, attributes: Record<string, string | number>, work: (span: Span) => Promise<T>): Promise<T> {
  const parent = propagation.extract(ROOT_CONTEXT, carrier);
  return context.with(parent, () =>
    tracer.startActiveSpan(name, { kind, attributes }, async (span) => {
      try {
        return await work(span);
      } catch (err) {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        throw err;
      } finally {
        span.end();
      }
    }),
  );
}
