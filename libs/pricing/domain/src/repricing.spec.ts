import fc from 'fast-check';
import { limitCuts, repriceReasons } from './repricing';
import { DEFAULT_PRICING_POLICY } from './policy';

const basis = { spot: '60000', volAnnual: '0.6', pdAnnual: '0.02', collateralHeld: '0', markAt: '2026-01-01T00:00:00Z', seed: 1 };

describe('repricing triggers', () => {
  it('names every input that moved past its threshold, and nothing else', () => {
    const t = DEFAULT_PRICING_POLICY.reprice;
    expect(repriceReasons(basis, { underlying: 'BTC-USD', spot: 59_000, volAnnual: 0.65, pdAnnual: 0.021 }, t)).toEqual([]);
    expect(repriceReasons(basis, { underlying: 'BTC-USD', spot: 48_000, volAnnual: 0.45, pdAnnual: 0.01 }, t)).toEqual([
      'BTC-USD mark moved -20% (60000 → 48000), threshold 10%',
      'BTC-USD vol moved -0.15 (0.6 → 0.45), threshold 0.1',
      'counterparty PD moved -50% (0.02 → 0.01), threshold 25%',
    ]);
    expect(repriceReasons({ ...basis, pdAnnual: '0' }, { underlying: 'BTC-USD', spot: 60_000, volAnnual: 0.6, pdAnnual: 0.001 }, t)).toEqual([
      'counterparty PD moved from 0 (0 → 0.001), threshold 25%',
    ]);
  });
});

describe('limit cuts when capacity is stressed', () => {
  it('shrinks every contribution by the same fraction, capping limits at it', () => {
    const cuts = limitCuts(
      [
        { coverageId: 'a', limitMinor: 100n, stressMinor: 100n },
        { coverageId: 'b', limitMinor: 1_000n, stressMinor: 300n },
      ],
      200n,
    );
    expect(cuts).toEqual([
      { coverageId: 'a', oldLimitMinor: 100n, newLimitMinor: 50n },
      { coverageId: 'b', oldLimitMinor: 1_000n, newLimitMinor: 150n },
    ]);
    expect(limitCuts([{ coverageId: 'a', limitMinor: 100n, stressMinor: 100n }], 0n)).toEqual([]);
  });

  it('property: frees at least the deficit (or everything), never raises a limit, never goes below zero', () => {
    const coverage = fc.record({ limitMinor: fc.bigInt({ min: 0n, max: 10n ** 12n }), share: fc.double({ min: 0, max: 1, noNaN: true }) });
    fc.assert(
      fc.property(fc.array(coverage, { minLength: 1, maxLength: 20 }), fc.bigInt({ min: 1n, max: 10n ** 13n }), (list, deficit) => {
        const coverages = list.map((c, i) => ({ coverageId: `c${i}`, limitMinor: c.limitMinor, stressMinor: BigInt(Math.floor(Number(c.limitMinor) * c.share)) }));
        const cuts = new Map(limitCuts(coverages, deficit).map((c) => [c.coverageId, c.newLimitMinor]));
        const before = coverages.reduce((s, c) => s + c.stressMinor, 0n);
        const after = coverages.reduce((s, c) => {
          const limit = cuts.get(c.coverageId) ?? c.limitMinor;
          expect(limit <= c.limitMinor && limit >= 0n).toBe(true);
          return s + (c.stressMinor < limit ? c.stressMinor : limit);
        }, 0n);
        expect(after <= (before > deficit ? before - deficit : 0n)).toBe(true);
      }),
    );
  });
});
