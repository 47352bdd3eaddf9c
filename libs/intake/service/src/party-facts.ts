import { EventStore } from '@backstop/event-store';
import { PartyFacts, partyDecider } from '@backstop/intake';
import { loadState, streamName } from '@backstop/platform';

/** A registered party's id and role, read from its `party-*` stream; undefined if not registered. */
export async function readPartyFacts(store: EventStore, partyId: string): Promise<PartyFacts | undefined> {
  const { state } = await loadState(store, streamName('party', partyId), partyDecider);
  return state.exists && state.role ? { partyId, role: state.role } : undefined;
}
