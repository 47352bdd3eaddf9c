/**
 * What is due when (funding instants, expiry settlements, stale-mark alarms, call deadlines), read
 * off the projection. The reads are pure; the scheduler's own memory (which funding instants it has
 * looked at or decided) changes only through its two commands, fundingLooked and fundingDecided.
 * That memory is not state of record: a restart looks again, and the decisions' causation ids make
 * a second look append nothing twice.
 */
import { iso } from '@backstop/kernel';
import { settlementPrice, SettlementPriceBasis } from './expiry';
import { MarginProjection } from './projection';
import { fundingInstants, MarginPolicy } from './policy';

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

export class MarginScheduler {
  /** Per underlying: funding instants up to here have been looked at. */
  private readonly fundingLookedMs = new Map<string, number>();
  /** Per contract: funding decided through here without an event (a rejected decision). */
  private readonly fundingDecidedMs = new Map<string, number>();

  constructor(
    private readonly projection: MarginProjection,
    private readonly policy: MarginPolicy,
  ) {}

  /**
   * Funding instants of the perpetuals on `underlying` in (last decided, nowMs], each at the rate and
   * price of the last sane mark before it (the mark before the one that crossed it; the market state
   * keeps it, so a redelivered mark after a crash finds the same one). An instant with no rate
   * published is decided at rate 0. Empty unless an instant has passed since the last look.
   */
  fundingDue(underlying: string, nowMs: number): FundingDue[] {
    const market = this.projection.marketOf(underlying);
    if (market === undefined) return [];
    const interval = this.policy.fundingIntervalMs;
    const lookedMs = this.fundingLookedMs.get(underlying) ?? Number.NEGATIVE_INFINITY;
    if (!(Math.floor(nowMs / interval) > Math.floor(lookedMs / interval))) return [];
    const { lastSane, previousSane } = market.state;
    const due: FundingDue[] = [];
    for (const contractId of [...market.contractIds].sort()) {
      const c = this.projection.contract(contractId);
      if (!c || c.settled || c.spec.kind !== 'PERPETUAL') continue;
      const fromMs = Math.max(c.fundedThroughMs, this.fundingDecidedMs.get(contractId) ?? Number.NEGATIVE_INFINITY);
      for (const at of fundingInstants(interval, fromMs, nowMs, this.policy.fundingCatchUpMax)) {
        const inForce = lastSane !== undefined && lastSane.atMs < at ? lastSane : previousSane;
        const priced = inForce ?? lastSane;
        if (priced === undefined) continue;
        due.push({ contractId, longPartyId: c.spec.longPartyId, fundingAtMs: at, rate: inForce?.fundingRate ?? '0', mark: priced.price });
      }
    }
    return due;
  }

  /** Funding instants of `underlying` up to `nowMs` were looked at (and decided). */
  fundingLooked(underlying: string, nowMs: number): void {
    this.fundingLookedMs.set(underlying, Math.max(this.fundingLookedMs.get(underlying) ?? Number.NEGATIVE_INFINITY, nowMs));
  }

  /** Funding at `atMs` was decided (paid, or nothing owed): do not look at it again. */
  fundingDecided(contractId: string, atMs: number): void {
    this.fundingDecidedMs.set(contractId, Math.max(this.fundingDecidedMs.get(contractId) ?? Number.NEGATIVE_INFINITY, atMs));
  }

  /**
   * Dated contracts of `underlying` whose settlement window [expiry − before, expiry + after] has
   * closed by `nowMs` and that are not settled yet, in id order, each with its settlement price
   * (settlementPrice: the TWAP of accepted marks in the window, or the last accepted one before it).
   * A contract with no accepted mark at all yet waits for one. Reads the projection's expiry
   * schedule in instant order, so it stops at the first instant still open.
   */
  expiriesDue(underlying: string, nowMs: number): ExpiryDue[] {
    const market = this.projection.marketOf(underlying);
    if (market === undefined) return [];
    const { windowBeforeMs, windowAfterMs } = this.policy.expiry;
    const due: ExpiryDue[] = [];
    for (const expiryMs of market.expiryInstants) {
      const endMs = expiryMs + windowAfterMs;
      if (endMs > nowMs) break;
      const priced = settlementPrice(market.accepted, expiryMs - windowBeforeMs, endMs);
      if (priced === undefined) continue;
      for (const contractId of market.byExpiry.get(expiryMs) ?? []) {
        const c = this.projection.contract(contractId);
        if (!c || c.settled) continue;
        due.push({ contractId, longPartyId: c.spec.longPartyId, at: iso(endMs), price: priced.price, priceBasis: priced.basis, detail: priced.detail });
      }
    }
    return due.sort((x, y) => (x.contractId < y.contractId ? -1 : 1));
  }

  /** Underlyings whose last accepted mark is older than the alarm limit by `nowMs` and not yet alarmed. */
  staleMarkets(nowMs: number): string[] {
    const limit = this.policy.sanity.alarmStaleMs;
    if (limit <= 0) return [];
    return this.projection.markets
      .filter((m) => m.state.lastSane !== undefined && m.state.staleAlarmFor !== m.state.lastSane.at && nowMs - m.state.lastSane.receivedAtMs > limit)
      .map((m) => m.underlying);
  }

  /** Calls whose deadline (MISS) or second deadline (SECOND) is at or before `nowMs`, oldest first. */
  dueDeadlines(nowMs: number): DueDeadline[] {
    const due: { d: DueDeadline; atMs: number }[] = [];
    for (const call of this.projection.openCalls.values()) {
      if (call.status === 'ISSUED' && call.deadlineMs <= nowMs) due.push({ d: { partyId: call.partyId, callId: call.callId, phase: 'MISS' }, atMs: call.deadlineMs });
      if (call.secondDeadlineMs <= nowMs) due.push({ d: { partyId: call.partyId, callId: call.callId, phase: 'SECOND' }, atMs: call.secondDeadlineMs });
    }
    due.sort((x, y) => x.atMs - y.atMs || (x.d.callId < y.d.callId ? -1 : x.d.callId > y.d.callId ? 1 : 0));
    return due.map((x) => x.d);
  }
}
