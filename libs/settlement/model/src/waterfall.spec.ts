import fc from 'fast-check';
import { isPoolMoney, isTranche } from './layers';
import { layerOrderArb, waterfallInputArb } from './testing/arbitraries';
import { runWaterfall, WaterfallInput, WaterfallLayer } from './waterfall';

const sum = (xs: readonly bigint[]): bigint => xs.reduce((s, x) => s + x, 0n);

function tranche(kind: 'JUNIOR_TRANCHE' | 'SENIOR_TRANCHE', balances: readonly bigint[]): WaterfallLayer {
  return {
    kind,
    availableMinor: sum(balances),
    providers: balances.map((balanceMinor, i) => ({ providerId: `${kind === 'JUNIOR_TRANCHE' ? 'j' : 's'}${i}`, balanceMinor })),
  };
}

function defaultLayers(contract: bigint, other: bigint, junior: readonly bigint[], senior: readonly bigint[]): WaterfallLayer[] {
  return [
    { kind: 'DEFAULTER_CONTRACT_COLLATERAL', availableMinor: contract },
    // The pool's advance, earmarked for the (protected) party 'desk' these examples use.
    { kind: 'POOL_MARGIN_ADVANCE', availableMinor: other, earmarks: [{ partyId: 'desk', amountMinor: other }] },
    tranche('JUNIOR_TRANCHE', junior),
    tranche('SENIOR_TRANCHE', senior),
  ];
}

const takes = (input: WaterfallInput) => runWaterfall(input).layers.map((l) => l.takenMinor);

describe('runWaterfall', () => {
  it('runs the loss down the layers in order, each taking exactly the remaining shortfall', () => {
    const result = runWaterfall({
      losses: [{ partyId: 'desk', lossMinor: 1_000n, coverageLimitMinor: 1_000n }],
      layers: defaultLayers(300n, 200n, [100n, 300n], [600n, 400n]),
    });
    expect(result.layers.map((l) => l.takenMinor)).toEqual([300n, 200n, 400n, 100n]);
    expect(result.layers[2].providers.map((p) => p.takenMinor)).toEqual([100n, 300n]);
    expect(result.layers[3].providers.map((p) => p.takenMinor)).toEqual([60n, 40n]);
    // The advance is pool money (SPEC §3.8): it counts with the tranches, against the limit.
    expect(result.parties[0]).toMatchObject({ fromDefaulterMinor: 300n, fromPoolMinor: 700n, unpaidClaimMinor: 0n });
  });

  it('leaves later layers untouched when the defaulter covers the loss', () => {
    const result = runWaterfall({
      losses: [{ partyId: 'desk', lossMinor: 250n, coverageLimitMinor: 1_000n }],
      layers: defaultLayers(300n, 200n, [100n], [100n]),
    });
    expect(result.layers.map((l) => l.takenMinor)).toEqual([250n, 0n, 0n, 0n]);
    expect(result.layers[0].remainingMinor).toBe(50n);
    expect(result.poolPaidMinor).toBe(0n);
  });

  it('caps only the pool by the coverage limit: the defaulter pays beyond it', () => {
    const generous = runWaterfall({
      losses: [{ partyId: 'desk', lossMinor: 150n, coverageLimitMinor: 100n }],
      layers: defaultLayers(60n, 0n, [1_000n], []),
    });
    expect(generous.parties[0]).toMatchObject({ fromDefaulterMinor: 60n, fromPoolMinor: 90n, unpaidClaimMinor: 0n });

    const capped = runWaterfall({
      losses: [{ partyId: 'desk', lossMinor: 150n, coverageLimitMinor: 50n }],
      layers: defaultLayers(60n, 0n, [1_000n], []),
    });
    expect(capped.parties[0]).toMatchObject({
      fromDefaulterMinor: 60n,
      fromPoolMinor: 50n,
      unpaidClaimMinor: 40n,
      unpaidWithinLimitMinor: 0n,
    });
    expect(capped.layers[2].remainingMinor).toBe(950n);
  });

  it('allocates what the pool cannot pay pro rata as claims on the estate', () => {
    const result = runWaterfall({
      losses: [
        { partyId: 'a', lossMinor: 600n, coverageLimitMinor: 600n },
        { partyId: 'b', lossMinor: 400n, coverageLimitMinor: 400n },
      ],
      layers: defaultLayers(0n, 0n, [300n], [200n]),
    });
    expect(result.parties.map((p) => p.fromPoolMinor)).toEqual([300n, 200n]);
    expect(result.parties.map((p) => p.unpaidClaimMinor)).toEqual([300n, 200n]);
    expect(result.parties.map((p) => p.unpaidWithinLimitMinor)).toEqual([300n, 200n]);
    expect(result).toMatchObject({ totalLossMinor: 1_000n, poolPaidMinor: 500n, unpaidMinor: 500n });
  });

  it('shares the defaulter collateral pro rata by loss, and the pool by what is within each limit', () => {
    const result = runWaterfall({
      losses: [
        { partyId: 'a', lossMinor: 300n, coverageLimitMinor: 0n },
        { partyId: 'b', lossMinor: 100n, coverageLimitMinor: 1_000n },
      ],
      layers: defaultLayers(200n, 0n, [1_000n], []),
    });
    expect(result.parties.map((p) => p.fromDefaulterMinor)).toEqual([150n, 50n]);
    expect(result.parties.map((p) => p.fromPoolMinor)).toEqual([0n, 50n]);
    expect(result.parties.map((p) => p.unpaidClaimMinor)).toEqual([150n, 0n]);
  });

  it('follows a configured order', () => {
    const result = runWaterfall({
      losses: [{ partyId: 'desk', lossMinor: 500n, coverageLimitMinor: 500n }],
      layers: [
        { kind: 'DEFAULTER_CONTRACT_COLLATERAL', availableMinor: 100n },
        tranche('JUNIOR_TRANCHE', [300n]),
        { kind: 'POOL_MARGIN_ADVANCE', availableMinor: 1_000n, earmarks: [{ partyId: 'desk', amountMinor: 1_000n }] },
      ],
    });
    expect(result.layers.map((l) => [l.kind, l.takenMinor])).toEqual([
      ['DEFAULTER_CONTRACT_COLLATERAL', 100n],
      ['JUNIOR_TRANCHE', 300n],
      ['POOL_MARGIN_ADVANCE', 100n],
    ]);
  });

  it('rejects inconsistent input', () => {
    const losses = [{ partyId: 'desk', lossMinor: 1n, coverageLimitMinor: 1n }];
    expect(() => runWaterfall({ losses, layers: [{ ...tranche('JUNIOR_TRANCHE', [5n]), availableMinor: 6n }] })).toThrow(/sum to 5/);
    expect(() => runWaterfall({ losses, layers: [tranche('JUNIOR_TRANCHE', [1n]), tranche('JUNIOR_TRANCHE', [1n])] })).toThrow(/twice/);
    expect(() => runWaterfall({ losses: [{ partyId: 'x', lossMinor: -1n, coverageLimitMinor: 0n }], layers: [] })).toThrow(/negative/);
    expect(() => runWaterfall({ losses: [...losses, ...losses], layers: [] })).toThrow(/twice/);
  });

  describe('properties', () => {
    const anyOrder = waterfallInputArb(layerOrderArb);

    it('allocates the loss exactly: takes + unpaid = loss, per party and in total', () => {
      fc.assert(fc.property(anyOrder, (input) => {
        const result = runWaterfall(input);
        expect(sum(result.layers.map((l) => l.takenMinor)) + result.unpaidMinor).toBe(result.totalLossMinor);
        result.parties.forEach((p) => expect(p.fromDefaulterMinor + p.fromPoolMinor + p.unpaidClaimMinor).toBe(p.lossMinor));
        result.layers.forEach((l) => expect(sum(l.paidToParties.map((p) => p.amountMinor))).toBe(l.takenMinor));
      }));
    });

    it('never pays a party more from the pool than its coverage limit', () => {
      fc.assert(fc.property(anyOrder, (input) => {
        runWaterfall(input).parties.forEach((p) => expect(p.fromPoolMinor <= p.coverageLimitMinor).toBe(true));
      }));
    });

    it('never takes a layer or a provider below zero, and splits a tranche take exactly', () => {
      fc.assert(fc.property(anyOrder, (input) => {
        for (const layer of runWaterfall(input).layers) {
          expect(layer.remainingMinor >= 0n).toBe(true);
          layer.providers.forEach((p) => expect(p.balanceAfterMinor >= 0n && p.takenMinor >= 0n).toBe(true));
          if (isTranche(layer.kind)) expect(sum(layer.providers.map((p) => p.takenMinor))).toBe(layer.takenMinor);
        }
      }));
    });

    it('in the default order, never touches a later layer while an earlier one has funds', () => {
      fc.assert(fc.property(waterfallInputArb(), (input) => {
        const layers = runWaterfall(input).layers;
        layers.forEach((earlier, i) => {
          // The advance's funds are earmarked: what is left of it is no one else's to take.
          if (earlier.remainingMinor === 0n || earlier.kind === 'POOL_MARGIN_ADVANCE') return;
          layers.slice(i + 1).forEach((later) => expect(later.takenMinor).toBe(0n));
        });
      }));
    });

    it('in any order, a layer with funds left leaves nothing within its reach to later layers', () => {
      // A tranche's reach (loss within coverage) is inside the defaulter's (the whole loss), so a
      // defaulter layer may follow a tranche that still has funds, never the other way round.
      fc.assert(fc.property(anyOrder, (input) => {
        const layers = runWaterfall(input).layers;
        layers.forEach((earlier, i) => {
          if (earlier.remainingMinor === 0n || earlier.kind === 'POOL_MARGIN_ADVANCE') return;
          layers.slice(i + 1)
            .filter((later) => !isPoolMoney(earlier.kind) || isTranche(later.kind))
            .forEach((later) => expect(later.takenMinor).toBe(0n));
        });
      }));
    });

    it('leaves a claim unpaid only when every layer that could pay it is exhausted', () => {
      fc.assert(fc.property(anyOrder, (input) => {
        const result = runWaterfall(input);
        const exhausted = (tranches: boolean) =>
          result.layers.filter((l) => (tranches ? isTranche(l.kind) : !isPoolMoney(l.kind))).every((l) => l.remainingMinor === 0n);
        if (result.unpaidMinor > 0n) expect(exhausted(false)).toBe(true);
        if (result.parties.some((p) => p.unpaidWithinLimitMinor > 0n)) expect(exhausted(true)).toBe(true);
      }));
    });

    it('pays the margin advance only to the parties it is earmarked for, within earmark and limit (SPEC §3.8)', () => {
      fc.assert(fc.property(anyOrder, (input) => {
        const result = runWaterfall(input);
        const advance = input.layers.find((l) => l.kind === 'POOL_MARGIN_ADVANCE');
        const outcome = result.layers.find((l) => l.kind === 'POOL_MARGIN_ADVANCE');
        if (!advance || !outcome) return;
        outcome.paidToParties.forEach((paid) => {
          const earmark = sum((advance.earmarks ?? []).filter((e) => e.partyId === paid.partyId).map((e) => e.amountMinor));
          expect(paid.amountMinor <= earmark).toBe(true);
        });
        result.parties.filter((p) => p.coverageLimitMinor === 0n).forEach((p) => expect(p.fromPoolMinor).toBe(0n));
      }));
    });

    it('is deterministic', () => {
      fc.assert(fc.property(anyOrder, (input) => expect(takes(input)).toEqual(takes(input))));
    });
  });
});
