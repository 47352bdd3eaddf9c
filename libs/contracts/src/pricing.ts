/** premium-pricing's published facts (backstop.events.pricing, schema version 1) that other services rely on. Amounts and prices are decimal strings, instants ISO-8601 UTC. */
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

