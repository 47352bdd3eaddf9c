import { IncomingMessage } from 'node:http';
import { context, ContextManager, propagation, ROOT_CONTEXT, Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { KafkaJsInstrumentation } from '@opentelemetry/instrumentation-kafkajs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter } from '@opentelemetry/sdk-trace-base';

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
 * Starts the OpenTelemetry Node SDK (@opentelemetry/sdk-node) for this process, with the http,
 * express and kafkajs auto-instrumentations beside Backstop's own command and message spans, from
 * the standard variables:
 * - OTEL_TRACES_EXPORTER: `otlp` (default when OTEL_EXPORTER_OTLP_ENDPOINT or
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set), `console`, or `none` (default otherwise);
 * - OTEL_EXPORTER_OTLP_ENDPOINT (base URL, `/v1/traces` appended) or
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (full URL): OTLP over HTTP (JSON);
 * - OTEL_SERVICE_NAME overrides the service name; OTEL_RESOURCE_ATTRIBUTES tags every span;
 *   OTEL_TRACES_SAMPLER / OTEL_SDK_DISABLED as the SDK reads them.
 * The instrumentations patch modules as they are loaded: call it before express, Nest and kafkajs
 * are imported (each app's `instrument.ts`, through startProcessTracing).
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
  if (sdkRunning) {
    throw new TracingConfigError('an OpenTelemetry tracer provider is already registered in this process');
  }
  // The auto-instrumentations: an HTTP server span per request (continuing a `traceparent` header),
  // express's router and handler spans under it, and kafkajs producer/consumer spans with the
  // messaging attributes and trace context in the Kafka headers, so a collector draws the service map.
  // Probes and scrapes make no spans (one every few seconds per pod, nobody's trace).
  const instrumentations = [
    new HttpInstrumentation({ ignoreIncomingRequestHook: (req: IncomingMessage) => /^\/(health\/(live|ready)|metrics)(\?|$)/.test(req.url ?? '') }),
    new ExpressInstrumentation(),
    new KafkaJsInstrumentation(),
  ];
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ ...resourceAttributesFromEnv(env.OTEL_RESOURCE_ATTRIBUTES), 'service.name': env.OTEL_SERVICE_NAME?.trim() || options.serviceName }),
    // The resource is built from the variables above (validated); no detector reads process.env again.
    autoDetectResources: false,
    spanProcessors: [options.exporter ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)],
    instrumentations,
    // Traces only: metrics stay on prom-client's /metrics and logs on stdout, so neither is exported.
    metricReaders: [],
    logRecordProcessors: [],
    // This module registered the context manager and the W3C propagator at load (ids flow with the
    // SDK off too); the SDK must not register a second of either. `null` means "do not register".
    contextManager: null as unknown as ContextManager,
    textMapPropagator: null,
  });
  sdk.start();
  sdkRunning = true;
  return {
    description,
    shutdown: async () => {
      try {
        await sdk.shutdown();
      } finally {
        for (const instrumentation of instrumentations) instrumentation.disable();
        trace.disable();
        sdkRunning = false;
      }
    },
  };
}

let processTracing: { handle?: TracingHandle; error?: unknown } | undefined;

/**
 * Starts tracing for the whole process, from an app's first import (`apps/<app>/src/instrument.ts`)
 * so the auto-instrumentations see http, express and kafkajs load. A configuration error is kept,
 * not thrown at import time: runMain reports it like any other start-up failure.
 */
export function startProcessTracing(serviceName: string): void {
  if (processTracing) return;
  try {
    processTracing = { handle: startTracing({ serviceName }) };
  } catch (error) {
    processTracing = { error };
  }
}

/** The tracing startProcessTracing started (undefined if it was not called); throws its configuration error. */
export function processTracingHandle(): TracingHandle | undefined {
  if (processTracing?.error) throw processTracing.error;
  return processTracing?.handle;
}

/** One SDK per process: a second would patch http, express and kafkajs twice. */
let sdkRunning = false;

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
 * The parent of a command or message span. The carrier (an envelope's traceparent) names the
 * caller's span; when the active span is in that same trace it descends from it (the HTTP server
 * span or the kafkajs consumer span the auto-instrumentation started from the same traceparent), so
 * it is the closer parent. With no carrier the active span is the parent (an HTTP request's span).
 */
function parentContext(carrier: TraceCarrier) {
  const active = context.active();
  if (!carrier.traceparent) return active;
  const extracted = propagation.extract(ROOT_CONTEXT, carrier);
  const remote = trace.getSpanContext(extracted);
  const current = trace.getSpanContext(active);
  return remote && current && current.traceId === remote.traceId ? active : extracted;
}

/**
 * Runs `work` in a span that continues the trace in `carrier` (an envelope's traceparent), as a
 * SERVER or CONSUMER span. The span is active inside `work`: currentTraceCarrier() names it.
 */
export function inSpan<T>(name: string, kind: SpanKind, carrier: TraceCarrier, attributes: Record<string, string | number>, work: (span: Span) => Promise<T>): Promise<T> {
  return context.with(parentContext(carrier), () =>
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
