/**
 * What margin-monitor does in answer to each input, in order, as pure orchestration over a port:
 * the service's port appends to the event store (decideOnStream), a test's port to memory. After
 * every decision the port has applied the written events to the monitor, so each step sees the
 * effect of the previous one.
 *
 * Every decision is keyed by a causation id derived from the source message and the rule
 * (`<mark id>:assess`, `expiry:<contract>`, `funding:<contract>:<instant>`, `miss:<call>`, ...):
 * a redelivered message or a replay appends nothing twice, and a decision stamped by a deadline
 * carries the deadline's instant whichever tick or mark noticed it.
 */
import type { CollateralChangedData } from '@backstop/contracts';
import { Causation, currencyOf, DomainEvent, DomainRejection, invariant, iso, ms, toMinor } from '@backstop/kernel';
import { AccountCommand, Assessment, CollateralChange, PositionCloseOut, PositionSpec } from './account';
import { MarketCommand, MarkRecordedData } from './market';
import { MarginMonitor } from './monitor';

export interface DecisionOutcome {
  readonly stream: string;
  readonly lastRevision: number;
  /** The events of this causation (new, or found again for a redelivery). */
  readonly events: readonly DomainEvent[];
  readonly alreadyApplied: boolean;
}

export interface DecisionPort {
  /** Decide on `margin-<partyId>` with the account decider and apply what was written to the monitor. */
  decideAccount(command: AccountCommand, causation: Causation): Promise<DecisionOutcome>;
  /** Decide on `market-<underlying>` with the market decider and apply what was written to the monitor. */
  decideMarket(command: MarketCommand, causation: Causation): Promise<DecisionOutcome>;
  /** An internal decision broke a rule: reported (logged), never retried forever. */
  rejected(what: string, rejection: DomainRejection): void;
}

/** The message that started the work: its id keys every decision it leads to. */
export interface Source {
  readonly id: string;
  readonly correlationId: string;
  readonly traceparent?: string;
  /** Who sent the command over HTTP (an operator's DeclareDefault), recorded for audit. */
  readonly actor?: string;
}

/** A mark as it arrives: the market decider's RecordMark without its type tag. */
export type MarkInput = Omit<Extract<MarketCommand, { type: 'RecordMark' }>, 'type'>;

export interface ContractRegisteredInput extends Omit<PositionSpec, 'side'> {
  /** The initial margin each side agreed to post (intake's ContractRegistered). */
  readonly longInitialMargin?: string;
  readonly shortInitialMargin?: string;
  readonly at: string;
}

/** What intake publishes when a contract side's collateral changes (`CollateralDeposited`/`Withdrawn`). */
export type CollateralInput = CollateralChangedData;

export interface MarkOutcome {
  readonly mark: MarkRecordedData;
  readonly revalued: number;
}

export class MarginWorkflow {
  constructor(
    readonly monitor: MarginMonitor,
    private readonly port: DecisionPort,
  ) {}

  /**
   * A MarkPrice input (SPEC §3.7): record it; an accepted one settles expiries, funding, then
   * re-values and calls. A flagged candidate level (JUMP) re-values too: it may raise requirements
   * (one more scenario), while equity stays on the accepted mark.
   */
  async onMark(source: Source, input: MarkInput): Promise<MarkOutcome> {
    const u = input.underlying;
    const outcome = await this.port.decideMarket({ type: 'RecordMark', ...input }, cause(source, source.id, input.at));
    const mark = outcome.events[0]?.data as MarkRecordedData | undefined;
    invariant(mark !== undefined, `recording a mark of ${u} wrote no MarkRecorded`);
    if (!mark.sane) {
      if (mark.flag !== 'JUMP') return { mark, revalued: 0 };
      // Recording it re-valued the underlying (the flagged level is one more scenario).
      const { revalued, needDecision } = this.monitor.accountsNeedingDecision(u);
      for (const need of needDecision) await this.assess(source, `${source.id}:assess`, need.partyId, need.assessment, input.receivedAt);
      return { mark, revalued };
    }
    const nowMs = ms(mark.at);
    await this.settleExpiries(u, nowMs);
    for (const due of this.monitor.fundingDue(u, nowMs)) {
      const fundingAt = iso(due.fundingAtMs);
      await this.tryAccount(
        { type: 'ExchangeFunding', partyId: due.longPartyId, contractId: due.contractId, fundingAt, rate: due.rate, mark: due.mark, ...this.sideInDefault(due.contractId) },
        cause(source, `funding:${due.contractId}:${fundingAt}`, fundingAt),
      );
      this.monitor.fundingDecided(due.contractId, due.fundingAtMs);
    }
    this.monitor.fundingLooked(u, nowMs);
    // Recording the mark re-valued the underlying; settlements and funding above re-valued what they moved.
    const { revalued, needDecision } = this.monitor.accountsNeedingDecision(u);
    for (const need of needDecision) await this.assess(source, `${source.id}:assess`, need.partyId, need.assessment, mark.at);
    await this.deadlines(nowMs);
    return { mark, revalued };
  }

  /**
   * The injected clock's tick: expiry windows that have closed (settled on time, whether or not a
   * mark comes), stale-mark alarms, deadlines.
   */
  async onTick(nowIso: string): Promise<void> {
    const nowMs = ms(nowIso);
    for (const u of this.monitor.underlyings()) await this.settleExpiries(u, nowMs);
    for (const u of this.monitor.staleMarkets(nowMs)) {
      const last = this.monitor.marketState(u).lastSane;
      if (last === undefined) continue;
      const id = `stale:${u}:${last.at}`;
      await this.port.decideMarket({ type: 'CheckStale', underlying: u, now: nowIso }, cause({ id, correlationId: id }, id, nowIso));
    }
    await this.deadlines(nowMs);
  }

  private async settleExpiries(underlying: string, nowMs: number): Promise<void> {
    for (const due of this.monitor.expiriesDue(underlying, nowMs)) {
      const source: Source = { id: `expiry:${due.contractId}`, correlationId: due.contractId };
      await this.tryAccount(
        { type: 'SettleContract', partyId: due.longPartyId, contractId: due.contractId, reason: 'EXPIRY', price: due.price, priceBasis: due.priceBasis, priceDetail: due.detail, at: due.at },
        cause(source, `expiry:${due.contractId}`, due.at),
      );
    }
  }

  async onContractRegistered(source: Source, input: ContractRegisteredInput): Promise<void> {
    const { at, longInitialMargin, shortInitialMargin, ...terms } = input;
    for (const side of ['LONG', 'SHORT'] as const) {
      const partyId = side === 'LONG' ? input.longPartyId : input.shortPartyId;
      await this.tryAccount({ type: 'OpenPosition', partyId, position: { ...terms, side }, at }, cause(source, source.id, at));
    }
    // Live now: a side whose posted collateral is below its requirement is called at once (normal
    // grace), so no adverse tick can default it before it was ever called (issue 8, defect 8).
    for (const side of ['LONG', 'SHORT'] as const) {
      const partyId = side === 'LONG' ? input.longPartyId : input.shortPartyId;
      const agreed = side === 'LONG' ? longInitialMargin : shortInitialMargin;
      const assessment = this.monitor.assess(partyId, input.currency);
      if (assessment === undefined) continue;
      await this.tryAccount(
        { type: 'CallInitialMargin', partyId, contractId: input.contractId, ...(agreed !== undefined ? { agreedInitialMargin: agreed } : {}), assessment, at },
        cause(source, `${source.id}:initial`, at),
      );
    }
  }

  async onCollateral(source: Source, change: CollateralChange, input: CollateralInput): Promise<void> {
    const scale = currencyOf(input.currency).scale;
    const after = this.monitor.assessWithBalance(input.partyId, input.currency, input.contractId, toMinor(input.balance, scale)) ?? emptyAssessment(input.currency);
    await this.tryAccount({ type: 'RecordCollateral', ...input, change, after }, cause(source, source.id, input.at));
    if (change === 'WITHDRAWAL') {
      const need = this.monitor.needsDecision(input.partyId, input.currency);
      if (need) await this.assess(source, `${source.id}:assess`, input.partyId, need.assessment, input.at);
    }
  }

  async onContractClosed(source: Source, input: { contractId: string; closePrice: string; at: string }): Promise<void> {
    const spec = this.monitor.contractSpec(input.contractId);
    if (spec === undefined) {
      this.port.rejected('ContractClosed', new DomainRejection([{ field: 'contractId', rule: 'knownPosition', message: `contract ${input.contractId} has no margin position` }]));
      return;
    }
    await this.tryAccount(
      { type: 'SettleContract', partyId: spec.longPartyId, contractId: input.contractId, reason: 'CLOSE', price: input.closePrice, at: input.at },
      cause(source, source.id, input.at),
    );
  }

  /**
   * default-settlement's ContractClosedOut: recorded once in the long party's stream; the contract
   * leaves both accounts (the defaulter is in default already, so it takes no further calls).
   */
  async onContractClosedOut(source: Source, input: PositionCloseOut): Promise<void> {
    const spec = this.monitor.contractSpec(input.contractId);
    if (spec === undefined) {
      this.port.rejected('ContractClosedOut', new DomainRejection([{ field: 'contractId', rule: 'knownPosition', message: `contract ${input.contractId} has no margin position` }]));
      return;
    }
    await this.tryAccount({ type: 'CloseOutPosition', partyId: spec.longPartyId, ...input }, cause(source, source.id, input.at));
  }

  async onBackstopCover(source: Source, input: { callId: string; partyId: string; amount: string; currency: string; at: string }): Promise<void> {
    await this.tryAccount({ type: 'RecordBackstopCover', ...input }, cause(source, source.id, input.at));
  }

  /** settlement's MarginAdvanceRepaid: the pool's margin leaves the party's equity (its deposit replaced it). */
  async onBackstopCoverReturned(source: Source, input: { partyId: string; amount: string; currency: string; reference: string; at: string }): Promise<void> {
    await this.tryAccount({ type: 'RecordBackstopCoverReturn', ...input }, cause(source, source.id, input.at));
  }

  /** An operator's DeclareDefault: a rejection goes back to the caller. */
  declareDefault(source: Source, partyId: string, reason: string, at: string, closeOutPrices?: Readonly<Record<string, string>>): Promise<DecisionOutcome> {
    return this.port.decideAccount(
      {
        type: 'DeclareDefault',
        partyId,
        reason,
        at,
        lastSaneMarks: this.monitor.lastSaneMarks(partyId),
        ...(closeOutPrices !== undefined ? { closeOutPrices } : {}),
        ...(source.actor !== undefined ? { declaredBy: source.actor } : {}),
      },
      cause(source, source.id, at),
    );
  }

  /** Either side of the contract in default, as the monitor knows both accounts. */
  private sideInDefault(contractId: string): { sideInDefault?: { partyId: string; since: string } } {
    const spec = this.monitor.contractSpec(contractId);
    if (spec === undefined) return {};
    for (const partyId of [spec.longPartyId, spec.shortPartyId]) {
      const defaulted = this.monitor.accountState(partyId)?.defaulted;
      if (defaulted) return { sideInDefault: { partyId, since: defaulted.at } };
    }
    return {};
  }

  private async assess(source: Source, causationId: string, partyId: string, assessment: Assessment, at: string): Promise<void> {
    await this.tryAccount(
      { type: 'AssessMargin', partyId, assessment, lastSaneMarks: this.monitor.lastSaneMarks(partyId), at },
      cause(source, `${causationId}:${assessment.currency}`, at),
    );
  }

  private async deadlines(nowMs: number): Promise<void> {
    const now = iso(nowMs);
    for (const due of this.monitor.dueDeadlines(nowMs)) {
      const source: Source = { id: due.callId, correlationId: due.callId };
      if (due.phase === 'MISS') {
        await this.tryAccount({ type: 'MissCall', partyId: due.partyId, callId: due.callId, now }, cause(source, `miss:${due.callId}`, now));
        continue;
      }
      const call = this.monitor.accountState(due.partyId)?.calls[due.callId];
      const assessment = call ? this.monitor.assess(due.partyId, call.currency) : undefined;
      if (call === undefined || assessment === undefined) continue;
      await this.tryAccount(
        { type: 'CheckSecondDeadline', partyId: due.partyId, callId: due.callId, now, assessment, lastSaneMarks: this.monitor.lastSaneMarks(due.partyId) },
        cause(source, `second:${due.callId}`, now),
      );
    }
  }

  private async tryAccount(command: AccountCommand, causation: Causation): Promise<void> {
    try {
      await this.port.decideAccount(command, causation);
    } catch (err) {
      // A RangeError is upstream data the kernel could not parse (an amount, a currency): as final
      // as a rule break. Anything else (the store, a bug) is thrown, so the input is retried.
      const rejection = err instanceof DomainRejection ? err : err instanceof RangeError ? new DomainRejection([{ field: '(input)', rule: 'parsable', message: err.message }]) : undefined;
      if (rejection === undefined) throw err;
      this.port.rejected(`${command.type} for ${command.partyId} (${causation.causationId})`, rejection);
    }
  }
}

function cause(source: Source, causationId: string, occurredAt: string): Causation {
  return {
    causationId,
    correlationId: source.correlationId,
    occurredAt,
    ...(source.traceparent ? { traceparent: source.traceparent } : {}),
    ...(source.actor ? { actor: source.actor } : {}),
  };
}

function emptyAssessment(currency: string): Assessment {
  return { currency, equityMinor: 0n, ownEquityMinor: 0n, initialMinor: 0n, maintenanceMinor: 0n };
}
