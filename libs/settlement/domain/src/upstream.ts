/**
 * The other services' facts this service reads: their published types live in @backstop/contracts
 * (the only thing a consumer depends on); re-exported here for the settlement domain's own files.
 */
export type {
  CoverageBoundData,
  CoverageLimitReducedData,
  CoverageClosedData,
  PremiumChargedData,
  MarkRecordedData,
  MarginCallMissedData,
  FundingExchangedData,
  ContractSettledData,
  DefaultReason,
  DefaultTriggeredData,
} from '@backstop/contracts';

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
