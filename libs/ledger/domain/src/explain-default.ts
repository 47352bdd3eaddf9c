import { amountProblem, currencyOf, fromMinor, isSupportedCurrency, toMinor } from '@backstop/kernel';
import { accountName } from './accounts';
import { Posting } from './postings';
import { SourceEvent } from './source-events';

/**
 * The waterfall of one default, line by line, from its events and the postings they made (SPEC §5:
 * "every step is an event with the amounts, so the waterfall can be audited line by line").
 * Fed during a replay. Each line names the event behind it and the postings it made; totals are
 * the events' figures, checked against each other.
 */
export interface ReportLine {
  readonly eventId: string;
  readonly eventType: string;
  readonly position: string;
  readonly at: string;
  readonly label: string;
  readonly amount: string;
  /** The postings behind this line (none for a line that restates money booked elsewhere). */
  readonly postings: readonly { debit: string; credit: string; amount: string }[];
}

export interface LayerLine extends ReportLine {
  readonly step: number;
  readonly layer: string;
  /** Per provider (tranches) or per protected party, as the event states it. */
  readonly split: Readonly<Record<string, string>>;
}

export interface DefaultReport {
  readonly defaultId: string;
  readonly defaulter?: string;
  readonly currency?: string;
  readonly declared?: ReportLine;
  readonly marginCoverBefore: readonly ReportLine[];
  readonly closeOuts: readonly ReportLine[];
  readonly assessed: readonly ReportLine[];
  readonly layers: readonly LayerLine[];
  readonly moneyBack: readonly ReportLine[];
  readonly payouts: readonly ReportLine[];
  readonly claims: readonly ReportLine[];
  readonly recoveries: readonly ReportLine[];
  readonly settled?: ReportLine;
  readonly totals: {
    readonly lossOwed: string;
    readonly paidByDefaulter: string;
    readonly paidByPool: string;
    readonly paidOut: string;
    readonly unpaidClaims: string;
    readonly poolClaim: string;
    readonly recovered: string;
    readonly recoveryAllocated: string;
    /** The layers took exactly what was paid out (SPEC §5: a layer takes the shortfall, never more). */
    readonly layersMatchPayouts: boolean;
    /** Paid out + unpaid claims = the loss owed after close-out netting. */
    readonly lossAccountedFor: boolean;
  };
}

const DEFAULT_EVENTS = new Set([
  'DefaultDeclared',
  'ContractClosedOut',
  'LossesAssessed',
  'DefaultLossCharged',
  'LossAllocated',
  'PayoutMade',
  'ClaimRecorded',
  'DefaultSettled',
  'RecoveryReceived',
  'RecoveryAllocated',
]);

const RECOVERABLE_PREFIX = 'pool-recoverable:';

/** The defaulter's segment of a pool-recoverable account id (escaped as the account id escapes it). */
function defaulterSegment(defaulter: string): string {
  const id = accountName({ kind: 'pool-recoverable', tranche: 'junior', provider: 'x', defaulter });
  return id.slice(id.lastIndexOf(':') + 1);
}

export class DefaultExplainer {
  private defaulter: string | undefined;
  private currency: string | undefined;
  private declared: ReportLine | undefined;
  private settled: ReportLine | undefined;
  private readonly cover: { line: ReportLine; party: string }[] = [];
  private readonly closeOuts: ReportLine[] = [];
  private readonly assessed: ReportLine[] = [];
  private readonly layers: LayerLine[] = [];
  private readonly moneyBack: ReportLine[] = [];
  private readonly payouts: ReportLine[] = [];
  private readonly claims: ReportLine[] = [];
  private readonly recoveries: ReportLine[] = [];
  private readonly sums = { loss: 0n, defaulter: 0n, pool: 0n, paidOut: 0n, unpaid: 0n, recovered: 0n, recoveryAllocated: 0n };
  /**
   * Net of every posting on a pool-recoverable account, by the account's defaulter segment: the
   * pool's claim as the ledger holds it (tranche takes and margin advances not repaid, less what
   * recoveries and repayments gave back), not as one event's totals state it.
   */
  private readonly recoverableBySegment = new Map<string, bigint>();

  constructor(readonly defaultId: string) {}

  /** True once the default's DefaultDeclared was seen. */
  get found(): boolean {
    return this.declared !== undefined;
  }

  observe(event: SourceEvent, postings: readonly Posting[]): void {
    this.trackRecoverable(postings);
    const s = (key: string) => String(event.data[key] ?? '?');
    if (event.type === 'MarginCoveredByBackstop' && typeof event.data.partyId === 'string') {
      this.cover.push({ line: this.line(event, postings, `margin call ${s('callId')} covered for ${s('partyId')}`, this.minor(event.data.amount)), party: event.data.partyId });
      return;
    }
    if (!DEFAULT_EVENTS.has(event.type) || event.data.defaultId !== this.defaultId) return;
    const amountMinor = this.minor(event.data.amount);
    switch (event.type) {
      case 'DefaultDeclared':
        this.defaulter = s('partyId');
        if (typeof event.data.currency === 'string') this.currency = event.data.currency;
        this.declared = this.line(event, postings, `${this.defaulter} declared in default (${s('reason')})`, 0n);
        return;
      case 'ContractClosedOut':
        this.closeOuts.push(this.line(event, postings, `${s('contractId')} closed out at ${s('closeOutPrice')}; ${s('protectedPartyId')} is owed`, this.minor(event.data.lossOwed)));
        return;
      case 'LossesAssessed': {
        const total = postings.reduce((sum, p) => sum + p.amountMinor, 0n);
        this.assessed.push(this.line(event, postings, 'losses owed after close-out netting', total));
        this.sums.loss += total;
        return;
      }
      case 'LossAllocated': {
        const layer = s('layer');
        const split = (event.data.perProvider ?? event.data.perParty ?? {}) as Record<string, string>;
        this.layers.push({ ...this.line(event, postings, layer, amountMinor), step: Number(event.data.step ?? this.layers.length + 1), layer, split });
        if (layer.startsWith('DEFAULTER_')) this.sums.defaulter += amountMinor;
        else if (layer !== 'UNPAID_CLAIMS') this.sums.pool += amountMinor;
        return;
      }
      case 'DefaultLossCharged': {
        const advance = (event.data.advance ?? {}) as Record<string, unknown>;
        const back = postings.filter((p) => p.credit.startsWith('cash:external:')).reduce((sum, p) => sum + p.amountMinor, 0n);
        this.moneyBack.push(this.line(event, postings, `defaulter money left unused: advances repaid ${String(advance.returned ?? '0')}, surplus to the estate ${s('surplusToDefaulter')}`, back));
        return;
      }
      case 'PayoutMade':
        this.payouts.push(this.line(event, postings, `paid ${s('partyId')} (from the defaulter ${s('fromDefaulter')}, from the pool ${s('fromPool')})`, amountMinor));
        this.sums.paidOut += amountMinor;
        return;
      case 'ClaimRecorded':
        this.claims.push(this.line(event, postings, `unpaid claim of ${s('partyId')} on ${this.defaulter ?? 'the defaulter'}'s estate`, amountMinor));
        this.sums.unpaid += amountMinor;
        return;
      case 'RecoveryReceived':
        this.recoveries.push(this.line(event, postings, `recovered from the estate (surplus back to it: ${s('surplusToDefaulter')})`, amountMinor));
        this.sums.recovered += amountMinor;
        return;
      case 'RecoveryAllocated':
        this.recoveries.push(this.line(event, postings, `recovery passed back to ${s('layer')}`, amountMinor));
        this.sums.recoveryAllocated += amountMinor;
        return;
      case 'DefaultSettled': {
        const totals = (event.data.totals ?? {}) as Record<string, unknown>;
        this.settled = this.line(event, postings, `default settled (margin advances not repaid: ${String(totals.advanceUnreturned ?? '0')})`, 0n);
        return;
      }
      default:
        return;
    }
  }

  report(): DefaultReport {
    const f = (m: bigint) => this.format(m);
    const { loss, defaulter, pool, paidOut, unpaid, recovered, recoveryAllocated } = this.sums;
    const poolClaim = this.defaulter === undefined ? 0n : (this.recoverableBySegment.get(defaulterSegment(this.defaulter)) ?? 0n);
    return {
      defaultId: this.defaultId,
      ...(this.defaulter ? { defaulter: this.defaulter } : {}),
      ...(this.currency ? { currency: this.currency } : {}),
      ...(this.declared ? { declared: this.declared } : {}),
      marginCoverBefore: this.cover.filter((c) => c.party === this.defaulter).map((c) => c.line),
      closeOuts: this.closeOuts,
      assessed: this.assessed,
      layers: this.layers,
      moneyBack: this.moneyBack,
      payouts: this.payouts,
      claims: this.claims,
      recoveries: this.recoveries,
      ...(this.settled ? { settled: this.settled } : {}),
      totals: {
        lossOwed: f(loss),
        paidByDefaulter: f(defaulter),
        paidByPool: f(pool),
        paidOut: f(paidOut),
        unpaidClaims: f(unpaid),
        poolClaim: f(poolClaim),
        recovered: f(recovered),
        recoveryAllocated: f(recoveryAllocated),
        layersMatchPayouts: defaulter + pool === paidOut,
        lossAccountedFor: paidOut + unpaid === loss,
      },
    };
  }

  private trackRecoverable(postings: readonly Posting[]): void {
    for (const p of postings) {
      if (this.currency !== undefined && p.currency !== this.currency) continue;
      // pool-recoverable is credit-normal: a credit raises the claim, a debit (repaid) lowers it.
      if (p.credit.startsWith(RECOVERABLE_PREFIX)) this.addRecoverable(p.credit, p.amountMinor);
      if (p.debit.startsWith(RECOVERABLE_PREFIX)) this.addRecoverable(p.debit, -p.amountMinor);
    }
  }

  private addRecoverable(account: string, deltaMinor: bigint): void {
    const segment = account.slice(account.lastIndexOf(':') + 1);
    this.recoverableBySegment.set(segment, (this.recoverableBySegment.get(segment) ?? 0n) + deltaMinor);
  }

  /** An event's decimal amount in minor units (0 when absent or unreadable: the line still shows). */
  private minor(value: unknown): bigint {
    if (typeof value !== 'string' || !this.currency || !isSupportedCurrency(this.currency)) return 0n;
    const scale = currencyOf(this.currency).scale;
    return amountProblem(value, scale) === undefined ? toMinor(value, scale) : 0n;
  }

  private line(event: SourceEvent, postings: readonly Posting[], label: string, amountMinor: bigint): ReportLine {
    return {
      eventId: event.id,
      eventType: event.type,
      position: event.position.toString(),
      at: event.recordedAt,
      label,
      amount: this.format(amountMinor),
      postings: postings.map((p) => ({ debit: p.debit, credit: p.credit, amount: this.format(p.amountMinor, p.currency) })),
    };
  }

  private format(minor: bigint, currency = this.currency): string {
    return currency && isSupportedCurrency(currency) ? fromMinor(minor, currencyOf(currency).scale) : minor.toString();
  }
}
