import { SpanKind } from '@opentelemetry/api';
import { createLogger } from './logger';
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
});
