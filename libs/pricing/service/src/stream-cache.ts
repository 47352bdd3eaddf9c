import { Decider, DomainEvent } from '@backstop/kernel';
import { EventStore, NewEvent, STORE_LIMITS, WrongExpectedRevisionError } from '@backstop/event-store';
import { Causation, deterministicUuid } from '@backstop/platform';

export interface CachedState<S> {
  readonly state: S;
  readonly revision: number | 'no_stream';
}

export interface CachedDecision<S> {
  readonly stream: string;
  readonly state: S;
  /** Types of the events this causation wrote (now, or the first time when already applied). */
  readonly eventTypes: readonly string[];
  readonly lastRevision: number;
  readonly alreadyApplied: boolean;
}

interface Entry<S> {
  readonly state: S;
  readonly revision: number | 'no_stream';
  /** causationId → the event types it wrote: "already done" is answered without re-reading the stream. */
  readonly causations: ReadonlyMap<string, readonly string[]>;
}

const CONFLICT_RETRIES_MAX = 5;

/**
 * Read → decide → append with the expected revision, like the platform's decideOnStream (same event
 * ids, same metadata, same "a causation already in the stream is already done"), but the folded
 * state of each stream is kept between calls and only the events appended since are read.
 * Pricing needs it for its long-lived streams — the capacity book every bind goes through, a mark
 * stream that grows with every tick, a coverage charged three times a day — where decideOnStream
 * would re-read the whole stream each time. The store stays the truth: every call reads what other
 * writers (another replica) appended, and a conflicting append re-reads and decides again.
 * (Implemented here rather than in libs/platform, which this service does not own.)
 */
export class StreamCache<C, S, E extends DomainEvent> {
  private readonly entries = new Map<string, Entry<S>>();
  /** One call per stream at a time in this process (other processes are held off by expected revisions). */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: EventStore,
    private readonly decider: Decider<C, S, E>,
    private readonly streamsMax = 10_000,
  ) {}

  load(stream: string): Promise<CachedState<S>> {
    return this.exclusive(stream, async () => {
      const { state, revision } = await this.refresh(stream);
      return { state, revision };
    });
  }

  decide(stream: string, command: C, causation: Causation): Promise<CachedDecision<S>> {
    return this.exclusive(stream, async () => {
      for (let attempt = 0; ; attempt += 1) {
        const entry = await this.refresh(stream);
        const previous = entry.causations.get(causation.causationId);
        const lastRevision = entry.revision === 'no_stream' ? -1 : entry.revision;
        if (previous) return { stream, state: entry.state, eventTypes: previous, lastRevision, alreadyApplied: true };
        const decided = this.decider.decide(command, entry.state);
        if (decided.length === 0) return { stream, state: entry.state, eventTypes: [], lastRevision, alreadyApplied: false };
        const toAppend: NewEvent[] = decided.map((event, index) => ({
          id: deterministicUuid(stream, causation.causationId, index),
          type: event.type,
          data: event.data as Record<string, unknown>,
          metadata: { ...causation, schemaVersion: 1 },
        }));
        try {
          await this.store.append(stream, toAppend, entry.revision);
        } catch (err) {
          if (err instanceof WrongExpectedRevisionError && attempt < CONFLICT_RETRIES_MAX) continue;
          throw err;
        }
        const after = await this.refresh(stream);
        return { stream, state: after.state, eventTypes: decided.map((e) => e.type), lastRevision: after.revision as number, alreadyApplied: false };
      }
    });
  }

  /** Folds what was appended since the cached revision (all of it the first time). */
  private async refresh(stream: string): Promise<Entry<S>> {
    let entry = this.entries.get(stream) ?? { state: this.decider.initialState, revision: 'no_stream' as const, causations: new Map<string, string[]>() };
    for (;;) {
      const fromRevision = entry.revision === 'no_stream' ? 0 : entry.revision + 1;
      const page = await this.store.readStream(stream, { fromRevision, maxCount: STORE_LIMITS.readPageMax });
      if (page.length === 0) break;
      const causations = new Map(entry.causations);
      let state = entry.state;
      for (const event of page) {
        state = this.decider.evolve(state, { type: event.type, data: event.data } as unknown as E);
        const causationId = event.metadata.causationId;
        if (typeof causationId === 'string') causations.set(causationId, [...(causations.get(causationId) ?? []), event.type]);
      }
      entry = { state, revision: page[page.length - 1].revision, causations };
      if (page.length < STORE_LIMITS.readPageMax) break;
    }
    this.entries.delete(stream);
    this.entries.set(stream, entry);
    if (this.entries.size > this.streamsMax) this.entries.delete(this.entries.keys().next().value as string);
    return entry;
  }

  private exclusive<T>(stream: string, work: () => Promise<T>): Promise<T> {
    const before = this.locks.get(stream) ?? Promise.resolve();
    const run = before.then(work, work);
    const settled = run.catch(() => undefined);
    this.locks.set(stream, settled);
    void settled.then(() => {
      if (this.locks.get(stream) === settled) this.locks.delete(stream);
    });
    return run;
  }
}
