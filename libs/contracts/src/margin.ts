/** margin-monitor's published facts (backstop.events.margin, schema version 1) that other services rely on. Amounts and prices are decimal strings, instants ISO-8601 UTC. */
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


export interface MarginCallIssuedData {
  readonly callId: string;
  readonly partyId: string;
  readonly amount: string;
  readonly currency: string;
  readonly deadline: string;
  readonly secondDeadline: string;
  readonly at: string;
}
export interface MarginCallCuredData {
  readonly callId: string;
  readonly partyId: string;
  readonly currency: string;
  readonly at: string;
}

/** margin-monitor's default vol (annual) for an underlying it has no real vol for; a consumer valuing an option at margin's mark falls back to it too. */
export const MARGIN_FALLBACK_VOL_ANNUAL = 0.8;
