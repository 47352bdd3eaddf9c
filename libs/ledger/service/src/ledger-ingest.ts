import { BeforeApplicationShutdown, Inject, Injectable, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { DuplicateEventIdError, NewEvent, StoredEvent } from '@backstop/event-store';
import { isInboxStream, LEDGER_EVENT_TYPES, LedgerInvariantViolation, LedgerProjection, SourceEvent } from '@backstop/ledger';
import { Envelope, InvalidMessageError, TOPICS } from '@backstop/messaging';
import { deterministicUuid, Runtime, RUNTIME } from '@backstop/platform';
import { WakeableSleep } from './wakeable-sleep';

/** What the ledger service received from the topics and has not booked yet (type LedgerEventReceived). */
export const LEDGER_INBOX_STREAM = 'inbox-ledger';
export const LEDGER_INBOX_TYPE = 'LedgerEventReceived';
/** Checkpoint naming the consumer-group generation of this store (see generation()). */
const GENERATION_CHECKPOINT = 'ledger-ingest-generation';
const PAGE_SIZE = 500;
const POLL_MS = 250;
const RETRY_MS_MAX = 5_000;
/** An event still waiting this long for what it depends on takes the ledger out of readiness. */
export const PENDING_READY_MS_MAX = 60_000;
/** Bound on events held waiting (TIGER_STYLE: a limit on everything); past it the admitter says so in readiness. */
export const PENDING_MAX = 100_000;

interface Pending {
  readonly envelope: Envelope;
  readonly stream: string;
  readonly receivedAtMs: number;
  lastRefusal?: string;
}

/**
 * The ledger service's way in (SPEC §1: the ledger is a consumer like any other). Two stages, both
 * durable in the ledger's OWN store:
 *
 * 1. Kafka → inbox: one consumer group over the four event topics appends each event, as received,
 *    to `inbox-ledger` (event id derived from the message id: a redelivery stores nothing twice).
 * 2. inbox → books: one admitter appends each received event to its original stream, with its
 *    original id (idempotent), in an order the books accept. The four topics have no order between
 *    them (settlement may distribute a premium before the ledger has read pricing's debit of it),
 *    so an event the books would refuse now waits until an event from another topic makes it
 *    bookable; one stream's events are admitted in the order received.
 *
 * The books are then the store in position order, exactly what LiveLedger and the compliance CLI
 * replay read: the digest served at a position is the CLI's replay of the same store.
 * An empty store starts a new consumer-group generation, so the books are rebuilt from the topics.
 */
@Injectable()
export class LedgerIngest implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  /** The books as admitted so far (the store in position order, like a replay). */
  private books = new LedgerProjection();
  private readonly admitted = new Set<string>();
  /** Received, not yet admitted, in the order received. */
  private readonly pending = new Map<string, Pending>();
  private halt: string | undefined;
  private readError: string | undefined;
  /** The admitter has read the store to its end and admitted all it could, once since start. */
  private caughtUpOnce = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly sleeper = new WakeableSleep();
  private unsubscribe: (() => void) | undefined;
  private readonly pendingGauge;
  private readonly admittedCounter;

  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {
    this.pendingGauge = runtime.metrics.gauge('backstop_ledger_pending_events', 'Events received from the topics that wait for an event from another topic before the books take them');
    this.admittedCounter = runtime.metrics.counter('backstop_ledger_admitted_total', 'Events the ledger service admitted to its books');
  }

  async onModuleInit(): Promise<void> {
    const generation = await this.generation();
    this.runtime.registerConsumer({
      name: `ingest-g${generation}`,
      service: 'ledger',
      topics: [TOPICS.intakeEvents, TOPICS.pricingEvents, TOPICS.marginEvents, TOPICS.settlementEvents],
      types: LEDGER_EVENT_TYPES,
      handle: (envelope) => this.receive(envelope),
    });
    this.runtime.registerReadinessCheck('ledger-admitter', () => this.readiness());
  }

  onApplicationBootstrap(): void {
    this.unsubscribe = this.runtime.store.onAppend(() => this.sleeper.wake());
    this.loop = this.run();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.sleeper.wake();
    this.unsubscribe?.();
    await this.loop;
  }

  /** Position of the books (the store's last event the admitter has read). */
  get position(): bigint {
    return this.books.position;
  }

  pendingCount(): number {
    return this.pending.size;
  }

  /**
   * The consumer group's generation: kept in the store, so an empty store (a new database, a
   * deleted file) gets a new group that reads the topics from the beginning, and a store with
   * books resumes from its group's committed offsets.
   */
  private async generation(): Promise<bigint> {
    const known = await this.runtime.store.loadCheckpoint(GENERATION_CHECKPOINT);
    const first = await this.runtime.store.readAll({ after: 0n, maxCount: 1 });
    if (known !== undefined && first.length > 0) return known;
    const generation = BigInt(this.runtime.clock.now().getTime());
    await this.runtime.store.saveCheckpoint(GENERATION_CHECKPOINT, generation);
    this.runtime.logger.info('ledger: empty store, rebuilding the books from the event topics', { generation: generation.toString() });
    return generation;
  }

  /** Stage 1: keep the event as received (durable before the offset is committed). */
  private async receive(envelope: Envelope): Promise<void> {
    const stream = envelope.payload._stream;
    if (typeof stream !== 'string' || stream.length === 0 || isInboxStream(stream)) {
      throw new InvalidMessageError(`${envelope.type} ${envelope.id}: payload._stream must name the event's stream (got ${JSON.stringify(stream)})`);
    }
    const inboxed: NewEvent = { id: deterministicUuid(LEDGER_INBOX_STREAM, envelope.id), type: LEDGER_INBOX_TYPE, data: { envelope: { ...envelope } } };
    try {
      await this.runtime.store.append(LEDGER_INBOX_STREAM, [inboxed], 'any');
    } catch (err) {
      if (!(err instanceof DuplicateEventIdError)) throw err;
    }
    this.sleeper.wake();
  }

  private readiness(): string {
    if (this.halt) return `halted: ${this.halt}`;
    if (this.readError) return `store unreadable, retrying: ${this.readError}`;
    // Not ready until the books have caught up once (a rebuild from the topics); later traffic is not a reason to leave the Service.
    if (!this.caughtUpOnce) return `admitting received events (at position ${this.books.position}, ${this.pending.size} waiting)`;
    if (this.pending.size > PENDING_MAX) return `${this.pending.size} events wait (limit ${PENDING_MAX})`;
    const oldest = this.pending.values().next().value as Pending | undefined;
    if (oldest && Date.now() - oldest.receivedAtMs > PENDING_READY_MS_MAX) {
      return `${oldest.envelope.type} ${oldest.envelope.id} (stream ${oldest.stream}) has waited over ${PENDING_READY_MS_MAX / 1000} s: ${oldest.lastRefusal ?? 'an earlier event of its stream waits'}`;
    }
    return 'ok';
  }

  private async run(): Promise<void> {
    let backoffMs = POLL_MS;
    while (!this.stopped) {
      if (this.halt) {
        // Nothing more is booked after an event the books refuse (as LiveLedger): a fix is a new event and a restart.
        await this.sleeper.sleep(RETRY_MS_MAX);
        continue;
      }
      try {
        const read = await this.readStore();
        this.readError = undefined;
        backoffMs = POLL_MS;
        if (read > 0) continue;
        if (await this.admitOne()) continue;
        this.caughtUpOnce = true;
        await this.sleeper.sleep(POLL_MS);
      } catch (err) {
        this.readError = (err as Error).message;
        this.runtime.logger.warn('ledger: the store failed; retrying', { error: this.readError });
        // The books in memory may be ahead of the store now: rebuild them from it.
        this.reset();
        await this.sleeper.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, RETRY_MS_MAX);
      }
    }
  }

  private reset(): void {
    this.books = new LedgerProjection();
    this.admitted.clear();
    this.pending.clear();
  }

  /** Reads the store past the books: received events join the waiting list, admitted ones are booked. */
  private async readStore(): Promise<number> {
    const page = await this.runtime.store.readAll({ after: this.books.position, maxCount: PAGE_SIZE });
    for (const event of page) {
      if (event.stream === LEDGER_INBOX_STREAM) this.received(event);
      else {
        this.admitted.add(event.id);
        this.pending.delete(event.id);
      }
      try {
        this.books.apply(event);
      } catch (err) {
        const reason = err instanceof LedgerInvariantViolation ? err.detail : (err as Error).message;
        this.halt = reason;
        this.runtime.logger.error('ledger halted: an admitted event cannot be booked', { eventId: event.id, reason });
        return page.length;
      }
    }
    this.pendingGauge.set(this.pending.size);
    return page.length;
  }

  private received(event: StoredEvent): void {
    const envelope = (event.data as { envelope: Envelope }).envelope;
    if (this.admitted.has(envelope.id) || this.pending.has(envelope.id)) return;
    this.pending.set(envelope.id, { envelope, stream: String(envelope.payload._stream), receivedAtMs: Date.parse(event.recordedAt) || Date.now() });
  }

  /**
   * Admits the first waiting event the books take now, only the first waiting event of each stream
   * being a candidate (a stream's events keep their order). True if one was admitted.
   */
  private async admitOne(): Promise<boolean> {
    const streamsSeen = new Set<string>();
    for (const waiting of this.pending.values()) {
      if (streamsSeen.has(waiting.stream)) continue;
      streamsSeen.add(waiting.stream);
      const event = originalEvent(waiting.envelope);
      const candidate: SourceEvent = { ...event, stream: waiting.stream, position: this.books.position + 1n, recordedAt: this.runtime.clock.now().toISOString() };
      const refusal = this.books.check(candidate);
      if (refusal !== undefined) {
        waiting.lastRefusal = refusal;
        continue;
      }
      try {
        await this.runtime.store.append(waiting.stream, [event], 'any');
      } catch (err) {
        // Already admitted under that id (a restart between append and read): the read picks it up.
        if (!(err instanceof DuplicateEventIdError)) throw err;
      }
      this.admittedCounter.inc();
      return true;
    }
    return false;
  }

}

/** The event as its service stored it: the envelope's payload without the audit fields, its id and type. */
export function originalEvent(envelope: Envelope): NewEvent & { data: Record<string, unknown> } {
  const { _stream, _revision, _position, ...data } = envelope.payload as Record<string, unknown>;
  return {
    id: envelope.id,
    type: envelope.type,
    data,
    metadata: {
      schemaVersion: envelope.schemaVersion,
      occurredAt: envelope.time,
      correlationId: envelope.correlationId,
      ...(envelope.causationId ? { causationId: envelope.causationId } : {}),
      ...(envelope.traceparent ? { traceparent: envelope.traceparent } : {}),
      // Where the event sits in its service's own store, for an auditor comparing the two.
      source: { stream: _stream, revision: _revision, position: _position },
    },
  };
}
