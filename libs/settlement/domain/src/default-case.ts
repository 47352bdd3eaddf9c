/**
 * A default case (stream `default-<defaultId>`, one per defaulter; SPEC §3 steps 9-10, §5).
 *
 * The case moves NONE → DECLARED → CLOSED_OUT → SETTLED, one append per step, and every step
 * after the first is a no-op once done, so a redelivered trigger, a restarted handler or a second
 * replica finds the work already recorded and pays nothing twice. The waterfall itself is decided
 * on the pool's stream (DefaultLossCharged, against the pool's balances); this case records it
 * line by line: LossAllocated per layer, PayoutMade per protected party, ClaimRecorded for what
 * stays unpaid, then DefaultSettled with the creditors a later recovery repays in reverse order.
 *
 * Where the money goes: a payout is paid to the protected party; a recovery's tranche share is paid
 * to the providers who lost it (cash, not back into the tranche: the tranche's current holders are
 * not the ones who bore that loss); the surplus goes back to the defaulter's estate.
 */
import { allocateProRata, amountProblem, assertNever, currencyOf, Decider, DomainEvent, fromMinor, invariant, reject, toMinor, Violations } from '@backstop/kernel';
import { allocateRecovery, isTranche, LayerKind, RecoveryLayer, RecoveryLayerKind, TrancheKind } from '@backstop/settlement-model';
import { closeOutContracts, CloseOutMark, ContractClosedOutData, DefaultedContract, LiquidationCosts, LossesAssessedData } from './close-out';
import { TRANCHES, trancheOfLayer } from './policy';
import type { DefaultLossChargedData } from './pool';

export type DefaultStatus = 'NONE' | 'DECLARED' | 'CLOSED_OUT' | 'SETTLED';

export interface DefaultDeclaredData {
  defaultId: string;
  partyId: string;
  reason: string;
  detail: string;
  lastSaneMarks: Record<string, string>;
  /** An operator's close-out price per underlying (SPEC §3.9): used before any mark. */
  closeOutPrices?: Record<string, string>;
  /** Who declared it (an operator's default): recorded with the prices it gave. */
  declaredBy?: string;
  /** The margin-monitor event that triggered it (audit). */
  triggerEventId: string;
  /** The store position the close-out reads the book up to: the same book on every retry. */
  bookPosition: string;
  currency: string;
  at: string;
}
export interface LossAllocatedData {
  defaultId: string;
  /** A waterfall layer (SPEC §5 steps 1-4); what no layer paid is in ClaimRecorded. */
  layer: LayerKind;
  step: number;
  available: string;
  amount: string;
  remaining: string;
  perParty: Record<string, string>;
  perProvider?: Record<string, string>;
  at: string;
}
export interface PayoutMadeData {
  defaultId: string;
  partyId: string;
  amount: string;
  fromDefaulter: string;
  fromPool: string;
  coverageLimit: string;
  /** The party's coverage against the defaulter (the first by id when it has several; null when none). */
  coverageId: string | null;
  coverageIds: string[];
  /** The pool's part per coverage, each within that coverage's limit. */
  perCoverage: Record<string, string>;
  currency: string;
  at: string;
}
export interface ClaimRecordedData {
  defaultId: string;
  /** The protected party left unpaid: its claim on the defaulter's estate (SPEC §5 step 5). */
  partyId: string;
  amount: string;
  /** The part the coverage would have paid had the pool had funds (the loss allocation). */
  withinCoverage: string;
  currency: string;
  at: string;
}
export interface CreditorLine {
  layer: RecoveryLayerKind;
  perCreditor: Record<string, string>;
}
export interface DefaultSettledData {
  defaultId: string;
  partyId: string;
  currency: string;
  totals: {
    loss: string;
    fromDefaulter: string;
    fromPool: string;
    unpaid: string;
    advanceReturned: string;
    advanceUnreturned: string;
    surplusToDefaulter: string;
  };
  /** Who a recovery repays, in order (SPEC §3 step 10): unpaid claims, then tranches in reverse. */
  creditors: CreditorLine[];
  at: string;
}
export interface RecoveryReceivedData {
  defaultId: string;
  amount: string;
  currency: string;
  reference: string;
  repaid: string;
  surplusToDefaulter: string;
  at: string;
}
export interface RecoveryAllocatedData {
  defaultId: string;
  /** Repayment order: UNPAID_CLAIMS, the tranches in reverse, then SURPLUS back to the defaulter's estate. */
  layer: RecoveryLayerKind | 'SURPLUS';
  amount: string;
  perCreditor: Record<string, string>;
  outstandingAfter: string;
  at: string;
}

export type DefaultEvent =
  | DomainEvent<'DefaultDeclared', DefaultDeclaredData>
  | DomainEvent<'ContractClosedOut', ContractClosedOutData>
  | DomainEvent<'LossesAssessed', LossesAssessedData>
  | DomainEvent<'LossAllocated', LossAllocatedData>
  | DomainEvent<'PayoutMade', PayoutMadeData>
  | DomainEvent<'ClaimRecorded', ClaimRecordedData>
  | DomainEvent<'DefaultSettled', DefaultSettledData>
  | DomainEvent<'RecoveryReceived', RecoveryReceivedData>
  | DomainEvent<'RecoveryAllocated', RecoveryAllocatedData>;

export type DefaultCommand =
  | ({ type: 'DeclareDefault' } & DefaultDeclaredData)
  | { type: 'CloseOut'; defaultId: string; contracts: readonly DefaultedContract[]; marks: Readonly<Record<string, CloseOutMark>>; costs: LiquidationCosts; at: string }
  | { type: 'RecordWaterfall'; defaultId: string; charge: DefaultLossChargedData; at: string }
  | { type: 'RecordRecovery'; defaultId: string; amount: string; currency?: string; reference: string; at: string };

export interface DefaultState {
  readonly status: DefaultStatus;
  readonly declared?: DefaultDeclaredData;
  readonly closeOuts: readonly ContractClosedOutData[];
  readonly assessment?: LossesAssessedData;
  readonly lines: readonly LossAllocatedData[];
  readonly payouts: readonly PayoutMadeData[];
  readonly claims: readonly ClaimRecordedData[];
  readonly settled?: DefaultSettledData;
  /** What each creditor is still owed, in repayment order (minor units). */
  readonly outstanding: readonly RecoveryLayer[];
  readonly recoveries: readonly RecoveryReceivedData[];
  readonly allocations: readonly RecoveryAllocatedData[];
}

export const EMPTY_DEFAULT: DefaultState = { status: 'NONE', closeOuts: [], lines: [], payouts: [], claims: [], outstanding: [], recoveries: [], allocations: [] };

export const UNPAID_CLAIMS = 'UNPAID_CLAIMS' as const;

export const defaultDecider: Decider<DefaultCommand, DefaultState, DefaultEvent> = {
  initialState: EMPTY_DEFAULT,

  decide(command, state) {
    switch (command.type) {
      case 'DeclareDefault':
        return declare(command, state);
      case 'CloseOut':
        return closeOut(command, state);
      case 'RecordWaterfall':
        return recordWaterfall(command, state);
      case 'RecordRecovery':
        return recordRecovery(command, state);
      default:
        return assertNever(command, 'default command');
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'DefaultDeclared':
        return { ...state, status: 'DECLARED', declared: event.data };
      case 'ContractClosedOut':
        return { ...state, closeOuts: [...state.closeOuts, event.data] };
      case 'LossesAssessed':
        return { ...state, status: 'CLOSED_OUT', assessment: event.data };
      case 'LossAllocated':
        return { ...state, lines: [...state.lines, event.data] };
      case 'PayoutMade':
        return { ...state, payouts: [...state.payouts, event.data] };
      case 'ClaimRecorded':
        return { ...state, claims: [...state.claims, event.data] };
      case 'DefaultSettled': {
        const scale = scaleOf(state);
        const outstanding = event.data.creditors.map((line) => ({
          kind: line.layer,
          creditors: Object.entries(line.perCreditor).map(([creditorId, amount]) => ({ creditorId, outstandingMinor: toMinor(amount, scale) })),
        }));
        return { ...state, status: 'SETTLED', settled: event.data, outstanding };
      }
      case 'RecoveryReceived':
        return { ...state, recoveries: [...state.recoveries, event.data] };
      case 'RecoveryAllocated': {
        const scale = scaleOf(state);
        const d = event.data;
        const outstanding = state.outstanding.map((layer) =>
          layer.kind !== d.layer
            ? layer
            : {
                ...layer,
                creditors: layer.creditors.map((c) => {
                  const repaid = toMinor(d.perCreditor[c.creditorId] ?? '0', scale);
                  invariant(repaid <= c.outstandingMinor, `recovery repaid ${c.creditorId} beyond what it is owed`);
                  return { ...c, outstandingMinor: c.outstandingMinor - repaid };
                }),
              },
        );
        return { ...state, outstanding, allocations: [...state.allocations, d] };
      }
      default:
        return assertNever(event, 'default event');
    }
  },
};

function scaleOf(state: DefaultState): number {
  invariant(state.declared !== undefined, 'a default case has a currency once declared');
  return currencyOf(state.declared.currency).scale;
}

function declare(c: Extract<DefaultCommand, { type: 'DeclareDefault' }>, state: DefaultState): DefaultEvent[] {
  // One case per defaulter: a second trigger (redelivered, or for another reason) adds nothing.
  if (state.status !== 'NONE') return [];
  const { type: _type, ...data } = c;
  return [{ type: 'DefaultDeclared', data: { ...data, lastSaneMarks: { ...c.lastSaneMarks }, ...(c.closeOutPrices ? { closeOutPrices: { ...c.closeOutPrices } } : {}) } }];
}

function closeOut(c: Extract<DefaultCommand, { type: 'CloseOut' }>, state: DefaultState): DefaultEvent[] {
  if (state.status === 'NONE') reject('defaultId', 'declared', `default ${c.defaultId} has not been declared`);
  if (state.status !== 'DECLARED') return [];
  const declared = state.declared!;
  const result = closeOutContracts({
    defaultId: c.defaultId,
    partyId: declared.partyId,
    currency: declared.currency,
    contracts: c.contracts,
    marks: c.marks,
    costs: c.costs,
    valuedAt: declared.at,
    at: c.at,
  });
  return [...result.closeOuts.map((data): DefaultEvent => ({ type: 'ContractClosedOut', data })), { type: 'LossesAssessed', data: result.assessment }];
}

function recordWaterfall(c: Extract<DefaultCommand, { type: 'RecordWaterfall' }>, state: DefaultState): DefaultEvent[] {
  if (state.status === 'SETTLED') return [];
  if (state.status !== 'CLOSED_OUT') reject('defaultId', 'closedOut', `default ${c.defaultId} has not been closed out`);
  const charge = c.charge;
  invariant(charge.defaultId === c.defaultId, `charge of ${charge.defaultId} recorded on default ${c.defaultId}`);
  const scale = scaleOf(state);
  const assessed = new Map(state.assessment!.parties.map((p) => [p.partyId, p]));
  const events: DefaultEvent[] = charge.layers.map((layer, i) => ({
    type: 'LossAllocated',
    data: {
      defaultId: c.defaultId,
      layer: layer.layer,
      step: i + 1,
      available: layer.available,
      amount: layer.taken,
      remaining: layer.remaining,
      perParty: layer.perParty,
      ...(layer.perProvider ? { perProvider: layer.perProvider } : {}),
      at: c.at,
    },
  }));
  const unpaidTotal = charge.parties.reduce((s, p) => s + toMinor(p.unpaidClaim, scale), 0n);
  for (const party of charge.parties) {
    const paid = toMinor(party.fromDefaulter, scale) + toMinor(party.fromPool, scale);
    if (paid > 0n) events.push({ type: 'PayoutMade', data: payout(c, party, assessed.get(party.partyId)?.coverages ?? [], paid, scale, charge.currency) });
  }
  for (const party of charge.parties) {
    if (toMinor(party.unpaidClaim, scale) === 0n) continue;
    events.push({
      type: 'ClaimRecorded',
      data: { defaultId: c.defaultId, partyId: party.partyId, amount: party.unpaidClaim, withinCoverage: party.unpaidWithinLimit, currency: charge.currency, at: c.at },
    });
  }
  // The pool's margin advance not repaid stays its providers' claim: MarginCoveredByBackstop recorded it;
  // DefaultSettled says how much of it is left (totals.advanceUnreturned) and whose it is (creditors).
  events.push({ type: 'DefaultSettled', data: settledData(c, charge, unpaidTotal, scale) });
  return events;
}

function payout(
  c: Extract<DefaultCommand, { type: 'RecordWaterfall' }>,
  party: DefaultLossChargedData['parties'][number],
  coverages: readonly { coverageId: string; limit: string }[],
  paidMinor: bigint,
  scale: number,
  currency: string,
): PayoutMadeData {
  const fromPool = toMinor(party.fromPool, scale);
  const limits = coverages.map((cv) => toMinor(cv.limit, scale));
  // Pro rata by limit: each part ≤ its limit because the pool paid at most Σ limits.
  const parts = fromPool > 0n ? allocateProRata(fromPool, limits) : limits.map(() => 0n);
  parts.forEach((part, i) => invariant(part <= limits[i], `payout from coverage ${coverages[i].coverageId} exceeds its limit`));
  invariant(fromPool <= toMinor(party.coverageLimit, scale), `payout to ${party.partyId} exceeds its coverage limit`);
  return {
    defaultId: c.defaultId,
    partyId: party.partyId,
    amount: fromMinor(paidMinor, scale),
    fromDefaulter: party.fromDefaulter,
    fromPool: party.fromPool,
    coverageLimit: party.coverageLimit,
    coverageId: coverages[0]?.coverageId ?? null,
    coverageIds: coverages.map((cv) => cv.coverageId),
    perCoverage: Object.fromEntries(coverages.map((cv, i) => [cv.coverageId, fromMinor(parts[i], scale)])),
    currency,
    at: c.at,
  };
}

function settledData(c: Extract<DefaultCommand, { type: 'RecordWaterfall' }>, charge: DefaultLossChargedData, unpaidMinor: bigint, scale: number): DefaultSettledData {
  const sum = (f: (p: DefaultLossChargedData['parties'][number]) => string) => charge.parties.reduce((s, p) => s + toMinor(f(p), scale), 0n);
  const unpaid: CreditorLine = { layer: UNPAID_CLAIMS, perCreditor: {} };
  for (const p of charge.parties) if (toMinor(p.unpaidClaim, scale) > 0n) unpaid.perCreditor[p.partyId] = p.unpaidClaim;
  // Tranches in reverse of the order they paid; a provider is owed its take plus its unrepaid advance.
  const tranches = [...charge.order].reverse().filter(isTranche).map((kind: TrancheKind): CreditorLine => {
    const owed = new Map<string, bigint>();
    const layer = charge.layers.find((l) => l.layer === kind);
    for (const [providerId, taken] of Object.entries(layer?.perProvider ?? {})) owed.set(providerId, toMinor(taken, scale));
    for (const [providerId, amount] of Object.entries(charge.advance.unreturnedPerProvider[trancheOfLayer(kind)])) {
      owed.set(providerId, (owed.get(providerId) ?? 0n) + toMinor(amount, scale));
    }
    const perCreditor = Object.fromEntries([...owed].filter(([, a]) => a > 0n).sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, a]) => [id, fromMinor(a, scale)]));
    return { layer: kind, perCreditor };
  });
  invariant(TRANCHES.length === tranches.length, 'both tranches are creditors of a recovery');
  return {
    defaultId: c.defaultId,
    partyId: charge.partyId,
    currency: charge.currency,
    totals: {
      loss: fromMinor(sum((p) => p.loss), scale),
      fromDefaulter: fromMinor(sum((p) => p.fromDefaulter), scale),
      fromPool: fromMinor(sum((p) => p.fromPool), scale),
      unpaid: fromMinor(unpaidMinor, scale),
      advanceReturned: charge.advance.returned,
      advanceUnreturned: charge.advance.unreturned,
      surplusToDefaulter: charge.surplusToDefaulter,
    },
    creditors: [unpaid, ...tranches],
    at: c.at,
  };
}

function recordRecovery(c: Extract<DefaultCommand, { type: 'RecordRecovery' }>, state: DefaultState): DefaultEvent[] {
  if (state.status === 'NONE') reject('defaultId', 'knownDefault', `there is no default ${c.defaultId}`);
  if (state.status !== 'SETTLED') reject('defaultId', 'settled', `default ${c.defaultId} is still being settled; record the recovery once it is settled`);
  const currency = state.declared!.currency;
  const scale = currencyOf(currency).scale;
  const v = new Violations();
  if (c.currency !== undefined && c.currency !== currency) v.add('currency', 'defaultCurrency', `default ${c.defaultId} settles in ${currency}, not ${c.currency}`);
  const problem = amountProblem(c.amount, scale);
  if (problem) v.add('amount', 'currencyScale', `amount ${problem} (${currency})`);
  v.throwIfAny();
  const recovered = toMinor(c.amount, scale);
  if (recovered <= 0n) reject('amount', 'positive', 'amount must be greater than 0');
  const result = allocateRecovery({ recoveredMinor: recovered, layers: state.outstanding });
  const events: DefaultEvent[] = [
    {
      type: 'RecoveryReceived',
      data: {
        defaultId: c.defaultId,
        amount: fromMinor(recovered, scale),
        currency,
        reference: c.reference,
        repaid: fromMinor(result.repaidMinor, scale),
        surplusToDefaulter: fromMinor(result.surplusMinor, scale),
        at: c.at,
      },
    },
  ];
  for (const layer of result.layers) {
    if (layer.repaidMinor === 0n) continue;
    events.push({
      type: 'RecoveryAllocated',
      data: {
        defaultId: c.defaultId,
        layer: layer.kind,
        amount: fromMinor(layer.repaidMinor, scale),
        perCreditor: Object.fromEntries(layer.creditors.filter((cr) => cr.repaidMinor > 0n).map((cr) => [cr.creditorId, fromMinor(cr.repaidMinor, scale)])),
        outstandingAfter: fromMinor(layer.outstandingAfterMinor, scale),
        at: c.at,
      },
    });
  }
  if (result.surplusMinor > 0n) {
    const surplus = fromMinor(result.surplusMinor, scale);
    events.push({ type: 'RecoveryAllocated', data: { defaultId: c.defaultId, layer: 'SURPLUS', amount: surplus, perCreditor: { [state.declared!.partyId]: surplus }, outstandingAfter: fromMinor(0n, scale), at: c.at } });
  }
  return events;
}

/** What the case still owes each creditor, as decimal strings (read endpoints). */
export function outstandingByLayer(state: DefaultState): { layer: RecoveryLayerKind; perCreditor: Record<string, string> }[] {
  if (!state.declared) return [];
  const scale = currencyOf(state.declared.currency).scale;
  return state.outstanding.map((l) => ({ layer: l.kind, perCreditor: Object.fromEntries(l.creditors.map((c) => [c.creditorId, fromMinor(c.outstandingMinor, scale)])) }));
}

/** The stable id of a defaulter's case: one case per defaulter, so a redelivered trigger finds it. */
export function defaultIdFor(partyId: string): string {
  return partyId;
}
