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
  private readonly appendTx: Database.Transaction<
    (stream: string, events: readonly NewEvent[], expected: ExpectedRevision) => AppendResult
  >;

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
    this.appendTx = this.db.transaction((stream, events, expected) => this.appendInTx(stream, events, expected));
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

  async append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    assertAppendWithinLimits(stream, events);
    this.assertFileIntact();
    // IMMEDIATE: take the write lock before reading the stream head, so the check and write are one step.
    const result = this.appendTx.immediate(stream, events, expected);
    if (!result.duplicate) this.appended.emit('append');
    return result;
  }

  private appendInTx(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): AppendResult {
    const duplicate = this.findDuplicate(stream, events);
    if (duplicate) return duplicate;
    const head = this.db.prepare('SELECT MAX(revision) AS r FROM events WHERE stream = ?').get(stream) as { r: bigint | null };
    const actual = head.r === null ? 'no_stream' : Number(head.r);
    if (!revisionMatches(expected, actual)) throw new WrongExpectedRevisionError(stream, expected, actual);
    const insert = this.db.prepare(
      'INSERT INTO events (id, stream, revision, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    const recordedAt = this.clock.now().toISOString();
    let revision = actual === 'no_stream' ? -1 : actual;
    let prevHash = actual === 'no_stream' ? GENESIS_HASH : this.lastHash(stream);
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
      const info = insert.run(event.id, stream, revision, event.type, data, metadata, recordedAt);
      position = BigInt(info.lastInsertRowid);
    }
    return { lastRevision: revision, position, duplicate: false };
  }

  private lastHash(stream: string): string {
    const row = this.db.prepare('SELECT metadata FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1').get(stream) as { metadata: string };
    const hash = (JSON.parse(row.metadata) as { hash?: unknown }).hash;
    return typeof hash === 'string' ? hash : GENESIS_HASH;
  }

  /** Same ids already stored as this stream's events: the retry of an append that succeeded. */
  private findDuplicate(stream: string, events: readonly NewEvent[]): AppendResult | undefined {
    const lookup = this.db.prepare('SELECT stream, revision, position FROM events WHERE id = ?');
    const found = events.map((e) => lookup.get(e.id) as { stream: string; revision: bigint; position: bigint } | undefined);
    if (found.every((row) => row === undefined)) return undefined;
    found.forEach((row, i) => {
      if (!row || row.stream !== stream) throw new DuplicateEventIdError(stream, events[i].id);
    });
    const last = found[found.length - 1]!;
    return { lastRevision: Number(last.revision), position: BigInt(last.position), duplicate: true };
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    this.assertFileIntact();
    const rows = this.db
      .prepare('SELECT * FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?')
      .all(stream, options.fromRevision ?? 0, options.maxCount ?? -1) as EventRow[];
    return rows.map((row) => this.decode(row));
  }

  async readAll(options: ReadAllOptions): Promise<StoredEvent[]> {
    this.assertFileIntact();
    const maxCount = Math.min(options.maxCount, STORE_LIMITS.readPageMax);
    const rows = this.db
      .prepare('SELECT * FROM events WHERE position > ? ORDER BY position LIMIT ?')
      .all(options.after ?? 0n, maxCount) as EventRow[];
    return rows.map((row) => this.decode(row));
  }

  async loadCheckpoint(name: string): Promise<bigint | undefined> {
    this.assertFileIntact();
    const row = this.db.prepare('SELECT position FROM checkpoints WHERE name = ?').get(name) as { position: bigint } | undefined;
    return row ? BigInt(row.position) : undefined;
  }

  async saveCheckpoint(name: string, position: bigint): Promise<void> {
    this.assertFileIntact();
    this.db
      .prepare('INSERT INTO checkpoints (name, position) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET position = excluded.position')
      .run(name, position);
  }

  async findProcessed(consumer: string, messageId: string): Promise<string | undefined> {
    this.assertFileIntact();
    const row = this.db
      .prepare('SELECT result FROM processed WHERE consumer = ? AND message_id = ?')
      .get(consumer, messageId) as { result: string } | undefined;
    return row?.result;
  }

  async recordProcessed(consumer: string, messageId: string, result: string): Promise<void> {
    this.assertFileIntact();
    this.db
      .prepare('INSERT INTO processed (consumer, message_id, result) VALUES (?, ?, ?) ON CONFLICT DO NOTHING')
      .run(consumer, messageId, result);
  }

  onAppend(listener: () => void): () => void {
    this.appended.on('append', listener);
    return () => this.appended.off('append', listener);
  }

  async close(): Promise<void> {
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
