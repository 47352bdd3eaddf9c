import type { ContractTerms } from '@backstop/kernel';
import { DAY_MS, YEAR_MS } from '@backstop/kernel';
import { black76 } from './option-value';
import { markToMarket, optionValue, valuationProblems } from './valuation';

const NOW_MS = Date.UTC(2025, 0, 1);
const perp: ContractTerms = { kind: 'PERPETUAL', underlying: 'BTC-USD', size: 2, entryPrice: 100_000 };
const future: ContractTerms = { ...perp, kind: 'FUTURE', expiryMs: NOW_MS + 30 * DAY_MS };
const call: ContractTerms = {
  kind: 'OPTION', underlying: 'BTC-USD', size: 3, entryPrice: 4_000, optionType: 'CALL', strike: 100_000, expiryMs: NOW_MS + 30 * DAY_MS,
};

describe('markToMarket', () => {
  it('values a linear contract as (mark − entry)·size for the long and the negative for the short', () => {
    const market = { mark: 97_500, volAnnual: 0.6, nowMs: NOW_MS };
    expect(markToMarket(perp, 'LONG', market)).toBe(-5_000);
    expect(markToMarket(perp, 'SHORT', market)).toBe(5_000);
    expect(markToMarket(future, 'LONG', { ...market, mark: 101_000 })).toBe(2_000);
  });

  it('values an option long as (Black-76 value − premium)·size and the short as the negative', () => {
    const market = { mark: 102_000, volAnnual: 0.55, nowMs: NOW_MS };
    const value = black76('CALL', 102_000, 100_000, 0.55, (30 * DAY_MS) / YEAR_MS, 0);
    expect(markToMarket(call, 'LONG', market)).toBeCloseTo((value - 4_000) * 3, 8);
    expect(markToMarket(call, 'SHORT', market)).toBeCloseTo(-(value - 4_000) * 3, 8);
  });

  it('uses the intrinsic value at and after expiry', () => {
    const atExpiry = { mark: 103_000, volAnnual: 0.55, nowMs: NOW_MS + 30 * DAY_MS };
    expect(markToMarket(call, 'LONG', atExpiry)).toBe((3_000 - 4_000) * 3);
    expect(optionValue('PUT', 100_000, NOW_MS, 90_000, 0.5, NOW_MS + 1)).toBe(10_000);
  });

  it('refuses terms it cannot value, naming what is missing', () => {
    const noStrike = { ...call, strike: undefined };
    expect(valuationProblems(noStrike)).toEqual(['an OPTION needs a finite strike > 0']);
    expect(() => markToMarket(noStrike, 'LONG', { mark: 1, volAnnual: 0.5, nowMs: NOW_MS })).toThrow(/strike/);
    expect(() => markToMarket({ ...perp, size: 0 }, 'LONG', { mark: 1, volAnnual: 0.5, nowMs: NOW_MS })).toThrow(/size/);
  });
});
