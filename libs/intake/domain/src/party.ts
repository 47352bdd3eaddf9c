import { assertNever, Decider, DomainEvent, reject, Violations } from '@backstop/kernel';
import type { CreditProfile, PartyRole } from '@backstop/contracts';

// The published party facts are defined in @backstop/contracts (what other services depend on).
export { PARTY_ROLES } from '@backstop/contracts';
export type { CreditProfile, PartyRole } from '@backstop/contracts';

export type PartyEvent =
  | DomainEvent<'PartyRegistered', { partyId: string; name: string; role: PartyRole; credit: CreditProfile; at: string }>
  | DomainEvent<'CreditProfileUpdated', { partyId: string; credit: CreditProfile; previous: CreditProfile; reason: string; at: string }>;

export type PartyCommand =
  | { type: 'RegisterParty'; partyId: string; name: string; role: PartyRole; credit: CreditProfile; at: string }
  | { type: 'UpdateCreditProfile'; partyId: string; credit: CreditProfile; reason: string; at: string };

export interface PartyState {
  readonly exists: boolean;
  readonly partyId?: string;
  readonly name?: string;
  readonly role?: PartyRole;
  readonly credit?: CreditProfile;
}

export const partyDecider: Decider<PartyCommand, PartyState, PartyEvent> = {
  initialState: { exists: false },

  decide(command, state) {
    switch (command.type) {
      case 'RegisterParty': {
        if (state.exists) reject('partyId', 'unique', `party ${command.partyId} is already registered`);
        checkCredit(command.credit);
        return [{ type: 'PartyRegistered', data: { partyId: command.partyId, name: command.name, role: command.role, credit: command.credit, at: command.at } }];
      }
      case 'UpdateCreditProfile': {
        if (!state.exists) reject('partyId', 'knownParty', `party ${command.partyId} is not registered`);
        checkCredit(command.credit);
        return [
          {
            type: 'CreditProfileUpdated',
            data: { partyId: command.partyId, credit: command.credit, previous: state.credit ?? {}, reason: command.reason, at: command.at },
          },
        ];
      }
      default:
        return assertNever(command, 'party command');
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'PartyRegistered':
        return { exists: true, partyId: event.data.partyId, name: event.data.name, role: event.data.role, credit: event.data.credit };
      case 'CreditProfileUpdated':
        return { ...state, credit: event.data.credit };
      default:
        return assertNever(event, 'party event');
    }
  },
};

function checkCredit(credit: CreditProfile): void {
  const v = new Violations();
  const hasRating = credit.rating !== undefined;
  const hasPd = credit.pdAnnual !== undefined;
  v.check(hasRating !== hasPd, 'credit', 'exactlyOne', 'credit must have exactly one of rating or pdAnnual');
  v.throwIfAny();
}
