import { Decider, DomainEvent } from '../decider';
import { DomainRejection } from '../errors';

/**
 * Decider specifications that read like the rule they check:
 *   given([events]).when(command).then([events]) / .thenRejects('field', 'rule')
 * Pure and framework-free: returns results or throws plain Errors, so any test runner can use it.
 */
export function specFor<C, S, E extends DomainEvent>(decider: Decider<C, S, E>) {
  return {
    given(events: readonly E[]) {
      const state = events.reduce(decider.evolve, decider.initialState);
      return {
        state,
        when(command: C) {
          const run = (): E[] => decider.decide(command, state);
          return {
            events: (): E[] => run(),
            rejection: (): DomainRejection => {
              try {
                const produced = run();
                throw new Error(`expected a rejection, got events ${JSON.stringify(produced, bigintJson)}`);
              } catch (err) {
                if (err instanceof DomainRejection) return err;
                throw err;
              }
            },
          };
        },
      };
    },
  };
}

function bigintJson(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `${value}n` : value;
}
