/**
 * Invariants of the pool and the default case, over generated histories (fast-check):
 * the waterfall order, exact allocation, coverage limits, non-negative pool balances, money
 * conservation, recovery reconciliation, and a default paid once however often it is settled.
 */
import fc from 'fast-check';
import { DAY_MS, fromMinor, iso, ms, toMinor } from '@backstop/kernel';
import { DEFAULT_WATERFALL_ORDER, isTranche, LayerKind, valueOfShares } from '@backstop/settlement-model';
import { AssessedParty } from './close-out';
import { DefaultCommand, defaultDecider, DefaultEvent, PayoutMadeData } from './default-case';
import { DEFAULT_POOL_POLICY, Tranche, TRANCHES } from './policy';
import { createPoolDecider, DefaultLossChargedData, PoolCommand, PoolEvent, PoolState, trancheBalances } from './pool';
import { asProvider, history, T0 } from './testing/fixtures';

const money = (minor: bigint) => fromMinor(minor, 6);
const sum = (xs: readonly bigint[]) => xs.reduce((s, x) => s + x, 0n);
const amountArb = fc.oneof(fc.bigInt({ min: 1n, max: 100n }), fc.bigInt({ min: 1n, max: 10n ** 13n }));
const trancheArb = fc.constantFrom<Tranche>('JUNIOR', 'SENIOR');
const providerArb = fc.constantFrom('p0', 'p1', 'p2', 'p3');
const orderArb: fc.Arbitrary<LayerKind[]> = fc.shuffledSubarray([...DEFAULT_WATERFALL_ORDER], { minLength: 4, maxLength: 4 });

const depositsArb = fc.array(fc.record({ providerId: providerArb, tranche: trancheArb, amount: amountArb }), { maxLength: 8 });
/** A protected party's loss and its coverages (the limit is their sum). */
const lossesArb = fc
  .array(fc.record({ loss: fc.oneof(fc.bigInt({ min: 0n, max: 100n }), amountArb), limits: fc.array(fc.oneof(fc.bigInt({ min: 0n, max: 100n }), amountArb), { maxLength: 3 }) }), { maxLength: 5 })
  .map((rows) => rows.map((r, i) => ({ partyId: `desk${i}`, ...r })));

interface Scenario {
  order: LayerKind[];
  deposits: { providerId: string; tranche: Tranche; amount: bigint }[];
  advance: bigint;
  contractCollateral: bigint;
  losses: { partyId: string; loss: bigint; limits: bigint[] }[];
}
const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  order: orderArb,
  deposits: depositsArb,
  advance: fc.oneof(fc.constant(0n), amountArb),
  contractCollateral: fc.oneof(fc.constant(0n), amountArb),
  losses: lossesArb,
});

/** Funds the pool, advances a margin call for cp1, charges cp1's default; records it on the case. */
function settle(s: Scenario) {
  const decider = createPoolDecider({ ...DEFAULT_POOL_POLICY, waterfallOrder: s.order });
  const pool = history(decider, [
    ...s.deposits.map((d): PoolCommand => ({ type: 'DepositCapital', providerId: d.providerId, tranche: d.tranche, amount: money(d.amount), provider: asProvider(d.providerId), at: T0 })),
    ...(s.advance > 0n ? [{ type: 'CoverMarginCall', callId: 'm1', partyId: 'cp1', amount: money(s.advance), currency: 'USDC', protections: s.losses.map((l) => ({ partyId: l.partyId, coverageLimit: money(sum(l.limits)) })), at: T0 } as PoolCommand] : []),
  ]);
  const before = pool.reduce(decider.evolve, decider.initialState);
  const charge: PoolCommand = {
    type: 'ChargeDefaultLoss',
    defaultId: 'cp1',
    partyId: 'cp1',
    losses: s.losses.map((l) => ({ partyId: l.partyId, loss: money(l.loss), coverageLimit: money(sum(l.limits)) })),
    contractCollateral: money(s.contractCollateral),
    at: T0,
  };
  const charged = decider.decide(charge, before);
  const after = charged.reduce(decider.evolve, before);
  const data = (charged[0] as Extract<PoolEvent, { type: 'DefaultLossCharged' }>).data;
  const parties: AssessedParty[] = s.losses.map((l) => ({
    partyId: l.partyId,
    contractIds: [],
    netValue: money(l.loss),
    lossOwed: money(l.loss),
    coverageLimit: money(sum(l.limits)),
    coverages: l.limits.map((limit, i) => ({ coverageId: `${l.partyId}-cov${i}`, limit: money(limit) })),
  }));
  const caseEvents = history(defaultDecider, [
    { type: 'DeclareDefault', defaultId: 'cp1', partyId: 'cp1', reason: 'OPERATOR', detail: '', lastSaneMarks: {}, triggerEventId: 'e', bookPosition: '0', currency: 'USDC', at: T0 },
  ]);
  const closed: DefaultEvent[] = [
    ...caseEvents,
    { type: 'LossesAssessed', data: { defaultId: 'cp1', partyId: 'cp1', currency: 'USDC', contractCollateral: money(s.contractCollateral), parties, excludedContracts: [], at: T0 } },
  ];
  const record: DefaultCommand = { type: 'RecordWaterfall', defaultId: 'cp1', charge: data, at: T0 };
  const recorded = history(defaultDecider, [record], closed);
  return { decider, before, after, charge, charged, data, closed, record, recorded };
}

describe('waterfall properties (through the pool and the default case)', () => {
  it('never takes from a later layer while an earlier one could still pay', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const { data } = settle(s);
        data.layers.forEach((earlier, i) =>
          data.layers.slice(i + 1).forEach((later) => {
            if (toMinor(later.taken, 6) === 0n || toMinor(earlier.remaining, 6) === 0n) return;
            // The legitimate cases: pool money stops at the coverage limit, the defaulter's money does
            // not; and the margin advance pays only the parties it was earmarked for (SPEC §3.8).
            expect(earlier.layer === 'POOL_MARGIN_ADVANCE' || (isTranche(earlier.layer) && !isTranche(later.layer))).toBe(true);
          }),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('allocates exactly the loss: layer takes plus unpaid claims equal the losses, provider takes equal the tranche take', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const { data } = settle(s);
        const taken = sum(data.layers.map((l) => toMinor(l.taken, 6)));
        const unpaid = sum(data.parties.map((p) => toMinor(p.unpaidClaim, 6)));
        expect(taken + unpaid).toBe(sum(s.losses.map((l) => l.loss)));
        for (const layer of data.layers.filter((l) => isTranche(l.layer))) {
          expect(sum(Object.values(layer.perProvider ?? {}).map((a) => toMinor(a, 6)))).toBe(toMinor(layer.taken, 6));
        }
        for (const layer of data.layers) expect(toMinor(layer.taken, 6) <= toMinor(layer.available, 6)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('pays no party beyond its coverage from the pool, and no coverage beyond its limit', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const { data, recorded } = settle(s);
        for (const p of data.parties) expect(toMinor(p.fromPool, 6) <= toMinor(p.coverageLimit, 6)).toBe(true);
        const limits = new Map<string, bigint>(s.losses.flatMap((l) => l.limits.map((limit, i): [string, bigint] => [`${l.partyId}-cov${i}`, limit])));
        const payouts = recorded.filter((e) => e.type === 'PayoutMade').map((e) => e.data as PayoutMadeData);
        for (const payout of payouts) {
          for (const [coverageId, amount] of Object.entries(payout.perCoverage)) expect(toMinor(amount, 6) <= limits.get(coverageId)!).toBe(true);
          expect(sum(Object.values(payout.perCoverage).map((a) => toMinor(a, 6)))).toBe(toMinor(payout.fromPool, 6));
          const loss = s.losses.find((l) => l.partyId === payout.partyId)!.loss;
          expect(toMinor(payout.amount, 6) <= loss).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('leaves every tranche and provider balance non-negative, reduced by exactly its take', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const { before, after, data } = settle(s);
        for (const t of TRANCHES) {
          const taken = toMinor(data.perTranche[t], 6);
          expect(after.tranches[t].capitalMinor).toBe(before.tranches[t].capitalMinor - taken);
          expect(after.tranches[t].capitalMinor >= 0n).toBe(true);
          const balances = new Map(trancheBalances(before, t).map((b) => [b.providerId, b.balanceMinor]));
          const layer = data.layers.find((l) => l.layer === (t === 'JUNIOR' ? 'JUNIOR_TRANCHE' : 'SENIOR_TRANCHE'))!;
          for (const [providerId, take] of Object.entries(layer.perProvider ?? {})) expect(toMinor(take, 6) <= balances.get(providerId)!).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('settles a default once: charging and recording again adds nothing', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const { decider, after, charge, closed, recorded, record } = settle(s);
        expect(decider.decide(charge, after)).toEqual([]);
        expect(decider.decide({ type: 'FreezeWithdrawals', defaultId: 'cp1', partyId: 'cp1', at: T0 }, after)).toEqual([]);
        const settledState = recorded.slice(closed.length).reduce(defaultDecider.evolve, closed.reduce(defaultDecider.evolve, defaultDecider.initialState));
        expect(defaultDecider.decide(record, settledState)).toEqual([]);
        expect(recorded.filter((e) => e.type === 'DefaultSettled')).toHaveLength(1);
      }),
      { numRuns: 100 },
    );
  });

  it('reconciles recoveries with the loss: repaid plus still owed is what each creditor lost; the rest is surplus', () => {
    fc.assert(
      fc.property(scenarioArb, fc.array(amountArb, { minLength: 1, maxLength: 4 }), (s, recoveries) => {
        const { recorded } = settle(s);
        const settled = recorded.find((e) => e.type === 'DefaultSettled')!.data as { creditors: { layer: string; perCreditor: Record<string, string> }[] };
        const owed = new Map(settled.creditors.flatMap((l) => Object.entries(l.perCreditor).map(([id, a]) => [`${l.layer}/${id}`, toMinor(a, 6)] as const)));
        const events = history(defaultDecider, recoveries.map((amount): DefaultCommand => ({ type: 'RecordRecovery', defaultId: 'cp1', amount: money(amount), reference: 'r', at: T0 })), recorded);
        const repaid = new Map<string, bigint>();
        let surplus = 0n;
        let allocated = 0n;
        for (const e of events.slice(recorded.length)) {
          if (e.type === 'RecoveryReceived') surplus += toMinor(e.data.surplusToDefaulter, 6);
          if (e.type !== 'RecoveryAllocated' || e.data.layer === 'SURPLUS') continue;
          allocated += toMinor(e.data.amount, 6);
          for (const [id, a] of Object.entries(e.data.perCreditor)) repaid.set(`${e.data.layer}/${id}`, (repaid.get(`${e.data.layer}/${id}`) ?? 0n) + toMinor(a, 6));
        }
        expect(allocated + surplus).toBe(sum(recoveries));
        const state = events.reduce(defaultDecider.evolve, defaultDecider.initialState);
        for (const layer of state.outstanding) {
          for (const c of layer.creditors) expect((repaid.get(`${layer.kind}/${c.creditorId}`) ?? 0n) + c.outstandingMinor).toBe(owed.get(`${layer.kind}/${c.creditorId}`));
        }
        if (surplus > 0n) expect(state.outstanding.every((l) => l.creditors.every((c) => c.outstandingMinor === 0n))).toBe(true);
        // What providers lost in the default (tranche takes + unrepaid advance) is exactly what they are owed.
        const data = settle(s).data;
        for (const t of TRANCHES) {
          const kind = t === 'JUNIOR' ? 'JUNIOR_TRANCHE' : 'SENIOR_TRANCHE';
          const lost = toMinor(data.perTranche[t], 6) + sum(Object.values(data.advance.unreturnedPerProvider[t]).map((a) => toMinor(a, 6)));
          expect(sum([...owed].filter(([k]) => k.startsWith(`${kind}/`)).map(([, a]) => a))).toBe(lost);
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('pool balances under any sequence of commands', () => {
  // Two providers and weights that favour withdrawals, so generated histories reach the window often.
  const seqProviderArb = fc.constantFrom('p0', 'p1');
  const commandArb: fc.Arbitrary<(atIso: string) => PoolCommand> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ providerId: seqProviderArb, tranche: trancheArb, amount: amountArb }).map((d) => (at: string): PoolCommand => ({ type: 'DepositCapital', providerId: d.providerId, tranche: d.tranche, amount: money(d.amount), provider: asProvider(d.providerId), at })) },
    { weight: 3, arbitrary: fc.record({ providerId: seqProviderArb, tranche: trancheArb }).map((d) => (at: string): PoolCommand => ({ type: 'RequestWithdrawal', ...d, at })) },
    { weight: 4, arbitrary: fc.record({ providerId: seqProviderArb, tranche: trancheArb }).map((d) => (at: string): PoolCommand => ({ type: 'WithdrawCapital', ...d, at })) },
    { weight: 1, arbitrary: amountArb.map((a) => (at: string): PoolCommand => ({ type: 'DistributePremium', coverageId: 'cov', payerPartyId: 'desk', amount: money(a), currency: 'USDC', at })) },
    { weight: 1, arbitrary: fc.record({ callId: fc.constantFrom('m1', 'm2', 'm3'), partyId: fc.constantFrom('cp1', 'cp2'), amount: amountArb }).map((d) => (at: string): PoolCommand => ({ type: 'CoverMarginCall', callId: d.callId, partyId: d.partyId, amount: money(d.amount), currency: 'USDC', protections: [{ partyId: 'desk1', coverageLimit: '100000' }], at })) },
    { weight: 1, arbitrary: fc.constantFrom('cp1', 'cp2').map((p) => (at: string): PoolCommand => ({ type: 'FreezeWithdrawals', defaultId: p, partyId: p, at })) },
    {
      weight: 1,
      arbitrary: fc.record({ party: fc.constantFrom('cp1', 'cp2'), loss: amountArb, limit: amountArb, collateral: fc.oneof(fc.constant(0n), amountArb) }).map(
        (d) => (at: string): PoolCommand => ({ type: 'ChargeDefaultLoss', defaultId: d.party, partyId: d.party, losses: [{ partyId: 'desk', loss: money(d.loss), coverageLimit: money(d.limit) }], contractCollateral: money(d.collateral), at }),
      ),
    },
    { weight: 2, arbitrary: fc.constantFrom('cp1', 'cp2').map((p) => (at: string): PoolCommand => ({ type: 'UnfreezeWithdrawals', defaultId: p, at })) },
  );

  it('keeps capital, shares and every provider value non-negative, and capital equal to the money that moved', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.array(fc.tuple(commandArb, fc.integer({ min: 0, max: 3 })), { minLength: 15, maxLength: 40, size: 'max' }), (steps) => {
        // A short cooldown so generated histories reach the withdrawal window often.
        const decider = createPoolDecider({ ...DEFAULT_POOL_POLICY, cooldownMs: 2 * DAY_MS, windowMs: 2 * DAY_MS });
        let state: PoolState = decider.initialState;
        let atMs = ms(T0);
        const flow: Record<Tranche, bigint> = { JUNIOR: 0n, SENIOR: 0n };
        for (const [make, days] of steps) {
          atMs += days * DAY_MS;
          let events: PoolEvent[];
          try {
            events = decider.decide(make(iso(atMs)), state);
          } catch (err) {
            if ((err as Error).name === 'DomainRejection') continue;
            throw err;
          }
          for (const e of events) {
            seen.add(e.type);
            state = decider.evolve(state, e);
            trackFlow(flow, e);
          }
          for (const t of TRANCHES) {
            const tranche = state.tranches[t];
            expect(tranche.capitalMinor >= 0n).toBe(true);
            expect(tranche.capitalMinor).toBe(flow[t]);
            const shares = [...state.positions[t].values()].map((p) => p.shares);
            shares.forEach((sh) => expect(sh >= 0n).toBe(true));
            expect(sum(shares)).toBe(tranche.sharesTotal);
            const values = [...state.positions[t].values()].map((p) => valueOfShares(tranche, p.shares));
            expect(sum(values) <= tranche.capitalMinor).toBe(true);
          }
          expect(state.reserveMinor >= 0n).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
    // The generator must reach every kind of pool event, or the property proves less than it says.
    expect([...seen].sort()).toEqual([
      'CapitalDeposited', 'CapitalWithdrawn', 'DefaultLossCharged', 'MarginCoveredByBackstop',
      'PremiumIncomeDistributed', 'WithdrawalRequested', 'WithdrawalsFrozen', 'WithdrawalsUnfrozen',
    ]);
  });
});

/** Tranche capital recomputed from the money each event says moved (a wipe-out reset zeroes nothing: capital is 0 then). */
function trackFlow(flow: Record<Tranche, bigint>, e: PoolEvent): void {
  switch (e.type) {
    case 'CapitalDeposited':
      flow[e.data.tranche] += toMinor(e.data.amount, 6);
      return;
    case 'CapitalWithdrawn':
      flow[e.data.tranche] -= toMinor(e.data.amount, 6);
      return;
    case 'PremiumIncomeDistributed':
    case 'MarginCoveredByBackstop': {
      const sign = e.type === 'PremiumIncomeDistributed' ? 1n : -1n;
      for (const t of TRANCHES) flow[t] += sign * toMinor(e.data.perTranche[t], 6);
      return;
    }
    case 'DefaultLossCharged': {
      const data: DefaultLossChargedData = e.data;
      for (const t of TRANCHES) flow[t] -= toMinor(data.perTranche[t], 6);
      return;
    }
    default:
      return;
  }
}
