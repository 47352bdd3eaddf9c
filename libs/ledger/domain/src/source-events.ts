import type { ContractEvent, PartyEvent } from '@backstop/intake';
import type {
  AccountEvent as PremiumAccountEvent,
  CapacityEvent as PricingCapacityEvent,
  CoverageEvent,
  CreditEvent,
  MarketEvent as PricingMarketEvent,
  QuoteEvent,
} from '@backstop/pricing';
import type { AccountEvent as MarginAccountEvent, MarketEvent as MarginMarketEvent } from '@backstop/margin';
import type { CapacityEvent as SettlementCapacityEvent, DefaultEvent, PoolEvent } from '@backstop/settlement';

/**
 * Every event type of the four services, imported from their domain libs (type-only: no runtime
 * dependency). The mapping switches over this union exhaustively, so a service that adds or
 * reshapes an event breaks the ledger's compile until the ledger books it or maps it to [].
 */
export type IntakeEvent = PartyEvent | ContractEvent;
export type PricingEvent = QuoteEvent | CoverageEvent | PricingCapacityEvent | PremiumAccountEvent | PricingMarketEvent | CreditEvent;
export type MarginEvent = MarginAccountEvent | MarginMarketEvent;
export type SettlementEvent = PoolEvent | DefaultEvent | SettlementCapacityEvent;

/** The discriminated union the mapping switches over (exhaustively). */
export type LedgerSourceEvent = IntakeEvent | PricingEvent | MarginEvent | SettlementEvent;
export type LedgerEventType = LedgerSourceEvent['type'];
export type EventOf<T extends LedgerEventType> = Extract<LedgerSourceEvent, { type: T }>;

export type EventEffect = 'postings' | 'none';

/**
 * Every event type and whether it moves money. A Record over the union: TypeScript refuses this
 * object until every declared type is listed, so the list the tests compare against is complete.
 * 'none' types are mapped to [] explicitly in the mapping, each with its reason.
 */
export const EVENT_EFFECTS: Readonly<Record<LedgerEventType, EventEffect>> = {
  // contract-intake
  PartyRegistered: 'none',
  CreditProfileUpdated: 'none',
  ContractProposed: 'none',
  ContractProposalDeclined: 'none',
  ContractRegistered: 'none',
  CollateralDeposited: 'postings',
  CollateralWithdrawn: 'postings',
  ContractCloseRequested: 'none',
  ContractClosed: 'none',
  ContractDefaulted: 'none',
  // premium-pricing
  QuoteIssued: 'none',
  QuoteBound: 'none',
  CoverageBound: 'none',
  PremiumCharged: 'none',
  PremiumPaymentMissed: 'none',
  CoverageLapsed: 'none',
  CoverageRepriced: 'none',
  CoverageLimitReduced: 'none',
  CoverageEnded: 'none',
  CapacityAssessmentNoted: 'none',
  CapacityReserved: 'none',
  CapacityReleased: 'none',
  PremiumAccountFunded: 'postings',
  PremiumAccountWithdrawn: 'postings',
  PremiumAccountDebited: 'postings',
  MarketObserved: 'none',
  CreditObserved: 'none',
  // margin-monitor
  PositionOpened: 'none',
  CollateralRecorded: 'none',
  BackstopCoverRecorded: 'none',
  BackstopCoverReturned: 'none',
  PositionClosedOut: 'none',
  MarkRecorded: 'none',
  MarkStale: 'none',
  MarginCallIssued: 'none',
  MarginCallCured: 'none',
  MarginCallMissed: 'none',
  FundingExchanged: 'postings',
  ContractSettled: 'postings',
  DefaultTriggered: 'none',
  // default-settlement
  CapitalDeposited: 'postings',
  WithdrawalRequested: 'none',
  CapitalWithdrawn: 'postings',
  PremiumIncomeDistributed: 'postings',
  MarginCoveredByBackstop: 'postings',
  MarginAdvanceRepaid: 'postings',
  WithdrawalsFrozen: 'none',
  DefaultLossCharged: 'postings',
  WithdrawalsUnfrozen: 'none',
  CapacityAssessed: 'none',
  DefaultDeclared: 'none',
  ContractClosedOut: 'none',
  LossesAssessed: 'postings',
  LossAllocated: 'postings',
  PayoutMade: 'postings',
  ClaimRecorded: 'postings',
  DefaultSettled: 'none',
  RecoveryReceived: 'postings',
  RecoveryAllocated: 'postings',
};

export const LEDGER_EVENT_TYPES: readonly LedgerEventType[] = Object.keys(EVENT_EFFECTS) as LedgerEventType[];
export const MONEY_EVENT_TYPES: readonly LedgerEventType[] = LEDGER_EVENT_TYPES.filter((t) => EVENT_EFFECTS[t] === 'postings');

export function isLedgerEventType(type: string): type is LedgerEventType {
  return Object.prototype.hasOwnProperty.call(EVENT_EFFECTS, type);
}

/**
 * Streams named `inbox-*` hold what a process received and has not made a fact of yet (the
 * single-process market-data inbox, the ledger service's topic inbox): the ledger passes over them.
 */
export function isInboxStream(stream: string): boolean {
  return stream.startsWith('inbox-');
}

/** A stored event as the ledger sees it (the store's StoredEvent fits this shape). */
export interface SourceEvent {
  readonly id: string;
  readonly type: string;
  readonly data: Record<string, unknown>;
  readonly stream: string;
  readonly position: bigint;
  /** When the store recorded it: the instant "as of" replays are measured against. */
  readonly recordedAt: string;
}
