import type { ContractSpec, CreditProfile, DefaultTriggeredData } from '@backstop/contracts';
import { currencyOf, fromMinor, Side, toMinor } from '@backstop/kernel';
import { TOPICS } from '@backstop/messaging';
import { KeptFact, ReadModel, ReadModelOptions } from '@backstop/platform';
import type { ContractFacts, CreditFacts } from '@backstop/pricing';

/**
 * What premium-pricing keeps of the other services' facts (its read model, SPEC section 1):
 * parties and their credit profile and contracts' terms, status and collateral (intake), and
 * which parties went into default (margin-monitor).
 */
export const PRICING_FACTS: Omit<ReadModelOptions, 'service'> = {
  name: 'pricing-facts',
  topics: [TOPICS.intakeEvents, TOPICS.marginEvents],
  types: [
    'PartyRegistered',
    'CreditProfileUpdated',
    'ContractProposed',
    'ContractProposalDeclined',
    'ContractRegistered',
    'CollateralDeposited',
    'CollateralWithdrawn',
    'ContractClosed',
    'ContractDefaulted',
    'DefaultTriggered',
  ],
};

export interface KnownParty {
  readonly credit?: CreditProfile;
  /** When the credit profile was last set (registration or update). */
  readonly creditAt?: string;
}

export function evolveParty(state: KnownParty | undefined, fact: KeptFact): KnownParty | undefined {
  const d = fact.data as { credit?: CreditProfile; at?: string };
  switch (fact.type) {
    case 'PartyRegistered':
    case 'CreditProfileUpdated':
      return { ...(d.credit ? { credit: d.credit } : {}), ...(typeof d.at === 'string' ? { creditAt: d.at } : {}) };
    default:
      return state;
  }
}

interface KnownContract {
  readonly status: ContractFacts['status'];
  readonly spec: ContractSpec;
  readonly scale: number;
  readonly collateral: Record<Side, bigint>;
}

export function evolveContract(state: KnownContract | undefined, fact: KeptFact): KnownContract | undefined {
  const d = fact.data;
  switch (fact.type) {
    case 'ContractProposed':
    case 'ContractRegistered': {
      const { contractId: _id, at: _at, proposedBy: _by, ...spec } = d as unknown as ContractSpec & { contractId: string; at: string; proposedBy?: string };
      return { status: fact.type === 'ContractProposed' ? 'PROPOSED' : 'OPEN', spec, scale: currencyOf(spec.currency).scale, collateral: { LONG: 0n, SHORT: 0n } };
    }
    case 'ContractProposalDeclined':
      return state && { ...state, status: 'DECLINED' };
    case 'CollateralDeposited':
    case 'CollateralWithdrawn': {
      const c = d as { side: Side; balance: string };
      return state && { ...state, collateral: { ...state.collateral, [c.side]: toMinor(c.balance, state.scale) } };
    }
    case 'ContractClosed':
      return state && { ...state, status: 'CLOSED' };
    case 'ContractDefaulted': {
      const side = (d as { defaulterSide?: Side }).defaulterSide;
      return state && { ...state, status: 'DEFAULTED', collateral: side ? { ...state.collateral, [side]: 0n } : state.collateral };
    }
    default:
      return state;
  }
}

export function contractFactsOf(contractId: string, c: KnownContract): ContractFacts {
  const s = c.spec;
  return {
    contractId,
    status: c.status,
    kind: s.kind,
    underlying: s.underlying,
    size: s.size,
    entryPrice: s.entryPrice,
    ...(s.optionType ? { optionType: s.optionType } : {}),
    ...(s.strike ? { strike: s.strike } : {}),
    ...(s.expiry ? { expiry: s.expiry } : {}),
    currency: s.currency,
    longPartyId: s.longPartyId,
    shortPartyId: s.shortPartyId,
    collateral: { LONG: fromMinor(c.collateral.LONG, c.scale), SHORT: fromMinor(c.collateral.SHORT, c.scale) },
  };
}

/** A party's standing at margin-monitor as pricing needs it: when it went into default, if it did. */
export function evolveDefault(state: string | undefined, fact: KeptFact): string | undefined {
  return fact.type === 'DefaultTriggered' ? (state ?? (fact.data as unknown as DefaultTriggeredData).at) : state;
}

/** intake's credit profile of a party as pricing's CreditFacts (undefined when it has none). */
export function profileCredit(partyId: string, party: KnownParty | undefined): CreditFacts | undefined {
  return party?.credit && party.creditAt ? { partyId, ...party.credit, source: 'intake profile', at: party.creditAt } : undefined;
}

export type PricingFacts = ReadModel;
