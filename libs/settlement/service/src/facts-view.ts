import type { PartyRole } from '@backstop/contracts';
import { TOPICS } from '@backstop/messaging';
import { KeptFact, ReadModelOptions } from '@backstop/platform';
import { BOOK_EVENT_TYPES } from '@backstop/settlement';

/**
 * What default-settlement keeps of the other services' facts (its read model, SPEC section 1):
 * parties (who may deposit capital), contracts and collateral (intake), coverages (pricing), marks,
 * funding, settlements and defaults (margin-monitor). The exposure book is built from these kept
 * copies in this service's own store, never from the other services' streams.
 */
export const SETTLEMENT_FACTS: Omit<ReadModelOptions, 'service'> = {
  name: 'settlement-facts',
  topics: [TOPICS.intakeEvents, TOPICS.pricingEvents, TOPICS.marginEvents],
  types: [...BOOK_EVENT_TYPES, 'PartyRegistered', 'DefaultTriggered'],
};

export interface KnownParty {
  readonly partyId: string;
  readonly role: PartyRole;
}

export function evolveParty(state: KnownParty | undefined, fact: KeptFact): KnownParty | undefined {
  if (fact.type !== 'PartyRegistered') return state;
  const d = fact.data as { partyId: string; role: PartyRole };
  return { partyId: d.partyId, role: d.role };
}
