import { EventStore, StoredEvent } from './port';

export interface SubscriptionOptions {
  /** Checkpoint name: one per consumer; the subscription resumes after the stored position. */
  readonly name: string;
  readonly handle: (event: StoredEvent) => Promise<void>;
  readonly pageSize?: number;
  readonly pollMs?: number;
  /** Backoff cap between retries of a failing handler (it is retried until it succeeds or stops). */
  readonly retryBackoffMsMax?: number;
  readonly onError?: (error: unknown, event: StoredEvent, attempt: number) => void;
}

export interface SubscriptionHandle {
  readonly name: string;
  /** Position of the last event handled and checkpointed. */
  position(): bigint;
  /** True once it has read to the end of the store at least once since it started (readiness). */
  caughtUp(): boolean;
  /** Resolves once the subscription has handled everything up to `position` (tests, readiness). */
  waitFor(position: bigint, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
  lastError(): unknown;
}

/**
 * A checkpointed catch-up subscription over readAll that works on every adapter: reads a page after
 * the checkpoint, hands each event to the handler in order, stores the checkpoint after each one,
 * then waits for an append signal or the poll interval. A crash re-delivers at most the event being
 * handled, so handlers are idempotent (deterministic event ids / processed-message records).
 */
export async function startCatchUpSubscription(store: EventStore, options: SubscriptionOptions): Promise<SubscriptionHandle> {
  const pageSize = options.pageSize ?? 256;
  const pollMs = options.pollMs ?? 200;
  const backoffMsMax = options.retryBackoffMsMax ?? 5_000;
  let position = (await store.loadCheckpoint(options.name)) ?? 0n;
  let stopped = false;
  let reachedEnd = false;
  let error: unknown;
  let wake: (() => void) | undefined;
  const waiters = new Set<() => void>();
  const unsubscribe = store.onAppend(() => wake?.());

  const sleep = (msToWait: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, msToWait);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  const backoff = (attempt: number) => Math.min(backoffMsMax, 50 * 2 ** Math.min(attempt, 10));

  /**
   * Runs one step for an event until it succeeds, retrying with backoff while it fails: the error
   * shows in lastError() (readiness says not ready) and goes to onError. Resolves false only when
   * the subscription stops first; never rejects.
   */
  const untilDone = async (event: StoredEvent, step: () => Promise<void>) => {
    for (let attempt = 1; !stopped; attempt += 1) {
      try {
        await step();
        error = undefined;
        return true;
      } catch (err) {
        error = err;
        options.onError?.(err, event, attempt);
        await sleep(backoff(attempt));
      }
    }
    return false;
  };

  const handleWithRetry = (event: StoredEvent) => untilDone(event, () => options.handle(event));

  /**
   * Stores the checkpoint, retrying while the store refuses (a full disk, a lock, a vanished file),
   * so the handler is not run again for an event it already handled.
   */
  const checkpointWithRetry = (event: StoredEvent) => untilDone(event, () => store.saveCheckpoint(options.name, event.position));

  const loop = (async () => {
    let readFailures = 0;
    while (!stopped) {
      let page: StoredEvent[];
      try {
        page = await store.readAll({ after: position, maxCount: pageSize });
        readFailures = 0;
      } catch (err) {
        error = err;
        readFailures += 1;
        await sleep(Math.max(pollMs, backoff(readFailures)));
        continue;
      }
      for (const event of page) {
        if (!(await handleWithRetry(event))) return;
        if (!(await checkpointWithRetry(event))) return;
        position = event.position;
        waiters.forEach((notify) => notify());
      }
      if (page.length < pageSize) {
        reachedEnd = true;
        if (!stopped) await sleep(pollMs);
      }
    }
  })().catch((err: unknown) => {
    // Unreachable by construction; if it ever happens, it must show as not-ready, never kill the process.
    error = err;
  });

  return {
    name: options.name,
    position: () => position,
    caughtUp: () => reachedEnd,
    lastError: () => error,
    waitFor: (target, timeoutMs) =>
      new Promise<void>((resolve, reject) => {
        if (position >= target) return resolve();
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`subscription ${options.name} at ${position}, not at ${target} after ${timeoutMs} ms`));
        }, timeoutMs);
        function check() {
          if (position < target) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        }
        waiters.add(check);
      }),
    stop: async () => {
      stopped = true;
      wake?.();
      unsubscribe();
      await loop;
    },
  };
}
