/**
 * The other services' facts this service reads, as docs/events.md states them. Their own domain
 * libraries will own these types; until then the contract document is the source, mirrored here.
 * Amounts and prices are decimal strings, instants ISO-8601 UTC.
 */

// premium-pricing (coverage-*)
export interface CoverageBoundData {
  readonly coverageId: string;
  readonly quoteId?: string;
  readonly contractId: string;
  readonly protectedPartyId: string;
  readonly counterpartyId: string;
  readonly currency: string;
  readonly coverageLimit: string;
  readonly start: string;
  readonly end: string;
  readonly at: string;
}
/**
 * The cut limit (`newLimit`) is what the exposure book uses: it caps the pool's loss on the coverage
 * in the Cover-2 stress from the cut on. The stress contributions are pricing's own estimate of
 * that loss (its capital charge and bind check); the stress revalues the contract itself instead.
 */
export interface CoverageLimitReducedData {
  readonly coverageId: string;
  readonly oldLimit: string;
  readonly newLimit: string;
  readonly oldStressContribution?: string;
  readonly newStressContribution?: string;
  readonly reason: string;
  readonly effectiveFrom?: string;
  readonly at: string;
}
export interface CoverageClosedData {
  readonly coverageId: string;
  readonly reason: string;
  readonly at: string;
}
export interface PremiumChargedData {
  readonly coverageId: string;
  readonly payerPartyId: string;
  readonly amount: string;
  readonly currency: string;
  readonly periodStart?: string;
  readonly periodEnd?: string;
  readonly at: string;
}

// margin-monitor (margin-*, market-*)
export interface MarkRecordedData {
  readonly underlying: string;
  readonly price: string;
  readonly volAnnual?: string;
  readonly sane: boolean;
  readonly at: string;
}
export interface MarginCallMissedData {
  readonly callId: string;
  readonly partyId: string;
  readonly amount: string;
  readonly currency: string;
  readonly at: string;
}
export interface FundingExchangedData {
  readonly contractId: string;
  readonly payerPartyId: string;
  readonly receiverPartyId: string;
  readonly amount: string;
  readonly currency: string;
  readonly at: string;
}
export interface ContractSettledData {
  readonly contractId: string;
  readonly reason: string;
  readonly at: string;
}
export type DefaultReason = 'SECOND_DEADLINE' | 'NEGATIVE_EQUITY' | 'OPERATOR';
export interface DefaultTriggeredData {
  readonly partyId: string;
  readonly reason: DefaultReason | string;
  readonly detail?: string;
  /** underlying → last sane mark (decimal string). */
  readonly lastSaneMarks?: Readonly<Record<string, string>>;
  /** OPERATOR: the close-out price per underlying the operator gave, and who declared it. */
  readonly closeOutPrices?: Readonly<Record<string, string>>;
  readonly declaredBy?: string;
  readonly at: string;
}

/** The upstream event types each part of this service listens to. */
export const BOOK_EVENT_TYPES = [
  'ContractRegistered',
  'CollateralDeposited',
  'CollateralWithdrawn',
  'ContractClosed',
  'CoverageBound',
  'CoverageLimitReduced',
  'CoverageEnded',
  'CoverageLapsed',
  'MarkRecorded',
  'FundingExchanged',
  'ContractSettled',
] as const;
