import fc from 'fast-check';
import { DEFAULT_WATERFALL_ORDER, isTranche, LayerKind } from '../layers';
import { ProtectedLoss, WaterfallInput, WaterfallLayer } from '../waterfall';

// Small amounts make ties, zeros and exact exhaustion common; large ones check bigint scale.
const amountMinor = fc.oneof(fc.bigInt({ min: 0n, max: 50n }), fc.bigInt({ min: 0n, max: 10n ** 15n }));

export const lossesArb: fc.Arbitrary<ProtectedLoss[]> = fc
  .array(fc.record({ lossMinor: amountMinor, coverageLimitMinor: amountMinor }), { minLength: 0, maxLength: 6 })
  .map((rows) => rows.map((row, i) => ({ partyId: `party-${i}`, ...row })));

function layerArb(kind: LayerKind): fc.Arbitrary<WaterfallLayer> {
  if (kind === 'POOL_MARGIN_ADVANCE') {
    // Earmarked for some of the parties (and for ones with no loss here): SPEC §3.8.
    return fc.array(amountMinor, { maxLength: 4 }).map((amounts) => ({
      kind,
      availableMinor: amounts.reduce((s, b) => s + b, 0n),
      earmarks: amounts.map((amountMinor, i) => ({ partyId: `party-${i * 2}`, amountMinor })),
    }));
  }
  if (!isTranche(kind)) return amountMinor.map((availableMinor) => ({ kind, availableMinor }));
  return fc.array(amountMinor, { maxLength: 5 }).map((balances) => ({
    kind,
    availableMinor: balances.reduce((s, b) => s + b, 0n),
    providers: balances.map((balanceMinor, i) => ({ providerId: `${kind}-p${i}`, balanceMinor })),
  }));
}

/** Any order of any subset of the layer kinds: the order is configurable. */
export const layerOrderArb: fc.Arbitrary<LayerKind[]> = fc.shuffledSubarray([...DEFAULT_WATERFALL_ORDER]);

export function waterfallInputArb(order?: fc.Arbitrary<readonly LayerKind[]>): fc.Arbitrary<WaterfallInput> {
  const kinds = order ?? fc.constant(DEFAULT_WATERFALL_ORDER);
  return fc.record({
    losses: lossesArb,
    layers: kinds.chain((ks) => fc.tuple(...ks.map(layerArb))),
  });
}
