import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DomainRejection } from '@backstop/kernel';
import { EventStore, openEventStore, WrongExpectedRevisionError } from '@backstop/event-store';
import { capacityDecider, QuoteIssuedData } from '@backstop/pricing';
import { StreamCache } from './stream-cache';

const AT = '2026-01-01T00:00:00.000Z';
/** The fields a reservation reads from a quote (the rest of QuoteIssued does not matter here). */
const quote = (quoteId: string) =>
  ({
    quoteId,
    validUntil: '2026-01-01T00:15:00.000Z',
    contractId: 'c1',
    underlying: 'BTC-USD',
    protectedPartyId: 'desk1',
    counterpartyId: 'cp1',
    currency: 'USDC',
    stressContribution: '40000.000000',
  }) as QuoteIssuedData;
const cause = (id: string) => ({ causationId: id, correlationId: id, occurredAt: AT });

/**
 * Two replicas binding at once against the same store (embedded SQLite file): each has its own
 * StreamCache, both read the capacity book at the same revision before either appends.
 */
describe('capacity reservations racing through the one book stream (embedded store)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pricing-race-'));
  let store: EventStore;
  beforeAll(() => {
    store = openEventStore({ dataFile: join(dir, 'race.db') });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  let conflicts = 0;
  /** Holds every append until `count` appends are waiting: both writers have read the same revision. */
  function barrier(inner: EventStore, count: number): EventStore {
    let waiting: (() => void)[] = [];
    return new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop !== 'append') return Reflect.get(target, prop, receiver);
        return async (...args: Parameters<EventStore['append']>) => {
          if (count > 0) {
            count -= 1;
            await new Promise<void>((resolve) => {
              waiting.push(resolve);
              if (count === 0) waiting.forEach((go) => go());
            });
            waiting = [];
          }
          try {
            return await target.append(...args);
          } catch (err) {
            if (err instanceof WrongExpectedRevisionError) conflicts += 1;
            throw err;
          }
        };
      },
    });
  }

  it('lets only one of two binds take the last capacity: the loser re-reads, decides again and is told what is left', async () => {
    const q1 = quote('race-1');
    const q2 = quote('race-2');
    const stress = Number(q1.stressContribution);
    const setup = new StreamCache(store, capacityDecider);
    await setup.decide(
      'pricing-capacity',
      { type: 'NoteCapacityAssessment', poolId: 'main', currency: 'USDC', headroom: (stress * 1.5).toFixed(6), capital: '1', cover2Requirement: '0', assessedAt: AT, sourceEventId: 'a1', at: AT },
      cause('assessment'),
    );
    const raced = barrier(store, 2);
    const replicaA = new StreamCache(raced, capacityDecider);
    const replicaB = new StreamCache(raced, capacityDecider);
    const results = await Promise.allSettled([
      replicaA.decide('pricing-capacity', { type: 'ReserveCapacity', coverageId: 'cov-a', quote: q1, assessmentLagMs: 60_000, at: AT }, cause('bind-a')),
      replicaB.decide('pricing-capacity', { type: 'ReserveCapacity', coverageId: 'cov-b', quote: q2, assessmentLagMs: 60_000, at: AT }, cause('bind-b')),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(conflicts).toBe(1); // the loser's append was refused, not overwritten
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0].reason).toBeInstanceOf(DomainRejection);
    expect((lost[0].reason as DomainRejection).violations[0]).toMatchObject({ rule: 'poolCapacity', message: expect.stringContaining(`less ${q1.stressContribution} reserved since`) });
    const book = await store.readStream('pricing-capacity');
    expect(book.map((e) => e.type)).toEqual(['CapacityAssessmentNoted', 'CapacityReserved']);
  });

  it('answers a causation already in the stream as already done, even from a fresh cache (a retry after a crash)', async () => {
    const cache = new StreamCache(store, capacityDecider);
    const before = (await store.readStream('pricing-capacity')).length;
    const first = (await store.readStream('pricing-capacity')).find((e) => e.type === 'CapacityReserved')!;
    const winner = first.data.coverageId === 'cov-a' ? { id: 'cov-a', q: quote('race-1'), c: 'bind-a' } : { id: 'cov-b', q: quote('race-2'), c: 'bind-b' };
    const again = await cache.decide('pricing-capacity', { type: 'ReserveCapacity', coverageId: winner.id, quote: winner.q, assessmentLagMs: 60_000, at: AT }, cause(winner.c));
    expect(again).toMatchObject({ alreadyApplied: true, eventTypes: ['CapacityReserved'] });
    expect(await store.readStream('pricing-capacity')).toHaveLength(before);
  });
});
