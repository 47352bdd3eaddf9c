/**
 * The margin monitor's in-memory view: a projection of margin-monitor's own streams (`margin-*`,
 * `market-*`), so it is rebuilt from them after a restart, and the revaluation hot path (SPEC §3.7:
 * every sane mark re-values every open contract on its underlying).
 *
 * Hot path (revalue): one PortfolioBook row per open position side, struct-of-arrays; a tick writes
 * each row's MTM into a flat Float64Array, then 16 more book.revalue passes at the SPAN scenario
 * prices/vols give every account's scenario losses, netted per (account, underlying) in one flat
 * Float64Array (SPAN's combined-commodity netting, the same rule as portfolioInitialMargin).
 * Only the accounts that need a decision come out as objects.
 *
 * An "account" is (party, settlement currency): a party is cross-margined over all its contracts
 * in one currency (SPEC §2: one settlement currency per contract, collateral in that currency).
 *
 * Equity = collateral (intake's per-contract balances) + contract cash flows (funding, settlements)
 *        + backstop cover + Σ MTM (rounded down); own equity = equity − backstop cover.
 * Requirements round up (checkMarginMinor from the model).
 */
import { ContractTerms, currencyOf, DAY_MS, invariant, ms, Side, toMinor } from '@backstop/kernel';
import {
  checkMarginMinor,
  MarginParams,
  MarketPoint,
  markToMarket,
  PortfolioBook,
  portfolioInitialMargin,
  Position,
  scanRangeFraction,
  SPAN_SCENARIO_COUNT,
  scenarioMark,
  spanScenarios,
} from '@backstop/margin-model';
import { AccountEvent, AccountState, Assessment, CallStatus, EMPTY_ACCOUNT, evolveAccount, isOpenCall, LastSaneMarks, openCallIn, positionTerms, PositionSpec } from './account';
import { AcceptedPoint, settlementPrice, SettlementPriceBasis } from './expiry';
import { EMPTY_MARKET, evolveMarket, MarketEvent, MarketState } from './market';
import { fallbackVolFor, fundingInstants, MarginPolicy, marginParamsFor } from './policy';

/** An event of one of our streams, as the store gives it back. */
export interface RecordedEvent {
  readonly stream: string;
  readonly revision: number;
  readonly type: string;
  readonly data: Record<string, unknown>;
}

export type ApplyResult = 'applied' | 'duplicate' | 'gap' | 'ignored';

export const BOOK_CAPACITY_INITIAL = 1_024;
const S = SPAN_SCENARIO_COUNT;
/** Scenario columns per account: SPAN's 16 and two at the lowest and highest flagged candidate levels. */
const C = S + 2;
/** Accepted marks kept per underlying for expiry settlement windows (oldest half dropped beyond). */
const ACCEPTED_HISTORY_MAX = 100_000;

export function marginStream(partyId: string): string {
  return `margin-${partyId}`;
}

export function marketStream(underlying: string): string {
  return `market-${underlying}`;
}

interface AccountSlot {
  readonly index: number;
  readonly partyId: string;
  readonly currency: string;
  readonly scale: number;
  /** Intake's latest balance per contract (this party's side). */
  readonly collateralByContract: Map<string, bigint>;
  collateralMinor: bigint;
  flowsMinor: bigint;
  coverMinor: bigint;
  readonly rowKeys: Set<number>;
  /** Initial margin per underlying index (scenario-netted), doubles. */
  readonly initialByUnderlying: Map<number, number>;
  /** Underlyings whose rows changed since their requirement was computed (recomputed lazily). */
  readonly staleUnderlyings: Set<number>;
}

interface RowInfo {
  readonly key: number;
  readonly contractId: string;
  readonly side: Side;
  readonly accountIndex: number;
  readonly underlyingIndex: number;
  readonly terms: ContractTerms;
}

interface ContractSlot {
  readonly spec: PositionSpec;
  readonly terms: ContractTerms;
  readonly underlyingIndex: number;
  readonly openedAtMs: number;
  readonly expiryMs: number | undefined;
  fundedThroughMs: number;
  settled: boolean;
  readonly rows: Partial<Record<Side, number>>;
}

interface MarketSlot {
  readonly index: number;
  readonly underlying: string;
  state: MarketState;
  /** Funding instants up to here have been looked at (memory only; a restart looks again). */
  fundingCheckedMs: number;
  /** Earliest settlement instant (expiry + window after) of an unsettled dated contract, undefined = recompute. */
  nextExpiryMs: number | undefined;
  /** Accepted marks, oldest first (expiry settlement windows). */
  accepted: AcceptedPoint[];
}

export interface OpenCallView {
  readonly callId: string;
  readonly partyId: string;
  readonly currency: string;
  readonly status: CallStatus;
  readonly deadlineMs: number;
  readonly secondDeadlineMs: number;
}

export interface DueDeadline {
  readonly partyId: string;
  readonly callId: string;
  readonly phase: 'MISS' | 'SECOND';
}

export interface FundingDue {
  readonly contractId: string;
  readonly longPartyId: string;
  readonly fundingAtMs: number;
  readonly rate: string;
  readonly mark: string;
}

export interface ExpiryDue {
  readonly contractId: string;
  readonly longPartyId: string;
  /** The settlement instant: expiry + the window after it. */
  readonly at: string;
  readonly price: string;
  readonly priceBasis: SettlementPriceBasis;
  readonly detail: string;
}

export interface AccountNeedingDecision {
  readonly partyId: string;
  readonly assessment: Assessment;
}

export interface AccountFigures extends Assessment {
  readonly collateralMinor: bigint;
  readonly flowsMinor: bigint;
  readonly coverMinor: bigint;
  readonly unrealizedPnlMinor: bigint;
}

export interface PositionView {
  readonly contractId: string;
  readonly side: Side;
  readonly kind: string;
  readonly underlying: string;
  readonly currency: string;
  readonly size: string;
  readonly entryPrice: string;
  readonly markToMarket: number;
}

export class MarginMonitor {
  private book: PortfolioBook;
  private pnl: Float64Array;
  private scratch: Float64Array;
  private slotsOfUnderlying: Uint32Array;
  private partyOfSlot: Uint32Array;
  private pnlSums = new Float64Array(64);
  private zeros = new Float64Array(64);
  private scenarioLoss = new Float64Array(64 * C);
  private touchedStamp = new Uint32Array(64);
  private touched = new Uint32Array(64);
  private stamp = 0;
  private pnlSumsDirty = true;
  private nextKey = 1;

  private readonly revisions = new Map<string, number>();
  private readonly accountStates = new Map<string, AccountState>();
  private readonly accounts: AccountSlot[] = [];
  private readonly accountIndex = new Map<string, number>();
  private readonly accountsByParty = new Map<string, AccountSlot[]>();
  private readonly rows = new Map<number, RowInfo>();
  private readonly contracts = new Map<string, ContractSlot>();
  private readonly contractsByUnderlying: Set<string>[] = [];
  private readonly markets: MarketSlot[] = [];
  private readonly marketIndex = new Map<string, number>();
  private readonly openCalls = new Map<string, OpenCallView>();

  constructor(readonly policy: MarginPolicy, capacity = BOOK_CAPACITY_INITIAL) {
    this.book = new PortfolioBook(capacity);
    this.pnl = new Float64Array(capacity);
    this.scratch = new Float64Array(capacity);
    this.slotsOfUnderlying = new Uint32Array(capacity);
    this.partyOfSlot = new Uint32Array(capacity);
  }

  // ---- projection ----------------------------------------------------------------------------

  /** Last applied revision of one of our streams, −1 when none. */
  revisionOf(stream: string): number {
    return this.revisions.get(stream) ?? -1;
  }

  /**
   * Applies one event of our streams, in revision order: an event already applied is a duplicate
   * (redelivery), one past the next revision is a gap (the caller reads the stream and retries).
   */
  apply(event: RecordedEvent): ApplyResult {
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
    slot.state = evolveMarket(slot.state, event);
    if (event.type === 'MarkRecorded' && event.data.sane) {
      slot.accepted.push({ atMs: ms(event.data.at), price: event.data.price });
      if (slot.accepted.length > ACCEPTED_HISTORY_MAX) slot.accepted = slot.accepted.slice(ACCEPTED_HISTORY_MAX / 2);
    }
  }

  private applyAccount(partyId: string, event: AccountEvent): void {
    const before = this.accountStates.get(partyId) ?? EMPTY_ACCOUNT;
    // The monitor keeps only calls and status in AccountState (positions live in the book): folding
    // PositionOpened into it would copy the positions record on every event, O(k²) per party.
    const after = event.type === 'PositionOpened' ? (before.partyId === partyId ? before : { ...before, partyId }) : evolveAccount(before, event);
    this.accountStates.set(partyId, after);
    switch (event.type) {
      case 'PositionOpened':
        return this.openRow(partyId, event.data);
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
        const contract = this.contracts.get(d.contractId);
        if (contract) contract.fundedThroughMs = Math.max(contract.fundedThroughMs, ms(d.at));
        return;
      }
      case 'ContractSettled': {
        const d = event.data;
        this.moveCash(d.payerPartyId, d.receiverPartyId, d.currency, d.amount);
        this.closeContract(d.contractId);
        return;
      }
      case 'PositionClosedOut':
        // Closed out in a default: both sides' rows leave the book; no cash moves in margin.
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
        this.openCalls.delete(call.callId);
        continue;
      }
      this.openCalls.set(call.callId, {
        callId: call.callId,
        partyId,
        currency: call.currency,
        status: call.status,
        deadlineMs: ms(call.deadline),
        secondDeadlineMs: ms(call.secondDeadline),
      });
    }
  }

  private market(underlying: string): MarketSlot {
    const known = this.marketIndex.get(underlying);
    if (known !== undefined) return this.markets[known];
    const slot: MarketSlot = { index: this.markets.length, underlying, state: EMPTY_MARKET, fundingCheckedMs: Number.NEGATIVE_INFINITY, nextExpiryMs: undefined, accepted: [] };
    this.markets.push(slot);
    this.contractsByUnderlying.push(new Set());
    this.marketIndex.set(underlying, slot.index);
    return slot;
  }

  private account(partyId: string, currency: string): AccountSlot {
    const id = `${partyId}\u0000${currency}`;
    const known = this.accountIndex.get(id);
    if (known !== undefined) return this.accounts[known];
    const slot: AccountSlot = {
      index: this.accounts.length,
      partyId,
      currency,
      scale: currencyOf(currency).scale,
      collateralByContract: new Map(),
      collateralMinor: 0n,
      flowsMinor: 0n,
      coverMinor: 0n,
      rowKeys: new Set(),
      initialByUnderlying: new Map(),
      staleUnderlyings: new Set(),
    };
    this.accounts.push(slot);
    this.accountIndex.set(id, slot.index);
    this.accountsByParty.set(partyId, [...(this.accountsByParty.get(partyId) ?? []), slot]);
    this.ensureAccountCapacity(this.accounts.length);
    return slot;
  }

  private ensureAccountCapacity(count: number): void {
    if (count <= this.pnlSums.length) return;
    const size = Math.max(count, this.pnlSums.length * 2);
    this.pnlSums = new Float64Array(size);
    this.zeros = new Float64Array(size);
    this.scenarioLoss = new Float64Array(size * C);
    const stamps = new Uint32Array(size);
    stamps.set(this.touchedStamp);
    this.touchedStamp = stamps;
    this.touched = new Uint32Array(size);
    this.pnlSumsDirty = true;
  }

  private openRow(partyId: string, p: PositionSpec & { at: string }): void {
    const market = this.market(p.underlying);
    const account = this.account(partyId, p.currency);
    let contract = this.contracts.get(p.contractId);
    if (contract === undefined) {
      const terms = positionTerms(p);
      contract = {
        spec: p,
        terms,
        underlyingIndex: market.index,
        openedAtMs: ms(p.at),
        expiryMs: terms.expiryMs,
        fundedThroughMs: ms(p.at),
        settled: false,
        rows: {},
      };
      this.contracts.set(p.contractId, contract);
      this.contractsByUnderlying[market.index].add(p.contractId);
      market.nextExpiryMs = undefined;
    }
    if (contract.settled || contract.rows[p.side] !== undefined) return;
    if (this.book.count === this.book.capacity) this.grow();
    const key = this.nextKey++;
    const row: RowInfo = { key, contractId: p.contractId, side: p.side, accountIndex: account.index, underlyingIndex: market.index, terms: contract.terms };
    const slot = this.book.add({ key, terms: row.terms, side: row.side, underlyingIndex: row.underlyingIndex, partyIndex: row.accountIndex });
    const point = this.marketPoint(market);
    this.pnl[slot] = point ? markToMarket(row.terms, row.side, point) : 0;
    this.rows.set(key, row);
    contract.rows[p.side] = key;
    account.rowKeys.add(key);
    account.staleUnderlyings.add(market.index);
    this.pnlSumsDirty = true;
  }

  private closeContract(contractId: string): void {
    const contract = this.contracts.get(contractId);
    if (contract === undefined || contract.settled) return;
    contract.settled = true;
    this.contractsByUnderlying[contract.underlyingIndex].delete(contractId);
    this.markets[contract.underlyingIndex].nextExpiryMs = undefined;
    for (const side of ['LONG', 'SHORT'] as const) {
      const key = contract.rows[side];
      if (key === undefined) continue;
      const row = this.rows.get(key);
      invariant(row !== undefined, `row ${key} of ${contractId} is missing`);
      this.removeRow(row);
      delete contract.rows[side];
      this.accounts[row.accountIndex].staleUnderlyings.add(row.underlyingIndex);
    }
  }

  private removeRow(row: RowInfo): void {
    const slot = this.book.slotOf(row.key);
    const last = this.book.count - 1;
    this.book.remove(row.key);
    // The book swap-removes: the last row moved into `slot`, so its MTM moves with it.
    if (slot !== last) this.pnl[slot] = this.pnl[last];
    this.rows.delete(row.key);
    this.accounts[row.accountIndex].rowKeys.delete(row.key);
    this.pnlSumsDirty = true;
  }

  private grow(): void {
    const capacity = this.book.capacity * 2;
    const book = new PortfolioBook(capacity);
    const pnl = new Float64Array(capacity);
    for (let slot = 0; slot < this.book.count; slot++) {
      const row = this.rows.get(this.book.keyAt(slot));
      invariant(row !== undefined, `book slot ${slot} has no row info`);
      const next = book.add({ key: row.key, terms: row.terms, side: row.side, underlyingIndex: row.underlyingIndex, partyIndex: row.accountIndex });
      pnl[next] = this.pnl[slot];
    }
    this.book = book;
    this.pnl = pnl;
    this.scratch = new Float64Array(capacity);
    this.slotsOfUnderlying = new Uint32Array(capacity);
    this.partyOfSlot = new Uint32Array(capacity);
    this.pnlSumsDirty = true;
  }

  // ---- market ----------------------------------------------------------------------------------

  marketState(underlying: string): MarketState {
    const index = this.marketIndex.get(underlying);
    return index === undefined ? EMPTY_MARKET : this.markets[index].state;
  }

  underlyings(): string[] {
    return this.markets.map((m) => m.underlying);
  }

  /**
   * The lowest and highest candidate levels flagged since the last accepted mark: margin stresses
   * them as two more scenarios (they may raise a requirement, never lower one) while equity stays
   * on the accepted mark.
   */
  private flaggedLevels(market: MarketSlot): readonly number[] {
    const range = market.state.flaggedRange;
    return range === undefined ? [] : [range.low, range.high];
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
  private paramsOf(market: MarketSlot): MarginParams {
    const params = marginParamsFor(this.policy, market.underlying);
    const lookback = market.state.lookbackVolAnnual;
    if (lookback === undefined || !(lookback > (params.volFloorAnnual ?? 0))) return params;
    return { ...params, volFloorAnnual: Math.min(lookback, 20) };
  }

  private marketPoint(market: MarketSlot): MarketPoint | undefined {
    const sane = market.state.lastSane;
    if (sane === undefined) return undefined;
    return { mark: Number(sane.price), volAnnual: this.volOf(market), nowMs: sane.atMs };
  }

  // ---- the hot path ------------------------------------------------------------------------------

  /**
   * Re-values every row of `underlying` at its last sane mark, recomputes the scenario-netted
   * initial margin of every account holding it, and returns the accounts that need a decision:
   * below maintenance with no open call, or own equity below zero; never a defaulted account.
   * Returns the number of rows revalued through `revalued` for metrics.
   */
  revalue(underlying: string): { revalued: number; needDecision: AccountNeedingDecision[] } {
    const market = this.markets[this.marketIndex.get(underlying) ?? -1];
    const point = market ? this.marketPoint(market) : undefined;
    if (market === undefined || point === undefined) return { revalued: 0, needDecision: [] };
    const ui = market.index;
    const revalued = this.book.revalue(ui, point.mark, point.volAnnual, point.nowMs, this.pnl);
    const touchedCount = this.scenarioPass(ui, point, this.paramsOf(market), this.flaggedLevels(market));
    this.pnlSumsDirty = true;
    this.refreshPnlSums();
    const needDecision: AccountNeedingDecision[] = [];
    for (let i = 0; i < touchedCount; i++) {
      const account = this.accounts[this.touched[i]];
      const need = this.decisionNeeded(account);
      if (need) needDecision.push(need);
    }
    return { revalued, needDecision };
  }

  /** Revalues every underlying (after a rebuild from the store). */
  revalueAll(): void {
    for (const m of this.markets) this.revalue(m.underlying);
  }

  /**
   * SPAN scan risk of every account on underlying `ui`, netted per account: 16 revalues of the
   * book at the scenario prices and vols at now + MPOR (span.ts's riskArray, over flat arrays).
   */
  private scenarioPass(ui: number, point: MarketPoint, params: MarginParams, flagged: readonly number[]): number {
    const count = this.book.count;
    let rowCount = 0;
    let touchedCount = 0;
    this.stamp = (this.stamp + 1) >>> 0 || 1;
    for (let slot = 0; slot < count; slot++) {
      if (this.book.underlyingAt(slot) !== ui) continue;
      const a = this.book.partyAt(slot);
      this.partyOfSlot[rowCount] = a;
      this.slotsOfUnderlying[rowCount++] = slot;
      if (this.touchedStamp[a] !== this.stamp) {
        this.touchedStamp[a] = this.stamp;
        this.touched[touchedCount++] = a;
        this.scenarioLoss.fill(0, a * C, a * C + C);
      }
    }
    const scan = scanRangeFraction(point.volAnnual, params);
    const horizonMs = point.nowMs + params.mporDays * DAY_MS;
    for (const scenario of spanScenarios(params)) {
      const s = scenario.number - 1;
      const mark = scenarioMark(point.mark, scenario.priceMoveMultiple, scan);
      const vol = point.volAnnual * (1 + scenario.volDirection * params.volShiftFraction);
      this.book.revalue(ui, mark, vol, horizonMs, this.scratch);
      const cover = scenario.coverFraction;
      for (let i = 0; i < rowCount; i++) {
        const slot = this.slotsOfUnderlying[i];
        this.scenarioLoss[this.partyOfSlot[i] * C + s] += -(this.scratch[slot] - this.pnl[slot]) * cover;
      }
    }
    // Each flagged level now, in full: the loss if the candidate is real (it only ever adds a column).
    flagged.forEach((level, k) => {
      this.book.revalue(ui, level, point.volAnnual, point.nowMs, this.scratch);
      for (let i = 0; i < rowCount; i++) {
        const slot = this.slotsOfUnderlying[i];
        this.scenarioLoss[this.partyOfSlot[i] * C + S + k] += -(this.scratch[slot] - this.pnl[slot]);
      }
    });
    for (let i = 0; i < touchedCount; i++) {
      const a = this.touched[i];
      let worst = 0;
      for (let s = 0; s < S; s++) worst = Math.max(worst, this.scenarioLoss[a * C + s]);
      // The flagged levels' columns come after the add-ons: they may only raise the requirement.
      let flaggedLoss = 0;
      for (let s = S; s < C; s++) flaggedLoss = Math.max(flaggedLoss, this.scenarioLoss[a * C + s]);
      this.accounts[a].initialByUnderlying.set(ui, Math.max(this.withAddOns(this.accounts[a], ui, worst, point, params), flaggedLoss));
      this.accounts[a].staleUnderlyings.delete(ui);
    }
    return touchedCount;
  }

  /**
   * Off the hot path (rows added or removed since the last tick): one account's requirement on one
   * underlying on the model's object path, only when a figure is asked for before the next tick.
   */
  private refreshRequirement(account: AccountSlot, market: MarketSlot): void {
    account.staleUnderlyings.delete(market.index);
    const point = this.marketPoint(market);
    // In slot order, the order the flat pass sums in: both paths give the same bits.
    const rows: { slot: number; row: RowInfo }[] = [];
    for (const key of account.rowKeys) {
      const row = this.rows.get(key);
      if (row && row.underlyingIndex === market.index) rows.push({ slot: this.book.slotOf(key), row });
    }
    const positions: Position[] = rows.sort((x, y) => x.slot - y.slot).map(({ row }) => ({ terms: row.terms, side: row.side }));
    if (point === undefined || positions.length === 0) {
      account.initialByUnderlying.delete(market.index);
      return;
    }
    const params = this.paramsOf(market);
    const span = portfolioInitialMargin(positions, { [market.underlying]: point }, () => params);
    let flaggedLoss = 0;
    for (const level of this.flaggedLevels(market)) {
      const at = { ...point, mark: level };
      let loss = 0;
      for (const p of positions) loss += -(markToMarket(p.terms, p.side, at) - markToMarket(p.terms, p.side, point));
      flaggedLoss = Math.max(flaggedLoss, loss);
    }
    account.initialByUnderlying.set(market.index, Math.max(span, flaggedLoss));
  }

  /**
   * The scan risk is the whole requirement of an account with perpetuals only; one that sells
   * options or holds futures also has the short option minimum and the spread charge
   * (portfolioInitialMargin), taken on the model's object path for that account alone.
   */
  private withAddOns(account: AccountSlot, ui: number, scanRisk: number, point: MarketPoint, params: MarginParams): number {
    const rows: { slot: number; row: RowInfo }[] = [];
    let needsAddOns = false;
    for (const key of account.rowKeys) {
      const row = this.rows.get(key);
      if (!row || row.underlyingIndex !== ui) continue;
      rows.push({ slot: this.book.slotOf(key), row });
      needsAddOns = needsAddOns || row.terms.kind !== 'PERPETUAL';
    }
    if (!needsAddOns) return scanRisk;
    const positions: Position[] = rows.sort((x, y) => x.slot - y.slot).map(({ row }) => ({ terms: row.terms, side: row.side }));
    return portfolioInitialMargin(positions, { [this.markets[ui].underlying]: point }, () => params);
  }

  private refreshPnlSums(): void {
    if (!this.pnlSumsDirty) return;
    const n = this.pnlSums.length;
    this.book.equityByParty(this.pnl, this.zeros.subarray(0, n), this.pnlSums);
    this.pnlSumsDirty = false;
  }

  private figures(account: AccountSlot): AccountFigures {
    this.refreshPnlSums();
    for (const ui of [...account.staleUnderlyings]) this.refreshRequirement(account, this.markets[ui]);
    let initial = 0;
    let maintenance = 0;
    for (const ui of [...account.initialByUnderlying.keys()].sort((x, y) => x - y)) {
      const im = account.initialByUnderlying.get(ui) as number;
      initial += im;
      maintenance += im * marginParamsFor(this.policy, this.markets[ui].underlying).maintenanceFraction;
    }
    const base = account.collateralMinor + account.flowsMinor + account.coverMinor;
    const check = checkMarginMinor({
      collateralMinor: base,
      pnl: this.pnlSums[account.index],
      initialRequirement: initial,
      maintenanceRequirement: Math.min(maintenance, initial),
      scale: account.scale,
    });
    return {
      currency: account.currency,
      equityMinor: check.equityMinor,
      ownEquityMinor: check.equityMinor - account.coverMinor,
      initialMinor: check.initialMinor,
      maintenanceMinor: check.maintenanceMinor,
      collateralMinor: account.collateralMinor,
      flowsMinor: account.flowsMinor,
      coverMinor: account.coverMinor,
      unrealizedPnlMinor: check.equityMinor - base,
    };
  }

  private decisionNeeded(account: AccountSlot): AccountNeedingDecision | undefined {
    const state = this.accountStates.get(account.partyId);
    if (state === undefined || state.defaulted) return undefined;
    const f = this.figures(account);
    const assessment = assessmentOf(f);
    if (f.ownEquityMinor < 0n) return { partyId: account.partyId, assessment };
    if (f.equityMinor >= f.maintenanceMinor || openCallIn(state, account.currency) !== undefined) return undefined;
    return { partyId: account.partyId, assessment };
  }

  // ---- queries for the workflow and the read endpoints -----------------------------------------

  /** Equity and requirements of (party, currency) now, or undefined when there is no such account. */
  assess(partyId: string, currency: string): Assessment | undefined {
    const index = this.accountIndex.get(`${partyId}\u0000${currency}`);
    return index === undefined ? undefined : assessmentOf(this.figures(this.accounts[index]));
  }

  /** The account's assessment when it needs a decision now (see revalue), else undefined. */
  needsDecision(partyId: string, currency: string): AccountNeedingDecision | undefined {
    const index = this.accountIndex.get(`${partyId}\u0000${currency}`);
    return index === undefined ? undefined : this.decisionNeeded(this.accounts[index]);
  }

  /** The same, as if intake's balance for (contract, this party's side) were `balanceMinor`. */
  assessWithBalance(partyId: string, currency: string, contractId: string, balanceMinor: bigint): Assessment | undefined {
    const index = this.accountIndex.get(`${partyId}\u0000${currency}`);
    if (index === undefined) return undefined;
    const account = this.accounts[index];
    const now = assessmentOf(this.figures(account));
    const delta = balanceMinor - (account.collateralByContract.get(contractId) ?? 0n);
    return { ...now, equityMinor: now.equityMinor + delta, ownEquityMinor: now.ownEquityMinor + delta };
  }

  accountFigures(partyId: string): AccountFigures[] {
    return this.accountsOf(partyId).map((a) => this.figures(a));
  }

  private accountsOf(partyId: string): readonly AccountSlot[] {
    return this.accountsByParty.get(partyId) ?? [];
  }

  accountState(partyId: string): AccountState | undefined {
    return this.accountStates.get(partyId);
  }

  contractSpec(contractId: string): PositionSpec | undefined {
    return this.contracts.get(contractId)?.spec;
  }

  positions(partyId: string): PositionView[] {
    this.refreshPnlSums();
    const views: PositionView[] = [];
    for (const account of this.accountsOf(partyId)) {
      for (const key of account.rowKeys) {
        const row = this.rows.get(key);
        const contract = row ? this.contracts.get(row.contractId) : undefined;
        if (!row || !contract) continue;
        const s = contract.spec;
        views.push({ contractId: s.contractId, side: row.side, kind: s.kind, underlying: s.underlying, currency: s.currency, size: s.size, entryPrice: s.entryPrice, markToMarket: this.pnl[this.book.slotOf(key)] });
      }
    }
    return views;
  }

  /** The last sane mark of every underlying the party holds an open position on. */
  lastSaneMarks(partyId: string): LastSaneMarks {
    const marks: Record<string, string> = {};
    for (const account of this.accountsOf(partyId)) {
      for (const key of account.rowKeys) {
        const row = this.rows.get(key);
        if (!row) continue;
        const market = this.markets[row.underlyingIndex];
        if (market.state.lastSane) marks[market.underlying] = market.state.lastSane.price;
      }
    }
    return marks;
  }

  /** Calls whose deadline (MISS) or second deadline (SECOND) is at or before `nowMs`, oldest first. */
  dueDeadlines(nowMs: number): DueDeadline[] {
    const due: { d: DueDeadline; atMs: number }[] = [];
    for (const call of this.openCalls.values()) {
      if (call.status === 'ISSUED' && call.deadlineMs <= nowMs) due.push({ d: { partyId: call.partyId, callId: call.callId, phase: 'MISS' }, atMs: call.deadlineMs });
      if (call.secondDeadlineMs <= nowMs) due.push({ d: { partyId: call.partyId, callId: call.callId, phase: 'SECOND' }, atMs: call.secondDeadlineMs });
    }
    due.sort((x, y) => x.atMs - y.atMs || (x.d.callId < y.d.callId ? -1 : x.d.callId > y.d.callId ? 1 : 0));
    return due.map((x) => x.d);
  }

  openCallsOf(partyId: string): OpenCallView[] {
    return [...this.openCalls.values()].filter((c) => c.partyId === partyId);
  }

  /**
   * Funding instants of the perpetuals on `underlying` in (last decided, nowMs], each at the rate and
   * price of the last sane mark before it (the mark before the one that crossed it; the market state
   * keeps it, so a redelivered mark after a crash finds the same one). An instant with no rate
   * published is decided at rate 0. Looks only when an instant has passed since the last look.
   */
  fundingDue(underlying: string, nowMs: number): FundingDue[] {
    const market = this.markets[this.marketIndex.get(underlying) ?? -1];
    if (market === undefined) return [];
    const interval = this.policy.fundingIntervalMs;
    const crossed = Math.floor(nowMs / interval) > Math.floor(market.fundingCheckedMs / interval);
    market.fundingCheckedMs = Math.max(market.fundingCheckedMs, nowMs);
    if (!crossed) return [];
    const { lastSane, previousSane } = market.state;
    const due: FundingDue[] = [];
    for (const contractId of [...this.contractsByUnderlying[market.index]].sort()) {
      const c = this.contracts.get(contractId);
      if (!c || c.settled || c.spec.kind !== 'PERPETUAL') continue;
      for (const at of fundingInstants(interval, c.fundedThroughMs, nowMs, this.policy.fundingCatchUpMax)) {
        const inForce = lastSane !== undefined && lastSane.atMs < at ? lastSane : previousSane;
        const priced = inForce ?? lastSane;
        if (priced === undefined) continue;
        due.push({ contractId, longPartyId: c.spec.longPartyId, fundingAtMs: at, rate: inForce?.fundingRate ?? '0', mark: priced.price });
      }
    }
    return due;
  }

  /** Funding at `atMs` was decided (paid, or nothing owed): do not look at it again. */
  fundingDecided(contractId: string, atMs: number): void {
    const c = this.contracts.get(contractId);
    if (c) c.fundedThroughMs = Math.max(c.fundedThroughMs, atMs);
  }

  /**
   * Dated contracts of `underlying` whose settlement window [expiry − before, expiry + after] has
   * closed by `nowMs` and that are not settled yet, in id order, each with its settlement price
   * (settlementPrice: the TWAP of accepted marks in the window, or the last accepted one before it).
   * A contract with no accepted mark at all yet waits for one.
   */
  expiriesDue(underlying: string, nowMs: number): ExpiryDue[] {
    const index = this.marketIndex.get(underlying);
    if (index === undefined) return [];
    const market = this.markets[index];
    if (market.nextExpiryMs !== undefined && nowMs < market.nextExpiryMs) return [];
    const { windowBeforeMs, windowAfterMs } = this.policy.expiry;
    const due: ExpiryDue[] = [];
    let next = Number.POSITIVE_INFINITY;
    let waiting = false;
    for (const contractId of this.contractsByUnderlying[index]) {
      const c = this.contracts.get(contractId);
      if (!c || c.settled || c.expiryMs === undefined) continue;
      const endMs = c.expiryMs + windowAfterMs;
      if (endMs > nowMs) {
        next = Math.min(next, endMs);
        continue;
      }
      const priced = settlementPrice(market.accepted, c.expiryMs - windowBeforeMs, endMs);
      if (priced === undefined) {
        waiting = true;
        continue;
      }
      due.push({ contractId, longPartyId: c.spec.longPartyId, at: new Date(endMs).toISOString(), price: priced.price, priceBasis: priced.basis, detail: priced.detail });
    }
    // Due (or still unpriced) contracts are settled next; until then they keep the cache invalid.
    market.nextExpiryMs = due.length > 0 || waiting ? undefined : next;
    return due.sort((x, y) => (x.contractId < y.contractId ? -1 : 1));
  }

  /** Underlyings whose last accepted mark is older than the alarm limit by `nowMs` and not yet alarmed. */
  staleMarkets(nowMs: number): string[] {
    const limit = this.policy.sanity.alarmStaleMs;
    if (limit <= 0) return [];
    return this.markets
      .filter((m) => m.state.lastSane !== undefined && m.state.staleAlarmFor !== m.state.lastSane.at && nowMs - m.state.lastSane.receivedAtMs > limit)
      .map((m) => m.underlying);
  }

  /** Rows in the book (metrics, tests). */
  get rowCount(): number {
    return this.book.count;
  }
}

function assessmentOf(f: AccountFigures): Assessment {
  return { currency: f.currency, equityMinor: f.equityMinor, ownEquityMinor: f.ownEquityMinor, initialMinor: f.initialMinor, maintenanceMinor: f.maintenanceMinor };
}
