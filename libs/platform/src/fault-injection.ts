import { EventStore } from '@backstop/event-store';

/**
 * Test-only fault injection, off unless BACKSTOP_FAULT_KILL_AFTER is set: "EventType:n" SIGKILLs
 * this process right after the n-th append that contains an event of that type was acknowledged,
 * so a crash test can stop a service exactly in the middle of a multi-step job (e.g. a default
 * settlement between two waterfall layers) and check the restart finishes it once.
 */
export function withFaultInjection(store: EventStore, spec: string | undefined, log: (message: string) => void): EventStore {
  if (!spec) return store;
  const [eventType, countText] = spec.split(':');
  const killAt = Number(countText ?? '1');
  if (!eventType || !Number.isInteger(killAt) || killAt < 1) throw new Error(`BACKSTOP_FAULT_KILL_AFTER must look like "EventType:n", got "${spec}"`);
  let seen = 0;
  const original = store.append.bind(store);
  store.append = async (stream, events, expected) => {
    const result = await original(stream, events, expected);
    if (!result.duplicate && events.some((e) => e.type === eventType)) {
      seen += 1;
      if (seen >= killAt) {
        log(`fault injection: SIGKILL after append #${seen} of ${eventType} to ${stream}`);
        process.kill(process.pid, 'SIGKILL');
      }
    }
    return result;
  };
  return store;
}
