import { MarginModule } from '@backstop/margin-service';
import { PricingModule } from '@backstop/pricing-service';
import { DeadLetter, encodeEnvelope, makeEnvelope, TOPICS } from '@backstop/messaging';
import { startTestBackstop, TestBackstop } from '@backstop/platform';
import { waitUntil } from '@backstop/testing';

/**
 * Issue 9, defect 8: a schema-invalid mark used to be retried three times with backoff by each
 * marks consumer before being dead-lettered (0.6 s each), so a flood of bad marks delayed the valid
 * ones by minutes. Validation failures are the message's fault: dead-lettered at once, never retried.
 */
describe('bad marks on backstop.market.marks', () => {
  let app: TestBackstop;
  beforeAll(async () => {
    app = await startTestBackstop({ modules: [PricingModule, MarginModule] });
  }, 60_000);
  afterAll(() => app?.close());

  it('are dead-lettered at once with every field and rule, and the valid mark behind them is recorded', async () => {
    const dead: DeadLetter[] = [];
    const observer = await app.runtime.bus.subscribe({
      groupId: 'dlq-observer',
      topics: [app.runtime.topics.of(TOPICS.dlq)],
      handle: async (m) => {
        dead.push(JSON.parse(m.value.toString()) as DeadLetter);
      },
    });
    try {
      const mark = (payload: Record<string, unknown>) => encodeEnvelope(makeEnvelope({ type: 'MarkPrice', key: 'BTC-USD', time: '2026-01-01T00:00:00Z', payload }));
      const bad = Array.from({ length: 40 }, (_, i) => mark({ underlying: 'BTC-USD', price: i % 2 === 0 ? 'cheap' : 60_000, at: '2026-01-01T00:00:00Z' }));
      await app.runtime.bus.publish(app.runtime.topics.of(TOPICS.marketMarks), [...bad, mark({ underlying: 'BTC-USD', price: '61234.5', at: '2026-01-01T00:00:00Z' })]);
      // margin-monitor is the one consumer of the raw feed (pricing follows margin's accepted marks): each bad mark is dead-lettered once.
      await waitUntil(() => (dead.length >= 40 ? true : undefined), 30_000, '40 dead letters');
      expect(new Set(dead.map((d) => d.reason))).toEqual(new Set(['INVALID_PAYLOAD']));
      expect(dead.every((d) => d.violations?.some((v) => v.field === 'payload.price' && v.rule === 'isDecimalString'))).toBe(true);
      expect(dead.filter((d) => /attempts/.test(d.detail))).toEqual([]);
      expect(dead.map((d) => d.consumerGroup).every((g) => /margin/.test(g))).toBe(true);
      const recorded = await waitUntil(async () => {
        const res = await app.get<{ marksRecorded: number; last?: { price: string } | null }>('/v1/marks/BTC-USD');
        return res.status === 200 && res.body.last?.price ? res.body : undefined;
      }, 30_000, 'the valid mark');
      expect(recorded).toMatchObject({ marksRecorded: 1, last: { price: '61234.5' } });
    } finally {
      await observer.stop();
    }
  }, 60_000);
});
