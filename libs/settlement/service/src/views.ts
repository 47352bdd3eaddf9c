import { currencyOf, fromMinor, iso } from '@backstop/kernel';
import {
  advanceOutstanding,
  CapacityAssessedData,
  DefaultState,
  outstandingByLayer,
  pendingClosesAtMs,
  pendingOpensAtMs,
  pendingPhase,
  PoolPolicy,
  PoolState,
  trancheBalances,
  TRANCHES,
} from '@backstop/settlement';
import { valueOfShares } from '@backstop/settlement-model';
import { CapacityView } from './capacity.service';

/** Read models of the pool and of a default, as the HTTP API shows them (amounts as decimal strings). */

export function poolView(state: PoolState, policy: PoolPolicy, revision: number | 'no_stream', capacity: CapacityAssessedData | null) {
  const scale = currencyOf(policy.currency).scale;
  const money = (minor: bigint) => fromMinor(minor, scale);
  return {
    poolId: policy.poolId,
    currency: policy.currency,
    revision,
    capital: money(TRANCHES.reduce((s, t) => s + state.tranches[t].capitalMinor, 0n)),
    tranches: Object.fromEntries(
      TRANCHES.map((t) => {
        const tranche = state.tranches[t];
        return [
          t,
          {
            capital: money(tranche.capitalMinor),
            shares: tranche.sharesTotal.toString(),
            // Value of one share (shares were minted 1:1 with minor units into an empty tranche).
            sharePrice: tranche.sharesTotal === 0n ? null : money((tranche.capitalMinor * 10n ** BigInt(scale)) / tranche.sharesTotal),
            providers: trancheBalances(state, t).length,
            premiumWeight: policy.trancheWeights[t].toString(),
          },
        ];
      }),
    ),
    undistributedPremium: money(state.reserveMinor),
    withdrawals: {
      cooldownDays: policy.cooldownMs / 86_400_000,
      windowDays: policy.windowMs / 86_400_000,
      frozen: state.frozen.size > 0,
      frozenFor: [...state.frozen].map(([defaultId, f]) => ({ defaultId, partyId: f.partyId, since: f.frozenAt })),
    },
    marginAdvances: [...state.advances.keys()].sort().map((partyId) => ({ partyId, outstanding: money(advanceOutstanding(state, partyId)) })),
    waterfallOrder: policy.waterfallOrder,
    settledDefaults: [...state.charges.keys()].sort(),
    capacity,
  };
}

export function providerView(state: PoolState, policy: PoolPolicy, providerId: string, nowMs: number) {
  const scale = currencyOf(policy.currency).scale;
  const money = (minor: bigint) => fromMinor(minor, scale);
  const tranches = TRANCHES.flatMap((t) => {
    const position = state.positions[t].get(providerId);
    if (!position) return [];
    const tranche = state.tranches[t];
    const pending = position.pending;
    return [
      {
        tranche: t,
        shares: position.shares.toString(),
        value: money(valueOfShares(tranche, position.shares)),
        deposited: money(position.depositedMinor),
        withdrawn: money(position.withdrawnMinor),
        premiumIncome: money(position.incomeMinor),
        defaultLosses: money(position.lossMinor),
        marginAdvancesOutstanding: money(position.advancedMinor),
        advancesRepaid: money(position.restitutionMinor),
        pendingWithdrawal: pending
          ? {
              shares: pending.shares.toString(),
              valueAtRequest: money(pending.valueAtRequestMinor),
              valueNow: money(valueOfShares(tranche, pending.shares)),
              requestedAt: iso(pending.requestedAtMs),
              opensAt: iso(pendingOpensAtMs(pending)),
              closesAt: iso(pendingClosesAtMs(pending)),
              phase: pendingPhase(pending, nowMs),
            }
          : null,
      },
    ];
  });
  if (tranches.length === 0) return undefined;
  return {
    providerId,
    poolId: policy.poolId,
    currency: policy.currency,
    value: money(TRANCHES.reduce((s, t) => s + valueOfShares(state.tranches[t], state.positions[t].get(providerId)?.shares ?? 0n), 0n)),
    withdrawalsFrozen: state.frozen.size > 0,
    tranches,
  };
}

export function defaultView(state: DefaultState) {
  const declared = state.declared!;
  return {
    defaultId: declared.defaultId,
    partyId: declared.partyId,
    status: state.status,
    reason: declared.reason,
    detail: declared.detail,
    declaredAt: declared.at,
    currency: declared.currency,
    lastSaneMarks: declared.lastSaneMarks,
    closeOutPrices: declared.closeOutPrices ?? null,
    declaredBy: declared.declaredBy ?? null,
    closeOuts: state.closeOuts,
    losses: state.assessment ?? null,
    waterfall: waterfallLines(state),
    payouts: state.payouts,
    claims: state.claims,
    totals: state.settled?.totals ?? null,
    recoveries: state.recoveries,
    recoveryAllocations: state.allocations,
    outstanding: outstandingByLayer(state),
  };
}

/** The waterfall's layers, then (once settled) SPEC §5 step 5: what no layer paid, left as claims. */
function waterfallLines(state: DefaultState) {
  const lines: Record<string, unknown>[] = state.lines.map((l) => ({
    step: l.step,
    layer: l.layer,
    available: l.available,
    taken: l.amount,
    remaining: l.remaining,
    perParty: l.perParty,
    ...(l.perProvider ? { perProvider: l.perProvider } : {}),
  }));
  if (state.status !== 'SETTLED' || !state.settled) return lines;
  lines.push({
    step: state.lines.length + 1,
    layer: 'UNPAID_CLAIMS',
    taken: state.settled.totals.unpaid,
    perParty: Object.fromEntries(state.claims.map((c) => [c.partyId, c.amount])),
  });
  return lines;
}

export function stressView(view: CapacityView, poolId: string, lastPublished: CapacityAssessedData | null) {
  const scale = currencyOf(view.result.currency).scale;
  const money = (minor: bigint) => fromMinor(minor, scale);
  const r = view.result;
  return {
    poolId,
    currency: r.currency,
    at: view.at,
    capital: money(r.capitalMinor),
    cover2Requirement: money(r.requirementMinor),
    headroom: money(r.headroomMinor),
    worstScenario: r.worstScenario,
    worstCounterparties: r.worstCounterparties.map((w) => ({ counterpartyId: w.counterpartyId, loss: money(w.lossMinor) })),
    counterparties: r.counterpartyCount,
    coverages: r.coverageCount,
    historySource: view.historySource,
    marks: view.marks,
    scenarios: [...r.scenarios]
      .sort((a, b) => (a.cover2Minor === b.cover2Minor ? 0 : a.cover2Minor > b.cover2Minor ? -1 : 1))
      .map((s) => ({ name: s.name, cover2: money(s.cover2Minor), worst: s.worst.map((w) => ({ counterpartyId: w.counterpartyId, loss: money(w.lossMinor) })) })),
    lastPublished,
  };
}
