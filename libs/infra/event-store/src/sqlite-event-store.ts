import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Clock, systemClock } from '@backstop/kernel';
import { chainEvent, GENESIS_HASH } from './hash-chain';
import { EventIntegrityError } from './store-errors';
import {
  AppendResult,
  assertAppendWithinLimits,
  DuplicateEventIdError,
  EventStore,
  ExpectedRevision,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  STORE_LIMITS,
  StoredEvent,
  StoreUnavailableError,
  toJson,
  WrongExpectedRevisionError,
} from './port';

export interface SqliteEventStoreOptions {
  /**
   * Recompute each event's hash as it is read and refuse (EventIntegrityError) one whose content
   * no longer matches: an altered event is never served or booked. Default true; the compliance
   * CLI turns it off because `verify` walks the chains itself and names the first broken link.
   */
  readonly verifyOnRead?: boolean;
}

interface EventRow {
  position: number | bigint;
  id: string;
  stream: string;
  revision: number;
  type: string;
  data: string;
  metadata: string;
  recorded_at: string;
}

/** Reads give the event loop a turn after this long of synchronous work (see yieldNow). */
const YIELD_EVERY_MS = 10;
/** Rows decoded between two checks for a turn of the event loop (a cold row costs a hash check). */
const DECODE_SLICE = 128;

/** A write waiting for the next group commit: an append, or a row written along (processed record, checkpoint). */
type PendingWrite = PendingAppend | PendingRow;

interface PendingAppend {
  readonly kind: 'append';
  readonly stream: string;
  readonly events: readonly NewEvent[];
  readonly expected: ExpectedRevision;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
  result?: AppendResult;
  error?: unknown;
}

/** A small write (processed-message record, checkpoint) that rides along in the group's transaction. */
interface PendingRow {
  readonly kind: 'row';
  readonly write: () => void;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  done?: boolean;
  error?: unknown;
}

function prepareStatements(db: Database.Database) {
  return {
    insert: db.prepare('INSERT INTO events (id, stream, revision, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    // The stream head and its chain hash in one indexed lookup, the hash extracted in SQL (no JSON parse in JS).
    head: db.prepare("SELECT revision AS r, json_extract(metadata, '$.hash') AS hash FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1"),
    byId: db.prepare('SELECT stream, revision, position FROM events WHERE id = ?'),
    readStream: db.prepare('SELECT * FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?'),
    readAll: db.prepare('SELECT * FROM events WHERE position > ? ORDER BY position LIMIT ?'),
    headPosition: db.prepare('SELECT MAX(position) AS p FROM events'),
    loadCheckpoint: db.prepare('SELECT position FROM checkpoints WHERE name = ?'),
    saveCheckpoint: db.prepare('INSERT INTO checkpoints (name, position) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET position = excluded.position'),
    findProcessed: db.prepare('SELECT result FROM processed WHERE consumer = ? AND message_id = ?'),
    recordProcessed: db.prepare('INSERT INTO processed (consumer, message_id, result) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
  };
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  position    INTEGER PRIMARY KEY AUTOINCREMENT,
  id          TEXT NOT NULL UNIQUE,
  stream      TEXT NOT NULL,
  revision    INTEGER NOT NULL,
  type        TEXT NOT NULL,
  data        TEXT NOT NULL,
  metadata    TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  UNIQUE (stream, revision)
);
CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS processed (
  consumer TEXT NOT NULL, message_id TEXT NOT NULL, result TEXT NOT NULL,
  PRIMARY KEY (consumer, message_id)
);
`;

/**
 * The zero-install event store: one SQLite file in WAL mode with synchronous=FULL, so an
 * acknowledged append survives a SIGKILL (and a power cut). AUTOINCREMENT positions are assigned
 * inside the writing transaction, so readers see a total, gap-free order. Several processes may
 * open the same file; SQLite serialises the writers.
 */
export class SqliteEventStore implements EventStore {
  readonly kind = 'embedded';
  private readonly db: Database.Database;
  private readonly appended = new EventEmitter();
  /** Every statement prepared once (preparing is a parse and plan each time: 11% of CPU at saturation). */
  private readonly sql: ReturnType<typeof prepareStatements>;
  /** One append inside the group's transaction: a savepoint, so a refused append rolls back alone. */
  private readonly appendOne: Database.Transaction<
    (stream: string, events: readonly NewEvent[], expected: ExpectedRevision) => AppendResult
  >;
  private readonly writeGroup: Database.Transaction<(group: readonly PendingWrite[]) => void>;
  /** Writes waiting for the next group commit (see append). */
  private pending: PendingWrite[] = [];
  private lastYieldMs = Date.now();

  /** The data file's identity when opened: a deleted or replaced file is noticed (see assertFileIntact). */
  private readonly fileIdentity?: { dev: number; ino: number };
  private readonly verifyOnRead: boolean;
  /**
   * Rows already verified, by position → a digest of their raw text. Re-reading a long stream (every
   * command re-reads its aggregate) then costs a native hash of the raw row, not a canonical-JSON
   * rehash; any edit of the row changes the raw digest and is verified (and refused) again.
   */
  private readonly verified = new Map<string, string>();
  private static readonly VERIFIED_CACHE_MAX = 500_000;

  constructor(readonly location: string, private readonly clock: Clock = systemClock, options: SqliteEventStoreOptions = {}) {
    this.verifyOnRead = options.verifyOnRead ?? true;
    if (location !== ':memory:') mkdirSync(dirname(location), { recursive: true });
    this.db = new Database(location);
    if (location !== ':memory:') {
      const stat = statSync(location);
      this.fileIdentity = { dev: stat.dev, ino: stat.ino };
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    this.db.defaultSafeIntegers(true);
    this.appended.setMaxListeners(100);
    this.sql = prepareStatements(this.db);
    this.appendOne = this.db.transaction((stream, events, expected) => this.appendInTx(stream, events, expected));
    this.writeGroup = this.db.transaction((group) => {
      for (const request of group) {
        try {
          if (request.kind === 'append') request.result = this.appendOne(request.stream, request.events, request.expected);
          else {
            request.write();
            request.done = true;
          }
        } catch (err) {
          request.error = err;
        }
      }
    });
  }

  /**
   * SQLite keeps writing to an open file after it was unlinked: every write would "succeed" and be
   * gone at the next start. So each call checks that the path still names the file we opened.
   */
  private assertFileIntact(): void {
    if (!this.fileIdentity) return;
    const stat = statSync(this.location, { throwIfNoEntry: false });
    if (!stat) throw new StoreUnavailableError(this.location, new Error('the data file was deleted while open; nothing more is written to it'));
    if (stat.ino !== this.fileIdentity.ino || stat.dev !== this.fileIdentity.dev) {
      throw new StoreUnavailableError(this.location, new Error('the data file was replaced while open (another file now has its path); nothing more is written to it'));
    }
  }

  /**
   * Group commit: appends (and processed-message records) made in the same event-loop turn (concurrent HTTP requests, consumers) are
   * written in ONE transaction with one fsync at COMMIT. Each is still its own step inside it (a
   * savepoint): its own duplicate check, expected-revision check and limits, its own result or error,
   * in call order; a refused append rolls back alone. A failing COMMIT fails every append of the group.
   */
  async append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    assertAppendWithinLimits(stream, events);
    return new Promise<AppendResult>((resolve, reject) => this.enqueue({ kind: 'append', stream, events, expected, resolve, reject }));
  }

  private enqueue(write: PendingWrite): void {
    this.pending.push(write);
    if (this.pending.length === 1) setImmediate(() => this.commitGroup());
  }

  private commitGroup(): void {
    const group = this.pending;
    this.pending = [];
    try {
      this.assertFileIntact();
      // IMMEDIATE: take the write lock before reading any stream head, so each check and write are one step.
      this.writeGroup.immediate(group);
    } catch (err) {
      group.forEach((request) => request.reject(err));
      return;
    }
    let wrote = false;
    for (const request of group) {
      if (request.kind === 'row') {
        if (request.done) request.resolve();
        else request.reject(request.error);
      } else if (request.result) {
        wrote ||= !request.result.duplicate;
        request.resolve(request.result);
      } else request.reject(request.error);
    }
    if (wrote) this.appended.emit('append');
  }

  private appendInTx(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): AppendResult {
    const duplicate = this.findDuplicate(stream, events);
    if (duplicate) return duplicate;
    const head = this.sql.head.get(stream) as { r: bigint; hash: string | null } | undefined;
    const actual = head === undefined ? 'no_stream' : Number(head.r);
    if (!revisionMatches(expected, actual)) throw new WrongExpectedRevisionError(stream, expected, actual);
    const recordedAt = this.clock.now().toISOString();
    let revision = actual === 'no_stream' ? -1 : actual;
    let prevHash = typeof head?.hash === 'string' ? head.hash : GENESIS_HASH;
    let position = 0n;
    for (const event of events) {
      revision += 1;
      const data = toJson(event.data);
      if (data.length > STORE_LIMITS.eventBytesMax) {
        throw new RangeError(`event ${event.id} is ${data.length} bytes; the limit is ${STORE_LIMITS.eventBytesMax}`);
      }
      const chain = chainEvent(stream, revision, event, prevHash);
      prevHash = chain.hash;
      const metadata = toJson({ ...(event.metadata ?? {}), ...chain });
      const info = this.sql.insert.run(event.id, stream, revision, event.type, data, metadata, recordedAt);
      position = BigInt(info.lastInsertRowid);
    }
    return { lastRevision: revision, position, duplicate: false };
  }

  /** Same ids already stored as this stream's events: the retry of an append that succeeded. */
  private findDuplicate(stream: string, events: readonly NewEvent[]): AppendResult | undefined {
    const found = events.map((e) => this.sql.byId.get(e.id) as { stream: string; revision: bigint; position: bigint } | undefined);
    if (found.every((row) => row === undefined)) return undefined;
    found.forEach((row, i) => {
      if (!row || row.stream !== stream) throw new DuplicateEventIdError(stream, events[i].id);
    });
    const last = found[found.length - 1]!;
    return { lastRevision: Number(last.revision), position: BigInt(last.position), duplicate: true };
  }

  /**
   * The store is synchronous behind async methods: a long scan (start-up rebuilds, a catch-up) would
   * never let the event loop run, so HTTP could not even accept. Reads give it a turn every few ms.
   */
  private async yieldNow(): Promise<void> {
    const now = Date.now();
    if (now - this.lastYieldMs < YIELD_EVERY_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.lastYieldMs = Date.now();
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    await this.yieldNow();
    this.assertFileIntact();
    const rows = this.sql.readStream.all(stream, options.fromRevision ?? 0, options.maxCount ?? -1) as EventRow[];
    return this.decodeAll(rows);
  }

  async readAll(options: ReadAllOptions): Promise<StoredEvent[]> {
    await this.yieldNow();
    this.assertFileIntact();
    const maxCount = Math.min(options.maxCount, STORE_LIMITS.readPageMax);
    const rows = this.sql.readAll.all(options.after ?? 0n, maxCount) as EventRow[];
    return this.decodeAll(rows);
  }

  /** Decodes (and, first time, verifies) rows in slices, giving the event loop a turn between them. */
  private async decodeAll(rows: readonly EventRow[]): Promise<StoredEvent[]> {
    const out = new Array<StoredEvent>(rows.length);
    for (let i = 0; i < rows.length; i += 1) {
      if (i % DECODE_SLICE === 0 && i > 0) await this.yieldNow();
      out[i] = this.decode(rows[i]);
    }
    return out;
  }

  /** Global position of the last event (0n when empty), without reading the events. */
  async headPosition(): Promise<bigint> {
    this.assertFileIntact();
    const row = this.sql.headPosition.get() as { p: bigint | null };
    return row.p === null ? 0n : BigInt(row.p);
  }

  async loadCheckpoint(name: string): Promise<bigint | undefined> {
    this.assertFileIntact();
    const row = this.sql.loadCheckpoint.get(name) as { position: bigint } | undefined;
    return row ? BigInt(row.position) : undefined;
  }

  /** Committed with the appends of the same turn, when there are any (no fsync of its own then). */
  async saveCheckpoint(name: string, position: bigint): Promise<void> {
    return new Promise<void>((resolve, reject) => this.enqueue({ kind: 'row', write: () => this.sql.saveCheckpoint.run(name, position), resolve, reject }));
  }

  async findProcessed(consumer: string, messageId: string): Promise<string | undefined> {
    this.assertFileIntact();
    const row = this.sql.findProcessed.get(consumer, messageId) as { result: string } | undefined;
    return row?.result;
  }

  /** Durable like an append, and committed in the same group as the appends of this turn. */
  async recordProcessed(consumer: string, messageId: string, result: string): Promise<void> {
    return new Promise<void>((resolve, reject) => this.enqueue({ kind: 'row', write: () => this.sql.recordProcessed.run(consumer, messageId, result), resolve, reject }));
  }

  onAppend(listener: () => void): () => void {
    this.appended.on('append', listener);
    return () => this.appended.off('append', listener);
  }

  async close(): Promise<void> {
    // Appends already queued for the next group commit are written first (they were made before close).
    if (this.pending.length > 0 && this.db.open) this.commitGroup();
    this.appended.removeAllListeners();
    if (this.db.open) this.db.close();
  }

  /** A row → an event; a row that cannot be decoded, or (verifyOnRead) whose hash fails, is refused naming the event. */
  private decode(row: EventRow): StoredEvent {
    const event = toStored(row);
    if (!this.verifyOnRead) return event;
    const key = String(row.position);
    const raw = createHash('sha1').update(row.data).update('\u0000').update(row.metadata).update('\u0000').update(row.type).update(row.id).digest('base64');
    if (this.verified.get(key) === raw) return event;
    assertSelfConsistent(event);
    if (this.verified.size >= SqliteEventStore.VERIFIED_CACHE_MAX) this.verified.clear();
    this.verified.set(key, raw);
    return event;
  }
}


export function revisionMatches(expected: ExpectedRevision, actual: number | 'no_stream'): boolean {
  if (expected === 'any') return true;
  return expected === actual;
}

function toStored(row: EventRow): StoredEvent {
  const at = { stream: row.stream, revision: Number(row.revision), position: BigInt(row.position), eventId: row.id };
  const parse = (column: 'data' | 'metadata'): Record<string, unknown> => {
    let value: unknown;
    try {
      value = JSON.parse(row[column]);
    } catch (err) {
      throw new EventIntegrityError(at, 'UNREADABLE', `its ${column} is not JSON (${(err as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new EventIntegrityError(at, 'UNREADABLE', `its ${column} is not a JSON object`);
    return value as Record<string, unknown>;
  };
  return {
    id: row.id,
    type: row.type,
    data: parse('data'),
    metadata: parse('metadata'),
    stream: row.stream,
    revision: Number(row.revision),
    position: BigInt(row.position),
    recordedAt: row.recorded_at,
  };
}

/**
 * The cheap half of the chain check, on every read: the event's own hash over its content and its
 * recorded prevHash. An edited row fails here; a removed or reordered one fails the link check of
 * the start-up verification (verifyChains) and of `npm run compliance -- verify`.
 */
function assertSelfConsistent(event: StoredEvent): void {
  const at = { stream: event.stream, revision: event.revision, position: event.position, eventId: event.id };
  const { hash, prevHash } = event.metadata;
  if (typeof hash !== 'string' || typeof prevHash !== 'string') throw new EventIntegrityError(at, 'ALTERED', 'it has no hash chain fields');
  const recomputed = chainEvent(event.stream, event.revision, event, prevHash).hash;
  if (recomputed !== hash) throw new EventIntegrityError(at, 'ALTERED', `its content hash ${recomputed.slice(0, 12)}… differs from the recorded ${hash.slice(0, 12)}…`);
}
