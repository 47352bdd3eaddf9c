import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, trace } from '@opentelemetry/api';
import { pinoHttp } from 'pino-http';
import { Logger, pinoLoggerOf } from './logger';

type Next = (err?: unknown) => void;
export type AccessLogMiddleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;

/** Probes and scrapes every few seconds: logged at debug, so an info log shows the traffic that matters. */
const QUIET_PATHS = /^\/(health\/(live|ready)|metrics)$/;
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

interface AccessRequest extends IncomingMessage {
  /** Express: the matched route (a template such as /v1/contracts/:id), absent when none matched. */
  route?: { path?: unknown };
  baseUrl?: string;
  accessTrace?: { trace_id?: string; span_id?: string };
}

/**
 * One access-log line per HTTP request (pino-http), through the process's own logger: `method`,
 * `route` (the template, never ids or query strings; `null` when no route matched), `path` (without
 * the query string), `status`, `duration_ms`, `trace_id`/`span_id`. No header is logged, so the
 * Authorization header (and cookies) can never appear. 5xx at error, probes and scrapes at debug.
 */
export function accessLogMiddleware(logger: Logger): AccessLogMiddleware {
  const base = pinoLoggerOf(logger);
  if (!base) return (_req, _res, next) => next();
  const http = pinoHttp<AccessRequest, ServerResponse>({
    logger: base.child({ component: 'http' }),
    quietReqLogger: true,
    quietResLogger: true,
    // A per-process request counter as `request_id` (pino-http's default id); no header is read for it.
    customAttributeKeys: { reqId: 'request_id' },
    customLogLevel: (req, res, err) => {
      if (err || res.statusCode >= 500) return 'error';
      return QUIET_PATHS.test(pathOf(req)) ? 'debug' : 'info';
    },
    customSuccessMessage: (req, res) => `${req.method} ${routeOf(req) ?? pathOf(req)} ${res.statusCode}`,
    customErrorMessage: (req, res) => `${req.method} ${routeOf(req) ?? pathOf(req)} ${res.statusCode}`,
    customSuccessObject: (req, res, fields) => accessFields(req, res, fields.responseTime as number),
    customErrorObject: (req, res, err, fields) => ({ ...accessFields(req, res, fields.responseTime as number), error: (err as Error).message }),
  });
  return (req, res, next) => {
    // The request's span as the request arrives (the HTTP auto-instrumentation's server span, which
    // continues the caller's traceparent), else the caller's traceparent itself when tracing is off.
    (req as AccessRequest).accessTrace = requestTrace(req);
    http(req as AccessRequest, res, next);
  };
}

function accessFields(req: AccessRequest, res: ServerResponse, durationMs: number): Record<string, unknown> {
  return {
    method: req.method,
    route: routeOf(req) ?? null,
    path: pathOf(req),
    status: res.statusCode,
    duration_ms: durationMs,
    ...(req.accessTrace ?? {}),
  };
}

function requestTrace(req: IncomingMessage): { trace_id?: string; span_id?: string } {
  const span = trace.getSpan(context.active());
  if (span?.spanContext().traceId && trace.isSpanContextValid(span.spanContext())) {
    return { trace_id: span.spanContext().traceId, span_id: span.spanContext().spanId };
  }
  const header = req.headers.traceparent;
  const match = typeof header === 'string' ? TRACEPARENT.exec(header.trim()) : null;
  return match ? { trace_id: match[1] } : {};
}

function routeOf(req: AccessRequest): string | undefined {
  const path = req.route?.path;
  return typeof path === 'string' ? `${req.baseUrl ?? ''}${path}` : undefined;
}

function pathOf(req: IncomingMessage): string {
  const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '';
  const query = url.indexOf('?');
  return query >= 0 ? url.slice(0, query) : url;
}
