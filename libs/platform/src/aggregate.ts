import { Causation, Decider, DomainEvent } from '@backstop/kernel';
import { EventStore, NewEvent, StoredEvent, WrongExpectedRevisionError } from '@backstop/event-store';
import { Accepted, causationOf, CommandContext } from './commands';
import { deterministicUuid } from './ids';

export type { Causation } from '@backstop/kernel';

export interface Decided<S> {
  readonly stream: string;
  readonly state: S;
  readonly events: readonly StoredEvent[];
  readonly lastRevision: number;
  /** True when this causation had already been applied (a retry): nothing new was written. */
  readonly alreadyApplied: boolean;
}

const CONFLICT_RETRIES_MAX = 5;

/** Folds a stream into a state with `evolve` (a decider's, or any read model's). */
export async function foldStream<S, E extends DomainEvent>(
  store: EventStore,
  stream: string,
  evolve: (state: S, event: E) => S,
  initialState: S,
): Promise<{ state: S; revision: number | 'no_stream'; events: StoredEvent[] }> {
  const events = await store.readStream(stream);
  const state = events.reduce((s, e) => evolve(s, { type: e.type, data: e.data } as unknown as E), initialState);
  return { state, revision: events.length === 0 ? 'no_stream' : events[events.length - 1].revision, events };
}

export function loadState<C, S, E extends DomainEvent>(
  store: EventStore,
  stream: string,
  decider: Decider<C, S, E>,
): Promise<{ state: S; revision: number | 'no_stream'; events: StoredEvent[] }> {
  return foldStream(store, stream, decider.evolve, decider.initialState);
}

/**
 * Read → decide → append with the expected revision; on a concurrent writer, re-read and decide
 * again (never overwrite). Event ids derive from the causation id, and a causation already in the
 * stream is "already done": a redelivered command or event changes nothing.
 */
export async function decideOnStream<C, S, E extends DomainEvent>(
  store: EventStore,
  stream: string,
  decider: Decider<C, S, E>,
  command: C,
  causation: Causation,
): Promise<Decided<S>> {
  for (let attempt = 0; ; attempt += 1) {
    const { state, revision, events } = await loadState(store, stream, decider);
    const previous = events.filter((e) => e.metadata.causationId === causation.causationId);
    if (previous.length > 0) {
      return { stream, state, events: previous, lastRevision: previous[previous.length - 1].revision, alreadyApplied: true };
    }
    const decided = decider.decide(command, state);
    if (decided.length === 0) {
      return { stream, state, events: [], lastRevision: revision === 'no_stream' ? -1 : revision, alreadyApplied: false };
    }
    const toAppend: NewEvent[] = decided.map((event, index) => ({
      id: deterministicUuid(stream, causation.causationId, index),
      type: event.type,
      data: event.data as Record<string, unknown>,
      metadata: { ...causation, schemaVersion: 1 },
    }));
    try {
      const result = await store.append(stream, toAppend, revision);
      const newState = decided.reduce(decider.evolve, state);
      const written = await store.readStream(stream, { fromRevision: result.lastRevision - toAppend.length + 1 });
      return { stream, state: newState, events: written, lastRevision: result.lastRevision, alreadyApplied: result.duplicate };
    } catch (err) {
      if (err instanceof WrongExpectedRevisionError && attempt < CONFLICT_RETRIES_MAX) continue;
      throw err;
    }
  }
}

/**
 * The usual command handler body: decide on one stream, caused by the command, and describe the
 * result as the reply's accepted part (stream, revision, ids, event types).
 */
export async function decideCommand<C, S, E extends DomainEvent>(
  store: EventStore,
  stream: string,
  decider: Decider<C, S, E>,
  command: C,
  context: CommandContext,
  ids: Record<string, string>,
): Promise<Accepted> {
  const decided = await decideOnStream(store, stream, decider, command, causationOf(context));
  return { stream: decided.stream, revision: decided.lastRevision, ids, events: decided.events.map((e) => e.type) };
}
