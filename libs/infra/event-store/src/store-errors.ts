import Database from 'better-sqlite3';
import { StoreUnavailableError, WrongExpectedRevisionError } from './port';

/**
 * What a store error means for the caller, decided by its TYPE (never by a regex on its name):
 * - 'transient': the store is busy, locked, full, gone or unreachable, or another writer got there
 *   first; the same work later may succeed. Consumers redeliver and report not-ready.
 * - 'permanent': this input can never be stored as it is (a limit, a constraint); retrying is useless.
 * - undefined: not a store error.
 */
export type StoreErrorKind = 'transient' | 'permanent';

/** SQLite result codes (primary code, before the first "_" of an extended one) that no retry can fix. */
const SQLITE_PERMANENT = new Set(['SQLITE_CONSTRAINT', 'SQLITE_MISMATCH', 'SQLITE_TOOBIG', 'SQLITE_RANGE']);

export function storeErrorKind(err: unknown): StoreErrorKind | undefined {
  if (err instanceof WrongExpectedRevisionError) return 'transient';
  if (err instanceof StoreUnavailableError) return 'transient';
  if (err instanceof EventIntegrityError) return 'transient';
  if (isSqliteError(err)) {
    const primary = err.code.split('_').slice(0, 2).join('_');
    // BUSY, LOCKED, IOERR_*, FULL, CANTOPEN, READONLY_*, CORRUPT, NOTADB, PROTOCOL...: the store, not the message.
    return SQLITE_PERMANENT.has(primary) ? 'permanent' : 'transient';
  }
  return undefined;
}

/**
 * better-sqlite3 hands its native addon the SqliteError class once per process, so an error thrown
 * where the module was loaded a second time (another jest module registry, a bundle with two copies)
 * fails `instanceof`; its name and its SQLITE_* code still say what it is.
 */
function isSqliteError(err: unknown): err is Error & { code: string } {
  if (err instanceof Database.SqliteError) return true;
  // Not `instanceof Error` either: that class may come from another realm (a jest test file's context).
  if (typeof err !== 'object' || err === null) return false;
  const { name, code } = err as { name?: unknown; code?: unknown };
  return name === 'SqliteError' && typeof code === 'string' && code.startsWith('SQLITE_');
}

/** Where an event sits, for messages that must name it. */
export interface EventLocation {
  readonly stream: string;
  readonly revision: number;
  readonly position: bigint;
  readonly eventId: string;
}

/**
 * A stored event fails its integrity check on read: its content no longer matches its recorded
 * hash (ALTERED) or its row cannot be decoded (UNREADABLE). Such an event is never served or booked.
 */
export class EventIntegrityError extends Error {
  constructor(
    readonly at: EventLocation,
    readonly problem: 'ALTERED' | 'UNREADABLE',
    readonly detail: string,
  ) {
    super(`event ${at.eventId} (stream ${at.stream}, revision ${at.revision}, position ${at.position}) fails its integrity check: ${problem}: ${detail}`);
    this.name = 'EventIntegrityError';
  }
}
