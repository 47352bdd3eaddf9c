import { Decider, DomainEvent } from '@backstop/kernel';
import { DuplicateEventIdError, EventStore } from '@backstop/event-store';
import { BOOK_EVENT_TYPES, ExposureBook } from '@backstop/settlement';
import { Causation, decideOnStream, Decided, keptFactOf, streamName } from '@backstop/platform';

export const poolStream = (poolId: string): string => streamName('pool', poolId);
/** Capacity assessments in their own stream, so frequent re-assessment never contends with the money stream. */
export const capacityStream = (poolId: string): string => streamName('pool', `${poolId}-capacity`);
export const defaultStream = (defaultId: string): string => streamName('default', defaultId);

const DUPLICATE_RETRIES_MAX = 3;

/**
 * decideOnStream, plus one race it leaves to the caller: two writers that decided the same step
 * (same causation, so the same event ids) but produced a different number of events. The store
 * then refuses the loser's append as a duplicate id; deciding again finds the winner's events
 * under the causation id and is "already done".
 */
export async function step<C, S, E extends DomainEvent>(store: EventStore, stream: string, decider: Decider<C, S, E>, command: C, causation: Causation): Promise<Decided<S>> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await decideOnStream(store, stream, decider, command, causation);
    } catch (err) {
      if (err instanceof DuplicateEventIdError && attempt < DUPLICATE_RETRIES_MAX) continue;
      throw err;
    }
  }
}

const BOOK_TYPES = new Set<string>(BOOK_EVENT_TYPES);
const PAGE = 4_096;

/** One stored event into the book when it is a kept upstream fact (this service's read model). */
function applyKept(book: ExposureBook, event: Parameters<typeof keptFactOf>[0]): void {
  const fact = keptFactOf(event);
  if (fact && BOOK_TYPES.has(fact.type)) book.apply({ type: fact.type, data: fact.data, stream: fact.stream, revision: fact.revision });
}

/**
 * A book of every upstream fact this service kept up to `upTo` (inclusive, a position of this
 * service's own store): the same book on every retry of a close-out.
 */
export async function readBook(store: EventStore, upTo?: bigint): Promise<ExposureBook> {
  const book = new ExposureBook();
  let after = 0n;
  for (;;) {
    const page = await store.readAll({ after, maxCount: PAGE });
    if (page.length === 0) return book;
    for (const e of page) {
      if (upTo !== undefined && e.position > upTo) return book;
      applyKept(book, e);
    }
    after = page[page.length - 1].position;
  }
}

/** The store's head position (the book position of a trigger that does not carry one). */
export async function headPosition(store: EventStore): Promise<bigint> {
  let after = 0n;
  for (;;) {
    const page = await store.readAll({ after, maxCount: PAGE });
    if (page.length === 0) return after;
    after = page[page.length - 1].position;
  }
}

/** A book kept current by reading the kept facts after the last position it saw (Cover 2, GET /v1/stress). */
export class LiveBook {
  private readonly book = new ExposureBook();
  private position = 0n;
  private refreshing: Promise<ExposureBook> = Promise.resolve(this.book);

  constructor(private readonly store: EventStore) {}

  refresh(): Promise<ExposureBook> {
    // Serialised: two refreshes never read the same page into the book at once.
    this.refreshing = this.refreshing.catch(() => this.book).then(() => this.catchUp());
    return this.refreshing;
  }

  private async catchUp(): Promise<ExposureBook> {
    for (;;) {
      const page = await this.store.readAll({ after: this.position, maxCount: PAGE });
      if (page.length === 0) return this.book;
      for (const e of page) applyKept(this.book, e);
      this.position = page[page.length - 1].position;
    }
  }
}
