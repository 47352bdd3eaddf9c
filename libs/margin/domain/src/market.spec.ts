import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { DAY_MS, specFor } from '@backstop/kernel';
import { dailyClosesOf, evolveMarket, formatPrice, MarketEvent, marketDecider, MarketState, MarkRecordedData, EMPTY_MARKET, RecordMark } from './market';
import { DEFAULT_SANITY_POLICY, MarkSanityPolicy, sanityPolicyProblems } from './policy';

/** Property runs: a pinned seed by default; BACKSTOP_FC_RUNS / BACKSTOP_FC_SEED for a bigger random run. */
const FC: fc.Parameters<unknown> = process.env.BACKSTOP_FC_RUNS
  ? { numRuns: Number(process.env.BACKSTOP_FC_RUNS), ...(process.env.BACKSTOP_FC_SEED ? { seed: Number(process.env.BACKSTOP_FC_SEED) } : {}) }
  : { numRuns: 200, seed: 20261130 };

const policy: MarkSanityPolicy = { ...DEFAULT_SANITY_POLICY, bandFraction: 0.1, maxStaleMs: 60_000, jumpConfirmations: 3, persistMs: 5 * 60_000 };
const decider = marketDecider(policy);
const spec = specFor(decider);
const T0 = '2026-01-01T00:00:00.000Z';
const at = (minutes: number) => new Date(Date.parse(T0) + minutes * 60_000).toISOString();
const mark = (price: string, minutes: number, extra: Partial<RecordMark> = {}): RecordMark => ({
  type: 'RecordMark',
  underlying: 'BTC-USD',
  price,
  at: at(minutes),
  receivedAt: at(minutes),
  ...extra,
});
const sane = (price: string, minutes: number, extra: Record<string, unknown> = {}): MarketEvent => ({
  type: 'MarkRecorded',
  data: { underlying: 'BTC-USD', price, sane: true, at: at(minutes), receivedAt: at(minutes), ...extra },
});
const recorded = (events: MarketEvent[]): MarkRecordedData => events[0].data as MarkRecordedData;

/** Runs marks through the decider; returns the accepted price after each and the final state. */
function follow(prices: readonly number[], p: MarkSanityPolicy, spacingMs: number, start = Date.parse(T0)): { accepted: (string | undefined)[]; flagged: boolean[]; state: MarketState } {
  const d = marketDecider(p);
  let state: MarketState = EMPTY_MARKET;
  const accepted: (string | undefined)[] = [];
  const flagged: boolean[] = [];
  prices.forEach((price, i) => {
    const when = new Date(start + i * spacingMs).toISOString();
    for (const e of d.decide({ type: 'RecordMark', underlying: 'X-USD', price: formatPrice(price), at: when, receivedAt: when }, state)) state = evolveMarket(state, e);
    accepted.push(state.lastSane?.price);
    flagged.push(state.last?.sane === false);
  });
  return { accepted, flagged, state };
}

describe('market decider: bounds and the receiving clock', () => {
  it('accepts a first mark, with its vol, funding rate and receive time', () => {
    expect(spec.given([]).when(mark('60000', 0, { volAnnual: '0.6', fundingRate: '0.0001' })).events()).toEqual([sane('60000', 0, { volAnnual: '0.6', fundingRate: '0.0001', basis: 'FIRST' })]);
  });

  it('accepts a move within the band of the last accepted mark', () => {
    expect(recorded(spec.given([sane('60000', 0)]).when(mark('65999', 1)).events())).toMatchObject({ sane: true, price: '65999', basis: 'IN_BAND' });
  });

  it('flags a zero, negative or absurd price with the rule it broke', () => {
    expect(recorded(spec.given([sane('60000', 0)]).when(mark('0', 1)).events())).toMatchObject({ sane: false, flag: 'NON_POSITIVE' });
    expect(recorded(spec.given([]).when(mark('-5', 0)).events()).flag).toBe('NON_POSITIVE');
    const huge = recorded(spec.given([sane('60000', 0)]).when(mark('1000000000000000000000000000000', 1)).events());
    expect(huge).toMatchObject({ sane: false, flag: 'OUT_OF_RANGE' });
    expect(huge.detail).toMatch(/outside the sane range/);
    // Even as the very first mark: a 10^30 print never becomes the view.
    expect(recorded(spec.given([]).when(mark('1000000000000000000000000000000', 0)).events())).toMatchObject({ sane: false, flag: 'OUT_OF_RANGE' });
  });

  it('flags a mark dated ahead of the receiving clock beyond the tolerance, and it does not poison later marks', () => {
    const tenYears = new Date(Date.parse(T0) + 3_650 * DAY_MS).toISOString();
    const future = spec.given([sane('60000', 0)]).when(mark('60100', 1, { at: tenYears, receivedAt: at(1) })).events();
    expect(recorded(future)).toMatchObject({ sane: false, flag: 'FUTURE' });
    expect(recorded(future).detail).toMatch(/ahead of the receiving clock .* tolerance 5000 ms/);
    // The next real mark is accepted, not judged "not newer" than the future-dated one.
    expect(recorded(spec.given([sane('60000', 0), ...future]).when(mark('60200', 2)).events())).toMatchObject({ sane: true, price: '60200' });
    // Within the tolerance (clock skew) is fine.
    expect(recorded(spec.given([sane('60000', 0)]).when(mark('60100', 1, { at: new Date(Date.parse(at(1)) + 4_000).toISOString(), receivedAt: at(1) })).events()).sane).toBe(true);
  });

  it('judges staleness by the receiving clock, not the sender`s time', () => {
    const event = recorded(spec.given([]).when(mark('60000', 0, { receivedAt: at(2) })).events());
    expect(event).toMatchObject({ sane: false, flag: 'STALE', detail: 'mark is 120000 ms old when received, limit 60000 ms' });
  });

  it('flags a mark no newer than the last accepted one (a replayed or out-of-order print) as stale', () => {
    const event = recorded(spec.given([sane('60000', 5)]).when(mark('60100', 4, { receivedAt: at(5) })).events());
    expect(event).toMatchObject({ sane: false, flag: 'STALE' });
    expect(event.detail).toMatch(/not newer than the last accepted mark/);
  });

  it('keeps the last real vol through a zero vol (zero = unknown)', () => {
    const given = spec.given([sane('60000', 0, { volAnnual: '0.6' }), sane('60100', 2, { volAnnual: '0' })]);
    expect(given.state.lastSane).toMatchObject({ price: '60100', at: at(2) });
    expect(given.state.lastVolAnnual).toBe('0.6');
  });

  it('refuses a policy that could never accept a new level, or would accept one print', () => {
    expect(sanityPolicyProblems({ ...policy, jumpConfirmations: 0, persistMs: 0 })).toEqual([expect.stringMatching(/cannot both be 0/)]);
    expect(sanityPolicyProblems({ ...policy, jumpConfirmations: 1 })).toEqual([expect.stringMatching(/must not be 1/)]);
    expect(sanityPolicyProblems(DEFAULT_SANITY_POLICY)).toEqual([]);
  });
});

describe('market decider: a new level is accepted on evidence, not on the size of its move', () => {
  it('flags a jump, then accepts the level once 3 consistent marks carry it', () => {
    const first = spec.given([sane('60000', 0)]).when(mark('70000', 1)).events();
    expect(recorded(first)).toMatchObject({ sane: false, flag: 'JUMP', jumpRun: 1 });
    const second = spec.given([sane('60000', 0), ...first]).when(mark('70500', 2)).events();
    expect(recorded(second)).toMatchObject({ sane: false, flag: 'JUMP', jumpRun: 2 });
    const third = recorded(spec.given([sane('60000', 0), ...first, ...second]).when(mark('70200', 3)).events());
    expect(third).toMatchObject({ sane: true, price: '70200', basis: 'PERSISTED' });
    expect(third.detail).toMatch(/3 consistent marks/);
  });

  it('accepts two consistent marks that span persistMs', () => {
    const first = spec.given([sane('60000', 0)]).when(mark('30000', 1)).events();
    expect(recorded(spec.given([sane('60000', 0), ...first]).when(mark('20000', 6)).events())).toMatchObject({ sane: true, price: '20000', basis: 'PERSISTED' });
    expect(recorded(spec.given([sane('60000', 0), ...first]).when(mark('20000', 5)).events())).toMatchObject({ sane: false, jumpRun: 2 });
  });

  it('restarts the run when a candidate turns back by more than the band, or crosses to the other side', () => {
    const first = spec.given([sane('60000', 0)]).when(mark('30000', 1)).events();
    expect(recorded(spec.given([sane('60000', 0), ...first]).when(mark('45000', 2)).events())).toMatchObject({ flag: 'JUMP', jumpRun: 1 });
    expect(recorded(spec.given([sane('60000', 0), ...first]).when(mark('90000', 2)).events())).toMatchObject({ flag: 'JUMP', jumpRun: 1 });
    // Further in the same direction is consistent, however far.
    expect(recorded(spec.given([sane('60000', 0), ...first]).when(mark('300', 2)).events())).toMatchObject({ flag: 'JUMP', jumpRun: 2 });
  });

  it('a spike that reverts is followed by an in-band mark, which clears the candidate', () => {
    const spike = spec.given([sane('60000', 0)]).when(mark('6000', 1)).events();
    const back = spec.given([sane('60000', 0), ...spike]).when(mark('60100', 2)).events();
    expect(recorded(back)).toMatchObject({ sane: true, basis: 'IN_BAND' });
    const state = spec.given([sane('60000', 0), ...spike, ...back]).state;
    expect(state.pending).toBeUndefined();
    expect(recorded(spec.given([sane('60000', 0), ...spike, ...back]).when(mark('6000', 3)).events())).toMatchObject({ flag: 'JUMP', jumpRun: 1 });
  });
});

describe('market decider: several sources', () => {
  const multi = specFor(marketDecider({ ...policy, sources: ['a', 'b', 'c'] }));
  const src = (price: string, minutes: number, source: string, extra: Record<string, unknown> = {}): MarketEvent => ({
    type: 'MarkRecorded',
    data: { underlying: 'BTC-USD', price, sane: true, at: at(minutes), receivedAt: at(minutes), source, ...extra },
  });

  it('takes the median of the fresh sources, so one bad source cannot move the view', () => {
    const given = [src('60000', 0, 'a'), src('60000', 0, 'b', { basis: 'IN_BAND' }), src('60000', 0, 'c')];
    const bad = recorded(multi.given(given).when(mark('6000', 1, { source: 'c' })).events());
    expect(bad).toMatchObject({ sane: true, price: '60000', observedPrice: '6000', basis: 'SOURCES_AGREE' });
  });

  it('accepts a large move at once when a majority of sources agree on it', () => {
    const given = [src('60000', 0, 'a'), src('60000', 0, 'b'), src('60000', 0, 'c'), { type: 'MarkRecorded', data: { underlying: 'BTC-USD', price: '20000', sane: false, flag: 'JUMP', jumpRun: 1, at: at(1), source: 'a' } } as MarketEvent];
    const agreed = recorded(multi.given(given).when(mark('20400', 1.5, { source: 'b' })).events());
    expect(agreed).toMatchObject({ sane: true, basis: 'SOURCES_AGREE', price: '20200' });
  });

  it('flags a mark from a source that is not configured', () => {
    expect(recorded(multi.given([]).when(mark('60000', 0, { source: 'zz' })).events())).toMatchObject({ sane: false, flag: 'SOURCE' });
    expect(recorded(multi.given([]).when(mark('60000', 0)).events())).toMatchObject({ sane: false, flag: 'SOURCE' });
  });
});

describe('market decider: the stale-mark alarm', () => {
  it('raises MarkStale once when the last accepted mark is older than the limit by the receiving clock', () => {
    const given = [sane('60000', 0, { receivedAt: at(0) })];
    expect(spec.given(given).when({ type: 'CheckStale', underlying: 'BTC-USD', now: at(5) }).events()).toEqual([]);
    const alarm = spec.given(given).when({ type: 'CheckStale', underlying: 'BTC-USD', now: at(6) }).events();
    expect(alarm).toEqual([{ type: 'MarkStale', data: { underlying: 'BTC-USD', lastAcceptedPrice: '60000', lastAcceptedAt: at(0), lastReceivedAt: at(0), ageMs: 360_000, limitMs: 300_000, at: at(6) } }]);
    expect(spec.given([...given, ...alarm]).when({ type: 'CheckStale', underlying: 'BTC-USD', now: at(9) }).events()).toEqual([]);
    // A fresh accepted mark clears it; the next silence raises a new one.
    const fresh = sane('60100', 10);
    expect(spec.given([...given, ...alarm, fresh]).when({ type: 'CheckStale', underlying: 'BTC-USD', now: at(16) }).events()).toHaveLength(1);
  });

  it('judges the alarm by the receive time, so a sender dating its marks "now" cannot hide a stalled feed', () => {
    // Received at minute 0, dated minute 0: at minute 6 it is stale whatever the sender's clock says.
    const given = [sane('60000', 0, { receivedAt: at(0) })];
    expect(spec.given(given).when({ type: 'CheckStale', underlying: 'BTC-USD', now: at(6) }).events()).toHaveLength(1);
  });
});

describe('market decider over made-up crash paths (properties)', () => {
  const daily: MarkSanityPolicy = { ...DEFAULT_SANITY_POLICY };
  const lagOf = (prices: readonly number[], accepted: readonly (string | undefined)[]) =>
    prices.map((_, i) => {
      for (let back = 0; back <= i; back++) if (accepted[i] === formatPrice(prices[i - back])) return back;
      return Number.POSITIVE_INFINITY;
    });

  it('follows the issue`s collapse 86 → 0.0002 in daily closes to the last mark', () => {
    const path = [86, 80, 78, 65, 30, 18, 1.8, 0.03, 0.0002];
    const { accepted, state } = follow([...path, 0.00021], daily, DAY_MS);
    expect(accepted).toEqual(['86', '80', '78', '78', '30', '30', '1.8', '1.8', '0.0002', '0.00021']);
    // While a level is a candidate, it is the pending level margin stresses.
    expect(follow(path.slice(0, 4), daily, DAY_MS).state.pending?.last.price).toBe(65);
    expect(state.pending).toBeUndefined();
  });

  it('a monotone fall of any size per mark is never more than one mark behind (daily and hourly marks)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.01, max: 1e6, noNaN: true }),
        fc.array(fc.double({ min: 0.001, max: 1, noNaN: true }), { minLength: 2, maxLength: 30 }),
        fc.constantFrom(DAY_MS, 3_600_000, 600_000),
        (start, factors, spacing) => {
          const prices = [start];
          for (const f of factors) prices.push(Math.max(prices[prices.length - 1] * f, 1e-8));
          const { accepted } = follow(prices, daily, spacing);
          expect(Math.max(...lagOf(prices, accepted))).toBeLessThanOrEqual(1);
        },
      ),
      FC,
    );
  });

  it('a > 99.99% collapse in 7 daily marks, a single −90% gap, a week of −40% days, a price near zero', () => {
    const collapse = follow([86, 30, 5, 0.9, 0.1, 0.01, 0.003, 0.0002, 0.0002], daily, DAY_MS);
    expect(collapse.accepted.at(-1)).toBe('0.0002');
    // Minute marks: three consistent prints (persistMs is 5 minutes); daily ones: two.
    expect(follow([100, 10, 10.5, 10.2], daily, 60_000).accepted).toEqual(['100', '100', '100', '10.2']);
    expect(follow([100, 10, 10.5], daily, DAY_MS).accepted).toEqual(['100', '100', '10.5']);
    const week = follow([100, 60, 36, 21.6, 12.96, 7.776, 4.6656, 2.79936, 2.8], daily, DAY_MS);
    expect(Math.max(...lagOf([100, 60, 36, 21.6, 12.96, 7.776, 4.6656, 2.79936, 2.8], week.accepted))).toBe(1);
    expect(week.accepted.at(-1)).toBe('2.8');
    const nearZero = follow([0.00000002, 0.000000021, 0.000000005, 0.000000004], daily, DAY_MS);
    expect(nearZero.accepted).toEqual(['0.00000002', '0.000000021', '0.000000021', '0.000000004']);
  });

  it('a single bad tick that reverts is never accepted, whatever its size', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -0.05, max: 0.05, noNaN: true }), { minLength: 3, maxLength: 40 }),
        fc.nat(),
        fc.oneof(fc.double({ min: 1e-6, max: 0.5, noNaN: true }), fc.double({ min: 1.5, max: 1e6, noNaN: true })),
        fc.constantFrom(DAY_MS, 1_000, 60_000),
        (moves, where, spikeFactor, spacing) => {
          const walk = [50_000];
          for (const m of moves) walk.push(walk[walk.length - 1] * (1 + m));
          const i = 1 + (where % (walk.length - 1));
          const spike = walk[i - 1] * spikeFactor;
          const prices = [...walk.slice(0, i), spike, ...walk.slice(i)];
          const { accepted } = follow(prices, daily, spacing);
          expect(accepted).not.toContain(formatPrice(spike));
          // The view stays on the real walk: every accepted price is one of its marks.
          const real = new Set(walk.map(formatPrice));
          for (const a of accepted) expect(real.has(a as string)).toBe(true);
        },
      ),
      FC,
    );
  });
});

describe('market decider over the real BTC and ETH histories (../shared/data)', () => {
  const DATA = join(__dirname, '..', '..', '..', '..', '..', 'shared', 'data');
  const series = (file: string) =>
    readFileSync(join(DATA, file), 'utf8')
      .split('\n')
      .slice(1)
      .filter((l) => l.trim() !== '')
      .map((l) => ({ atMs: Date.parse(l.split(',')[0].replace(' UTC', 'Z').replace(' ', 'T')), price: Number(l.split(',')[1]) }))
      .filter((p) => Number.isFinite(p.atMs) && p.price > 0);

  for (const file of ['btc-usd-daily.csv', 'eth-usd-daily.csv']) {
    it(`${file}: every daily close is accepted, or the next one is; no close stays unseen`, () => {
      const points = series(file);
      expect(points.length).toBeGreaterThan(2_000);
      const d = marketDecider(DEFAULT_SANITY_POLICY);
      let state: MarketState = EMPTY_MARKET;
      let flaggedRun = 0;
      let worstRun = 0;
      let flaggedTotal = 0;
      for (const p of points) {
        const when = new Date(p.atMs).toISOString();
        for (const e of d.decide({ type: 'RecordMark', underlying: 'X-USD', price: formatPrice(p.price), at: when, receivedAt: when }, state)) state = evolveMarket(state, e);
        const ok = state.last?.sane === true;
        flaggedRun = ok ? 0 : flaggedRun + 1;
        flaggedTotal += ok ? 0 : 1;
        worstRun = Math.max(worstRun, flaggedRun);
      }
      // Real crash days (−35% on 2020-03-12) are held for at most one day, then followed.
      expect(worstRun).toBeLessThanOrEqual(2);
      // ETH's first months moved beyond 15% a day often: held one day each, never longer.
      expect(flaggedTotal).toBeLessThan(points.length / 20);
      expect(state.lastSane?.price).toBe(formatPrice(points[points.length - 1].price));
    });
  }
});

describe('market state: the anti-procyclicality look-back vol (EMIR art. 28(1)(c), issue 11)', () => {
  const dayMark = (price: number, day: number, hour = 12): MarketEvent => sane(String(price), day * 1_440 + hour * 60);
  // Alternating ±10% log-moves: every daily return squared is 0.01, so the look-back vol is √(0.01·365).
  const zigzag = (days: number) => Array.from({ length: days }, (_, i) => 100 * Math.exp(i % 2 === 0 ? 0 : 0.1));

  it('is the equally weighted vol of the completed days\' closes, one close a day whatever the feed rate', () => {
    let state = EMPTY_MARKET;
    zigzag(40).forEach((p, day) => {
      state = evolveMarket(state, dayMark(p * 0.5, day, 1)); // an earlier mark the same day is not the close
      state = evolveMarket(state, dayMark(p, day, 23));
    });
    expect(dailyClosesOf(state)).toHaveLength(40);
    expect(state.dailyCloses).toHaveLength(39);
    // 39 completed days (today's close counts tomorrow): 38 returns of ±0.1
    expect(state.lookbackVolAnnual).toBeCloseTo(Math.sqrt(0.01 * 365), 9);
  });

  it('keeps at most the 10-year look-back of days (bounded memory) and drops older closes', () => {
    let state = EMPTY_MARKET;
    for (let day = 0; day < 3_700; day++) state = evolveMarket(state, dayMark(day < 30 ? 100 * Math.exp(day % 2 ? 0.5 : 0) : 100, day));
    expect(dailyClosesOf(state).length).toBeLessThanOrEqual(3_651);
    // The ±50% days fell out of the window: only flat days remain.
    expect(state.lookbackVolAnnual).toBe(0);
  });

  it('raises a quiet feed vol to the look-back floor in the monitor\'s parameters (see monitor.spec)', () => {
    let state = EMPTY_MARKET;
    zigzag(10).forEach((p, day) => (state = evolveMarket(state, dayMark(p, day))));
    expect(state.lookbackVolAnnual).toBeGreaterThan(1.8);
  });
});
