/** Builders shared by this library's specs (not exported from the public API). */
import { Decider, DomainEvent, DAY_MS, iso, ms } from '@backstop/kernel';
import type { PartyRole } from '@backstop/contracts';

export const T0 = '2026-01-01T00:00:00.000Z';
export const after = (days: number, from = T0): string => iso(ms(from) + days * DAY_MS);

export const asProvider = (partyId: string, role: PartyRole = 'PROVIDER') => ({ partyId, role });

/** Runs commands through a decider and returns every event (the given of a spec), failing loudly on a rejection. */
export function history<C, S, E extends DomainEvent>(decider: Decider<C, S, E>, commands: readonly C[], start: readonly E[] = []): E[] {
  const events: E[] = [...start];
  let state = start.reduce(decider.evolve, decider.initialState);
  for (const command of commands) {
    const produced = decider.decide(command, state);
    state = produced.reduce(decider.evolve, state);
    events.push(...produced);
  }
  return events;
}

export function stateOf<C, S, E extends DomainEvent>(decider: Decider<C, S, E>, events: readonly E[]): S {
  return events.reduce(decider.evolve, decider.initialState);
}
