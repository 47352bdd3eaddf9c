import fc from 'fast-check';
import type { ContractTerms } from '@backstop/kernel';
import { DAY_MS } from '@backstop/kernel';
import { normCdf } from './option-value';
import {
  confidenceZ, initialMargin, LISTED_MARGIN_PARAMS, marginParamsProblems, marginRequirement, MarginParams, normQuantile,
  OTC_MARGIN_PARAMS, portfolioInitialMargin, riskArray, scanMultiplier, scanRangeFraction, spanScenarios, spreadCharge,
  shortOptionMinimum, studentTCdf, studentTQuantile,
} from './span';
import { markToMarket, MarketPoint } from './valuation';
import { marketArb, NOW_MS, sideArb, termsArb } from './testing/arbitraries';

const market: MarketPoint = { mark: 100_000, volAnnual: 0.6, nowMs: NOW_MS };
const perp: ContractTerms = { kind: 'PERPETUAL', underlying: 'BTC-USD', size: 2, entryPrice: 95_000 };
const call: ContractTerms = {
  kind: 'OPTION', underlying: 'BTC-USD', size: 1, entryPrice: 5_000, optionType: 'CALL', strike: 110_000, expiryMs: NOW_MS + 30 * DAY_MS,
};

describe('scan range', () => {
  it('takes k from the confidence: 99% → 2.326, 99.5% → 2.576', () => {
    expect(confidenceZ(0.99)).toBeCloseTo(2.3263478740408408, 9);
    expect(confidenceZ(0.995)).toBeCloseTo(2.5758293035489004, 9);
    expect(normQuantile(0.5)).toBeCloseTo(0, 12);
    expect(normQuantile(1e-10)).toBeCloseTo(-6.361340902404056, 6);
  });

  it('inverts normCdf', () => {
    fc.assert(fc.property(fc.double({ min: 1e-12, max: 1 - 1e-12, noNaN: true }), (p) => {
      expect(normCdf(normQuantile(p))).toBeCloseTo(p, 12);
    }));
  });

  it('is k·σ·√(MPOR/365) in log-price, k the normal quantile with ν = 0', () => {
    const normal = { tailDegreesOfFreedom: 0 };
    expect(scanRangeFraction(0.6, { ...LISTED_MARGIN_PARAMS, ...normal })).toBeCloseTo(2.3263478740408408 * 0.6 * Math.sqrt(2 / 365), 12);
    expect(scanRangeFraction(0.6, { ...OTC_MARGIN_PARAMS, ...normal })).toBeCloseTo(2.5758293035489004 * 0.6 * Math.sqrt(5 / 365), 12);
  });

  it('takes k from a unit-variance Student-t by default (ν = 4): t₀.₉₉₅(4) = 4.604, × √(2/4)', () => {
    // Student-t quantiles from the standard tables (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2).
    expect(studentTQuantile(0.995, 4)).toBeCloseTo(4.604, 3);
    expect(studentTQuantile(0.99, 3)).toBeCloseTo(4.541, 3);
    expect(studentTQuantile(0.975, 30)).toBeCloseTo(2.042, 3);
    expect(studentTQuantile(0.025, 30)).toBeCloseTo(-2.042, 3);
    expect(studentTCdf(0, 7)).toBeCloseTo(0.5, 15);
    expect(studentTCdf(1, 1)).toBeCloseTo(0.75, 15); // Cauchy: 1/2 + atan(1)/π
    expect(scanMultiplier(OTC_MARGIN_PARAMS)).toBeCloseTo(4.604 * Math.SQRT1_2, 3);
    expect(scanRangeFraction(0.6, OTC_MARGIN_PARAMS)).toBeCloseTo(scanMultiplier(OTC_MARGIN_PARAMS) * 0.6 * Math.sqrt(5 / 365), 12);
  });

  it('never scans with less than the anti-procyclicality vol floor', () => {
    const floored = { ...OTC_MARGIN_PARAMS, volFloorAnnual: 0.9 };
    expect(scanRangeFraction(0.3, floored)).toBeCloseTo(scanRangeFraction(0.9, OTC_MARGIN_PARAMS), 12);
    expect(scanRangeFraction(1.2, floored)).toBeCloseTo(scanRangeFraction(1.2, OTC_MARGIN_PARAMS), 12);
  });

  it('rejects parameters outside their ranges, naming each', () => {
    const bad: MarginParams = { mporDays: 0, confidence: 1, volShiftFraction: 0.2, maintenanceFraction: 1.5 };
    expect(marginParamsProblems(bad)).toEqual([
      'mporDays must be in (0, 365]', 'confidence must be in (0.5, 1)', 'maintenanceFraction must be in (0, 1]',
    ]);
    expect(() => initialMargin({ terms: perp, side: 'LONG' }, market, bad)).toThrow(/mporDays/);
  });
});

describe('SPAN scenarios', () => {
  it("follows CME's 16: 0, ±1/3, ±2/3, ±3/3 with vol up and down, then ±3× at 35%", () => {
    const s = spanScenarios(LISTED_MARGIN_PARAMS);
    expect(s).toHaveLength(16);
    expect(s.map((x) => x.number)).toEqual([...Array(16).keys()].map((i) => i + 1));
    expect(s.slice(0, 14).map((x) => x.priceMoveMultiple)).toEqual([0, 0, 1 / 3, 1 / 3, -1 / 3, -1 / 3, 2 / 3, 2 / 3, -2 / 3, -2 / 3, 1, 1, -1, -1]);
    expect(s.slice(0, 14).map((x) => x.volDirection)).toEqual([1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1]);
    expect(s.slice(14)).toEqual([
      { number: 15, priceMoveMultiple: 3, volDirection: 0, coverFraction: 0.35 },
      { number: 16, priceMoveMultiple: -3, volDirection: 0, coverFraction: 0.35 },
    ]);
  });
});

describe('initial and maintenance margin', () => {
  it('charges a perpetual a lognormal move: a long size·mark·(1 − e^−L), a short size·mark·(e^L − 1)', () => {
    const scan = scanRangeFraction(0.6, LISTED_MARGIN_PARAMS);
    const long = marginRequirement({ terms: perp, side: 'LONG' }, market, LISTED_MARGIN_PARAMS);
    expect(long.initial).toBeCloseTo(2 * 100_000 * (1 - Math.exp(-scan)), 6);
    expect(long.maintenance).toBeCloseTo(long.initial / 2, 9);
    expect(long.worstScenario).toBe(13);
    const losses = riskArray({ terms: perp, side: 'LONG' }, market, LISTED_MARGIN_PARAMS);
    expect(losses[0]).toBe(0);
    expect(losses[10]).toBeCloseTo(-2 * 100_000 * (Math.exp(scan) - 1), 6);
    expect(losses[15]).toBeCloseTo(0.35 * 2 * 100_000 * (1 - Math.exp(-3 * scan)), 6);
    const short = marginRequirement({ terms: perp, side: 'SHORT' }, market, LISTED_MARGIN_PARAMS);
    // the short's worst is the up-move or 35% of the 3× extreme up-move (convex in log-space)
    expect(short.initial).toBeCloseTo(2 * 100_000 * Math.max(Math.exp(scan) - 1, 0.35 * (Math.exp(3 * scan) - 1)), 6);
    expect([11, 15]).toContain(short.worstScenario);
    expect(short.initial).toBeGreaterThan(long.initial);
  });

  it('a down move never takes the price below zero, however large the vol', () => {
    const wild = { ...market, volAnnual: 20 };
    const long = marginRequirement({ terms: { ...perp, entryPrice: 100_000 }, side: 'LONG' }, wild, OTC_MARGIN_PARAMS);
    expect(long.initial).toBeLessThan(2 * 100_000);
    expect(long.initial).toBeGreaterThan(0.99 * 2 * 100_000);
  });

  it('asks a short far out-of-the-money option the short option minimum (Deribit: 10% of the underlying)', () => {
    const farCall: ContractTerms = { ...call, strike: 150_000, expiryMs: NOW_MS + 7 * DAY_MS };
    const farPut: ContractTerms = { ...call, optionType: 'PUT', strike: 50_000, expiryMs: NOW_MS + 7 * DAY_MS };
    const calm = { ...market, volAnnual: 0.3 };
    for (const terms of [farCall, farPut]) {
      const r = marginRequirement({ terms, side: 'SHORT' }, calm, OTC_MARGIN_PARAMS);
      expect(r.initial).toBeCloseTo(0.1 * 100_000, 6);
      expect(shortOptionMinimum({ terms, side: 'LONG' }, calm, OTC_MARGIN_PARAMS)).toBe(0);
    }
    // at the money: 15%
    expect(shortOptionMinimum({ terms: { ...call, strike: 100_000 }, side: 'SHORT' }, calm, OTC_MARGIN_PARAMS)).toBeCloseTo(15_000, 6);
  });

  it('charges a basis trade (long perpetual, short future) the spread charge, not zero', () => {
    const future: ContractTerms = { kind: 'FUTURE', underlying: 'BTC-USD', size: 2, entryPrice: 95_000, expiryMs: NOW_MS + 90 * DAY_MS };
    const positions = [{ terms: perp, side: 'LONG' as const }, { terms: future, side: 'SHORT' as const }];
    const im = portfolioInitialMargin(positions, { 'BTC-USD': market }, () => OTC_MARGIN_PARAMS);
    expect(spreadCharge(positions, market, OTC_MARGIN_PARAMS)).toBeCloseTo(0.03 * 100_000 * 2, 6);
    expect(im).toBeCloseTo(0.03 * 100_000 * 2, 6);
    // the same tier nets to nothing: a perpetual against a perpetual is no spread
    expect(spreadCharge([{ terms: perp, side: 'LONG' }, { terms: perp, side: 'SHORT' }], market, OTC_MARGIN_PARAMS)).toBe(0);
  });

  it('asks more for OTC (5 days @ 99.5%) than for listed (2 days @ 99%)', () => {
    const position = { terms: perp, side: 'LONG' as const };
    expect(initialMargin(position, market, OTC_MARGIN_PARAMS)).toBeGreaterThan(initialMargin(position, market, LISTED_MARGIN_PARAMS));
  });

  it('charges an option writer more than its buyer: the grids are symmetric, the payoffs are not', () => {
    const long = initialMargin({ terms: call, side: 'LONG' }, market, OTC_MARGIN_PARAMS);
    const short = initialMargin({ terms: call, side: 'SHORT' }, market, OTC_MARGIN_PARAMS);
    expect(short).toBeGreaterThan(2 * long);
  });

  it('nets positions on one underlying scenario by scenario', () => {
    const paramsOf = () => LISTED_MARGIN_PARAMS;
    const markets = { 'BTC-USD': market };
    expect(portfolioInitialMargin([{ terms: perp, side: 'LONG' }, { terms: perp, side: 'SHORT' }], markets, paramsOf)).toBeCloseTo(0, 9);
    expect(() => portfolioInitialMargin([{ terms: { ...perp, underlying: 'DOGE-USD' }, side: 'LONG' }], markets, paramsOf)).toThrow(/DOGE-USD/);
  });

  describe('properties', () => {
    const paramsArb: fc.Arbitrary<MarginParams> = fc.record({
      mporDays: fc.integer({ min: 1, max: 10 }),
      confidence: fc.double({ min: 0.9, max: 0.999, noNaN: true }),
      volShiftFraction: fc.double({ min: 0, max: 0.5, noNaN: true }),
      maintenanceFraction: fc.double({ min: 0.1, max: 1, noNaN: true }),
    });

    it('initial margin is ≥ 0 and ≥ maintenance', () => {
      fc.assert(fc.property(termsArb(), sideArb, marketArb, paramsArb, (terms, side, m, params) => {
        const r = marginRequirement({ terms, side }, m, params);
        expect(r.initial).toBeGreaterThanOrEqual(0);
        expect(r.initial).toBeGreaterThanOrEqual(r.maintenance);
        expect(r.maintenance).toBeGreaterThanOrEqual(0);
      }), { numRuns: 200 });
    });

    it('charges a linear short more than its opposite long (the lognormal up-move is the larger)', () => {
      const linear = termsArb().filter((t) => t.kind !== 'OPTION');
      fc.assert(fc.property(linear, marketArb, paramsArb, (terms, m, params) => {
        const long = initialMargin({ terms, side: 'LONG' }, m, params);
        const short = initialMargin({ terms, side: 'SHORT' }, m, params);
        expect(short).toBeGreaterThanOrEqual(long - 1e-9 * m.mark * terms.size);
        expect(long).toBeLessThanOrEqual(m.mark * terms.size);
      }), { numRuns: 200 });
    });

    it('never charges an option buyer more than the option is worth now', () => {
      const options = termsArb().filter((t) => t.kind === 'OPTION');
      fc.assert(fc.property(options, marketArb, paramsArb, (terms, m, params) => {
        const valueNow = markToMarket(terms, 'LONG', m) + terms.entryPrice * terms.size;
        expect(initialMargin({ terms, side: 'LONG' }, m, params)).toBeLessThanOrEqual(valueNow + 1e-6 * m.mark);
      }), { numRuns: 200 });
    });

    it('netting never charges more than the positions one by one', () => {
      fc.assert(fc.property(fc.array(fc.record({ terms: termsArb(), side: sideArb }), { maxLength: 6 }), marketArb, marketArb, marketArb, (positions, a, b, c) => {
        const markets = { 'BTC-USD': a, 'ETH-USD': b, 'SOL-USD': c };
        const netted = portfolioInitialMargin(positions, markets, () => OTC_MARGIN_PARAMS);
        const alone = positions.reduce((sum, p) => sum + initialMargin(p, markets[p.terms.underlying as keyof typeof markets], OTC_MARGIN_PARAMS), 0);
        expect(netted).toBeGreaterThanOrEqual(0);
        expect(netted).toBeLessThanOrEqual(alone + 1e-6 * (1 + alone));
      }), { numRuns: 100 });
    });
  });
});
