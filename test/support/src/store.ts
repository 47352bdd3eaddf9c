import type { EventStore, StoredEvent } from '@backstop/event-store';
import { waitUntil } from './wait';

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

/** Waits until the store's head has not moved for `quietMs` (an app has finished reacting). */
export async function waitForStoreQuiet(store: Pick<EventStore, 'readAll'>, quietMs = 400, timeoutMs = 30_000): Promise<void> {
  let last = -1n;
  let since = Date.now();
  await waitUntil(async () => {
    const head = (await readAllEvents(store)).at(-1)?.position ?? 0n;
    if (head !== last) {
      last = head;
      since = Date.now();
      return undefined;
    }
    return Date.now() - since > quietMs || undefined;
  }, timeoutMs, 'the app to go quiet');
}
