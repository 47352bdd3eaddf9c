import { ContractTerms, ContractWireTerms, Side, termsFromWire } from '@backstop/kernel';

/**
 * What pricing needs to know of the world when it decides, looked up by the service and carried
 * in the command (so the decider stays pure and a replay decides the same). Wire shapes: decimal
 * strings and ISO instants, exactly as the owning services publish them.
 */

/** A contract as contract-intake records it (the stream `contract-<id>`). */
export interface ContractFacts extends ContractWireTerms {
  readonly contractId: string;
  readonly status: 'PROPOSED' | 'DECLINED' | 'OPEN' | 'CLOSED' | 'DEFAULTED';
  /** Collateral each side has posted, in the contract's currency. */
  readonly collateral: Readonly<Record<Side, string>>;
}

/** The latest mark (and the latest vol) pricing has seen for an underlying. */
export interface MarketFacts {
  readonly underlying: string;
  readonly price: string;
  readonly priceAt: string;
  readonly volAnnual?: string;
  readonly volAt?: string;
}

/** A party's credit as the latest of intake's profile and the credit feed says. */
export interface CreditFacts {
  readonly partyId: string;
  readonly rating?: string;
  readonly pdAnnual?: string;
  /** Where it came from, e.g. "intake profile" or the feed's `source`. */
  readonly source: string;
  readonly at: string;
}

export function sideOf(contract: ContractFacts, partyId: string): Side | undefined {
  if (contract.longPartyId === partyId) return 'LONG';
  if (contract.shortPartyId === partyId) return 'SHORT';
  return undefined;
}

export function counterpartyOf(contract: ContractFacts, protectedSide: Side): string {
  return protectedSide === 'LONG' ? contract.shortPartyId : contract.longPartyId;
}

/** The model's view of the contract (doubles). */
export const termsOf: (contract: ContractFacts) => ContractTerms = termsFromWire;
