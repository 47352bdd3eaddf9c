import { EventStore, StoredEvent } from './port';

export interface SubscriptionOptions {
  /** Checkpoint name: one per consumer; the subscription resumes after the stored position. */
  readonly name: string;
  /**
   * Handles one event. Resolve `false` when the event was not for this consumer (ignored): ignored
   * events move the position but make no checkpoint write due (see idleCheckpointMs).
   */
  readonly handle: (event: StoredEvent) => Promise<void | boolean>;
  readonly pageSize?: number;
  readonly pollMs?: number;
  /** Backoff cap between retries of a failing handler (it is retried until it succeeds or stops). */
  readonly retryBackoffMsMax?: number;
  readonly onError?: (error: unknown, event: StoredEvent, attempt: number) => void;
  /** Checkpoint after this many handled events (default 4,096)... */
  readonly checkpointEvery?: number;
  /** ...or this long after the first handled event not yet checkpointed, whichever comes first (default 200 ms). */
  readonly checkpointMs?: number;
  /**
   * Progress over ignored events only is checkpointed this long after it started (default 1,000 ms),
   * or after SKIPPED_CHECKPOINT_EVENTS of them, so a restart does not re-read a long ignored tail.
   */
  readonly idleCheckpointMs?: number;
}

export interface SubscriptionHandle {
  readonly name: string;
  /** Position of the last event handled (its checkpoint follows within checkpointMs; see stop()). */
  position(): bigint;
  /** True once it has read to the end of the store at least once since it started (readiness). */
  caughtUp(): boolean;
  /** Resolves once the subscription has handled everything up to `position` (tests, readiness). */
  waitFor(position: bigint, timeoutMs: number): Promise<void>;
  /** Stops after the event in hand and stores the checkpoint of the last handled event. */
  stop(): Promise<void>;
  lastError(): unknown;
}

/** Ignored-only progress is checkpointed at the latest after this many events. */
const SKIPPED_CHECKPOINT_EVENTS = 4_096;
/** Catch-up gives the event loop (HTTP, probes, timers) a turn after this long of work. */
const YIELD_EVERY_MS = 10;

/** One macrotask turn: lets I/O callbacks (an HTTP accept, a probe) run between synchronous store reads. */
export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * One store poller for all subscriptions of a store: pages read in this turn of the event loop, by
 * (after, maxCount). Subscriptions at the same position (every caught-up subscription, woken by the
 * same append) share one read, so each row is read and JSON-parsed once per turn, not once per
 * subscription. A page is kept for the rest of the turn only, and dropped at once by an append signal
 * (pages never change below the head; a reader in the same turn could not have seen a later append).
 */
const pagesThisTurn = new WeakMap<EventStore, Map<string, Promise<StoredEvent[]>>>();

export function readPageShared(store: EventStore, after: bigint, maxCount: number): Promise<StoredEvent[]> {
  let pages = pagesThisTurn.get(store);
  if (!pages) {
    const fresh = new Map<string, Promise<StoredEvent[]>>();
    pages = fresh;
    pagesThisTurn.set(store, fresh);
    // An append ends the sharing at once: the subscriptions it wakes must read past the old head.
    store.onAppend(() => fresh.clear());
  }
  const key = `${after}:${maxCount}`;
  const cached = pages.get(key);
  if (cached) return cached;
  const page = store.readAll({ after, maxCount });
  pages.set(key, page);
  const forget = () => {
    if (pages.get(key) === page) pages.delete(key);
  };
  // Kept until the page has been read and the turn is over; a failed read is not shared beyond its turn either.
  page.then(() => setImmediate(forget), () => setImmediate(forget));
  return page;
}

/**
 * A checkpointed catch-up subscription over readAll that works on every adapter: reads a page after
 * the checkpoint, hands each event to the handler in order, then waits for an append signal or the
 * poll interval.
 *
 * Checkpoints are written in batches: after `checkpointEvery` handled events or `checkpointMs` after
 * the first one not yet stored, whichever is first; ignored events alone only every
 * `idleCheckpointMs`; and always at stop(). A crash therefore re-delivers the events handled since
 * the last checkpoint (at most checkpointEvery, or checkpointMs worth): every store-fed consumer is
 * idempotent by event id (their appends derive event ids from the causing event's id and a
 * causation already in the target stream is "already done"; the publisher re-sends the same message
 * id, which Kafka consumers dedupe).
 */
export async function startCatchUpSubscription(store: EventStore, options: SubscriptionOptions): Promise<SubscriptionHandle> {
  const pageSize = options.pageSize ?? 256;
  const pollMs = options.pollMs ?? 200;
  const backoffMsMax = options.retryBackoffMsMax ?? 5_000;
  const checkpointEvery = options.checkpointEvery ?? 4_096;
  const checkpointMs = options.checkpointMs ?? 200;
  const idleCheckpointMs = options.idleCheckpointMs ?? 1_000;
  let position = (await store.loadCheckpoint(options.name)) ?? 0n;
  /** What the store holds as this subscription's checkpoint. */
  let stored = position;
  /** Events since `stored`: handled ones, and all of them (handled or ignored). */
  let handledSince = 0;
  let eventsSince = 0;
  /** When the first event not yet checkpointed was handled (or, with none handled, seen). */
  let pendingSinceMs = 0;
  let stopped = false;
  let reachedEnd = false;
  let error: unknown;
  let wake: (() => void) | undefined;
  const waiters = new Set<() => void>();
  /** An append signal that came while no one slept (during a read, a handler, a checkpoint): the next sleep is skipped. */
  let signalled = false;
  const unsubscribe = store.onAppend(() => {
    if (wake) wake();
    else signalled = true;
  });

  const sleep = (msToWait: number) =>
    new Promise<void>((resolve) => {
      if (signalled || stopped) {
        signalled = false;
        wake = undefined;
        return resolve();
      }
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
   * Runs one step until it succeeds, retrying with backoff while it fails: the error shows in
   * lastError() (readiness says not ready) and goes to onError. Resolves undefined only when the
   * subscription stops first; never rejects.
   */
  const untilDone = async <T>(event: StoredEvent, step: () => Promise<T>): Promise<{ value: T } | undefined> => {
    for (let attempt = 1; !stopped; attempt += 1) {
      try {
        const value = await step();
        error = undefined;
        return { value };
      } catch (err) {
        error = err;
        options.onError?.(err, event, attempt);
        await sleep(backoff(attempt));
      }
    }
    return undefined;
  };

  /** Milliseconds until a checkpoint is due (0: now), or undefined when nothing waits to be stored. */
  const checkpointDueIn = (now: number): number | undefined => {
    if (position === stored) return undefined;
    if (handledSince >= checkpointEvery || eventsSince >= SKIPPED_CHECKPOINT_EVENTS) return 0;
    const wait = (handledSince > 0 ? checkpointMs : idleCheckpointMs) - (now - pendingSinceMs);
    return Math.max(0, wait);
  };

  /**
   * Stores the checkpoint of the last handled event, retrying while the store refuses (a full disk,
   * a lock, a vanished file), so the handlers are not run again for events already handled.
   */
  const checkpoint = async (event: StoredEvent): Promise<boolean> => {
    const target = position;
    if (!(await untilDone(event, () => store.saveCheckpoint(options.name, target)))) return false;
    stored = target;
    handledSince = 0;
    eventsSince = 0;
    return true;
  };

  /** Resolved once the first page was read (or failed): an up-to-date subscription is caughtUp() when start returns. */
  let firstRead!: () => void;
  const firstReadDone = new Promise<void>((resolve) => (firstRead = resolve));

  const loop = (async () => {
    let readFailures = 0;
    let lastEvent: StoredEvent | undefined;
    let yieldedAt = Date.now();
    while (!stopped) {
      let page: StoredEvent[];
      try {
        page = await readPageShared(store, position, pageSize);
        readFailures = 0;
        if (page.length === 0) reachedEnd = true;
        firstRead();
      } catch (err) {
        error = err;
        firstRead();
        readFailures += 1;
        await sleep(Math.max(pollMs, backoff(readFailures)));
        continue;
      }
      for (const event of page) {
        const outcome = await untilDone(event, () => options.handle(event));
        if (!outcome) return;
        const now = Date.now();
        if (eventsSince === 0 || (outcome.value !== false && handledSince === 0)) pendingSinceMs = now;
        eventsSince += 1;
        if (outcome.value !== false) handledSince += 1;
        position = event.position;
        lastEvent = event;
        waiters.forEach((notify) => notify());
        if (checkpointDueIn(now) === 0 && !(await checkpoint(event))) return;
        if (now - yieldedAt >= YIELD_EVERY_MS) {
          await yieldToEventLoop();
          yieldedAt = Date.now();
        }
      }
      if (page.length < pageSize) {
        reachedEnd = true;
        const dueIn = checkpointDueIn(Date.now());
        if (dueIn === 0 && lastEvent && !(await checkpoint(lastEvent))) return;
        if (!stopped) await sleep(dueIn === undefined || dueIn === 0 ? pollMs : Math.min(pollMs, dueIn));
        yieldedAt = Date.now();
      } else if (Date.now() - yieldedAt >= YIELD_EVERY_MS) {
        await yieldToEventLoop();
        yieldedAt = Date.now();
      }
    }
  })().catch((err: unknown) => {
    // Unreachable by construction; if it ever happens, it must show as not-ready, never kill the process.
    error = err;
  });
  await Promise.race([firstReadDone, loop]);

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
      // The last batch: everything handled so far is checkpointed (one attempt; if the store refuses,
      // the next start re-delivers those events to the idempotent handlers).
      if (position !== stored) {
        try {
          await store.saveCheckpoint(options.name, position);
          stored = position;
        } catch (err) {
          error = err;
        }
      }
    },
  };
}
