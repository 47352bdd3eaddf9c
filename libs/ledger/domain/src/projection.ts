import { isReadModelStream } from '@backstop/contracts';
import { createHash } from 'node:crypto';
import { currencyOf, fromMinor } from '@backstop/kernel';
import { ACCOUNT_KINDS, AccountClass, AccountKind, AccountRef, accountName, floorGroupOf, NormalSide, partiesOf } from './accounts';
import { LedgerFacts } from './facts';
import { BooksView, legsFor, MappingProblem, StatedBalance, statedBalances } from './mapping';
import { LedgerInvariantViolation, pairLegs, Posting } from './postings';
import { isInboxStream, isLedgerEventType, LedgerSourceEvent, SourceEvent } from './source-events';

/** Which balances: all of them, one party's accounts, one contract's, or both filters at once. */
export interface Scope {
  readonly party?: string;
  readonly contract?: string;
}

export const ALL: Scope = {};

export interface BalanceLine {
  readonly account: string;
  readonly kind: AccountKind;
  readonly class: AccountClass;
  readonly normal: NormalSide;
  readonly currency: string;
  /** On the account's normal side: positive is the usual case (see ACCOUNT_KINDS). */
  readonly balanceMinor: bigint;
  /** The same as a decimal string in the currency's scale. */
  readonly balance: string;
}

interface AccountState {
  readonly ref: AccountRef;
  readonly name: string;
  /** Σ debits − Σ credits per currency (signed, minor units). */
  readonly netDebitMinor: Map<string, bigint>;
}

/**
 * Balances as a projection of the events, fed one StoredEvent at a time in global position order.
 * apply() is all-or-nothing: an event that would unbalance an entry or take a floored account below
 * zero throws LedgerInvariantViolation and leaves the projection exactly as it was.
 */
export class LedgerProjection {
  private readonly accounts = new Map<string, AccountState>();
  readonly facts = new LedgerFacts();
  private readonly partiesWithPostings = new Set<string>();
  private readonly unmapped = new Map<string, number>();
  /** Normal-side totals per floor group (an account, or a tranche's pool capital) and currency. */
  private readonly floorTotals = new Map<string, Map<string, bigint>>();
  private positionValue = 0n;
  private recordedAtValue: string | undefined;
  private eventCount = 0;
  private postingCount = 0;

  /** Global position of the last event applied (0 before any). */
  get position(): bigint {
    return this.positionValue;
  }

  /** recordedAt of the last event applied. */
  get recordedAt(): string | undefined {
    return this.recordedAtValue;
  }

  get eventsApplied(): number {
    return this.eventCount;
  }

  get postingsMade(): number {
    return this.postingCount;
  }

  /** Event types seen that no service declares (yet): counted, never silently booked. */
  get unmappedTypes(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.unmapped);
  }

  apply(event: SourceEvent): readonly Posting[] {
    if (event.position <= this.positionValue) {
      throw new LedgerInvariantViolation(event, `out of order: position ${event.position} after ${this.positionValue}`);
    }
    // A process's inbox (messages received, not yet facts), or a service's copy of another's fact (its
    // read model; the source is booked): never booked, not an unknown type either.
    if (isInboxStream(event.stream) || isReadModelStream(event.stream)) {
      this.advance(event);
      return [];
    }
    if (!isLedgerEventType(event.type)) {
      this.unmapped.set(event.type, (this.unmapped.get(event.type) ?? 0) + 1);
      this.advance(event);
      return [];
    }
    const typed = event as unknown as LedgerSourceEvent;
    const { postings, refs, stated } = this.entryFor(event, typed);
    this.commit(event, postings, refs, stated);
    this.facts.learn(typed);
    this.advance(event);
    return postings;
  }

  /**
   * Would apply() take this event, here and now? Undefined if so, else the reason it would refuse
   * it (the same checks, nothing written). The ledger service admits events in an order the books
   * accept: the four topics have no order between them, their events arrive interleaved.
   */
  check(event: SourceEvent): string | undefined {
    if (event.position <= this.positionValue) return `out of order: position ${event.position} after ${this.positionValue}`;
    if (isInboxStream(event.stream) || !isLedgerEventType(event.type)) return undefined;
    try {
      const { postings, refs, stated } = this.entryFor(event, event as unknown as LedgerSourceEvent);
      this.plan(event, postings, refs, stated);
      return undefined;
    } catch (err) {
      if (err instanceof LedgerInvariantViolation) return err.reason;
      throw err;
    }
  }

  private entryFor(event: SourceEvent, typed: LedgerSourceEvent): { postings: Posting[]; refs: Map<string, AccountRef>; stated: StatedBalance[] } {
    try {
      const legs = legsFor(typed, this.view);
      return {
        postings: pairLegs(event, legs),
        refs: new Map(legs.map((l) => [accountName(l.account), l.account])),
        stated: statedBalances(typed, this.facts),
      };
    } catch (err) {
      if (err instanceof LedgerInvariantViolation) throw err;
      if (err instanceof MappingProblem || err instanceof RangeError || err instanceof TypeError) {
        throw new LedgerInvariantViolation(event, err.message);
      }
      throw err;
    }
  }

  /**
   * Floors (per account, or per tranche for pool capital) and the balances the event states are
   * checked on the books as they would be after the whole event; only then is anything written.
   */
  private commit(event: SourceEvent, postings: readonly Posting[], refs: ReadonlyMap<string, AccountRef>, stated: readonly StatedBalance[]): void {
    const { after, groups } = this.plan(event, postings, refs, stated);
    for (const [name, perCurrency] of after) {
      const ref = refs.get(name)!;
      this.accounts.set(name, { ref, name, netDebitMinor: perCurrency });
      partiesOf(ref).forEach((p) => this.partiesWithPostings.add(p));
    }
    for (const [group, totals] of groups) this.floorTotals.set(group, totals);
    this.postingCount += postings.length;
  }

  /** The balances and floor totals after the event, checked; throws LedgerInvariantViolation, writes nothing. */
  private plan(
    event: SourceEvent,
    postings: readonly Posting[],
    refs: ReadonlyMap<string, AccountRef>,
    stated: readonly StatedBalance[],
  ): { after: Map<string, Map<string, bigint>>; groups: Map<string, Map<string, bigint>> } {
    const after = new Map<string, Map<string, bigint>>();
    const groups = new Map<string, Map<string, bigint>>();
    const touch = (name: string, currency: string, netDebit: bigint) => {
      const perCurrency = after.get(name) ?? new Map(this.accounts.get(name)?.netDebitMinor ?? []);
      perCurrency.set(currency, (perCurrency.get(currency) ?? 0n) + netDebit);
      after.set(name, perCurrency);
      const ref = refs.get(name)!;
      const group = floorGroupOf(ref, name);
      if (group === undefined) return;
      const totals = groups.get(group) ?? new Map(this.floorTotals.get(group) ?? []);
      const normal = ACCOUNT_KINDS[ref.kind].normal === 'debit' ? netDebit : -netDebit;
      totals.set(currency, (totals.get(currency) ?? 0n) + normal);
      groups.set(group, totals);
    };
    for (const p of postings) {
      touch(p.debit, p.currency, p.amountMinor);
      touch(p.credit, p.currency, -p.amountMinor);
    }
    for (const [group, totals] of groups) {
      for (const [currency, balance] of totals) {
        if (balance >= 0n) continue;
        const what = group.endsWith(':*') ? `the ${group.split(':')[1]} tranche's capital (${group})` : group;
        throw new LedgerInvariantViolation(event, `${what} would go below zero: ${fromMinor(balance, currencyOf(currency).scale)} ${currency}`);
      }
    }
    for (const s of stated) {
      const name = accountName(s.account);
      const net = (after.get(name) ?? this.accounts.get(name)?.netDebitMinor)?.get(s.currency) ?? 0n;
      const balance = ACCOUNT_KINDS[s.account.kind].normal === 'debit' ? net : -net;
      if (balance !== s.balanceMinor) {
        const scale = currencyOf(s.currency).scale;
        throw new LedgerInvariantViolation(event, `the event states ${s.field} ${fromMinor(s.balanceMinor, scale)} ${s.currency} for ${name}; the ledger has ${fromMinor(balance, scale)}`);
      }
    }
    return { after, groups };
  }

  private advance(event: SourceEvent): void {
    this.positionValue = event.position;
    this.recordedAtValue = event.recordedAt;
    this.eventCount += 1;
  }

  /** What the mapping reads: balances on the normal side, and matching accounts in name order. */
  private readonly view: BooksView = {
    facts: this.facts,
    balance: (ref, currency) => {
      const net = this.accounts.get(accountName(ref))?.netDebitMinor.get(currency) ?? 0n;
      return ACCOUNT_KINDS[ref.kind].normal === 'debit' ? net : -net;
    },
    accountsWhere: (match, currency) =>
      [...this.accounts.values()]
        .filter((a) => match(a.ref) && (a.netDebitMinor.get(currency) ?? 0n) !== 0n)
        .sort((a, b) => compare(a.name, b.name))
        .map((a) => {
          const net = a.netDebitMinor.get(currency)!;
          return { ref: a.ref, balanceMinor: ACCOUNT_KINDS[a.ref.kind].normal === 'debit' ? net : -net };
        }),
  };

  /** Non-zero balances in scope, sorted by account then currency (the canonical order). */
  balances(scope: Scope = ALL): BalanceLine[] {
    const lines: BalanceLine[] = [];
    for (const a of this.accounts.values()) {
      if (!this.inScope(a.ref, scope)) continue;
      for (const [currency, net] of a.netDebitMinor) {
        if (net === 0n) continue;
        const info = ACCOUNT_KINDS[a.ref.kind];
        const balanceMinor = info.normal === 'debit' ? net : -net;
        lines.push({ account: a.name, kind: a.ref.kind, class: info.class, normal: info.normal, currency, balanceMinor, balance: fromMinor(balanceMinor, currencyOf(currency).scale) });
      }
    }
    return lines.sort((x, y) => compare(x.account, y.account) || compare(x.currency, y.currency));
  }

  /** sha256 of the canonical balance sheet in scope (docs/ledger.md): replay-equals-live is one comparison. */
  digest(scope: Scope = ALL): string {
    return digestOf(this.balances(scope));
  }

  /** True when some account of the party has ever been posted to. */
  hasPostingsFor(party: string): boolean {
    return this.partiesWithPostings.has(party);
  }

  /** True when some account in scope has ever been posted to (even if its balance is back to zero). */
  hasAccountsIn(scope: Scope): boolean {
    for (const a of this.accounts.values()) if (this.inScope(a.ref, scope)) return true;
    return false;
  }

  hasAccount(name: string): boolean {
    return this.accounts.has(name);
  }

  inScope(ref: AccountRef, scope: Scope): boolean {
    if (scope.party !== undefined && !this.partiesOfAccount(ref).includes(scope.party)) return false;
    if (scope.contract !== undefined && this.contractOf(ref) !== scope.contract) return false;
    return true;
  }

  private partiesOfAccount(ref: AccountRef): readonly string[] {
    if (ref.kind === 'premium-collected') return this.facts.partiesOfCoverage(ref.coverage);
    if (ref.kind === 'recovery') {
      const defaulter = this.facts.defaulterOf(ref.defaultId);
      return defaulter ? [defaulter] : [];
    }
    return partiesOf(ref);
  }

  private contractOf(ref: AccountRef): string | undefined {
    if (ref.kind === 'collateral' || ref.kind === 'variation-margin') return ref.contract;
    if (ref.kind === 'premium-collected') return this.facts.coverages.get(ref.coverage)?.contractId;
    return undefined;
  }
}

/** The canonical text is one line per non-zero balance, `account|currency|balanceMinor`, joined by '\n'. */
export function canonicalBalanceSheet(lines: readonly Pick<BalanceLine, 'account' | 'currency' | 'balanceMinor'>[]): string {
  return [...lines]
    .filter((l) => l.balanceMinor !== 0n)
    .sort((x, y) => compare(x.account, y.account) || compare(x.currency, y.currency))
    .map((l) => `${l.account}|${l.currency}|${l.balanceMinor}`)
    .join('\n');
}

export function digestOf(lines: readonly Pick<BalanceLine, 'account' | 'currency' | 'balanceMinor'>[]): string {
  return createHash('sha256').update(canonicalBalanceSheet(lines)).digest('hex');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
