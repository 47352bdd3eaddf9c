import { context, trace } from '@opentelemetry/api';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * One JSON object per line (what Kubernetes log shippers expect), or a readable line on a TTY
 * when LOG_FORMAT=pretty. Level from LOG_LEVEL (default info).
 */
export function createLogger(
  base: Record<string, unknown> = {},
  options: { level?: LogLevel; format?: 'json' | 'pretty'; write?: (line: string) => void } = {},
): Logger {
  const level = options.level ?? ((process.env.LOG_LEVEL as LogLevel | undefined) ?? 'info');
  const format = options.format ?? (process.env.LOG_FORMAT === 'pretty' ? 'pretty' : 'json');
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const emit = (at: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (ORDER[at] < (ORDER[level] ?? 20)) return;
    const record = { time: new Date().toISOString(), level: at, message, ...traceFields(), ...redact({ ...base, ...(fields ?? {}) }) };
    write(format === 'pretty' ? pretty(record) : JSON.stringify(record, replacer));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...base, ...fields }, { level, format, write }),
  };
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  return value;
}

function pretty(record: Record<string, unknown>): string {
  const { time, level, message, ...rest } = record;
  const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest, replacer)}` : '';
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
const SECRET_KEY = /^(authorization|cookie|set-cookie|password|passwd|secret|client_secret|access_token|refresh_token|id_token|jwt|sasl|apikey|api_key)$/i;
const REDACTED = '[redacted]';

export function redact(fields: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) out[key] = redactValue(key, value, depth);
  return out;
}

function redactValue(key: string, value: unknown, depth: number): unknown {
  if (SECRET_KEY.test(key)) return REDACTED;
  if (typeof value === 'string') return /^Bearer\s+\S/i.test(value) ? REDACTED : value;
  if (depth >= 4 || value === null || typeof value !== 'object' || value instanceof Error || Array.isArray(value)) return value;
  return redact(value as Record<string, unknown>, depth + 1);
}
