import { context, propagation, ROOT_CONTEXT, Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

/**
 * W3C trace context across Kafka hops: the envelope carries traceparent/tracestate; a consumer
 * continues the producer's trace. Without an OpenTelemetry SDK registered the spans do not record,
 * but the trace id still flows end to end (the SDK/exporter is wired in by the deployment step).
 */
propagation.setGlobalPropagator(new W3CTraceContextPropagator());

export const tracer = trace.getTracer('backstop');

export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

export async function inSpanFrom<T>(
  name: string,
  carrier: TraceCarrier,
  attributes: Record<string, string | number>,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = propagation.extract(ROOT_CONTEXT, carrier);
  return context.with(parent, () =>
    tracer.startActiveSpan(name, { kind: SpanKind.CONSUMER, attributes }, async (span) => {
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

/** The current trace context as envelope fields (empty when there is none). */
export function currentTraceCarrier(): TraceCarrier {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return {
    ...(carrier.traceparent ? { traceparent: carrier.traceparent } : {}),
    ...(carrier.tracestate ? { tracestate: carrier.tracestate } : {}),
  };
}
