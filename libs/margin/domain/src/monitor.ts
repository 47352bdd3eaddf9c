/**
 * The margin monitor: what margin-monitor's workflow and read endpoints see, composed of
 * - the projection (projection.ts): our own streams folded into facts, the only state changed, and
 *   only by applying events; it drives
 * - the revaluation engine (revaluation.ts): MTM and SPAN requirements per (account, underlying);
 * - the scheduler (schedule.ts): funding, expiry, stale-mark and deadline reads, with its own memory;
 * - the read views below: pure reads (figures, positions, decisions needed).
 *
 * Equity = collateral (intake's per-contract balances) + contract cash flows (funding, settlements)
 *        + backstop cover + Σ MTM (rounded down); own equity = equity − backstop cover.
 * Requirements round up (checkMarginMinor from the model).
 */
import { Side } from '@backstop/kernel';
import { checkMarginMinor, markToMarket } from '@backstop/margin-model';
import { AccountState, Assessment, LastSaneMarks, openCallIn, PositionSpec } from './account';
import { EMPTY_MARKET, MarketState } from './market';
import { MarginPolicy, marginParamsFor } from './policy';
import { AccountSlot, ApplyResult, BOOK_CAPACITY_INITIAL, MarginProjection, OpenCallView, RecordedEvent } from './projection';
import { DueDeadline, ExpiryDue, FundingDue, MarginScheduler } from './schedule';

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
  readonly projection: MarginProjection;
  readonly scheduler: MarginScheduler;

  constructor(readonly policy: MarginPolicy, capacity = BOOK_CAPACITY_INITIAL) {
    this.projection = new MarginProjection(policy, capacity);
    this.scheduler = new MarginScheduler(this.projection, policy);
  }

  // ---- events (the only way state changes) ------------------------------------------------------

  revisionOf(stream: string): number {
    return this.projection.revisionOf(stream);
  }

  /** Applies one event of our streams and re-values what it moved (see MarginProjection.apply). */
  apply(event: RecordedEvent): ApplyResult {
    return this.projection.apply(event);
  }

  /** A rebuild's event: valuation waits for completeReplay (one pass per underlying, not per mark). */
  applyReplayed(event: RecordedEvent): ApplyResult {
    return this.projection.applyReplayed(event);
  }

  completeReplay(): void {
    this.projection.completeReplay();
  }

  // ---- the scheduler's memory (not state of record) -------------------------------------------------

  fundingDue(underlying: string, nowMs: number): FundingDue[] {
    return this.scheduler.fundingDue(underlying, nowMs);
  }

  fundingLooked(underlying: string, nowMs: number): void {
    this.scheduler.fundingLooked(underlying, nowMs);
  }

  fundingDecided(contractId: string, atMs: number): void {
    this.scheduler.fundingDecided(contractId, atMs);
  }

  expiriesDue(underlying: string, nowMs: number): ExpiryDue[] {
    return this.scheduler.expiriesDue(underlying, nowMs);
  }

  staleMarkets(nowMs: number): string[] {
    return this.scheduler.staleMarkets(nowMs);
  }

  dueDeadlines(nowMs: number): DueDeadline[] {
    return this.scheduler.dueDeadlines(nowMs);
  }

  // ---- read views (pure) ---------------------------------------------------------------------------

  /**
   * The accounts holding `underlying` that need a decision at its current valuation: below
   * maintenance with no open call, or own equity below zero; never a defaulted account, never one
   * valued only in part (see decisionNeeded). `revalued`: position rows on the underlying (metrics).
   */
  accountsNeedingDecision(underlying: string): { revalued: number; needDecision: AccountNeedingDecision[] } {
    const market = this.projection.marketOf(underlying);
    if (market === undefined || market.state.lastSane === undefined) return { revalued: 0, needDecision: [] };
    const engine = this.projection.engine;
    const needDecision: AccountNeedingDecision[] = [];
    const seen = new Set<number>();
    for (const e of engine.exposuresOn(market.index)) {
      if (engine.rowsOf(e) === 0) continue;
      const account = this.projection.accountAt(this.accountIndexOf(e));
      if (seen.has(account.index)) continue;
      seen.add(account.index);
      const need = this.decisionNeeded(account);
      if (need) needDecision.push(need);
    }
    return { revalued: engine.rowsOn(market.index), needDecision };
  }

  /** Equity and requirements of (party, currency) now, or undefined when there is no such account. */
  assess(partyId: string, currency: string): Assessment | undefined {
    const account = this.projection.accountOf(partyId, currency);
    return account === undefined ? undefined : assessmentOf(this.figures(account));
  }

  /** The account's assessment when it needs a decision now (see accountsNeedingDecision), else undefined. */
  needsDecision(partyId: string, currency: string): AccountNeedingDecision | undefined {
    const account = this.projection.accountOf(partyId, currency);
    return account === undefined ? undefined : this.decisionNeeded(account);
  }

  /** The same as assess, as if intake's balance for (contract, this party's side) were `balanceMinor`. */
  assessWithBalance(partyId: string, currency: string, contractId: string, balanceMinor: bigint): Assessment | undefined {
    const account = this.projection.accountOf(partyId, currency);
    if (account === undefined) return undefined;
    const now = assessmentOf(this.figures(account));
    const delta = balanceMinor - (account.collateralByContract.get(contractId) ?? 0n);
    return { ...now, equityMinor: now.equityMinor + delta, ownEquityMinor: now.ownEquityMinor + delta };
  }

  /**
   * True while one of the account's open positions is on an underlying with no accepted mark yet:
   * its equity and requirement leave that position out, so they are a partial valuation and no
   * call or default may rest on them (issue 10: a party was called on its BTC losses while its
   * ETH hedge had no mark yet).
   */
  partiallyValued(partyId: string, currency: string): boolean {
    const account = this.projection.accountOf(partyId, currency);
    return account !== undefined && this.isPartial(account);
  }

  accountFigures(partyId: string): AccountFigures[] {
    return this.projection.accountsOf(partyId).map((a) => this.figures(a));
  }

  accountState(partyId: string): AccountState | undefined {
    return this.projection.accountState(partyId);
  }

  contractSpec(contractId: string): PositionSpec | undefined {
    return this.projection.contract(contractId)?.spec;
  }

  positions(partyId: string): PositionView[] {
    const views: PositionView[] = [];
    for (const account of this.projection.accountsOf(partyId)) {
      for (const key of account.open) {
        const { contract, side } = this.projection.sideOf(key);
        const point = this.projection.pointOf(this.projection.marketAt(contract.underlyingIndex));
        const s = contract.spec;
        const mtm = point === undefined ? 0 : markToMarket(contract.terms, side, point);
        views.push({ contractId: s.contractId, side, kind: s.kind, underlying: s.underlying, currency: s.currency, size: s.size, entryPrice: s.entryPrice, markToMarket: mtm });
      }
    }
    return views;
  }

  /** The last sane mark of every underlying the party holds an open position on. */
  lastSaneMarks(partyId: string): LastSaneMarks {
    const marks: Record<string, string> = {};
    const engine = this.projection.engine;
    for (const account of this.projection.accountsOf(partyId)) {
      for (const e of account.exposures) {
        if (engine.rowsOf(e) === 0) continue;
        const market = this.projection.marketAt(engine.underlyingOf(e));
        if (market.state.lastSane) marks[market.underlying] = market.state.lastSane.price;
      }
    }
    return marks;
  }

  openCallsOf(partyId: string): OpenCallView[] {
    return [...this.projection.openCalls.values()].filter((c) => c.partyId === partyId);
  }

  marketState(underlying: string): MarketState {
    return this.projection.marketOf(underlying)?.state ?? EMPTY_MARKET;
  }

  underlyings(): string[] {
    return this.projection.markets.map((m) => m.underlying);
  }

  /** Position rows (open sides) in the book (metrics, tests). */
  get rowCount(): number {
    let rows = 0;
    for (const m of this.projection.markets) rows += this.projection.engine.rowsOn(m.index);
    return rows;
  }

  private accountIndexOf(e: number): number {
    return this.projection.engine.accountOf(e);
  }

  private isPartial(account: Readonly<AccountSlot>): boolean {
    const engine = this.projection.engine;
    for (const e of account.exposures) {
      if (engine.rowsOf(e) > 0 && this.projection.marketAt(engine.underlyingOf(e)).state.lastSane === undefined) return true;
    }
    return false;
  }

  private figures(account: Readonly<AccountSlot>): AccountFigures {
    const engine = this.projection.engine;
    let pnl = 0;
    let initial = 0;
    let maintenance = 0;
    for (const e of account.exposures) {
      pnl += engine.pnlOf(e);
      const im = engine.initialOf(e);
      initial += im;
      maintenance += im * marginParamsFor(this.policy, this.projection.marketAt(engine.underlyingOf(e)).underlying).maintenanceFraction;
    }
    const base = account.collateralMinor + account.flowsMinor + account.coverMinor;
    const check = checkMarginMinor({ collateralMinor: base, pnl, initialRequirement: initial, maintenanceRequirement: Math.min(maintenance, initial), scale: account.scale });
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

  private decisionNeeded(account: Readonly<AccountSlot>): AccountNeedingDecision | undefined {
    const state = this.projection.accountState(account.partyId);
    if (state === undefined || state.defaulted) return undefined;
    if (this.isPartial(account)) return undefined;
    const f = this.figures(account);
    const assessment = assessmentOf(f);
    if (f.ownEquityMinor < 0n) return { partyId: account.partyId, assessment };
    if (f.equityMinor >= f.maintenanceMinor || openCallIn(state, account.currency) !== undefined) return undefined;
    return { partyId: account.partyId, assessment };
  }
}

function assessmentOf(f: AccountFigures): Assessment {
  return { currency: f.currency, equityMinor: f.equityMinor, ownEquityMinor: f.ownEquityMinor, initialMinor: f.initialMinor, maintenanceMinor: f.maintenanceMinor };
}
