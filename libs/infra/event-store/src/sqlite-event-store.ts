import Database from 'better-sqlite3';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Clock, systemClock } from '@backstop/kernel';
import { chainEvent, GENESIS_HASH } from './hash-chain';
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
  toJson,
  WrongExpectedRevisionError,
} from './port';

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

  constructor(readonly location: string, private readonly clock: Clock = systemClock) {
    if (location !== ':memory:') mkdirSync(dirname(location), { recursive: true });
    this.db = new Database(location);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    this.db.defaultSafeIntegers(true);
    this.appended.setMaxListeners(100);
    this.appendTx = this.db.transaction((stream, events, expected) => this.appendInTx(stream, events, expected));
  }

  async append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    assertAppendWithinLimits(stream, events);
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
    const rows = this.db
      .prepare('SELECT * FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?')
      .all(stream, options.fromRevision ?? 0, options.maxCount ?? -1) as EventRow[];
    return rows.map(toStored);
  }

  async readAll(options: ReadAllOptions): Promise<StoredEvent[]> {
    const maxCount = Math.min(options.maxCount, STORE_LIMITS.readPageMax);
    const rows = this.db
      .prepare('SELECT * FROM events WHERE position > ? ORDER BY position LIMIT ?')
      .all(options.after ?? 0n, maxCount) as EventRow[];
    return rows.map(toStored);
  }

  async loadCheckpoint(name: string): Promise<bigint | undefined> {
    const row = this.db.prepare('SELECT position FROM checkpoints WHERE name = ?').get(name) as { position: bigint } | undefined;
    return row ? BigInt(row.position) : undefined;
  }

  async saveCheckpoint(name: string, position: bigint): Promise<void> {
    this.db
      .prepare('INSERT INTO checkpoints (name, position) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET position = excluded.position')
      .run(name, position);
  }

  async findProcessed(consumer: string, messageId: string): Promise<string | undefined> {
    const row = this.db
      .prepare('SELECT result FROM processed WHERE consumer = ? AND message_id = ?')
      .get(consumer, messageId) as { result: string } | undefined;
    return row?.result;
  }

  async recordProcessed(consumer: string, messageId: string, result: string): Promise<void> {
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
}

export function revisionMatches(expected: ExpectedRevision, actual: number | 'no_stream'): boolean {
  if (expected === 'any') return true;
  return expected === actual;
}

function toStored(row: EventRow): StoredEvent {
  return {
    id: row.id,
    type: row.type,
    data: JSON.parse(row.data) as Record<string, unknown>,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    stream: row.stream,
    revision: Number(row.revision),
    position: BigInt(row.position),
    recordedAt: row.recorded_at,
  };
}
