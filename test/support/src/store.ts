import type { EventStore, StoredEvent } from '@backstop/event-store';

/** Every event in the store, in global order, read in bounded pages. */
export async function readAllEvents(store: Pick<EventStore, 'readAll'>): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let after = 0n;
  for (;;) {
    const page = await store.readAll({ after, maxCount: 4_096 });
    if (page.length === 0) return out;
    out.push(...page);
    after = page[page.length - 1].position;
  }
}
