import fc from 'fast-check';
import type { ContractTerms } from '@backstop/kernel';
import { DAY_MS } from '@backstop/kernel';
import { normCdf } from './option-value';
import {
  confidenceZ, initialMargin, LISTED_MARGIN_PARAMS, marginParamsProblems, marginRequirement, MarginParams, normQuantile,
  OTC_MARGIN_PARAMS, portfolioInitialMargin, riskArray, scanRangeFraction, spanScenarios,
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

  it('is k·σ·√(MPOR/365): listed 2 days @ 99%, OTC 5 days @ 99.5%', () => {
    expect(scanRangeFraction(0.6, LISTED_MARGIN_PARAMS)).toBeCloseTo(2.3263478740408408 * 0.6 * Math.sqrt(2 / 365), 12);
    expect(scanRangeFraction(0.6, OTC_MARGIN_PARAMS)).toBeCloseTo(2.5758293035489004 * 0.6 * Math.sqrt(5 / 365), 12);
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
  it("follows CME's 16: 0, ±1/3, ±2/3, ±3/3 with vol up and down, then ±2× at 35%", () => {
    const s = spanScenarios(LISTED_MARGIN_PARAMS);
    expect(s).toHaveLength(16);
    expect(s.map((x) => x.number)).toEqual([...Array(16).keys()].map((i) => i + 1));
    expect(s.slice(0, 14).map((x) => x.priceMoveMultiple)).toEqual([0, 0, 1 / 3, 1 / 3, -1 / 3, -1 / 3, 2 / 3, 2 / 3, -2 / 3, -2 / 3, 1, 1, -1, -1]);
    expect(s.slice(0, 14).map((x) => x.volDirection)).toEqual([1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1]);
    expect(s.slice(14)).toEqual([
      { number: 15, priceMoveMultiple: 2, volDirection: 0, coverFraction: 0.35 },
      { number: 16, priceMoveMultiple: -2, volDirection: 0, coverFraction: 0.35 },
    ]);
  });
});

describe('initial and maintenance margin', () => {
  it('charges a perpetual size·mark·scan range (the full-range move beats 35% of twice it)', () => {
    const scan = scanRangeFraction(0.6, LISTED_MARGIN_PARAMS);
    const long = marginRequirement({ terms: perp, side: 'LONG' }, market, LISTED_MARGIN_PARAMS);
    expect(long.initial).toBeCloseTo(2 * 100_000 * scan, 6);
    expect(long.maintenance).toBeCloseTo(long.initial / 2, 9);
    expect(long.worstScenario).toBe(13);
    const losses = riskArray({ terms: perp, side: 'LONG' }, market, LISTED_MARGIN_PARAMS);
    expect(losses[0]).toBe(0);
    expect(losses[10]).toBeCloseTo(-2 * 100_000 * scan, 6);
    expect(losses[15]).toBeCloseTo(0.35 * 2 * 2 * 100_000 * scan, 6);
    expect(marginRequirement({ terms: perp, side: 'SHORT' }, market, LISTED_MARGIN_PARAMS).worstScenario).toBe(11);
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

    it('is the same for a linear long and its opposite short while no scenario price hits zero', () => {
      const linear = termsArb().filter((t) => t.kind !== 'OPTION');
      fc.assert(fc.property(linear, marketArb, paramsArb, (terms, m, params) => {
        fc.pre(2 * scanRangeFraction(m.volAnnual, params) < 1);
        const long = initialMargin({ terms, side: 'LONG' }, m, params);
        const short = initialMargin({ terms, side: 'SHORT' }, m, params);
        expect(long).toBeCloseTo(short, 6);
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
