/**
 * The market stream `market-<underlying>`: every MarkPrice input becomes one MarkRecorded, sane or
 * flagged (SPEC §4 "Mark sanity"). Only a sane mark moves the last sane mark, and only a sane mark
 * may lead to margin calls: a flagged one is on the record and nothing more.
 *
 * A jump beyond the band is not refused forever: once `jumpConfirmations` consecutive marks agree
 * on the new level (each within the band of the previous one), the last of them is sane. A single
 * bad print (the index bug SPEC §4 recalls) never gets there.
 */
import { assertNever, Decider, DomainEvent, ms } from '@backstop/kernel';
import { checkMark, MarkFlag } from '@backstop/margin-model';
import { MarkSanityPolicy } from './policy';

export interface MarkRecordedData {
  readonly underlying: string;
  readonly price: string;
  readonly volAnnual?: string;
  readonly fundingRate?: string;
  readonly sane: boolean;
  readonly flag?: MarkFlag;
  readonly detail?: string;
  /** JUMP only: how many consecutive marks (this one included) agree on the new level. */
  readonly jumpRun?: number;
  /** When the price was observed (the feed's `at`). */
  readonly at: string;
}

export type MarketEvent = DomainEvent<'MarkRecorded', MarkRecordedData>;

export interface RecordMark {
  readonly type: 'RecordMark';
  readonly underlying: string;
  readonly price: string;
  readonly volAnnual?: string;
  readonly fundingRate?: string;
  readonly at: string;
  /** When the message carrying the mark was sent (its envelope time): the staleness reference. */
  readonly receivedAt: string;
}

export type MarketCommand = RecordMark;

export interface SaneMark {
  readonly price: string;
  readonly at: string;
  readonly atMs: number;
  readonly volAnnual?: string;
  readonly fundingRate?: string;
}

export interface MarketState {
  readonly underlying?: string;
  readonly lastSane?: SaneMark;
  /** The sane mark before lastSane: the rate in force before a funding instant the last mark crossed. */
  readonly previousSane?: SaneMark;
  /** The last implied vol any sane mark carried (a mark without one keeps it). */
  readonly lastVolAnnual?: string;
  readonly last?: MarkRecordedData;
  readonly pendingJump?: { readonly price: number; readonly run: number };
  readonly recorded: number;
}

export const EMPTY_MARKET: MarketState = { recorded: 0 };

export function marketDecider(policy: MarkSanityPolicy): Decider<MarketCommand, MarketState, MarketEvent> {
  return {
    initialState: EMPTY_MARKET,
    decide(command, state) {
      switch (command.type) {
        case 'RecordMark':
          return [{ type: 'MarkRecorded', data: recordMark(command, state, policy) }];
        default:
          return assertNever(command.type, 'market command');
      }
    },
    evolve: evolveMarket,
  };
}

export function evolveMarket(state: MarketState, event: MarketEvent): MarketState {
  switch (event.type) {
    case 'MarkRecorded': {
      const d = event.data;
      const recorded = state.recorded + 1;
      if (d.sane) {
        const lastSane: SaneMark = { price: d.price, at: d.at, atMs: ms(d.at), volAnnual: d.volAnnual, fundingRate: d.fundingRate };
        // A zero vol (the feed's "unknown") keeps the last real one.
        const lastVolAnnual = d.volAnnual !== undefined && Number(d.volAnnual) > 0 ? d.volAnnual : state.lastVolAnnual;
        return { underlying: d.underlying, lastSane, previousSane: state.lastSane, lastVolAnnual, last: d, recorded };
      }
      const pendingJump = d.flag === 'JUMP' ? { price: Number(d.price), run: d.jumpRun ?? 1 } : state.pendingJump;
      return { ...state, underlying: d.underlying, last: d, pendingJump, recorded };
    }
    default:
      return assertNever(event.type, 'market event');
  }
}

function recordMark(command: RecordMark, state: MarketState, policy: MarkSanityPolicy): MarkRecordedData {
  const base: MarkRecordedData = {
    underlying: command.underlying,
    price: command.price,
    ...(command.volAnnual !== undefined ? { volAnnual: command.volAnnual } : {}),
    ...(command.fundingRate !== undefined ? { fundingRate: command.fundingRate } : {}),
    sane: true,
    at: command.at,
  };
  const flagged = (flag: MarkFlag, detail: string, extra: Partial<MarkRecordedData> = {}): MarkRecordedData => ({ ...base, sane: false, flag, detail, ...extra });
  const price = Number(command.price);
  const atMs = ms(command.at);
  const prev = state.lastSane;
  const check = checkMark({
    prev: prev ? { price: Number(prev.price), atMs: prev.atMs } : undefined,
    next: { price, atMs },
    bandFraction: policy.bandFraction,
    maxStaleMs: policy.maxStaleMs,
    nowMs: ms(command.receivedAt),
  });
  if (!check.ok && check.flag !== 'JUMP') return flagged(check.flag, check.detail);
  // A mark no newer than the last sane one is a replayed or out-of-order print: stale too.
  if (prev && atMs <= prev.atMs) return flagged('STALE', `mark at ${command.at} is not newer than the last sane mark at ${prev.at}`);
  if (check.ok) return base;
  const pending = state.pendingJump;
  const continues = pending !== undefined && Math.abs(price / pending.price - 1) <= policy.bandFraction;
  const run = continues ? pending.run + 1 : 1;
  if (policy.jumpConfirmations > 0 && run >= policy.jumpConfirmations) {
    return { ...base, detail: `confirms a move from ${prev?.price} after ${run} consistent marks (${check.detail})` };
  }
  return flagged('JUMP', check.detail, { jumpRun: run });
}
