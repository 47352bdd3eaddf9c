import { EventEmitter } from 'node:events';
import { Client, Pool, PoolClient } from 'pg';
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
  StoreUnavailableError,
  toJson,
  WrongExpectedRevisionError,
} from './port';

export interface PostgresEventStoreOptions {
  /** BACKSTOP_POSTGRES_SCHEMA: the schema holding this store's tables (created if missing). Unset:
   * the connection's search_path decides (public by default, or `?options=-c search_path=x`). */
  readonly schema?: string;
  readonly clock?: Clock;
  /** Connections in the pool (default 5). */
  readonly poolSize?: number;
  /** Test seam: runs inside the append transaction after the rows are written, before COMMIT, so a
   * test can hold transactions open and make them commit in any order. Never set in production. */
  readonly beforeCommit?: () => Promise<void>;
}

interface EventRow {
  position: string;
  id: string;
  stream: string;
  revision: number;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  recorded_at: string;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** NOTIFY channel: the payload names the events table, so stores in other schemas ignore it. */
const APPEND_CHANNEL = 'backstop_event_append';
/** A writer stuck inside its transaction (paused process, half-open socket) holds the position
 * lock; the server ends such a session after this long so the other writers can go on. */
const IDLE_IN_TRANSACTION_MS = 30_000;
const UNIQUE_VIOLATION = '23505';

/**
 * PostgreSQL adapter (node-postgres), chosen by BACKSTOP_POSTGRES_URL.
 *
 * Global positions are gap-safe: a position is handed out from a one-row counter that the append
 * transaction locks (SELECT ... FOR UPDATE) and updates, so the lock is held until COMMIT. Appends
 * therefore commit one after another in position order, and a reader that has seen position N can
 * never later find a newly committed event below N (the classic trap of a bare sequence, whose
 * numbers are taken at INSERT but become visible at COMMIT, in any order). Positions have no holes:
 * a rolled-back append rolls its counter update back too. The price is one writer at a time per
 * store (schema), which the bench measures; stream revisions are still guarded by a unique
 * (stream, revision) constraint, so optimistic concurrency holds across connections and processes.
 */
export class PostgresEventStore implements EventStore {
  readonly kind = 'postgres';
  readonly location: string;
  private readonly pool: Pool;
  private readonly appended = new EventEmitter();
  private readonly clock: Clock;
  private readonly t: { events: string; counter: string; checkpoints: string; processed: string };
  private ready: Promise<void> | undefined;
  private closed = false;
  private listener: Client | undefined;

  constructor(private readonly url: string, private readonly options: PostgresEventStoreOptions = {}) {
    const schema = options.schema;
    if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
      throw new RangeError(`BACKSTOP_POSTGRES_SCHEMA must match ${SCHEMA_NAME} (lower-case letters, digits, _), got "${schema}"`);
    }
    const prefix = schema ? `"${schema}".` : '';
    this.t = {
      events: `${prefix}events`,
      counter: `${prefix}event_position`,
      checkpoints: `${prefix}checkpoints`,
      processed: `${prefix}processed`,
    };
    this.location = `${redact(url)}${schema ? ` (schema ${schema})` : ''}`;
    this.clock = options.clock ?? systemClock;
    this.pool = new Pool({
      connectionString: url,
      max: options.poolSize ?? 5,
      connectionTimeoutMillis: 10_000,
      idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    });
    // An idle connection dropped by the server must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
    this.appended.setMaxListeners(100);
  }

  /** Creates the schema and tables once per store; concurrent starters serialise on an advisory lock. */
  private init(): Promise<void> {
    if (!this.ready) {
      this.ready = this.withClient(async (client) => {
        await client.query('BEGIN');
        try {
          await client.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`backstop-event-store-init:${this.t.events}`]);
          if (this.options.schema) await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.options.schema}"`);
          await client.query(`
            CREATE TABLE IF NOT EXISTS ${this.t.events} (
              position    bigint PRIMARY KEY,
              id          text NOT NULL UNIQUE,
              stream      text NOT NULL,
              revision    integer NOT NULL,
              type        text NOT NULL,
              data        json NOT NULL,
              metadata    json NOT NULL,
              recorded_at text NOT NULL,
              UNIQUE (stream, revision)
            );
            CREATE TABLE IF NOT EXISTS ${this.t.counter} (
              only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
              last     bigint NOT NULL
            );
            INSERT INTO ${this.t.counter} (only_row, last) VALUES (true, 0) ON CONFLICT DO NOTHING;
            CREATE TABLE IF NOT EXISTS ${this.t.checkpoints} (name text PRIMARY KEY, position bigint NOT NULL);
            CREATE TABLE IF NOT EXISTS ${this.t.processed} (
              consumer text NOT NULL, message_id text NOT NULL, result text NOT NULL,
              PRIMARY KEY (consumer, message_id)
            );`);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }).catch((err: unknown) => {
        this.ready = undefined; // the next call tries again (the server may come up later)
        throw err;
      });
    }
    return this.ready;
  }

  async append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    assertAppendWithinLimits(stream, events);
    const serialised = events.map((event) => {
      const data = toJson(event.data);
      if (data.length > STORE_LIMITS.eventBytesMax) {
        throw new RangeError(`event ${event.id} is ${data.length} bytes; the limit is ${STORE_LIMITS.eventBytesMax}`);
      }
      return data;
    });
    await this.init();
    const result = await this.withClient(async (client) => {
      await client.query('BEGIN');
      try {
        const outcome = await this.appendInTx(client, stream, events, serialised, expected);
        if (!outcome.duplicate) await this.options.beforeCommit?.();
        await client.query('COMMIT');
        return outcome;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        if (isUniqueViolation(err)) throw await this.explainConflict(stream, events, expected, err);
        throw err;
      }
    });
    if (!result.duplicate) this.appended.emit('append');
    return result;
  }

  private async appendInTx(
    client: PoolClient,
    stream: string,
    events: readonly NewEvent[],
    serialised: readonly string[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    // The position lock first: from here to COMMIT no other append of this store runs, so the
    // statements below (READ COMMITTED: each sees everything committed before it) read the true
    // stream head and the true predecessor hash.
    const counter = await client.query<{ last: string }>({ name: `lock-counter:${this.t.events}`, text: `SELECT last FROM ${this.t.counter} FOR UPDATE` });
    const last = BigInt(counter.rows[0].last);
    const duplicate = await this.findDuplicate(client, stream, events);
    if (duplicate) return duplicate;
    const head = await client.query<{ revision: number; metadata: { hash?: unknown } }>({
      name: `stream-head:${this.t.events}`,
      text: `SELECT revision, metadata FROM ${this.t.events} WHERE stream = $1 ORDER BY revision DESC LIMIT 1`,
      values: [stream],
    });
    const actual = head.rows.length === 0 ? 'no_stream' : head.rows[0].revision;
    if (!(expected === 'any' || expected === actual)) throw new WrongExpectedRevisionError(stream, expected, actual);
    const headHash = head.rows[0]?.metadata.hash;
    let prevHash = actual === 'no_stream' || typeof headHash !== 'string' ? GENESIS_HASH : headHash;
    let revision = actual === 'no_stream' ? -1 : actual;
    const recordedAt = this.clock.now().toISOString();
    const columns: unknown[] = [];
    const rows: string[] = [];
    events.forEach((event, i) => {
      revision += 1;
      const chain = chainEvent(stream, revision, event, prevHash);
      prevHash = chain.hash;
      const metadata = toJson({ ...(event.metadata ?? {}), ...chain });
      const base = columns.length;
      columns.push((last + BigInt(i + 1)).toString(), event.id, stream, revision, event.type, serialised[i], metadata, recordedAt);
      rows.push(`(${Array.from({ length: 8 }, (_x, k) => `$${base + k + 1}`).join(', ')})`);
    });
    await client.query(
      `INSERT INTO ${this.t.events} (position, id, stream, revision, type, data, metadata, recorded_at) VALUES ${rows.join(', ')}`,
      columns,
    );
    const position = last + BigInt(events.length);
    await client.query({ name: `set-counter:${this.t.events}`, text: `UPDATE ${this.t.counter} SET last = $1`, values: [position.toString()] });
    // Delivered at COMMIT (and only then): wakes subscribers in other processes before their poll.
    await client.query('SELECT pg_notify($1, $2)', [APPEND_CHANNEL, this.t.events]);
    return { lastRevision: revision, position, duplicate: false };
  }

  /** Same ids already stored as this stream's events: the retry of an append that succeeded. */
  private async findDuplicate(client: PoolClient, stream: string, events: readonly NewEvent[]): Promise<AppendResult | undefined> {
    const found = await client.query<{ id: string; stream: string; revision: number; position: string }>({
      name: `find-ids:${this.t.events}`,
      text: `SELECT id, stream, revision, position FROM ${this.t.events} WHERE id = ANY($1::text[])`,
      values: [events.map((e) => e.id)],
    });
    if (found.rows.length === 0) return undefined;
    const byId = new Map(found.rows.map((row) => [row.id, row]));
    for (const event of events) {
      const row = byId.get(event.id);
      if (!row || row.stream !== stream) throw new DuplicateEventIdError(stream, event.id);
    }
    const lastRow = byId.get(events[events.length - 1].id)!;
    return { lastRevision: lastRow.revision, position: BigInt(lastRow.position), duplicate: true };
  }

  /** A unique violation is a write that raced this one outside the position lock (another tool, a
   * hand edit): report it in the port's terms rather than as a driver error. */
  private async explainConflict(stream: string, events: readonly NewEvent[], expected: ExpectedRevision, err: unknown): Promise<Error> {
    const constraint = (err as { constraint?: string }).constraint ?? '';
    if (constraint.endsWith('_id_key')) return new DuplicateEventIdError(stream, events[0].id);
    const head = await this.readStream(stream).then((e) => (e.length === 0 ? 'no_stream' : e[e.length - 1].revision)).catch(() => 'no_stream' as const);
    return new WrongExpectedRevisionError(stream, expected, head);
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    await this.init();
    const rows = await this.query<EventRow>(
      `SELECT * FROM ${this.t.events} WHERE stream = $1 AND revision >= $2 ORDER BY revision LIMIT $3`,
      [stream, options.fromRevision ?? 0, options.maxCount ?? null],
      'read-stream',
    );
    return rows.map(toStored);
  }

  async readAll(options: ReadAllOptions): Promise<StoredEvent[]> {
    await this.init();
    const maxCount = Math.min(options.maxCount, STORE_LIMITS.readPageMax);
    const rows = await this.query<EventRow>(
      `SELECT * FROM ${this.t.events} WHERE position > $1 ORDER BY position LIMIT $2`,
      [(options.after ?? 0n).toString(), maxCount],
      'read-all',
    );
    return rows.map(toStored);
  }

  /** Global position of the last event (0n when empty): the position counter, no event read. */
  async headPosition(): Promise<bigint> {
    await this.init();
    const rows = await this.query<{ last: string }>(`SELECT last FROM ${this.t.counter}`, [], 'head');
    return rows.length > 0 ? BigInt(rows[0].last) : 0n;
  }

  async loadCheckpoint(name: string): Promise<bigint | undefined> {
    await this.init();
    const rows = await this.query<{ position: string }>(`SELECT position FROM ${this.t.checkpoints} WHERE name = $1`, [name], 'load-checkpoint');
    return rows.length > 0 ? BigInt(rows[0].position) : undefined;
  }

  async saveCheckpoint(name: string, position: bigint): Promise<void> {
    await this.init();
    await this.query(
      `INSERT INTO ${this.t.checkpoints} (name, position) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET position = excluded.position`,
      [name, position.toString()],
      'save-checkpoint',
    );
  }

  async findProcessed(consumer: string, messageId: string): Promise<string | undefined> {
    await this.init();
    const rows = await this.query<{ result: string }>(
      `SELECT result FROM ${this.t.processed} WHERE consumer = $1 AND message_id = $2`,
      [consumer, messageId],
    );
    return rows[0]?.result;
  }

  async recordProcessed(consumer: string, messageId: string, result: string): Promise<void> {
    await this.init();
    await this.query(
      `INSERT INTO ${this.t.processed} (consumer, message_id, result) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
      [consumer, messageId, result],
    );
  }

  /** Appends in this process, and (over LISTEN/NOTIFY) in any other process on the same store. */
  onAppend(listener: () => void): () => void {
    this.appended.on('append', listener);
    this.listen();
    return () => this.appended.off('append', listener);
  }

  /** One LISTEN connection per store, opened with the first onAppend; if it fails, subscribers
   * still poll, so it is a hint and is not retried. */
  private listen(): void {
    if (this.listener || this.closed) return;
    const client = new Client({ connectionString: this.url, connectionTimeoutMillis: 10_000 });
    this.listener = client;
    client.on('error', () => undefined);
    client.on('notification', (message) => {
      if (message.channel === APPEND_CHANNEL && message.payload === this.t.events) this.appended.emit('append');
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${APPEND_CHANNEL}`))
      .catch(() => client.end().catch(() => undefined));
  }

  async close(): Promise<void> {
    this.appended.removeAllListeners();
    if (this.closed) return;
    this.closed = true;
    await this.listener?.end().catch(() => undefined);
    await this.pool.end();
  }

  /**
   * One pooled query. `name` makes it a server-side prepared statement, parsed and planned once per
   * connection (the name is scoped by the events table, so stores in other schemas keep their own).
   */
  private async query<R extends object>(sql: string, params: unknown[], name?: string): Promise<R[]> {
    const config = name ? { name: `${name}:${this.t.events}`, text: sql, values: params } : { text: sql, values: params };
    return this.withClient(async (client) => (await client.query<R>(config)).rows);
  }

  /** One pooled connection for the callback. Lost connections and a busy or short-of-resources
   * server become StoreUnavailableError (retryable: consumers redeliver, readiness says not ready);
   * a lost connection is dropped from the pool, not reused. */
  private async withClient<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw new StoreUnavailableError(this.location, err);
    }
    let broken: Error | undefined;
    try {
      return await work(client);
    } catch (err) {
      if (isConnectionError(err)) {
        broken = err as Error;
        throw new StoreUnavailableError(this.location, err);
      }
      if (isServerBusy(err)) throw new StoreUnavailableError(this.location, err);
      throw err;
    } finally {
      client.release(broken);
    }
  }
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === UNIQUE_VIOLATION;
}

/** Lost or refused connections: SQLSTATE class 08, 57P (shutdown, terminated), 25P03 (idle in
 * transaction too long: the server closed the session), socket errors, dropped sockets. */
function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code.startsWith('08') || code.startsWith('57P') || code === '25P03' || /^E[A-Z]+$/.test(code);
  return err instanceof Error && /Connection terminated|connection timeout|Client has encountered a connection error/i.test(err.message);
}

/** The same work may succeed later: class 53 (disk full, out of memory, too many connections),
 * 40 (serialization failure, deadlock), 55P03 (lock not available), 57014 (statement timeout). */
function isServerBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('53') || code.startsWith('40') || code === '55P03' || code === '57014');
}

/** A connection string with its password replaced, fit for logs. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]+):[^@/]*@/, '$1:***@');
}

function toStored(row: EventRow): StoredEvent {
  return {
    id: row.id,
    type: row.type,
    data: row.data,
    metadata: row.metadata,
    stream: row.stream,
    revision: row.revision,
    position: BigInt(row.position),
    recordedAt: row.recorded_at,
  };
}
