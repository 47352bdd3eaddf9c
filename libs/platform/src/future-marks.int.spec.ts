import { randomUUID } from 'node:crypto';
import { makeEnvelope } from '@backstop/messaging';
import { futureDatedMark, markFutureToleranceMs } from './inputs';
import { startTestBackstop, TestBackstop } from './testing';

/**
 * Issue 9 defect 7: a mark dated ahead of the receiving clock was answered 202 and only flagged
 * FUTURE by margin afterwards. The HTTP boundary now refuses it with 422, naming the field and rule,
 * and takes nothing of the batch; within the clock-skew tolerance it is still taken.
 */
describe('POST /v1/market/marks refuses a future-dated mark', () => {
  let app: TestBackstop;
  const start = new Date('2026-01-01T00:00:00Z');
  beforeAll(async () => {
    app = await startTestBackstop({ modules: [], start });
  });
  afterAll(() => app?.close());

  const mark = (at: string) =>
    makeEnvelope({ id: randomUUID(), type: 'MarkPrice', key: 'BTC-USD', time: at, payload: { underlying: 'BTC-USD', price: '9000', volAnnual: '0.8', at } });
  const post = async (body: unknown) => {
    const res = await fetch(`${app.url}/v1/market/marks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${app.runtime.auth.tokenFor('operator')}` },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as { status: string; violations?: { field: string; rule: string; message: string }[] } };
  };
  const inbox = async () => (await app.runtime.store.readStream('inbox-market-marks')).length;

  it('answers 422 (payload.at, notFutureDated) for a mark dated 10 years ahead, and stores nothing', async () => {
    const before = await inbox();
    const res = await post(mark(new Date(start.getTime() + 10 * 365 * 86_400_000).toISOString()));
    expect(res.status).toBe(422);
    expect(res.body.violations).toEqual([expect.objectContaining({ field: 'payload.at', rule: 'notFutureDated', message: expect.stringMatching(/ahead of the receiving clock \(2026-01-01T00:00:00.000Z\); at most 5000 ms/) })]);
    expect(await inbox()).toBe(before);
  });

  it('names the item of a batch, refuses the whole batch; within the tolerance (5 s) and in the past it is taken', async () => {
    const before = await inbox();
    const batch = [mark(new Date(start.getTime() - 60_000).toISOString()), mark(new Date(start.getTime() + 5_001).toISOString())];
    const refused = await post(batch);
    expect(refused.status).toBe(422);
    expect(refused.body.violations?.map((v) => `${v.field}:${v.rule}`)).toEqual(['[1].payload.at:notFutureDated']);
    expect(await inbox()).toBe(before);
    const taken = await post([mark(new Date(start.getTime() - 60_000).toISOString()), mark(new Date(start.getTime() + 5_000).toISOString())]);
    expect(taken.status).toBe(202);
    expect(await inbox()).toBe(before + 2);
  });

  it('the tolerance is margin`s MARGIN_MARK_FUTURE_TOLERANCE_MS; a bad value is refused naming it', () => {
    expect(markFutureToleranceMs({})).toBe(5_000);
    expect(markFutureToleranceMs({ MARGIN_MARK_FUTURE_TOLERANCE_MS: '60000' })).toBe(60_000);
    expect(() => markFutureToleranceMs({ MARGIN_MARK_FUTURE_TOLERANCE_MS: '-1' })).toThrow(/MARGIN_MARK_FUTURE_TOLERANCE_MS must be a whole number/);
    expect(futureDatedMark('2026-01-01T00:01:00.000Z', Date.parse('2026-01-01T00:00:00Z'), 60_000)).toBeUndefined();
  });
});
