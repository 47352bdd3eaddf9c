import * as fs from 'fs';
import * as path from 'path';
import fc from 'fast-check';
import type { ContractTerms, Side } from '@backstop/kernel';
import { DAY_MS } from '@backstop/kernel';
import {
  counterpartyStressLoss, cover2, cover2Contribution, CounterpartyExposure, historicalScenarios, historicalShocks, hypotheticalScenarios,
  hypotheticalShocks, PricePoint, StressMarket, StressScenario,
} from './stress';
import { markToMarket } from './valuation';
import { NOW_MS, sideArb, termsArb } from './testing/arbitraries';

const market: StressMarket = {
  nowMs: NOW_MS,
  underlyings: { 'BTC-USD': { mark: 100_000, volAnnual: 0.6 }, 'ETH-USD': { mark: 4_000, volAnnual: 0.8 } },
};
const perp = (size: number): ContractTerms => ({ kind: 'PERPETUAL', underlying: 'BTC-USD', size, entryPrice: 100_000 });
const cover = (size: number, protectedSide: Side, coverageLimit: number) => ({ terms: perp(size), protectedSide, coverageLimit });
const down: StressScenario = { name: 'BTC −35%', shocks: { 'BTC-USD': -0.35 } };
const up: StressScenario = { name: 'BTC +35%', shocks: { 'BTC-USD': 0.35 } };

describe('counterpartyStressLoss', () => {
  it('is min(limit, max(0, protected gain − collateral)) for one coverage', () => {
    const a: CounterpartyExposure = { counterpartyId: 'A', collateral: 5_000, coverages: [cover(1, 'LONG', 50_000)] };
    expect(counterpartyStressLoss(a, up, market)).toBeCloseTo(30_000, 6);
    expect(counterpartyStressLoss(a, down, market)).toBe(0);
    expect(counterpartyStressLoss({ ...a, coverages: [cover(1, 'LONG', 10_000)] }, up, market)).toBe(10_000);
  });

  it('shares collateral pro rata by gains before capping each coverage', () => {
    const d: CounterpartyExposure = { counterpartyId: 'D', collateral: 30_000, coverages: [cover(2, 'SHORT', 1e9), cover(1, 'SHORT', 10_000)] };
    // Gains 40 000 and 20 000; half is unpaid: 20 000 + min(10 000, 10 000).
    expect(counterpartyStressLoss(d, { name: '−20%', shocks: { 'BTC-USD': -0.2 } }, market)).toBeCloseTo(30_000, 6);
  });

  it('names a missing market and an impossible shock', () => {
    const x: CounterpartyExposure = { counterpartyId: 'X', collateral: 0, coverages: [{ ...cover(1, 'LONG', 1), terms: { ...perp(1), underlying: 'XRP-USD' } }] };
    expect(() => counterpartyStressLoss(x, up, market)).toThrow(/XRP-USD/);
    const a: CounterpartyExposure = { counterpartyId: 'A', collateral: 0, coverages: [cover(1, 'LONG', 1)] };
    expect(() => counterpartyStressLoss(a, { name: 'bad', shocks: { 'BTC-USD': -1.5 } }, market)).toThrow(/bad/);
  });
});

describe('vol shocks and liquidation cost', () => {
  const call: ContractTerms = { kind: 'OPTION', underlying: 'BTC-USD', size: 1, entryPrice: 0, optionType: 'CALL', strike: 120_000, expiryMs: NOW_MS + 30 * DAY_MS };
  const writer: CounterpartyExposure = { counterpartyId: 'W', collateral: 0, coverages: [{ terms: call, protectedSide: 'LONG', coverageLimit: 1e9 }] };

  it('raises what a defaulted option writer owes when the scenario shocks vol up', () => {
    const flat = counterpartyStressLoss(writer, { name: 'flat', shocks: {} }, market);
    const spiked = counterpartyStressLoss(writer, { name: 'vol +50%', shocks: {}, volShocks: { 'BTC-USD': 0.5 } }, market);
    expect(spiked).toBeCloseTo(markToMarket(call, 'LONG', { mark: 100_000, volAnnual: 0.9, nowMs: NOW_MS }), 6);
    expect(spiked).toBeGreaterThan(1.5 * flat);
  });

  it('adds the close-out cost at the shocked mark to the protected gain', () => {
    const a: CounterpartyExposure = { counterpartyId: 'A', collateral: 5_000, coverages: [cover(1, 'LONG', 1e9)] };
    expect(counterpartyStressLoss(a, up, { ...market, liquidationCostFraction: 0.01 })).toBeCloseTo(30_000 + 1_350, 6);
    expect(() => counterpartyStressLoss(a, up, { ...market, liquidationCostFraction: 1 })).toThrow(/liquidationCostFraction/);
  });
});

describe('cover2Contribution', () => {
  const book: CounterpartyExposure[] = [
    { counterpartyId: 'A', collateral: 5_000, coverages: [cover(1, 'LONG', 50_000)] },
    { counterpartyId: 'B', collateral: 10_000, coverages: [cover(2, 'SHORT', 40_000)] },
  ];

  it('is the Cover-2 requirement with the coverage minus the requirement without it', () => {
    const added: CounterpartyExposure = { counterpartyId: 'C', collateral: 0, coverages: [cover(0.5, 'SHORT', 1e9)] };
    const r = cover2Contribution(book, added, [up, down], market);
    expect(r.before.requirement).toBeCloseTo(40_000, 6); // −35%: only B loses
    expect(r.after.requirement).toBeCloseTo(57_500, 6);
    expect(r.contribution).toBeCloseTo(17_500, 6);
    // alone, it is its own stressed loss
    expect(cover2Contribution([], added, [up, down], market).contribution).toBeCloseTo(17_500, 6);
  });

  it('adds to an existing counterparty\'s coverages, sharing its collateral', () => {
    const more: CounterpartyExposure = { counterpartyId: 'A', collateral: 0, coverages: [cover(1, 'LONG', 50_000)] };
    // +35%: A owed 2 × 35 000 − 5 000 = 65 000 (no new collateral), B nothing
    expect(cover2Contribution(book, more, [up], market).contribution).toBeCloseTo(65_000 - 30_000, 6);
    // a new contract's collateral joins A's: 2 × 35 000 − (5 000 + 7 000)
    expect(cover2Contribution(book, { ...more, collateral: 7_000 }, [up], market).contribution).toBeCloseTo(58_000 - 30_000, 6);
  });

  it('is zero for a coverage that a third and larger counterparty loss outranks', () => {
    const small: CounterpartyExposure = { counterpartyId: 'S', collateral: 0, coverages: [cover(0.01, 'SHORT', 1e9)] };
    const third = cover2Contribution(book, { counterpartyId: 'Z', collateral: 0, coverages: [cover(1, 'SHORT', 1e9)] }, [down], market);
    expect(cover2Contribution(third.after.requirement > 0 ? [...book, { counterpartyId: 'Z', collateral: 0, coverages: [cover(1, 'SHORT', 1e9)] }] : book, small, [down], market).contribution).toBe(0);
  });
});

describe('cover2', () => {
  it('takes the worst scenario\'s two largest counterparty losses', () => {
    const exposures: CounterpartyExposure[] = [
      { counterpartyId: 'A', collateral: 5_000, coverages: [cover(1, 'LONG', 50_000)] },
      { counterpartyId: 'B', collateral: 10_000, coverages: [cover(2, 'SHORT', 40_000)] },
      { counterpartyId: 'C', collateral: 0, coverages: [cover(0.5, 'SHORT', 1e9)] },
    ];
    const result = cover2(exposures, [up, down], market);
    expect(result.requirement).toBeCloseTo(40_000 + 17_500, 6);
    expect(result.worstScenario).toBe('BTC −35%');
    expect(result.worstCounterparties).toEqual(['B', 'C']);
    expect(result.scenarios[0].cover2).toBeCloseTo(30_000, 6);
    expect(cover2(exposures, [], market)).toEqual({ requirement: 0, worstScenario: undefined, worstCounterparties: [], scenarios: [] });
    expect(() => cover2([exposures[0], exposures[0]], [up], market)).toThrow(/once/);
  });

  it('is at least each counterparty\'s worst loss, and one coverage follows the one-line formula', () => {
    const coverageArb = fc.record({
      terms: termsArb(fc.constantFrom('BTC-USD', 'ETH-USD')),
      protectedSide: sideArb,
      coverageLimit: fc.double({ min: 0, max: 5e6, noNaN: true }),
    });
    const exposureArb = fc.record({ collateral: fc.double({ min: 0, max: 1e6, noNaN: true }), coverages: fc.array(coverageArb, { maxLength: 3 }) });
    const shock = fc.double({ min: -0.6, max: 0.6, noNaN: true });
    const scenarioArb = fc.record({ name: fc.constant('s'), shocks: fc.record({ 'BTC-USD': shock, 'ETH-USD': shock }) });
    fc.assert(fc.property(fc.array(exposureArb, { minLength: 1, maxLength: 5 }), fc.array(scenarioArb, { minLength: 1, maxLength: 4 }), (raw, scenarios) => {
      const exposures = raw.map((e, i) => ({ counterpartyId: `cp${i}`, ...e }));
      const result = cover2(exposures, scenarios, market);
      for (const e of exposures) {
        const worst = Math.max(...scenarios.map((s) => counterpartyStressLoss(e, s, market)));
        expect(worst).toBeGreaterThanOrEqual(0);
        expect(result.requirement).toBeGreaterThanOrEqual(worst);
      }
      const single = exposures.find((e) => e.coverages.length === 1);
      if (single) {
        const c = single.coverages[0];
        const u = market.underlyings[c.terms.underlying];
        const shocks: Record<string, number> = scenarios[0].shocks;
        const mark = u.mark * (1 + shocks[c.terms.underlying]);
        const gain = Math.max(0, markToMarket(c.terms, c.protectedSide, { mark, volAnnual: u.volAnnual, nowMs: NOW_MS }));
        expect(counterpartyStressLoss(single, scenarios[0], market)).toBeCloseTo(Math.min(c.coverageLimit, Math.max(0, gain - single.collateral)), 6);
      }
    }), { numRuns: 150 });
  });
});

describe('historicalShocks', () => {
  it('finds the worst moves down and up, in any input order', () => {
    const prices: PricePoint[] = [100, 80, 120, 60, 66].map((price, i) => ({ dateMs: NOW_MS + i * DAY_MS, price })).reverse();
    const shocks = historicalShocks(prices, 2);
    expect(shocks.down.map((m) => m.relativeMove)).toEqual([-0.5, -0.19999999999999996]);
    expect(shocks.up.map((m) => m.relativeMove)).toEqual([0.5, 0.10000000000000009]);
    expect(shocks.down[0]).toMatchObject({ fromMs: NOW_MS + 2 * DAY_MS, toMs: NOW_MS + 3 * DAY_MS });
    expect(() => historicalShocks([{ dateMs: 0, price: 0 }], 1)).toThrow(/positive/);
  });

  describe('on real BTC-USD daily data (CoinGecko snapshots)', () => {
    const csv = fs.readFileSync(path.resolve(__dirname, '../../../../../shared/data/btc-usd-daily.csv'), 'utf8');
    // `2020-03-12 00:00:00 UTC,7935.52,...` → { dateMs, price }
    const prices: PricePoint[] = csv.trim().split('\n').slice(1).map((line) => {
      const [snappedAt, price] = line.split(',');
      return { dateMs: Date.parse(snappedAt.replace(' UTC', 'Z').replace(' ', 'T')), price: Number(price) };
    });
    const shocks = historicalShocks(prices, 5);

    it('has 2020-03-12 → 2020-03-13 as the worst day down: −35.19%', () => {
      expect(prices.length).toBeGreaterThan(4_500);
      expect(shocks.down[0]).toEqual({ fromMs: Date.UTC(2020, 2, 12), toMs: Date.UTC(2020, 2, 13), relativeMove: expect.closeTo(-0.3519, 4) });
      expect(shocks.up[0]).toMatchObject({ fromMs: Date.UTC(2017, 11, 6), relativeMove: expect.closeTo(0.3326, 4) });
    });

    it('makes it the Cover-2 scenario for protected shorts', () => {
      const scenarios = historicalScenarios('BTC-USD', shocks);
      expect(scenarios[0].name).toBe('historical BTC-USD 2020-03-12→2020-03-13 -35.19%');
      const exposures: CounterpartyExposure[] = ['A', 'B'].map((id) => ({ counterpartyId: id, collateral: 0, coverages: [cover(1, 'SHORT', 1e9)] }));
      const result = cover2(exposures, scenarios, market);
      expect(result.worstScenario).toBe(scenarios[0].name);
      expect(result.requirement).toBeCloseTo(2 * 100_000 * 0.35190269361185134, 4);
    });
  });
});

describe('hypotheticalShocks', () => {
  it('gives ±N σ log-price moves over the horizon', () => {
    const sd = 0.8 * Math.sqrt(2 / 365);
    const shocks = hypotheticalShocks(0.8, [3], 2);
    expect(shocks).toEqual([
      { sigmas: -3, relativeMove: Math.exp(-3 * sd) - 1 },
      { sigmas: 3, relativeMove: Math.exp(3 * sd) - 1 },
    ]);
    expect(shocks[0].relativeMove).toBeCloseTo(-0.1628, 4);
    expect(hypotheticalShocks(3, [10], 365)[0].relativeMove).toBeGreaterThan(-1);
    expect(hypotheticalScenarios('ETH-USD', shocks).map((s) => s.name)).toEqual(['hypothetical ETH-USD -3σ -16.28%', 'hypothetical ETH-USD +3σ +19.44%']);
    expect(() => hypotheticalShocks(0.8, [0], 2)).toThrow(/sigma/);
  });
});
