/**
 * The margin projection: margin-monitor's own streams (`margin-*`, `market-*`) folded into the
 * facts the monitor decides on: accounts (collateral, cash flows, backstop cover), open calls,
 * contracts and their sides, markets. It is the only place where that state changes, and it
 * changes only by `apply` of an event (or `applyReplayed` during a rebuild, see below); every
 * reader gets read-only views.
 *
 * It drives the revaluation engine from the same events: a MarkRecorded that moves the accepted
 * mark, the vol, the look-back floor or the flagged range re-values that underlying; a position
 * opened or closed re-values that one exposure. During a rebuild (`applyReplayed`) valuation waits
 * and `completeReplay` values each touched underlying once, so a restart does not re-value the
 * book at every historical mark.
 *
 * An "account" is (party, settlement currency): a party is cross-margined over all its contracts
 * in one currency (SPEC §2: one settlement currency per contract, collateral in that currency).
 */
import { ContractTerms, currencyOf, ms, Side, toMinor } from '@backstop/kernel';
import { MarginParams, MarketPoint } from '@backstop/margin-model';
import { AccountEvent, AccountState, CallStatus, EMPTY_ACCOUNT, evolveAccount, isOpenCall, positionTerms, PositionSpec } from './account';
import { AcceptedPoint } from './expiry';
import { EMPTY_MARKET, evolveMarket, MarketEvent, MarketState } from './market';
import { fallbackVolFor, MarginPolicy, marginParamsFor } from './policy';
import { RevaluationEngine, UnderlyingInputs } from './revaluation';

/** An event of one of our streams, as the store gives it back. */
export interface RecordedEvent {
  readonly stream: string;
  readonly revision: number;
  readonly type: string;
  readonly data: Record<string, unknown>;
}

export type ApplyResult = 'applied' | 'duplicate' | 'gap' | 'ignored';

export const BOOK_CAPACITY_INITIAL = 1_024;
/** Accepted marks kept per underlying for expiry settlement windows (oldest half dropped beyond). */
const ACCEPTED_HISTORY_MAX = 100_000;

export function marginStream(partyId: string): string {
  return `margin-${partyId}`;
}

export function marketStream(underlying: string): string {
  return `market-${underlying}`;
}

export interface AccountSlot {
  readonly index: number;
  readonly partyId: string;
  readonly currency: string;
  readonly scale: number;
  /** Intake's latest balance per contract (this party's side). */
  readonly collateralByContract: Map<string, bigint>;
  collateralMinor: bigint;
  flowsMinor: bigint;
  coverMinor: bigint;
  /** The engine's exposures of this account, by underlying index ascending. */
  readonly exposures: number[];
  /** Open sides, in open order, as side keys (sideKey: contract key × 2 + 0 long / 1 short). */
  readonly open: Set<number>;
}

export interface ContractSlot {
  readonly key: number;
  readonly spec: PositionSpec;
  readonly terms: ContractTerms;
  readonly underlyingIndex: number;
  readonly expiryMs: number | undefined;
  fundedThroughMs: number;
  settled: boolean;
  /** Exposure of each open side. */
  readonly sides: Partial<Record<Side, number>>;
}

export interface MarketSlot {
  readonly index: number;
  readonly underlying: string;
  state: MarketState;
  /** Accepted marks, oldest first (expiry settlement windows). */
  accepted: AcceptedPoint[];
  /** Unsettled contracts on this underlying. */
  readonly contractIds: Set<string>;
  /** Unsettled dated contracts by expiry instant, and those instants ascending (the expiry schedule). */
  readonly byExpiry: Map<number, Set<string>>;
  readonly expiryInstants: number[];
}

export interface OpenCallView {
  readonly callId: string;
  readonly partyId: string;
  readonly currency: string;
  readonly status: CallStatus;
  readonly deadlineMs: number;
  readonly secondDeadlineMs: number;
}

export class MarginProjection {
  readonly engine: RevaluationEngine;
  private readonly revisions = new Map<string, number>();
  private readonly accountStates = new Map<string, AccountState>();
  private readonly accountList: AccountSlot[] = [];
  private readonly accountIndex = new Map<string, number>();
  private readonly accountsByParty = new Map<string, AccountSlot[]>();
  private readonly contractSlots = new Map<string, ContractSlot>();
  private readonly contractsByKey: ContractSlot[] = [];
  private readonly marketList: MarketSlot[] = [];
  private readonly marketIndex = new Map<string, number>();
  private readonly calls = new Map<string, OpenCallView>();
  /** Underlyings whose valuation waits for completeReplay. */
  private readonly awaitingValuation = new Set<number>();
  private replaying = false;
  private nextKey = 1;

  constructor(readonly policy: MarginPolicy, optionCapacity = BOOK_CAPACITY_INITIAL) {
    this.engine = new RevaluationEngine(optionCapacity);
  }

  // ---- applying events ---------------------------------------------------------------------------

  /** Last applied revision of one of our streams, −1 when none. */
  revisionOf(stream: string): number {
    return this.revisions.get(stream) ?? -1;
  }

  /**
   * Applies one event of our streams, in revision order, and re-values what it moved: an event
   * already applied is a duplicate (redelivery), one past the next revision is a gap (the caller
   * reads the stream and retries). During a rebuild (after applyReplayed, before completeReplay)
   * it is one more replayed event.
   */
  apply(event: RecordedEvent): ApplyResult {
    return this.applyOne(event);
  }

  /** The same, during a rebuild: valuation waits for completeReplay. */
  applyReplayed(event: RecordedEvent): ApplyResult {
    this.replaying = true;
    return this.applyOne(event);
  }

  /** Ends a rebuild: values each underlying a replayed event touched, once. */
  completeReplay(): void {
    this.replaying = false;
    for (const ui of [...this.awaitingValuation].sort((a, b) => a - b)) this.valueUnderlying(this.marketList[ui]);
    this.awaitingValuation.clear();
  }

  private applyOne(event: RecordedEvent): ApplyResult {
    const dash = event.stream.indexOf('-');
    const category = event.stream.slice(0, dash);
    const entityId = event.stream.slice(dash + 1);
    if (dash < 0 || (category !== 'margin' && category !== 'market')) return 'ignored';
    const known = this.revisionOf(event.stream);
    if (event.revision <= known) return 'duplicate';
    if (event.revision > known + 1) return 'gap';
    this.revisions.set(event.stream, event.revision);
    if (category === 'market') this.applyMarket(entityId, event as unknown as MarketEvent);
    else this.applyAccount(entityId, event as unknown as AccountEvent);
    return 'applied';
  }

  private applyMarket(underlying: string, event: MarketEvent): void {
    const slot = this.market(underlying);
    const before = slot.state;
    slot.state = evolveMarket(before, event);
    if (event.type !== 'MarkRecorded') return;
    if (event.data.sane) {
      slot.accepted.push({ atMs: ms(event.data.at), price: event.data.price });
      if (slot.accepted.length > ACCEPTED_HISTORY_MAX) slot.accepted = slot.accepted.slice(ACCEPTED_HISTORY_MAX / 2);
    }
    const after = slot.state;
    const moved =
      before.lastSane !== after.lastSane || before.flaggedRange !== after.flaggedRange || before.lastVolAnnual !== after.lastVolAnnual || before.lookbackVolAnnual !== after.lookbackVolAnnual;
    if (moved) this.valueUnderlying(slot);
  }

  private applyAccount(partyId: string, event: AccountEvent): void {
    const before = this.accountStates.get(partyId) ?? EMPTY_ACCOUNT;
    // Only calls and status are kept in AccountState (positions live in the engine): folding
    // PositionOpened into it would copy the positions record on every event, O(k²) per party.
    const after = event.type === 'PositionOpened' ? (before.partyId === partyId ? before : { ...before, partyId }) : evolveAccount(before, event);
    this.accountStates.set(partyId, after);
    switch (event.type) {
      case 'PositionOpened':
        return this.openSide(partyId, event.data);
      case 'CollateralRecorded': {
        const d = event.data;
        const account = this.account(partyId, d.currency);
        const balance = toMinor(d.balance, account.scale);
        account.collateralMinor += balance - (account.collateralByContract.get(d.contractId) ?? 0n);
        account.collateralByContract.set(d.contractId, balance);
        return;
      }
      case 'BackstopCoverRecorded': {
        const account = this.account(partyId, event.data.currency);
        account.coverMinor += toMinor(event.data.amount, account.scale);
        return;
      }
      case 'BackstopCoverReturned': {
        const account = this.account(partyId, event.data.currency);
        const back = toMinor(event.data.amount, account.scale);
        account.coverMinor = account.coverMinor > back ? account.coverMinor - back : 0n;
        return;
      }
      case 'MarginCallIssued':
      case 'MarginCallCured':
      case 'MarginCallMissed':
      case 'DefaultTriggered':
        return this.syncCalls(partyId, after);
      case 'FundingExchanged': {
        const d = event.data;
        this.moveCash(d.payerPartyId, d.receiverPartyId, d.currency, d.amount);
        const contract = this.contractSlots.get(d.contractId);
        if (contract) contract.fundedThroughMs = Math.max(contract.fundedThroughMs, ms(d.at));
        return;
      }
      case 'ContractSettled': {
        const d = event.data;
        this.moveCash(d.payerPartyId, d.receiverPartyId, d.currency, d.amount);
        return this.closeContract(d.contractId);
      }
      case 'PositionClosedOut':
        // Closed out in a default: both sides leave the book; no cash moves in margin.
        return this.closeContract(event.data.contractId);
      default: {
        const _exhaustive: never = event;
        return _exhaustive;
      }
    }
  }

  private moveCash(payerPartyId: string, receiverPartyId: string, currency: string, amount: string): void {
    const payer = this.account(payerPartyId, currency);
    const receiver = this.account(receiverPartyId, currency);
    const minor = toMinor(amount, payer.scale);
    payer.flowsMinor -= minor;
    receiver.flowsMinor += minor;
  }

  private syncCalls(partyId: string, state: AccountState): void {
    for (const call of Object.values(state.calls)) {
      const open = isOpenCall(call) && !state.defaulted;
      if (!open) {
        this.calls.delete(call.callId);
        continue;
      }
      this.calls.set(call.callId, { callId: call.callId, partyId, currency: call.currency, status: call.status, deadlineMs: ms(call.deadline), secondDeadlineMs: ms(call.secondDeadline) });
    }
  }

  private market(underlying: string): MarketSlot {
    const known = this.marketIndex.get(underlying);
    if (known !== undefined) return this.marketList[known];
    const slot: MarketSlot = { index: this.marketList.length, underlying, state: EMPTY_MARKET, accepted: [], contractIds: new Set(), byExpiry: new Map(), expiryInstants: [] };
    this.marketList.push(slot);
    this.marketIndex.set(underlying, slot.index);
    this.engine.addUnderlying(slot.index);
    return slot;
  }

  private account(partyId: string, currency: string): AccountSlot {
    const id = `${partyId}\u0000${currency}`;
    const known = this.accountIndex.get(id);
    if (known !== undefined) return this.accountList[known];
    const slot: AccountSlot = {
      index: this.accountList.length,
      partyId,
      currency,
      scale: currencyOf(currency).scale,
      collateralByContract: new Map(),
      collateralMinor: 0n,
      flowsMinor: 0n,
      coverMinor: 0n,
      exposures: [],
      open: new Set(),
    };
    this.accountList.push(slot);
    this.accountIndex.set(id, slot.index);
    const ofParty = this.accountsByParty.get(partyId);
    if (ofParty) ofParty.push(slot);
    else this.accountsByParty.set(partyId, [slot]);
    return slot;
  }

  private exposure(account: AccountSlot, market: MarketSlot): number {
    const e = this.engine.exposureOf(account.index, market.index);
    if (!account.exposures.includes(e)) {
      account.exposures.push(e);
      account.exposures.sort((x, y) => this.engine.underlyingOf(x) - this.engine.underlyingOf(y));
    }
    return e;
  }

  private openSide(partyId: string, p: PositionSpec & { at: string }): void {
    const market = this.market(p.underlying);
    const account = this.account(partyId, p.currency);
    let contract = this.contractSlots.get(p.contractId);
    if (contract === undefined) {
      const terms = positionTerms(p);
      // The terms only (not the event's party and instant), in one object shape: one per contract held in memory.
      const spec: PositionSpec = {
        contractId: p.contractId,
        side: p.side,
        kind: p.kind,
        underlying: p.underlying,
        size: p.size,
        entryPrice: p.entryPrice,
        ...(p.optionType !== undefined ? { optionType: p.optionType } : {}),
        ...(p.strike !== undefined ? { strike: p.strike } : {}),
        ...(p.expiry !== undefined ? { expiry: p.expiry } : {}),
        currency: p.currency,
        longPartyId: p.longPartyId,
        shortPartyId: p.shortPartyId,
      };
      contract = { key: this.nextKey++, spec, terms, underlyingIndex: market.index, expiryMs: terms.expiryMs, fundedThroughMs: ms(p.at), settled: false, sides: {} };
      this.contractSlots.set(p.contractId, contract);
      this.contractsByKey[contract.key] = contract;
      market.contractIds.add(p.contractId);
      if (contract.expiryMs !== undefined) scheduleExpiry(market, p.contractId, contract.expiryMs);
    }
    if (contract.settled || contract.sides[p.side] !== undefined) return;
    const e = this.exposure(account, market);
    this.engine.openSide(contract.key, p.side, contract.terms, e);
    contract.sides[p.side] = e;
    account.open.add(sideKey(contract.key, p.side));
    this.valueExposures(market, [e]);
  }

  private closeContract(contractId: string): void {
    const contract = this.contractSlots.get(contractId);
    if (contract === undefined || contract.settled) return;
    contract.settled = true;
    const market = this.marketList[contract.underlyingIndex];
    market.contractIds.delete(contractId);
    if (contract.expiryMs !== undefined) unscheduleExpiry(market, contractId, contract.expiryMs);
    this.engine.closeContract(contract.key, contract.terms, contract.sides);
    const touched: number[] = [];
    for (const side of ['LONG', 'SHORT'] as const) {
      const e = contract.sides[side];
      if (e === undefined) continue;
      touched.push(e);
      delete contract.sides[side];
      const party = side === 'LONG' ? contract.spec.longPartyId : contract.spec.shortPartyId;
      this.account(party, contract.spec.currency).open.delete(sideKey(contract.key, side));
    }
    this.valueExposures(market, touched);
  }

  private valueExposures(market: MarketSlot, exposures: readonly number[]): void {
    if (this.replaying) {
      this.awaitingValuation.add(market.index);
      return;
    }
    if (market.state.lastSane === undefined) {
      // Never marked: nothing valued yet (an exposure holds zeros until its underlying's first mark).
      return;
    }
    const inputs = this.inputsOf(market);
    for (const e of new Set(exposures)) this.engine.revalueExposure(e, inputs);
  }

  private valueUnderlying(market: MarketSlot): void {
    if (this.replaying) {
      this.awaitingValuation.add(market.index);
      return;
    }
    this.engine.revalueUnderlying(market.index, this.inputsOf(market));
  }

  // ---- what valuation reads from a market ------------------------------------------------------------

  inputsOf(market: MarketSlot): UnderlyingInputs {
    const range = market.state.flaggedRange;
    return { point: this.pointOf(market), params: this.paramsOf(market), flagged: range === undefined ? [] : [range.low, range.high] };
  }

  pointOf(market: MarketSlot): MarketPoint | undefined {
    const sane = market.state.lastSane;
    if (sane === undefined) return undefined;
    return { mark: Number(sane.price), volAnnual: this.volOf(market), nowMs: sane.atMs };
  }

  private volOf(market: MarketSlot): number {
    const vol = Number(market.state.lastVolAnnual);
    return vol > 0 && Number.isFinite(vol) ? vol : fallbackVolFor(this.policy, market.underlying);
  }

  /**
   * The underlying's margin parameters with the anti-procyclicality floor (EMIR art. 28(1)(c)):
   * the vol never below the look-back vol of the accepted daily closes (market.ts), as in the
   * backtest, nor below an operator's volFloorAnnual.
   */
  paramsOf(market: MarketSlot): MarginParams {
    const params = marginParamsFor(this.policy, market.underlying);
    const lookback = market.state.lookbackVolAnnual;
    if (lookback === undefined || !(lookback > (params.volFloorAnnual ?? 0))) return params;
    return { ...params, volFloorAnnual: Math.min(lookback, 20) };
  }

  // ---- read-only access for the views and the scheduler ----------------------------------------------

  accountState(partyId: string): AccountState | undefined {
    return this.accountStates.get(partyId);
  }

  accountOf(partyId: string, currency: string): Readonly<AccountSlot> | undefined {
    const index = this.accountIndex.get(`${partyId}\u0000${currency}`);
    return index === undefined ? undefined : this.accountList[index];
  }

  accountsOf(partyId: string): readonly Readonly<AccountSlot>[] {
    return this.accountsByParty.get(partyId) ?? [];
  }

  accountAt(index: number): Readonly<AccountSlot> {
    return this.accountList[index];
  }

  /** The contract and side of a side key (AccountSlot.open). */
  sideOf(key: number): { contract: Readonly<ContractSlot>; side: Side } {
    return { contract: this.contractsByKey[Math.floor(key / 2)], side: key % 2 === 0 ? 'LONG' : 'SHORT' };
  }

  contract(contractId: string): Readonly<ContractSlot> | undefined {
    return this.contractSlots.get(contractId);
  }

  marketOf(underlying: string): Readonly<MarketSlot> | undefined {
    const index = this.marketIndex.get(underlying);
    return index === undefined ? undefined : this.marketList[index];
  }

  marketAt(index: number): Readonly<MarketSlot> {
    return this.marketList[index];
  }

  get markets(): readonly Readonly<MarketSlot>[] {
    return this.marketList;
  }

  get openCalls(): ReadonlyMap<string, OpenCallView> {
    return this.calls;
  }
}

export function sideKey(contractKey: number, side: Side): number {
  return contractKey * 2 + (side === 'LONG' ? 0 : 1);
}

function scheduleExpiry(market: MarketSlot, contractId: string, expiryMs: number): void {
  const at = market.byExpiry.get(expiryMs);
  if (at !== undefined) {
    at.add(contractId);
    return;
  }
  market.byExpiry.set(expiryMs, new Set([contractId]));
  const list = market.expiryInstants;
  let i = list.length;
  while (i > 0 && list[i - 1] > expiryMs) i--;
  list.splice(i, 0, expiryMs);
}

function unscheduleExpiry(market: MarketSlot, contractId: string, expiryMs: number): void {
  const at = market.byExpiry.get(expiryMs);
  if (at === undefined) return;
  at.delete(contractId);
  if (at.size > 0) return;
  market.byExpiry.delete(expiryMs);
  const i = market.expiryInstants.indexOf(expiryMs);
  if (i >= 0) market.expiryInstants.splice(i, 1);
}
