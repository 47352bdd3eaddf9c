import { context, trace } from '@opentelemetry/api';
import pino, { DestinationStream, Logger as PinoLogger } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export class LoggerConfigError extends Error {}

/** The pino logger behind each Logger createLogger made (the access log writes through the same one). */
const pinoOf = new WeakMap<Logger, PinoLogger>();

/** The pino instance behind `logger`, if createLogger made it (silentLogger and test doubles have none). */
export function pinoLoggerOf(logger: Logger): PinoLogger | undefined {
  return pinoOf.get(logger);
}

/**
 * pino underneath: one JSON object per line (what Kubernetes log shippers expect), or a readable line
 * when LOG_FORMAT=pretty. Level from LOG_LEVEL (default info). Every line carries `time` (ISO 8601),
 * `level` (a name), `message`, the active span's `trace_id`/`span_id`, and the fields, with
 * credentials redacted at any depth.
 */
export function createLogger(
  base: Record<string, unknown> = {},
  options: { level?: LogLevel; format?: 'json' | 'pretty'; write?: (line: string) => void } = {},
): Logger {
  const level = options.level ?? levelFromEnv(process.env.LOG_LEVEL);
  const format = options.format ?? formatFromEnv(process.env.LOG_FORMAT);
  const root = pino(
    {
      level,
      messageKey: 'message',
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        bindings: (bindings) => prepare(bindings),
        log: (fields) => prepare(fields),
      },
      // The active span at the time of the call: a log line joins its trace in the collector.
      mixin: traceFields,
    },
    destination(format, options.write),
  );
  return wrap(root.child(prepare(base)));
}

function wrap(logger: PinoLogger): Logger {
  const emit = (at: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    if (fields && Object.keys(fields).length > 0) logger[at](fields, message);
    else logger[at](message);
  };
  const wrapped: Logger = {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (fields) => wrap(logger.child(prepare(fields))),
  };
  pinoOf.set(wrapped, logger);
  return wrapped;
}

function levelFromEnv(raw: string | undefined): LogLevel {
  const value = raw?.trim().toLowerCase();
  if (!value) return 'info';
  if (!(LEVELS as readonly string[]).includes(value)) throw new LoggerConfigError(`LOG_LEVEL must be one of ${LEVELS.join(', ')}, got "${raw}"`);
  return value as LogLevel;
}

function formatFromEnv(raw: string | undefined): 'json' | 'pretty' {
  const value = raw?.trim().toLowerCase();
  if (!value || value === 'json') return 'json';
  if (value === 'pretty') return 'pretty';
  throw new LoggerConfigError(`LOG_FORMAT must be json or pretty, got "${raw}"`);
}

/**
 * Where lines go: stdout, written synchronously (a line logged just before process.exit is not
 * lost, and lines keep their order with what the process writes to stderr), or `write` (tests).
 */
function destination(format: 'json' | 'pretty', write: ((line: string) => void) | undefined): DestinationStream {
  const out = write ?? ((line: string) => process.stdout.write(`${line}\n`));
  if (format === 'json' && !write) return pino.destination({ dest: 1, sync: true });
  return {
    write: (chunk: string) => {
      const line = chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk;
      out(format === 'pretty' ? pretty(JSON.parse(line) as Record<string, unknown>) : line);
    },
  };
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};

function pretty(record: Record<string, unknown>): string {
  const { time, level, message, ...rest } = record;
  const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
  return `${String(time)} ${String(level).toUpperCase().padEnd(5)} ${String(message)}${extra}`;
}

/** The active span's ids (W3C), so a log line joins its trace in the collector. */
function traceFields(): { trace_id?: string; span_id?: string } {
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/** Credentials never reach a log line: these keys anywhere in the fields, and any "Bearer …" value. */
const SECRET_KEY = /^(authorization|proxy-authorization|cookie|set-cookie|password|passwd|secret|client_secret|access_token|refresh_token|id_token|jwt|sasl|apikey|api_key)$/i;
const REDACTED = '[redacted]';
const MAX_DEPTH = 4;

export function redact(fields: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) out[key] = redactValue(key, value, depth);
  return out;
}

function redactValue(key: string, value: unknown, depth: number): unknown {
  if (SECRET_KEY.test(key)) return REDACTED;
  if (typeof value === 'string') return /^Bearer\s+\S/i.test(value) ? REDACTED : value;
  if (depth >= MAX_DEPTH || value === null || typeof value !== 'object' || value instanceof Error || Array.isArray(value)) return value;
  return redact(value as Record<string, unknown>, depth + 1);
}

/** Redacted, and in JSON's types: bigint as its decimal string, an Error as name/message/stack. */
function prepare(fields: Record<string, unknown>): Record<string, unknown> {
  return normalise(redact(fields)) as Record<string, unknown>;
}

function normalise(value: unknown, depth = 0): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  if (depth > MAX_DEPTH || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => normalise(v, depth + 1));
  if (value instanceof Date) return value.toISOString();
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = normalise(v, depth + 1);
  return out;
}
