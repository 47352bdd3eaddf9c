import { Posting } from '../postings';
import { LedgerProjection } from '../projection';
import { SourceEvent } from '../source-events';

/** Builds stored-looking events with increasing positions and instants (one minute apart). */
export class EventLog {
  readonly events: SourceEvent[] = [];
  private position = 0n;
  private readonly startMs: number;

  constructor(start = '2026-01-01T00:00:00.000Z') {
    this.startMs = Date.parse(start);
  }

  add(type: string, data: Record<string, unknown>, stream = streamFor(type, data)): SourceEvent {
    this.position += 1n;
    const event: SourceEvent = {
      id: `e${this.position}`,
      type,
      data: JSON.parse(JSON.stringify(data)) as Record<string, unknown>,
      stream,
      position: this.position,
      recordedAt: new Date(this.startMs + Number(this.position) * 60_000).toISOString(),
    };
    this.events.push(event);
    return event;
  }

  /** A page reader over the log, as the store's readAll answers (JSON round trip included). */
  reader(): (after: bigint, maxCount: number) => Promise<SourceEvent[]> {
    return async (after, maxCount) =>
      this.events
        .filter((e) => e.position > after)
        .slice(0, maxCount)
        .map((e) => ({ ...e, data: JSON.parse(JSON.stringify(e.data)) as Record<string, unknown> }));
  }
}

function streamFor(type: string, data: Record<string, unknown>): string {
  const id = (key: string) => String(data[key] ?? 'x');
  if (type.startsWith('Party') || type === 'CreditProfileUpdated') return `party-${id('partyId')}`;
  if (type.startsWith('Collateral') || type.startsWith('Contract') && type !== 'ContractClosedOut' && type !== 'ContractSettled') return `contract-${id('contractId')}`;
  if (type.startsWith('Premium') && type !== 'PremiumIncomeDistributed') return `coverage-${id('coverageId')}`;
  if (type.startsWith('Coverage') || type === 'QuoteIssued') return `coverage-${id('coverageId')}`;
  if (['FundingExchanged', 'ContractSettled', 'MarkRecorded'].includes(type) || type.startsWith('Margin') && type !== 'MarginCoveredByBackstop') return `margin-${id('contractId')}`;
  if (['CapitalDeposited', 'CapitalWithdrawn', 'WithdrawalRequested', 'PremiumIncomeDistributed', 'CapacityAssessed', 'MarginCoveredByBackstop'].includes(type)) return `pool-${id('poolId')}`;
  return `default-${id('defaultId')}`;
}

/** A log and a live projection fed as events are added. */
export class Book {
  readonly log = new EventLog();
  readonly ledger = new LedgerProjection();

  apply(type: string, data: Record<string, unknown>): readonly Posting[] {
    return this.ledger.apply(this.log.add(type, data));
  }

  /** The balance of one account (normal side, minor units; 0 when absent). */
  balance(account: string, currency = 'USDC'): bigint {
    return this.ledger.balances().find((l) => l.account === account && l.currency === currency)?.balanceMinor ?? 0n;
  }

  /** Σ debit-normal − Σ credit-normal balances per currency: 0 when the books balance. */
  trialBalance(currency = 'USDC'): bigint {
    return this.ledger
      .balances()
      .filter((l) => l.currency === currency)
      .reduce((s, l) => s + (l.normal === 'debit' ? l.balanceMinor : -l.balanceMinor), 0n);
  }
}

/** Postings as short strings: "Dr a / Cr b 1.5" (amounts at USDC scale) for readable expectations. */
export function describePostings(postings: readonly Posting[]): string[] {
  return postings.map((p) => `Dr ${p.debit} / Cr ${p.credit} ${p.amountMinor}`);
}

export const usdc = (whole: number): bigint => BigInt(Math.round(whole * 1_000_000));
