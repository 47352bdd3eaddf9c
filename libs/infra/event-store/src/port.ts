/**
 * The event store port. Every state change of every service is an event appended here; every
 * adapter (embedded SQLite, PostgreSQL, EventStoreDB) passes the same contract suite (contract-suite.ts).
 *
 * Revisions are 0-based per stream. `expected` is the revision of the stream's last event as the
 * writer saw it, or 'no_stream' for a stream that must not exist yet, or 'any'.
 * Positions are global, strictly increasing in commit order; readers see every event once.
 */
export type ExpectedRevision = number | 'no_stream' | 'any';

export interface NewEvent {
  /** Client-chosen UUID; appending an id that is already stored is a no-op (idempotency). */
  readonly id: string;
  readonly type: string;
  readonly data: Record<string, unknown>;
  readonly metadata?: Record<string, unknown>;
}

export interface StoredEvent {
  readonly id: string;
  readonly type: string;
  readonly data: Record<string, unknown>;
  readonly metadata: Record<string, unknown>;
  readonly stream: string;
  readonly revision: number;
  readonly position: bigint;
  readonly recordedAt: string;
}

export interface AppendResult {
  /** Revision of the stream's last event after the append. */
  readonly lastRevision: number;
  /** Global position of the last event written (or found, for a duplicate). */
  readonly position: bigint;
  /** True when every event id was already stored: nothing was written. */
  readonly duplicate: boolean;
}

export interface ReadStreamOptions {
  readonly fromRevision?: number;
  readonly maxCount?: number;
}

export interface ReadAllOptions {
  /** Return events strictly after this position (0n or omitted: from the start). */
  readonly after?: bigint;
  readonly maxCount: number;
}

export interface EventStore {
  /** 'embedded', 'postgres' or 'eventstoredb': logged at start-up so an operator knows what runs. */
  readonly kind: string;
  /** Where the data lives (a file path or a redacted connection string). */
  readonly location: string;
  append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult>;
  /** Events of one stream in revision order; [] when the stream does not exist. */
  readStream(stream: string, options?: ReadStreamOptions): Promise<StoredEvent[]>;
  /** Events of all (non-internal) streams in global order. */
  readAll(options: ReadAllOptions): Promise<StoredEvent[]>;
  /** Global position of the last event (0n when empty) without reading events; optional: callers
   * fall back to paging readAll (see storeHeadPosition). */
  headPosition?(): Promise<bigint>;
  loadCheckpoint(name: string): Promise<bigint | undefined>;
  saveCheckpoint(name: string, position: bigint): Promise<void>;
  /** Durable record of a consumed message id (idempotent consumers); returns the stored result. */
  findProcessed(consumer: string, messageId: string): Promise<string | undefined>;
  recordProcessed(consumer: string, messageId: string, result: string): Promise<void>;
  /** A hint that something was appended (in this process); subscribers also poll. */
  onAppend(listener: () => void): () => void;
  close(): Promise<void>;
}

export class WrongExpectedRevisionError extends Error {
  constructor(
    readonly stream: string,
    readonly expected: ExpectedRevision,
    readonly actual: number | 'no_stream',
  ) {
    super(`stream "${stream}": expected revision ${String(expected)}, actual ${String(actual)}; nothing was written`);
    this.name = 'WrongExpectedRevisionError';
  }
}

export class DuplicateEventIdError extends Error {
  constructor(readonly stream: string, readonly eventId: string) {
    super(`event id ${eventId} is already stored elsewhere than as the same append to "${stream}"; nothing was written`);
    this.name = 'DuplicateEventIdError';
  }
}

export class StoreUnavailableError extends Error {
  constructor(readonly location: string, cause: unknown) {
    super(`event store at ${location} is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'StoreUnavailableError';
  }
}

/** Limits on everything (TigerBeetle habit): one append, one page of reads. */
export const STORE_LIMITS = {
  appendEventsMax: 1_000,
  eventBytesMax: 1_048_576,
  readPageMax: 4_096,
} as const;

export function assertAppendWithinLimits(stream: string, events: readonly NewEvent[]): void {
  if (stream.length === 0 || stream.length > 200) throw new RangeError('stream name must have 1..200 characters');
  if (events.length === 0) throw new RangeError(`append to "${stream}" has no events`);
  if (events.length > STORE_LIMITS.appendEventsMax) {
    throw new RangeError(`append to "${stream}" has ${events.length} events; the limit is ${STORE_LIMITS.appendEventsMax}`);
  }
}

/** JSON that keeps bigints: amounts travel as decimal strings elsewhere, this is a safety net. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** Global position of the store's last event (0n when empty): headPosition when the adapter has it, else a readAll scan. */
export async function storeHeadPosition(store: EventStore): Promise<bigint> {
  if (store.headPosition) return store.headPosition();
  let after = 0n;
  for (;;) {
    const page = await store.readAll({ after, maxCount: STORE_LIMITS.readPageMax });
    if (page.length === 0) return after;
    after = page[page.length - 1].position;
  }
}
