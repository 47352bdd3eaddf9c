import { SpanKind } from '@opentelemetry/api';
import { createLogger, LoggerConfigError } from './logger';
import { inSpan } from './tracing';

describe('JSON logger', () => {
  const capture = () => {
    const lines: Record<string, unknown>[] = [];
    return { lines, logger: createLogger({ service: 'test' }, { format: 'json', level: 'debug', write: (line) => lines.push(JSON.parse(line)) }) };
  };

  it('puts the active trace and span ids on every line inside a span', async () => {
    const { lines, logger } = capture();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    await inSpan('work', SpanKind.SERVER, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` }, {}, async () => logger.info('inside'));
    logger.info('outside');
    expect(lines[0]).toMatchObject({ message: 'inside', trace_id: traceId, span_id: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(lines[1].trace_id).toBeUndefined();
  });

  it('redacts credentials by key at any depth and bearer values, and keeps the rest', () => {
    const { lines, logger } = capture();
    logger.warn('request', { headers: { authorization: 'Bearer abc.def.ghi', 'x-request-id': 'r1' }, password: 'p', note: 'Bearer xyz', commandId: 'c1' });
    expect(lines[0]).toMatchObject({ headers: { authorization: '[redacted]', 'x-request-id': 'r1' }, password: '[redacted]', note: '[redacted]', commandId: 'c1', service: 'test' });
    expect(JSON.stringify(lines[0])).not.toMatch(/abc\.def|xyz/);
  });

  it('writes pino JSON lines: ISO time, level names, message, child fields, and filters by level', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ service: 'svc' }, { format: 'json', level: 'info', write: (line) => lines.push(JSON.parse(line)) });
    logger.debug('hidden');
    logger.child({ component: 'kafkajs' }).error('broker down', { broker: 'b1:9092' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual({ time: expect.any(String), level: 'error', message: 'broker down', service: 'svc', component: 'kafkajs', broker: 'b1:9092' });
    expect(new Date(String(lines[0].time)).toISOString()).toBe(lines[0].time);
  });

  it('redacts child bindings too, and writes bigints as strings and errors as name/message', () => {
    const { lines, logger } = capture();
    logger.child({ sasl: { password: 'scram-pass' }, client_secret: 'cs' }).info('bound', { amountMinor: 12345678901234567890n, error: new RangeError('too big') });
    expect(lines[0]).toMatchObject({ sasl: '[redacted]', client_secret: '[redacted]', amountMinor: '12345678901234567890', error: { name: 'RangeError', message: 'too big' } });
    expect(JSON.stringify(lines[0])).not.toMatch(/scram-pass|"cs"/);
  });

  it('refuses a LOG_LEVEL or LOG_FORMAT it does not know, naming the variable', () => {
    const saved = { level: process.env.LOG_LEVEL, format: process.env.LOG_FORMAT };
    try {
      process.env.LOG_LEVEL = 'verbose';
      expect(() => createLogger()).toThrow(LoggerConfigError);
      expect(() => createLogger()).toThrow('LOG_LEVEL must be one of debug, info, warn, error, got "verbose"');
      process.env.LOG_LEVEL = 'warn';
      process.env.LOG_FORMAT = 'xml';
      expect(() => createLogger()).toThrow('LOG_FORMAT must be json or pretty, got "xml"');
    } finally {
      for (const [key, value] of [['LOG_LEVEL', saved.level], ['LOG_FORMAT', saved.format]] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  it('LOG_FORMAT=pretty: one readable line, level upper-case, fields after the message', () => {
    const out: string[] = [];
    createLogger({ service: 'svc' }, { format: 'pretty', level: 'info', write: (line) => out.push(line) }).warn('slow store', { ms: 1200, password: 'pw' });
    expect(out[0]).toMatch(/^\d{4}-\d{2}-\d{2}T[\d:.]+Z WARN {2}slow store \{"service":"svc","ms":1200,"password":"\[redacted\]"\}$/);
  });
});
