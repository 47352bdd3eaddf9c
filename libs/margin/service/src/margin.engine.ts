/**
 * margin-monitor's I/O around the pure workflow: the store-backed decision port, the rebuild of
 * the monitor from our own streams at start-up, and one serial queue through which every input
 * (marks, other services' events, clock ticks, operator commands, reads) passes, so the in-memory
 * view and the decisions taken on it never interleave (a single-writer engine, like a matching
 * engine: the order of inputs is the only source of ordering).
 */
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { Causation, DomainEvent, DomainRejection, invariant } from '@backstop/kernel';
import { EventStore, NewEvent, STORE_LIMITS, StoredEvent, WrongExpectedRevisionError } from '@backstop/event-store';
import { Envelope, flattenValidationErrors, InvalidMessageError } from '@backstop/messaging';
import { Logger, MetricsRegistry } from '@backstop/telemetry';
import { decideOnStream, deterministicUuid, MarkPriceDto, Runtime } from '@backstop/platform';
import {
  AccountCommand,
  accountDecider,
  CollateralChange,
  DecisionOutcome,
  DecisionPort,
  MarginMonitor,
  marginStream,
  MarginWorkflow,
  marketDecider,
  marketStream,
  MarketCommand,
  Source,
} from '@backstop/margin';
import { MarginServiceConfig } from './margin.config';

const CONFLICT_RETRIES_MAX = 5;

/** Event types margin-monitor consumes from other services (SPEC §1 table). */
export const CONSUMED_EVENT_TYPES = ['ContractRegistered', 'CollateralDeposited', 'CollateralWithdrawn', 'ContractClosed', 'MarginCoveredByBackstop', 'MarginAdvanceRepaid', 'ContractClosedOut'] as const;

/** A message that can never be handled (schema-invalid input): an InvalidMessageError, dead-lettered at once (never retried). */
export class InvalidInputError extends InvalidMessageError {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidInputError';
  }
}

/**
 * Account streams go through the platform's decideOnStream (rare writes; causation dedupe by
 * reading the stream). The market stream is written on every mark, so it is decided on the state
 * the monitor already holds and appended with that revision; a conflict re-reads what is new.
 * Event ids derive from (stream, causation id, index) either way, so a retry appends nothing twice.
 */
class StoreDecisionPort implements DecisionPort {
  private readonly account;
  private readonly market;

  constructor(
    private readonly store: EventStore,
    private readonly monitor: MarginMonitor,
    config: MarginServiceConfig,
    private readonly logger: Logger,
    private readonly onRejected: () => void,
  ) {
    this.account = accountDecider(config.policy);
    this.market = marketDecider(config.policy.sanity);
  }

  async decideAccount(command: AccountCommand, causation: Causation): Promise<DecisionOutcome> {
    const stream = marginStream(command.partyId);
    const decided = await decideOnStream(this.store, stream, this.account, command, causation);
    await this.applyAll(stream, decided.events);
    return { stream, lastRevision: decided.lastRevision, events: decided.events.map(domainEvent), alreadyApplied: decided.alreadyApplied };
  }

  async decideMarket(command: MarketCommand, causation: Causation): Promise<DecisionOutcome> {
    const stream = marketStream(command.underlying);
    for (let attempt = 0; ; attempt += 1) {
      const revision = this.monitor.revisionOf(stream);
      const decided = this.market.decide(command, this.monitor.marketState(command.underlying));
      const toAppend: NewEvent[] = decided.map((event, index) => ({
        id: deterministicUuid(stream, causation.causationId, index),
        type: event.type,
        data: event.data as unknown as Record<string, unknown>,
        metadata: { ...causation, schemaVersion: 1 },
      }));
      try {
        const result = await this.store.append(stream, toAppend, revision < 0 ? 'no_stream' : revision);
        if (result.duplicate) {
          // Recorded before (a redelivery after a crash): report what was recorded then.
          const events = (await this.catchUp(stream, 0)).filter((e) => e.metadata.causationId === causation.causationId);
          return { stream, lastRevision: result.lastRevision, events: events.map(domainEvent), alreadyApplied: true };
        }
        const written = await this.store.readStream(stream, { fromRevision: result.lastRevision - toAppend.length + 1, maxCount: toAppend.length });
        await this.applyAll(stream, written);
        return { stream, lastRevision: result.lastRevision, events: written.map(domainEvent), alreadyApplied: false };
      } catch (err) {
        if (!(err instanceof WrongExpectedRevisionError) || attempt >= CONFLICT_RETRIES_MAX) throw err;
        await this.catchUp(stream, this.monitor.revisionOf(stream) + 1);
      }
    }
  }

  rejected(what: string, rejection: DomainRejection): void {
    this.onRejected();
    this.logger.warn('margin decision rejected by a rule; input skipped', { what, violations: rejection.violations.map((v) => `${v.field}:${v.rule}: ${v.message}`).join('; ') });
  }

  /** Applies events the store returned; a gap (someone else wrote) means: read the rest of the stream. */
  private async applyAll(stream: string, events: readonly StoredEvent[]): Promise<void> {
    for (const event of events) {
      if (this.monitor.apply(event) === 'gap') {
        await this.catchUp(stream, this.monitor.revisionOf(stream) + 1);
        return;
      }
    }
  }

  /** Reads `stream` from `fromRevision` in pages and applies what the monitor has not seen. */
  async catchUp(stream: string, fromRevision: number): Promise<StoredEvent[]> {
    const read: StoredEvent[] = [];
    for (let from = fromRevision; ; ) {
      const page = await this.store.readStream(stream, { fromRevision: from, maxCount: STORE_LIMITS.readPageMax });
      for (const event of page) {
        const result = this.monitor.apply(event);
        invariant(result !== 'gap', `stream ${stream} read from ${from} skipped revision ${this.monitor.revisionOf(stream) + 1}`);
      }
      read.push(...page);
      if (page.length < STORE_LIMITS.readPageMax) return read;
      from = page[page.length - 1].revision + 1;
    }
  }
}

function domainEvent(event: StoredEvent): DomainEvent {
  return { type: event.type, data: event.data };
}

function source(envelope: Envelope): Source {
  return { id: envelope.id, correlationId: envelope.correlationId, ...(envelope.traceparent ? { traceparent: envelope.traceparent } : {}) };
}

type Payload = Record<string, unknown>;

function strings(payload: Payload, fields: readonly string[]): string | undefined {
  const missing = fields.filter((f) => typeof payload[f] !== 'string');
  return missing.length > 0 ? `missing or non-string ${missing.join(', ')}` : undefined;
}

export class MarginEngine {
  readonly monitor: MarginMonitor;
  private readonly workflow: MarginWorkflow;
  private readonly port: StoreDecisionPort;
  private readonly logger: Logger;
  private readonly metrics: MetricsRegistry;
  private queue: Promise<unknown> = Promise.resolve();
  private loaded = false;

  constructor(
    private readonly runtime: Runtime,
    readonly config: MarginServiceConfig,
  ) {
    this.logger = runtime.logger.child({ component: 'margin-monitor' });
    this.metrics = runtime.metrics;
    this.monitor = new MarginMonitor(config.policy);
    const rejections = this.metrics.counter('backstop_margin_rejected_decisions_total', 'Internal margin decisions refused by a rule');
    this.port = new StoreDecisionPort(runtime.store, this.monitor, config, this.logger, () => rejections.inc());
    this.workflow = new MarginWorkflow(this.monitor, this.port);
  }

  /** Runs `work` alone, after the monitor has been rebuilt from the store (once). */
  run<T>(work: () => Promise<T> | T): Promise<T> {
    const next = this.queue.then(async () => {
      if (!this.loaded) {
        await this.load();
        this.loaded = true;
      }
      return work();
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The monitor is a projection of our own streams: rebuilt from the store, then each underlying valued once. */
  private async load(): Promise<void> {
    const started = Date.now();
    let after = 0n;
    let applied = 0;
    for (;;) {
      const page = await this.runtime.store.readAll({ after, maxCount: STORE_LIMITS.readPageMax });
      if (page.length === 0) break;
      for (const event of page) {
        const result = this.monitor.applyReplayed(event);
        if (result === 'gap') await this.port.catchUp(event.stream, this.monitor.revisionOf(event.stream) + 1);
        if (result === 'applied') applied += 1;
      }
      after = page[page.length - 1].position;
    }
    this.monitor.completeReplay();
    this.logger.info('margin monitor rebuilt from the store', { events: applied, rows: this.monitor.rowCount, ms: Date.now() - started });
  }

  /**
   * A MarkPrice from backstop.market.marks, checked against the platform's MarkPriceDto (the schema
   * HTTP enforces too; Kafka producers can send anything): an invalid one is thrown, so the runner
   * retries it a bounded number of times and dead-letters it with this reason.
   */
  async handleMark(envelope: Envelope): Promise<void> {
    const dto = plainToInstance(MarkPriceDto, envelope.payload);
    const violations = flattenValidationErrors(await validate(dto as object, { whitelist: true }));
    if (violations.length > 0) throw new InvalidInputError(`invalid MarkPrice payload: ${violations.map((v) => `${v.field}: ${v.message}`).join('; ')}`);
    const started = process.hrtime.bigint();
    const outcome = await this.run(() =>
      this.workflow.onMark(source(envelope), {
        underlying: dto.underlying,
        price: dto.price,
        ...(dto.volAnnual !== undefined ? { volAnnual: dto.volAnnual } : {}),
        ...(dto.fundingRate !== undefined ? { fundingRate: dto.fundingRate } : {}),
        ...(dto.source !== undefined ? { source: dto.source } : {}),
        at: dto.at,
        // The receiving clock (injected), never the sender's envelope time: a feed cannot make its
        // own marks look fresh, nor date them ahead (issue 9 defect 7). Taken inside the serial
        // queue, so it is the instant margin acts on the mark.
        receivedAt: this.runtime.clock.now().toISOString(),
      }),
    );
    const labels = { underlying: dto.underlying, sane: String(outcome.mark.sane), flag: outcome.mark.flag ?? 'none' };
    this.metrics.counter('backstop_margin_marks_total', 'Marks recorded, by underlying and sanity').inc(labels);
    this.metrics.histogram('backstop_margin_mark_seconds', 'Time to record a mark and act on it (revaluation, calls)').observe(Number(process.hrtime.bigint() - started) / 1e9, { underlying: dto.underlying });
    this.metrics.gauge('backstop_margin_book_rows', 'Open position rows in the revaluation book').set(this.monitor.rowCount);
    if (!outcome.mark.sane) this.logger.warn('mark flagged; no margin action on it', { underlying: dto.underlying, price: dto.price, flag: outcome.mark.flag, detail: outcome.mark.detail });
  }

  /** An event of contract-intake or default-settlement. Malformed ones are logged and skipped, never retried forever. */
  async handleEvent(envelope: Envelope): Promise<void> {
    const p = envelope.payload;
    const problem = this.problemOf(envelope.type, p);
    if (problem !== undefined) {
      this.logger.error('event skipped: not the documented shape', { type: envelope.type, eventId: envelope.id, problem });
      return;
    }
    const s = source(envelope);
    await this.run(async () => {
      switch (envelope.type) {
        case 'ContractRegistered':
          return this.workflow.onContractRegistered(s, {
            contractId: p.contractId as string,
            kind: p.kind as 'PERPETUAL' | 'FUTURE' | 'OPTION',
            underlying: p.underlying as string,
            size: p.size as string,
            entryPrice: p.entryPrice as string,
            ...(typeof p.optionType === 'string' ? { optionType: p.optionType as 'CALL' | 'PUT' } : {}),
            ...(typeof p.strike === 'string' ? { strike: p.strike } : {}),
            ...(typeof p.expiry === 'string' ? { expiry: p.expiry } : {}),
            currency: p.currency as string,
            longPartyId: p.longPartyId as string,
            shortPartyId: p.shortPartyId as string,
            ...(typeof p.longInitialMargin === 'string' ? { longInitialMargin: p.longInitialMargin } : {}),
            ...(typeof p.shortInitialMargin === 'string' ? { shortInitialMargin: p.shortInitialMargin } : {}),
            at: p.at as string,
          });
        case 'CollateralDeposited':
        case 'CollateralWithdrawn': {
          const change: CollateralChange = envelope.type === 'CollateralDeposited' ? 'DEPOSIT' : 'WITHDRAWAL';
          const input = { contractId: p.contractId as string, partyId: p.partyId as string, side: p.side as 'LONG' | 'SHORT', amount: p.amount as string, currency: p.currency as string, balance: p.balance as string, at: p.at as string };
          return this.workflow.onCollateral(s, change, input);
        }
        case 'ContractClosed':
          return this.workflow.onContractClosed(s, { contractId: p.contractId as string, closePrice: p.closePrice as string, at: p.at as string });
        case 'ContractClosedOut':
          return this.workflow.onContractClosedOut(s, {
            contractId: p.contractId as string,
            defaultId: p.defaultId as string,
            defaulterPartyId: p.defaulterPartyId as string,
            protectedPartyId: p.protectedPartyId as string,
            closeOutPrice: p.closeOutPrice as string,
            currency: p.currency as string,
            at: p.at as string,
          });
        case 'MarginCoveredByBackstop':
          return this.workflow.onBackstopCover(s, { callId: p.callId as string, partyId: p.partyId as string, amount: p.amount as string, currency: p.currency as string, at: p.at as string });
        case 'MarginAdvanceRepaid':
          return this.workflow.onBackstopCoverReturned(s, { partyId: p.partyId as string, amount: p.amount as string, currency: p.currency as string, reference: p.reference as string, at: p.at as string });
        default:
          this.logger.debug('event type not used by margin-monitor', { type: envelope.type });
      }
    });
  }

  private problemOf(type: string, p: Payload): string | undefined {
    switch (type) {
      case 'ContractRegistered':
        return strings(p, ['contractId', 'kind', 'underlying', 'size', 'entryPrice', 'currency', 'longPartyId', 'shortPartyId', 'at']);
      case 'CollateralDeposited':
      case 'CollateralWithdrawn':
        return strings(p, ['contractId', 'partyId', 'side', 'amount', 'currency', 'balance', 'at']);
      case 'ContractClosed':
        return strings(p, ['contractId', 'closePrice', 'at']);
      case 'ContractClosedOut':
        return strings(p, ['defaultId', 'contractId', 'defaulterPartyId', 'protectedPartyId', 'closeOutPrice', 'currency', 'at']);
      case 'MarginCoveredByBackstop':
        return strings(p, ['callId', 'partyId', 'amount', 'currency', 'at']);
      case 'MarginAdvanceRepaid':
        return strings(p, ['partyId', 'amount', 'currency', 'reference', 'at']);
      default:
        return undefined;
    }
  }

  /** The injected clock's tick (runtime.registerTicker): deadlines. */
  tick(nowIso: string): Promise<void> {
    return this.run(() => this.workflow.onTick(nowIso));
  }

  /** An operator's DeclareDefault (already validated); a DomainRejection goes back as the reply. */
  declareDefault(envelopeLike: Source, partyId: string, reason: string, at: string, closeOutPrices?: Readonly<Record<string, string>>): Promise<DecisionOutcome> {
    return this.run(() => this.workflow.declareDefault(envelopeLike, partyId, reason, at, closeOutPrices));
  }

  /** A consistent read of the monitor (waits for in-flight work). */
  read<T>(view: (monitor: MarginMonitor) => T): Promise<T> {
    return this.run(() => view(this.monitor));
  }
}
