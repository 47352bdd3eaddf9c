import { ContractTerms, ContractWireTerms, Side, termsFromWire } from '@backstop/kernel';

/**
 * contract-intake's published facts (backstop.events.intake, schema version 1): what other
 * services may rely on. intake's domain lib re-exports these; consumers import them from here.
 */

/** A desk buys protection, a counterparty is the one whose default is covered, a provider supplies capital. */
export type PartyRole = 'DESK' | 'COUNTERPARTY' | 'PROVIDER';
export const PARTY_ROLES: readonly PartyRole[] = ['DESK', 'COUNTERPARTY', 'PROVIDER'];

/** Either a rating (mapped to an annual PD by the pricing model) or an explicit annual PD (decimal string). */
export interface CreditProfile {
  readonly rating?: string;
  readonly pdAnnual?: string;
}

/** A contract's terms as ContractRegistered / ContractProposed carry them. */
export interface ContractSpec extends ContractWireTerms {
  readonly longInitialMargin: string;
  readonly shortInitialMargin: string;
}

/** The model's view of a contract's terms (prices as doubles, for valuation only). */
export const contractTerms: (spec: ContractSpec) => ContractTerms = termsFromWire;

export interface PartyRegisteredData {
  readonly partyId: string;
  readonly name: string;
  readonly role: PartyRole;
  readonly credit: CreditProfile;
  readonly at: string;
}
export interface CreditProfileUpdatedData {
  readonly partyId: string;
  readonly credit: CreditProfile;
  readonly previous: CreditProfile;
  readonly reason: string;
  readonly at: string;
}
export type ContractRegisteredData = ContractSpec & { readonly contractId: string; readonly at: string };
export interface CollateralChangedData {
  readonly contractId: string;
  readonly partyId: string;
  readonly side: Side;
  readonly amount: string;
  readonly currency: string;
  /** The side's collateral after the change. */
  readonly balance: string;
  readonly at: string;
}
export interface ContractClosedData {
  readonly contractId: string;
  readonly closePrice: string;
  readonly at: string;
}
export interface ContractDefaultedFactData {
  readonly contractId: string;
  readonly defaultId: string;
  readonly defaulterPartyId: string;
  readonly at: string;
}

export const INTAKE_FACT_TYPES = [
  'PartyRegistered',
  'CreditProfileUpdated',
  'ContractRegistered',
  'CollateralDeposited',
  'CollateralWithdrawn',
  'ContractClosed',
  'ContractDefaulted',
] as const;
