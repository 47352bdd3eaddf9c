/** fast-check generators shared by this library's specs (not exported from the public API). */
import fc from 'fast-check';
import type { ContractTerms, Side } from '@backstop/kernel';
import { DAY_MS } from '@backstop/kernel';
import type { MarketPoint } from '../valuation';

export const NOW_MS = Date.UTC(2025, 0, 1);
export const UNDERLYINGS = ['BTC-USD', 'ETH-USD', 'SOL-USD'] as const;

const price = (min: number, max: number) => fc.double({ min, max, noNaN: true });

export const sideArb: fc.Arbitrary<Side> = fc.constantFrom<Side>('LONG', 'SHORT');

export function termsArb(underlying: fc.Arbitrary<string> = fc.constantFrom(...UNDERLYINGS)): fc.Arbitrary<ContractTerms> {
  const linear = fc.record({
    kind: fc.constantFrom<'PERPETUAL' | 'FUTURE'>('PERPETUAL', 'FUTURE'),
    underlying,
    size: price(0.01, 100),
    entryPrice: price(1_000, 200_000),
    expiryMs: fc.integer({ min: 1, max: 365 }).map((d) => NOW_MS + d * DAY_MS),
  });
  const option = fc.record({
    kind: fc.constant<'OPTION'>('OPTION'),
    underlying,
    size: price(0.01, 100),
    entryPrice: price(0, 20_000),
    optionType: fc.constantFrom<'CALL' | 'PUT'>('CALL', 'PUT'),
    strike: price(1_000, 200_000),
    // Some options have already expired: they are worth their intrinsic value.
    expiryMs: fc.integer({ min: -5, max: 365 }).map((d) => NOW_MS + d * DAY_MS),
  });
  return fc.oneof(linear, option);
}

export const marketArb: fc.Arbitrary<MarketPoint> = fc.record({
  mark: price(1_000, 200_000),
  volAnnual: price(0.05, 2),
  nowMs: fc.constant(NOW_MS),
});
