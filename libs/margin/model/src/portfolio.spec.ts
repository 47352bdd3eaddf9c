import fc from 'fast-check';
import type { ContractTerms, Side } from '@backstop/kernel';
import { KIND_CODE, kindCodeOf, PortfolioBook } from './portfolio';
import { markToMarket } from './valuation';
import { marketArb, NOW_MS, sideArb, termsArb } from './testing/arbitraries';

const perp = (entryPrice: number): ContractTerms => ({ kind: 'PERPETUAL', underlying: 'BTC-USD', size: 1, entryPrice });

describe('PortfolioBook', () => {
  it('revalues only the rows of the ticked underlying', () => {
    const book = new PortfolioBook(8);
    book.add({ key: 10, terms: perp(100), side: 'LONG', underlyingIndex: 0, partyIndex: 0 });
    book.add({ key: 11, terms: perp(100), side: 'SHORT', underlyingIndex: 0, partyIndex: 1 });
    book.add({ key: 20, terms: { ...perp(50), underlying: 'ETH-USD' }, side: 'LONG', underlyingIndex: 1, partyIndex: 0 });
    const pnl = new Float64Array(8).fill(Number.NaN);
    expect(book.revalue(0, 110, 0.5, NOW_MS, pnl)).toBe(2);
    expect([pnl[book.slotOf(10)], pnl[book.slotOf(11)]]).toEqual([10, -10]);
    expect(pnl[book.slotOf(20)]).toBeNaN();
    book.revalue(1, 40, 0.5, NOW_MS, pnl);
    const equity = new Float64Array(2);
    book.equityByParty(pnl, Float64Array.from([1_000, 500]), equity);
    expect(Array.from(equity)).toEqual([1_000 + 10 - 10, 500 - 10]);
  });

  it('swap-removes: the last row takes the freed slot and keeps its key', () => {
    const book = new PortfolioBook(4);
    for (const key of [1, 2, 3]) book.add({ key, terms: perp(100 * key), side: 'LONG', underlyingIndex: 0, partyIndex: key });
    expect(book.remove(1)).toBe(true);
    expect(book.remove(1)).toBe(false);
    expect(book.count).toBe(2);
    expect(book.slotOf(3)).toBe(0);
    expect(book.keyAt(0)).toBe(3);
    expect(book.partyAt(0)).toBe(3);
    expect(book.slotOf(1)).toBe(-1);
  });

  it('enforces its limits and rejects bad rows', () => {
    const book = new PortfolioBook(1);
    book.add({ key: 1, terms: perp(100), side: 'LONG', underlyingIndex: 0, partyIndex: 0 });
    expect(() => book.add({ key: 2, terms: perp(100), side: 'LONG', underlyingIndex: 0, partyIndex: 0 })).toThrow(/full/);
    expect(() => new PortfolioBook(0)).toThrow(/capacity/);
    const other = new PortfolioBook(2);
    other.add({ key: 1, terms: perp(100), side: 'LONG', underlyingIndex: 0, partyIndex: 0 });
    expect(() => other.add({ key: 1, terms: perp(100), side: 'LONG', underlyingIndex: 0, partyIndex: 0 })).toThrow(/already/);
    expect(() => other.add({ key: 2, terms: { ...perp(1), kind: 'OPTION' }, side: 'LONG', underlyingIndex: 0, partyIndex: 0 })).toThrow(/strike/);
    expect(() => other.revalue(0, 1, 0.5, NOW_MS, new Float64Array(0))).toThrow(/outPnl/);
  });

  it('encodes option types in the kind code', () => {
    expect(kindCodeOf({ kind: 'OPTION', underlying: 'X', size: 1, entryPrice: 1, optionType: 'PUT', strike: 1, expiryMs: 1 })).toBe(KIND_CODE.PUT);
  });

  it('agrees with valuation.ts for random portfolios after adds and removes', () => {
    const entryArb = fc.record({
      terms: termsArb(),
      side: sideArb,
      underlyingIndex: fc.integer({ min: 0, max: 2 }),
      partyIndex: fc.integer({ min: 0, max: 4 }),
    });
    fc.assert(fc.property(
      fc.array(entryArb, { minLength: 1, maxLength: 40 }),
      fc.array(fc.nat(), { maxLength: 15 }),
      fc.tuple(marketArb, marketArb, marketArb),
      (entries, removals, markets) => {
        const book = new PortfolioBook(64);
        const byKey = new Map<number, { terms: ContractTerms; side: Side; underlyingIndex: number; partyIndex: number }>();
        entries.forEach((e, key) => {
          book.add({ key, ...e });
          byKey.set(key, e);
        });
        for (const r of removals) {
          const key = r % entries.length;
          expect(book.remove(key)).toBe(byKey.delete(key));
        }
        expect(book.count).toBe(byKey.size);

        const pnl = new Float64Array(64);
        markets.forEach((m, u) => book.revalue(u, m.mark, m.volAnnual, m.nowMs, pnl));
        const expectedEquity = [0, 0, 0, 0, 0].map((_, p) => 100 * p);
        for (let slot = 0; slot < book.count; slot++) {
          const e = byKey.get(book.keyAt(slot));
          if (e === undefined) throw new Error(`slot ${slot} holds an unknown key`);
          const simple = markToMarket(e.terms, e.side, markets[e.underlyingIndex]);
          expect(pnl[slot]).toBe(simple);
          expectedEquity[e.partyIndex] += simple;
        }
        const equity = new Float64Array(5);
        book.equityByParty(pnl, Float64Array.from([0, 100, 200, 300, 400]), equity);
        equity.forEach((value, p) => expect(value).toBeCloseTo(expectedEquity[p], 6));
      },
    ), { numRuns: 150 });
  });
});
