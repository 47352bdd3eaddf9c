import { FACT_OBSERVED, NOT_YET_KNOWN, READ_MODEL_CATEGORY } from '@backstop/contracts';
import { DomainRejection } from '@backstop/kernel';
import { DuplicateEventIdError, EventStore, StoredEvent } from '@backstop/event-store';
import { Envelope, InvalidMessageError, TopicName } from '@backstop/messaging';
import { ServiceName } from './config';
import { deterministicUuid } from './ids';
import type { ConsumerDefinition } from './runtime';

/** Another service's fact as this service kept it: the source event's type, stream, revision and data. */
export interface KeptFact {
  readonly type: string;
  readonly stream: string;
  readonly revision: number;
  /** Position of the source event in its owner's store (not comparable with this store's positions). */
  readonly sourcePosition: string;
  readonly data: Record<string, unknown>;
}

export interface ReadModelOptions {
  readonly service: ServiceName;
  /** Consumer name (group / checkpoint): one per read model of a service. */
  readonly name: string;
  readonly topics: readonly TopicName[];
  /** The other services' event types this service keeps. */
  readonly types: readonly string[];
}

/** Upper bound on how long a consumer waits for its read model to reach a fact before it asks for a redelivery. */
const WAIT_FOR_FACTS_MS_MAX = 30_000;

/**
 * A service's read model of other services' facts (SPEC section 1: services talk only through the
 * event topics). One consumer of the event topics — fed by Kafka when distributed and from the
 * store in the single-process mode, through the runtime's one consumer machinery — copies each fact
 * it keeps into a stream of THIS service's store, `view-<service>:<source stream>`, as a
 * FactObserved event whose id derives from the source event id: a redelivery appends nothing, the
 * consumer group's offsets (or the store subscription's checkpoint) say where to resume, and a new
 * deployment with an empty store rebuilds it from the topics (a new group starts at the earliest
 * offset). Readers fold a source stream's kept facts as they folded the source stream before.
 *
 * Eventual consistency: a fact may not have arrived yet when a command needs it. Callers then
 * reject with notYetKnown (see notYetKnown()), which replies say is retryable.
 */
export class ReadModel {
  private readonly waiters = new Set<() => void>();

  constructor(
    /** This service's own store. */
    private readonly store: EventStore,
    readonly options: ReadModelOptions,
  ) {}

  /** The stream in this service's store that holds its copy of `sourceStream`'s facts. */
  viewStream(sourceStream: string): string {
    return `${READ_MODEL_CATEGORY}-${this.options.service}:${sourceStream}`;
  }

  /** The consumer that feeds this read model (register it with the runtime: Kafka when distributed, the store in one process). */
  consumer(): ConsumerDefinition {
    return { name: this.options.name, service: this.options.service, topics: this.options.topics, types: this.options.types, handle: (envelope) => this.observe(envelope) };
  }

  /** Keeps one fact: idempotent by the source event id. */
  async observe(envelope: Envelope): Promise<void> {
    const { _stream: stream, _revision: revision, _position: position, ...data } = envelope.payload as Record<string, unknown>;
    if (typeof stream !== 'string' || typeof revision !== 'number') {
      throw new InvalidMessageError(`${envelope.type} ${envelope.id} carries no _stream/_revision: not an event of a service's stream`);
    }
    const fact: KeptFact = { type: envelope.type, stream, revision, sourcePosition: typeof position === 'string' ? position : '0', data };
    try {
      await this.store.append(
        this.viewStream(stream),
        [
          {
            id: this.keptId(envelope.id),
            type: FACT_OBSERVED,
            data: { ...fact },
            metadata: { sourceEventId: envelope.id, occurredAt: envelope.time, correlationId: envelope.correlationId, causationId: envelope.id },
          },
        ],
        'any',
      );
    } catch (err) {
      // The same fact kept before under another append (a redelivery racing a retry): nothing to do.
      if (!(err instanceof DuplicateEventIdError)) throw err;
    }
    for (const wake of [...this.waiters]) wake();
  }

  /** The kept facts of one source stream, in the source's revision order. */
  async facts(sourceStream: string): Promise<KeptFact[]> {
    const stored = await this.store.readStream(this.viewStream(sourceStream));
    return stored.map(keptFactOf).filter((f): f is KeptFact => f !== undefined).sort((a, b) => a.revision - b.revision);
  }

  /** Folds one source stream's kept facts; `known` is false while none has arrived. */
  async fold<S>(sourceStream: string, evolve: (state: S, fact: KeptFact) => S, initial: S): Promise<{ state: S; known: boolean }> {
    const facts = await this.facts(sourceStream);
    return { state: facts.reduce(evolve, initial), known: facts.length > 0 };
  }

  /**
   * Resolves true once the source event `sourceEventId` of `sourceStream` is kept (with every fact
   * of that stream before it: one stream's events travel in order on one partition), false after
   * `timeoutMs`. A consumer reacting to a fact waits here for its own read model to reach it.
   */
  async waitForFact(sourceStream: string, sourceEventId: string, timeoutMs = WAIT_FOR_FACTS_MS_MAX): Promise<boolean> {
    const id = this.keptId(sourceEventId);
    const deadline = Date.now() + Math.min(timeoutMs, WAIT_FOR_FACTS_MS_MAX);
    for (;;) {
      const stored = await this.store.readStream(this.viewStream(sourceStream));
      if (stored.some((e) => e.id === id)) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 200));
        this.waiters.add(wake);
      });
    }
  }

  private keptId(sourceEventId: string): string {
    return deterministicUuid('read-model', this.options.service, sourceEventId);
  }
}

/** A FactObserved event as the fact it keeps (undefined for anything else). */
export function keptFactOf(event: Pick<StoredEvent, 'type' | 'data'>): KeptFact | undefined {
  if (event.type !== FACT_OBSERVED) return undefined;
  const d = event.data as Partial<KeptFact>;
  if (typeof d.type !== 'string' || typeof d.stream !== 'string' || typeof d.revision !== 'number' || typeof d.data !== 'object' || d.data === null) return undefined;
  return { type: d.type, stream: d.stream, revision: d.revision, sourcePosition: String(d.sourcePosition ?? '0'), data: d.data };
}

/**
 * The rejection of a command that needs a fact this service has not received yet: retryable (the
 * reply says so), never "not registered" (the other service may well have it).
 */
export function notYetKnown(field: string, message: string): never {
  throw new DomainRejection([{ field, rule: NOT_YET_KNOWN, message: `${message}; it may still be on its way between services: retry` }]);
}

/** A consumer that needs a fact not kept yet: redelivered later (transient), never dead-lettered. */
export class FactNotYetKnownError extends Error {
  readonly retryable = true;
  constructor(message: string) {
    super(message);
    this.name = 'FactNotYetKnownError';
  }
}
