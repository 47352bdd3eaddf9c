import { EventStore, storeErrorKind, WrongExpectedRevisionError } from '@backstop/event-store';
import { Logger, MetricsRegistry } from '@backstop/telemetry';

/** After the last failed store write, readiness stays failed at least this long (no flapping under a full disk). */
export const STORE_WRITE_FAILURE_HOLD_MS = 5_000;
/** The checkpoint a readiness probe writes once the hold has passed, to learn whether writes go through again. */
const PROBE_CHECKPOINT = 'readiness-write-probe';

/**
 * A store that cannot write (a full disk: SQLITE_FULL / ENOSPC; a lock held too long; a vanished
 * file) is a store error, not a bug: every writer retries (consumers with backoff, HTTP clients on
 * 503). What this adds is that it is SEEN: each failed write is counted
 * (`backstop_event_store_write_failures_total{operation,code}`) and logged ("event store write
 * failed", with the code), and readiness fails while writes fail. A read-only probe cannot tell: the
 * disk is full for writes only. So after a failure readiness stays failed for
 * STORE_WRITE_FAILURE_HOLD_MS, then writes a probe checkpoint; the first write that goes through
 * (the probe or real work) makes the store ready again. Wraps the store's write methods in place.
 */
export class StoreWriteHealth {
  private last?: { atMs: number; operation: string; code: string; message: string };
  private failuresSinceOk = 0;
  private readonly probe: (position: bigint) => Promise<void>;

  constructor(
    store: EventStore,
    metrics: MetricsRegistry,
    private readonly logger: Logger,
    private readonly nowMs: () => number = Date.now,
  ) {
    const failures = metrics.counter('backstop_event_store_write_failures_total', 'Event-store writes that failed for the store\'s sake (disk full, lock, I/O), by operation and error code', ['operation', 'code']);
    const track = <A extends unknown[], R>(operation: string, write: (...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        try {
          const result = await write(...args);
          this.succeeded();
          return result;
        } catch (err) {
          if (isStoreWriteFailure(err)) {
            const code = errorCode(err);
            failures.inc({ operation, code });
            this.failed(operation, code, err as Error);
          }
          throw err;
        }
      };
    store.append = track('append', store.append.bind(store));
    store.recordProcessed = track('recordProcessed', store.recordProcessed.bind(store));
    store.saveCheckpoint = track('saveCheckpoint', store.saveCheckpoint.bind(store));
    this.probe = (position) => store.saveCheckpoint(PROBE_CHECKPOINT, position);
  }

  /** 'ok', or why writes are failing (the readiness check `store-writes`). */
  async check(): Promise<string> {
    const last = this.last;
    if (!last) return 'ok';
    if (this.nowMs() - last.atMs < STORE_WRITE_FAILURE_HOLD_MS) return this.describe();
    try {
      await this.probe(BigInt(this.nowMs()));
    } catch {
      /* counted and described by the wrapper */
    }
    return this.last ? this.describe() : 'ok';
  }

  private describe(): string {
    const last = this.last!;
    return `failing: ${last.code} on ${last.operation} (${this.failuresSinceOk} failed writes, the last ${Math.round((this.nowMs() - last.atMs) / 1000)} s ago): ${last.message}`;
  }

  private succeeded(): void {
    if (!this.last) return;
    this.logger.info('event store writes go through again', { failedWrites: this.failuresSinceOk, lastCode: this.last.code });
    this.last = undefined;
    this.failuresSinceOk = 0;
  }

  private failed(operation: string, code: string, err: Error): void {
    this.failuresSinceOk += 1;
    this.last = { atMs: this.nowMs(), operation, code, message: err.message };
    this.logger.warn('event store write failed', { operation, code, error: err.message, failedWrites: this.failuresSinceOk });
  }
}

/** A failure of the store itself (full, locked, gone), not a concurrency conflict or a refused input. */
function isStoreWriteFailure(err: unknown): boolean {
  return storeErrorKind(err) === 'transient' && !(err instanceof WrongExpectedRevisionError);
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^[A-Z_]{3,40}$/.test(code)) return code;
  return (err as Error).name ?? 'Error';
}

/**
 * For the HTTP boundary: the store's code when `err` is the store failing (full, locked, gone), so
 * the answer is 503 + Retry-After (retry the same request) instead of a 500; undefined otherwise.
 */
export function storeFailureCode(err: unknown): string | undefined {
  return isStoreWriteFailure(err) ? errorCode(err) : undefined;
}
