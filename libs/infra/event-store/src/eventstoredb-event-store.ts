import { EventEmitter } from 'node:events';
import {
  ANY,
  BACKWARDS,
  END,
  FORWARDS,
  jsonEvent,
  KurrentDBClient,
  NO_STREAM,
  START,
  StreamNotFoundError,
  WrongExpectedVersionError,
} from '@kurrent/kurrentdb-client';
import { chainEvent, GENESIS_HASH } from './hash-chain';
import {
  AppendResult,
  assertAppendWithinLimits,
  EventStore,
  ExpectedRevision,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  STORE_LIMITS,
  StoredEvent,
  StoreUnavailableError,
  WrongExpectedRevisionError,
} from './port';

/** Streams of the store's own bookkeeping (checkpoints, processed ids): never domain events. */
const INTERNAL_PREFIX = '_';

/**
 * EventStoreDB / KurrentDB adapter on `@kurrent/kurrentdb-client` (the maintained successor of
 * `@eventstore/db-client`), chosen by EVENTSTORE_CONNECTION_STRING (e.g.
 * `kurrentdb://localhost:2113?tls=false`; `esdb://` still parses, with a deprecation warning). Global position = the event's commit position in $all
 * (gRPC appends are not explicit transactions, so every event has its own). Checkpoints and
 * processed-message ids live in `_`-prefixed streams that readAll hides from readers.
 */
export class EventStoreDbEventStore implements EventStore {
  readonly kind = 'eventstoredb';
  readonly location: string;
  private readonly client: KurrentDBClient;
  private readonly appended = new EventEmitter();

  constructor(connectionString: string) {
    this.location = connectionString.replace(/\/\/[^@/]*@/, '//***@');
    this.client = KurrentDBClient.connectionString(connectionString);
  }

  async append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    assertAppendWithinLimits(stream, events);
    const existing = await this.findStoredIds(stream, events);
    if (existing) return existing;
    // The hash chain needs the real predecessor: pin 'any' to the head we read, and retry on a race.
    for (let attempt = 0; ; attempt += 1) {
      const head = await this.readHead(stream);
      const pinned: ExpectedRevision = expected === 'any' ? (head ? head.revision : 'no_stream') : expected;
      try {
        return await this.appendChained(stream, events, pinned, head);
      } catch (err) {
        if (expected === 'any' && err instanceof WrongExpectedRevisionError && attempt < 20) continue;
        throw err;
      }
    }
  }

  private async appendChained(
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
    head: { revision: number; hash: string } | undefined,
  ): Promise<AppendResult> {
    let revision = head ? head.revision : -1;
    let prevHash = head?.hash ?? GENESIS_HASH;
    const chained = events.map((e) => {
      revision += 1;
      const chain = chainEvent(stream, revision, e, prevHash);
      prevHash = chain.hash;
      return jsonEvent({ id: e.id, type: e.type, data: e.data, metadata: { ...(e.metadata ?? {}), ...chain } });
    });
    try {
      const result = await this.client.appendToStream(stream, chained, { streamState: toEsdbExpected(expected) });
      this.appended.emit('append');
      return {
        lastRevision: Number(result.nextExpectedRevision),
        position: result.position?.commit ?? 0n,
        duplicate: false,
      };
    } catch (err) {
      if (err instanceof WrongExpectedVersionError) {
        const actual = err.actualState === NO_STREAM ? 'no_stream' : Number(err.actualState);
        throw new WrongExpectedRevisionError(stream, expected, actual as number | 'no_stream');
      }
      throw this.unavailable(err);
    }
  }

  private async readHead(stream: string): Promise<{ revision: number; hash: string } | undefined> {
    try {
      for await (const resolved of this.client.readStream(stream, { fromRevision: END, direction: BACKWARDS, maxCount: 1 })) {
        const event = resolved.event;
        if (!event) return undefined;
        const hash = (event.metadata as { hash?: unknown } | undefined)?.hash;
        return { revision: Number(event.revision), hash: typeof hash === 'string' ? hash : GENESIS_HASH };
      }
      return undefined;
    } catch (err) {
      if (err instanceof StreamNotFoundError) return undefined;
      throw this.unavailable(err);
    }
  }

  /**
   * EventStoreDB's own idempotence only covers a retry of the latest write; the contract asks for
   * "an id appended twice is stored once" in general, so look the ids up in the stream first.
   */
  private async findStoredIds(stream: string, events: readonly NewEvent[]): Promise<AppendResult | undefined> {
    const stored = await this.readStream(stream);
    const byId = new Map(stored.map((e) => [e.id, e]));
    const found = events.map((e) => byId.get(e.id));
    if (found.every((e) => e === undefined)) return undefined;
    const last = found[found.length - 1];
    if (found.some((e) => e === undefined) || !last) {
      throw new WrongExpectedRevisionError(stream, 'any', stored.length - 1);
    }
    return { lastRevision: last.revision, position: last.position, duplicate: true };
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    try {
      const read = this.client.readStream(stream, {
        fromRevision: options.fromRevision === undefined ? START : BigInt(options.fromRevision),
        maxCount: options.maxCount ?? Number.MAX_SAFE_INTEGER,
        direction: FORWARDS,
      });
      for await (const resolved of read) {
        if (resolved.event) out.push(toStored(resolved.event, knownPosition(resolved.event.position?.commit)));
      }
    } catch (err) {
      if (err instanceof StreamNotFoundError) return [];
      throw this.unavailable(err);
    }
    // Stream reads are served from the index: servers that do not put the $all position there
    // answer none (or 2^64-1), reported as -1n. readAll always has it. Not yet run against a server.
    return out;
  }

  async readAll(options: ReadAllOptions): Promise<StoredEvent[]> {
    const maxCount = Math.min(options.maxCount, STORE_LIMITS.readPageMax);
    const after = options.after ?? 0n;
    const out: StoredEvent[] = [];
    let from: { commit: bigint; prepare: bigint } | typeof START = after === 0n ? START : { commit: after, prepare: after };
    // The last log position looked at (pages overlap by one: a page starts AT the previous page's last position).
    let seenUpTo: { commit: bigint; prepare: bigint } | undefined;
    let shared: string | undefined;
    // Pages may be mostly system/internal events; keep reading until enough domain events or the end.
    for (let page = 0; page < 1_000 && out.length < maxCount; page += 1) {
      let fresh = 0;
      try {
        for await (const resolved of this.client.readAll({ fromPosition: from, maxCount: maxCount + 1, direction: FORWARDS })) {
          const event = resolved.event;
          if (!event?.position) continue;
          const position = event.position;
          if (seenUpTo && comparePositions(position, seenUpTo) <= 0) continue;
          seenUpTo = position;
          fresh += 1;
          if (position.commit <= after || isInternal(event.streamId, event.type)) continue;
          const previous = out[out.length - 1];
          if (previous && position.commit === previous.position) {
            // The global position is the commit position: two events sharing one would make
            // checkpoints ambiguous. Fail loudly rather than skip one (the contract suite checks this).
            shared = `EventStoreDB returned events ${previous.id} and ${event.id} at one commit position ${position.commit}; this adapter needs one commit position per event`;
            break;
          }
          if (out.length < maxCount) out.push(toStored(event, position.commit));
        }
      } catch (err) {
        throw this.unavailable(err);
      }
      if (shared) throw new Error(shared);
      if (fresh === 0 || !seenUpTo) break;
      from = seenUpTo;
    }
    return out;
  }

  async loadCheckpoint(name: string): Promise<bigint | undefined> {
    const last = await this.readLast(`${INTERNAL_PREFIX}checkpoint-${name}`);
    return last ? BigInt(String(last.position)) : undefined;
  }

  async saveCheckpoint(name: string, position: bigint): Promise<void> {
    const stream = `${INTERNAL_PREFIX}checkpoint-${name}`;
    try {
      await this.client.appendToStream(stream, jsonEvent({ type: 'Checkpoint', data: { position: position.toString() } }), {
        streamState: ANY,
      });
      await this.client.setStreamMetadata(stream, { maxCount: 5 });
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  async findProcessed(consumer: string, messageId: string): Promise<string | undefined> {
    const last = await this.readLast(`${INTERNAL_PREFIX}processed-${consumer}-${messageId}`);
    return last ? String(last.result) : undefined;
  }

  async recordProcessed(consumer: string, messageId: string, result: string): Promise<void> {
    try {
      await this.client.appendToStream(
        `${INTERNAL_PREFIX}processed-${consumer}-${messageId}`,
        jsonEvent({ type: 'Processed', data: { result } }),
        { streamState: NO_STREAM },
      );
    } catch (err) {
      if (err instanceof WrongExpectedVersionError) return; // first record wins
      throw this.unavailable(err);
    }
  }

  private async readLast(stream: string): Promise<Record<string, unknown> | undefined> {
    try {
      for await (const resolved of this.client.readStream(stream, { fromRevision: END, direction: BACKWARDS, maxCount: 1 })) {
        return resolved.event?.data as Record<string, unknown> | undefined;
      }
      return undefined;
    } catch (err) {
      if (err instanceof StreamNotFoundError) return undefined;
      throw this.unavailable(err);
    }
  }

  onAppend(listener: () => void): () => void {
    this.appended.on('append', listener);
    return () => this.appended.off('append', listener);
  }

  async close(): Promise<void> {
    this.appended.removeAllListeners();
    await this.client.dispose();
  }

  private unavailable(err: unknown): Error {
    if (err instanceof WrongExpectedRevisionError || err instanceof RangeError) return err;
    return new StoreUnavailableError(this.location, err);
  }
}

function toEsdbExpected(expected: ExpectedRevision): typeof ANY | typeof NO_STREAM | bigint {
  if (expected === 'any') return ANY;
  if (expected === 'no_stream') return NO_STREAM;
  return BigInt(expected);
}

/** A commit position from a stream read, or -1n where the server gave none (absent or the 2^64-1 "unknown"). */
function knownPosition(commit: bigint | undefined): bigint {
  return commit === undefined || commit >= 1n << 63n ? -1n : commit;
}

function comparePositions(a: { commit: bigint; prepare: bigint }, b: { commit: bigint; prepare: bigint }): number {
  if (a.commit !== b.commit) return a.commit < b.commit ? -1 : 1;
  return a.prepare === b.prepare ? 0 : a.prepare < b.prepare ? -1 : 1;
}

function isInternal(stream: string, type: string): boolean {
  return stream.startsWith('$') || stream.startsWith(INTERNAL_PREFIX) || type.startsWith('$');
}

interface EsdbEvent {
  id: string;
  type: string;
  streamId: string;
  revision: bigint;
  created: Date;
  data: unknown;
  metadata: unknown;
}

function toStored(event: EsdbEvent, position: bigint): StoredEvent {
  return {
    id: event.id,
    type: event.type,
    data: (event.data ?? {}) as Record<string, unknown>,
    metadata: (event.metadata ?? {}) as Record<string, unknown>,
    stream: event.streamId,
    revision: Number(event.revision),
    position,
    recordedAt: event.created.toISOString(),
  };
}
