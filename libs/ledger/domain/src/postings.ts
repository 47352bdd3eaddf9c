import { InvariantViolation } from '@backstop/kernel';
import { AccountRef, accountName } from './accounts';
import { SourceEvent } from './source-events';

/** One side of a journal entry, as the mapping states it from the event's own figures. */
export interface Leg {
  readonly account: AccountRef;
  readonly side: 'debit' | 'credit';
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly memo: string;
}

/** A balanced transfer: `amountMinor` debited to one account and credited to another. */
export interface Posting {
  readonly debit: string;
  readonly credit: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly memo: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly position: bigint;
  readonly stream: string;
  /** The store's recordedAt of the event (the instant as-of replays use). */
  readonly at: string;
}

/** The ledger refused an event: which one, and why. The projection is left as it was before it. */
export class LedgerInvariantViolation extends InvariantViolation {
  constructor(
    readonly event: { readonly id: string; readonly type: string; readonly stream: string; readonly position: bigint },
    readonly reason: string,
  ) {
    super(`${event.type} ${event.id} (stream ${event.stream}, position ${event.position}): ${reason}`);
    this.name = 'LedgerInvariantViolation';
  }

  /** "<type> <id> (stream …, position …): <reason>", without the generic prefix. */
  get detail(): string {
    return `${this.event.type} ${this.event.id} (stream ${this.event.stream}, position ${this.event.position}): ${this.reason}`;
  }
}

export function debit(account: AccountRef, amountMinor: bigint, currency: string, memo: string): Leg {
  return { account, side: 'debit', amountMinor, currency, memo };
}

export function credit(account: AccountRef, amountMinor: bigint, currency: string, memo: string): Leg {
  return { account, side: 'credit', amountMinor, currency, memo };
}

/** Σ debits = Σ credits per currency, every amount ≥ 0 (asserted where postings are made). */
export function assertBalanced(event: SourceEvent, legs: readonly Leg[]): void {
  const net = new Map<string, bigint>();
  for (const leg of legs) {
    if (leg.amountMinor < 0n) throw new LedgerInvariantViolation(event, `negative amount ${leg.amountMinor} on ${accountName(leg.account)}`);
    const signed = leg.side === 'debit' ? leg.amountMinor : -leg.amountMinor;
    net.set(leg.currency, (net.get(leg.currency) ?? 0n) + signed);
  }
  for (const [currency, difference] of net) {
    if (difference !== 0n) {
      throw new LedgerInvariantViolation(event, `unbalanced entry: debits − credits = ${difference} ${currency} minor units (the event's parts do not add up to its total)`);
    }
  }
}

/**
 * A balanced entry as debit/credit pairs: per currency, debit legs and credit legs are matched in
 * the order the mapping stated them (a 1-to-n entry becomes n postings). Zero legs are dropped.
 */
export function pairLegs(event: SourceEvent, legs: readonly Leg[]): Posting[] {
  assertBalanced(event, legs);
  const postings: Posting[] = [];
  const currencies = [...new Set(legs.map((l) => l.currency))];
  for (const currency of currencies) {
    const debits = legs.filter((l) => l.currency === currency && l.side === 'debit' && l.amountMinor > 0n).map((l) => ({ ...l }));
    const credits = legs.filter((l) => l.currency === currency && l.side === 'credit' && l.amountMinor > 0n).map((l) => ({ ...l }));
    let d = 0;
    let c = 0;
    while (d < debits.length && c < credits.length) {
      const amountMinor = debits[d].amountMinor < credits[c].amountMinor ? debits[d].amountMinor : credits[c].amountMinor;
      postings.push({
        debit: accountName(debits[d].account),
        credit: accountName(credits[c].account),
        amountMinor,
        currency,
        memo: debits[d].memo === credits[c].memo ? debits[d].memo : `${debits[d].memo} / ${credits[c].memo}`,
        eventId: event.id,
        eventType: event.type,
        position: event.position,
        stream: event.stream,
        at: event.recordedAt,
      });
      debits[d] = { ...debits[d], amountMinor: debits[d].amountMinor - amountMinor };
      credits[c] = { ...credits[c], amountMinor: credits[c].amountMinor - amountMinor };
      if (debits[d].amountMinor === 0n) d += 1;
      if (credits[c].amountMinor === 0n) c += 1;
    }
  }
  return postings;
}
