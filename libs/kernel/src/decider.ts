/**
 * The decider shape (Emmett, EventSourcing.NodeJS): pure decide/evolve over an initial state.
 * Time and ids arrive in the command, never from the wall clock.
 */
export interface DomainEvent<TType extends string = string, TData = unknown> {
  readonly type: TType;
  readonly data: TData;
}

/** What caused an append: recorded in every event's metadata (audit, tracing, idempotency). */
export interface Causation {
  /** Command id or source event id: event ids derive from it, so a retry appends nothing new. */
  readonly causationId: string;
  readonly correlationId: string;
  readonly occurredAt: string;
  readonly traceparent?: string;
  /** The HTTP caller of a command (audit); absent for Kafka commands and for reactions to events. */
  readonly actor?: string;
}

export interface Decider<TCommand, TState, TEvent extends DomainEvent> {
  readonly initialState: TState;
  decide(command: TCommand, state: TState): TEvent[];
  evolve(state: TState, event: TEvent): TState;
}

export function fold<TState, TEvent>(
  evolve: (state: TState, event: TEvent) => TState,
  initialState: TState,
  events: readonly TEvent[],
): TState {
  return events.reduce(evolve, initialState);
}

/** Compile-time exhaustiveness: a new variant that is not handled fails to compile. */
export function assertNever(value: never, what = 'value'): never {
  throw new Error(`unhandled ${what}: ${JSON.stringify(value)}`);
}
