import fc from 'fast-check';
import { allocateRecovery, outstandingAfter, RecoveryLayer, RecoveryLayerKind, recoveryLayersFromWaterfall } from './recovery';
import { layerOrderArb, waterfallInputArb } from './testing/arbitraries';
import { runWaterfall } from './waterfall';

const sum = (xs: readonly bigint[]): bigint => xs.reduce((s, x) => s + x, 0n);

/** What each layer is owed in total, keyed by kind. */
function owedByKind(layers: readonly RecoveryLayer[]): Map<RecoveryLayerKind, bigint> {
  return new Map(layers.map((l) => [l.kind, sum(l.creditors.map((c) => c.outstandingMinor))]));
}

describe('allocateRecovery', () => {
  const waterfall = runWaterfall({
    losses: [
      { partyId: 'a', lossMinor: 900n, coverageLimitMinor: 900n },
      { partyId: 'b', lossMinor: 300n, coverageLimitMinor: 100n },
    ],
    layers: [
      { kind: 'DEFAULTER_CONTRACT_COLLATERAL', availableMinor: 200n },
      {
        kind: 'JUNIOR_TRANCHE',
        availableMinor: 300n,
        providers: [{ providerId: 'j1', balanceMinor: 100n }, { providerId: 'j2', balanceMinor: 200n }],
      },
      { kind: 'SENIOR_TRANCHE', availableMinor: 400n, providers: [{ providerId: 's1', balanceMinor: 400n }] },
    ],
  });

  it('builds the creditors in reverse order: unpaid claims, senior, junior; defaulter layers are not creditors', () => {
    const layers = recoveryLayersFromWaterfall(waterfall);
    expect(layers.map((l) => l.kind)).toEqual(['UNPAID_CLAIMS', 'SENIOR_TRANCHE', 'JUNIOR_TRANCHE']);
    expect(owedByKind(layers)).toEqual(new Map([['UNPAID_CLAIMS', 300n], ['SENIOR_TRANCHE', 400n], ['JUNIOR_TRANCHE', 300n]]));
  });

  it('repays the last layer to bear loss first, pro rata within it', () => {
    const result = allocateRecovery({ recoveredMinor: 500n, layers: recoveryLayersFromWaterfall(waterfall) });
    expect(result.layers.map((l) => l.repaidMinor)).toEqual([300n, 200n, 0n]);
    expect(result.layers[0].creditors.map((c) => [c.creditorId, c.repaidMinor])).toEqual([['a', 132n], ['b', 168n]]);
    expect(result.surplusMinor).toBe(0n);
  });

  it('returns what exceeds every loss to the defaulter estate as surplus', () => {
    const result = allocateRecovery({ recoveredMinor: 1_250n, layers: recoveryLayersFromWaterfall(waterfall) });
    expect(result.layers.map((l) => l.outstandingAfterMinor)).toEqual([0n, 0n, 0n]);
    expect(result.layers[2].creditors.map((c) => c.repaidMinor)).toEqual([100n, 200n]);
    expect(result.surplusMinor).toBe(250n);
  });

  it('rejects bad input', () => {
    expect(() => allocateRecovery({ recoveredMinor: -1n, layers: [] })).toThrow(/negative/);
    const layer: RecoveryLayer = { kind: 'UNPAID_CLAIMS', creditors: [] };
    expect(() => allocateRecovery({ recoveredMinor: 0n, layers: [layer, layer] })).toThrow(/twice/);
  });

  describe('properties', () => {
    const installments = fc.array(fc.oneof(fc.bigInt({ min: 0n, max: 100n }), fc.bigInt({ min: 0n, max: 10n ** 15n })), { maxLength: 4 });

    it('over any installments, repaid + still owed = original loss per layer, and repaid + surplus = recovered', () => {
      fc.assert(fc.property(waterfallInputArb(layerOrderArb), installments, (input, recoveries) => {
        const original = recoveryLayersFromWaterfall(runWaterfall(input));
        let layers = original;
        const repaidByKind = new Map<RecoveryLayerKind, bigint>();
        for (const recoveredMinor of recoveries) {
          const result = allocateRecovery({ recoveredMinor, layers });
          expect(result.repaidMinor + result.surplusMinor).toBe(recoveredMinor);
          result.layers.forEach((l) => repaidByKind.set(l.kind, (repaidByKind.get(l.kind) ?? 0n) + l.repaidMinor));
          layers = outstandingAfter(result);
        }
        const owedNow = owedByKind(layers);
        owedByKind(original).forEach((lostMinor, kind) => {
          expect((repaidByKind.get(kind) ?? 0n) + (owedNow.get(kind) ?? 0n)).toBe(lostMinor);
        });
      }));
    });

    it('never repays a creditor more than it lost, nor a later layer while an earlier one is owed', () => {
      fc.assert(fc.property(waterfallInputArb(layerOrderArb), installments, (input, recoveries) => {
        const layers = recoveryLayersFromWaterfall(runWaterfall(input));
        const result = allocateRecovery({ recoveredMinor: sum(recoveries), layers });
        result.layers.forEach((layer, i) => {
          layer.creditors.forEach((c) => expect(c.repaidMinor >= 0n && c.outstandingAfterMinor >= 0n).toBe(true));
          if (layer.outstandingAfterMinor > 0n) {
            result.layers.slice(i + 1).forEach((later) => expect(later.repaidMinor).toBe(0n));
            expect(result.surplusMinor).toBe(0n);
          }
        });
      }));
    });
  });
});
