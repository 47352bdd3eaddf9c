/**
 * The market stream `market-<underlying>`: every MarkPrice input becomes one MarkRecorded, accepted
 * (`sane: true`) or flagged, and a feed gone quiet raises one MarkStale alarm. The accepted marks are
 * THE price view of the platform: margin values on them, and pricing and default-settlement take
 * them from backstop.events.margin (MarkRecorded with `sane: true`) instead of the raw feed, so the
 * three services never disagree about the price (SPEC §4 "Mark sanity").
 *
 * A mark is judged by evidence, not by the size of its move (a coin can fall 99% in a week):
 * - bounds first: a price that is not a finite positive number, outside [priceMin, priceMax], dated
 *   ahead of the receiving clock beyond the tolerance, or older than maxStaleMs when it reached us,
 *   is flagged and never becomes the view (a 10^30 print or a mark dated 10 years ahead cannot
 *   poison it). Time is judged by `receivedAt`, the receiving clock, never by the sender's `at` alone.
 * - within the band of the last accepted mark: accepted (IN_BAND).
 * - beyond it: a candidate level. It is accepted once it PERSISTS: `jumpConfirmations` consecutive
 *   candidate marks, or at least two spanning `persistMs`, that are consistent — all on the same
 *   side of the last accepted mark and none turning back by more than the band from the candidate
 *   before it. "Near" is relative to the previous candidate, not to the accepted level, so a market
 *   that keeps falling 15%+ per mark is followed one mark behind, however far it goes; a spike that
 *   reverts is followed by an in-band mark, which clears the candidate (one bad tick changes nothing).
 *   This is the exchanges' "confirm before you liquidate" practice (e.g. index-price circuit
 *   breakers that hold a move until the next print confirms it), without a cap on how far it goes.
 * - with more than one configured source: the median of the sources' fresh marks is the view, and a
 *   majority of sources agreeing (within the band of that median) is evidence enough at once, how
 *   far soever the level moved (the multi-venue median index of CME CF / Deribit / Binance).
 *
 * Until the next accepted mark, margin adds the lowest and the highest candidate level to the
 * scenario grid: a flagged mark may raise a requirement (the safe side) but never lowers one, and
 * equity stays on the accepted mark, so a bad tick alone can default nobody (see MarginMonitor).
 */
import { assertNever, Decider, DomainEvent, ms } from '@backstop/kernel';
import { APC_LOOKBACK_DAYS_DEFAULT, MarkFlag, volatilityPath } from '@backstop/margin-model';
import { MarkSanityPolicy } from './policy';

/** Why an accepted mark was accepted. */
export type MarkBasis = 'FIRST' | 'IN_BAND' | 'PERSISTED' | 'SOURCES_AGREE';

export interface MarkRecordedData {
  readonly underlying: string;
  /** The accepted price when sane (the sources' median where several are configured); else the input. */
  readonly price: string;
  /** The input's own price, when it differs from `price` (a median was taken). */
  readonly observedPrice?: string;
  readonly volAnnual?: string;
  readonly fundingRate?: string;
  readonly sane: boolean;
  readonly flag?: MarkFlag;
  readonly detail?: string;
  /** Accepted marks: the evidence that accepted it. */
  readonly basis?: MarkBasis;
  /** JUMP only: how many consecutive consistent candidate marks (this one included). */
  readonly jumpRun?: number;
  /** The feed that sent it, where several are configured. */
  readonly source?: string;
  /** When the price was observed (the feed's `at`). */
  readonly at: string;
  /** When it reached margin-monitor, by the receiving (injected) clock. Absent on events before it was recorded. */
  readonly receivedAt?: string;
}

/** The alarm: the last accepted mark of an underlying is older than the limit, by the receiving clock. */
export interface MarkStaleData {
  readonly underlying: string;
  readonly lastAcceptedPrice: string;
  readonly lastAcceptedAt: string;
  readonly lastReceivedAt: string;
  readonly ageMs: number;
  readonly limitMs: number;
  readonly at: string;
}

export type MarketEvent = DomainEvent<'MarkRecorded', MarkRecordedData> | DomainEvent<'MarkStale', MarkStaleData>;

export interface RecordMark {
  readonly type: 'RecordMark';
  readonly underlying: string;
  readonly price: string;
  readonly volAnnual?: string;
  readonly fundingRate?: string;
  readonly source?: string;
  readonly at: string;
  /** When the message reached us, by the receiving clock (not the sender's envelope time). */
  readonly receivedAt: string;
}

/** The receiving clock's tick: is the last accepted mark stale? */
export interface CheckStale {
  readonly type: 'CheckStale';
  readonly underlying: string;
  readonly now: string;
}

export type MarketCommand = RecordMark | CheckStale;

export interface SaneMark {
  readonly price: string;
  readonly at: string;
  readonly atMs: number;
  /** By the receiving clock; = atMs for events recorded before receivedAt existed. */
  readonly receivedAtMs: number;
  readonly volAnnual?: string;
  readonly fundingRate?: string;
}

export interface Candidate {
  readonly price: number;
  readonly atMs: number;
}

/** A run of consistent candidate marks beyond the band: the first, the last and how many. */
export interface PendingLevel {
  readonly first: Candidate;
  readonly last: Candidate;
  readonly run: number;
}

export interface MarketState {
  readonly underlying?: string;
  readonly lastSane?: SaneMark;
  /** The sane mark before lastSane: the rate in force before a funding instant the last mark crossed. */
  readonly previousSane?: SaneMark;
  /** The last real implied vol any accepted mark carried (zero or absent = unknown: keeps it). */
  readonly lastVolAnnual?: string;
  readonly last?: MarkRecordedData;
  readonly pending?: PendingLevel;
  /** The lowest and highest candidate (JUMP) levels since the last accepted mark: margin stresses both. */
  readonly flaggedRange?: { readonly low: number; readonly high: number };
  /** Latest plausible mark of each source (multi-source medians). */
  readonly sources: Readonly<Record<string, Candidate>>;
  /** lastSane.at the open stale alarm was raised for (cleared by the next accepted mark). */
  readonly staleAlarmFor?: string;
  readonly recorded: number;
  /**
   * The last accepted price of each completed UTC day, oldest first, at most the APC look-back
   * (10 years) of days: bounded memory, one number a day whatever the feed's rate. Replaced once a
   * day (at the first mark of a new day), never per mark.
   */
  readonly dailyCloses?: readonly DailyClose[];
  /** The running day's close so far (the last accepted mark today): a mark replaces only this. */
  readonly todayClose?: DailyClose;
  /**
   * Equally weighted vol of the completed days' closes over the look-back (the backtest's
   * volatilityPath, the same function): the anti-procyclicality floor the live requirement uses
   * (EMIR art. 28(1)(c)), so it never falls below what the backtest assumes. Recomputed once a day.
   */
  readonly lookbackVolAnnual?: number;
}

export interface DailyClose {
  readonly dayMs: number;
  readonly price: number;
}

const DAY_MS = 86_400_000;

/** Every day's close, the running day's last: the completed days and today's close so far. */
export function dailyClosesOf(state: MarketState): DailyClose[] {
  const closes = [...(state.dailyCloses ?? [])];
  if (state.todayClose !== undefined) closes.push(state.todayClose);
  return closes;
}

/**
 * Adds an accepted mark to the daily closes: the same day's mark replaces today's close (O(1), no
 * copy of the history); the first mark of a new day completes the previous day and recomputes the
 * look-back vol of the completed days (once a day).
 */
export function withDailyClose(state: MarketState, price: number, atMs: number): Pick<MarketState, 'dailyCloses' | 'todayClose' | 'lookbackVolAnnual'> {
  const unchanged = { dailyCloses: state.dailyCloses, todayClose: state.todayClose, lookbackVolAnnual: state.lookbackVolAnnual };
  if (!(price > 0) || !Number.isFinite(price) || !Number.isFinite(atMs)) return unchanged;
  const dayMs = Math.floor(atMs / DAY_MS) * DAY_MS;
  const today = state.todayClose;
  if (today !== undefined && today.dayMs === dayMs) return { ...unchanged, todayClose: { dayMs, price } };
  // A mark older than the last day's (out of order) does not rewrite history.
  if (today !== undefined && dayMs < today.dayMs) return unchanged;
  const history = today === undefined ? (state.dailyCloses ?? []) : [...(state.dailyCloses ?? []), today];
  const completed = history.filter((c) => c.dayMs > dayMs - (APC_LOOKBACK_DAYS_DEFAULT + 1) * DAY_MS);
  return { dailyCloses: completed, todayClose: { dayMs, price }, lookbackVolAnnual: lookbackVolOf(completed) };
}

/** Look-back vol of completed daily closes (volatilityPath's lookbackVolAnnual at the last one); undefined under 3 closes. */
export function lookbackVolOf(closes: readonly DailyClose[]): number | undefined {
  if (closes.length < 3) return undefined;
  const path = volatilityPath(closes.map((c) => ({ atMs: c.dayMs, price: c.price })), { seedObservations: 2, lookbackDays: APC_LOOKBACK_DAYS_DEFAULT });
  const v = path[path.length - 1]?.lookbackVolAnnual;
  return v !== undefined && Number.isFinite(v) ? v : undefined;
}

export const EMPTY_MARKET: MarketState = { sources: {}, recorded: 0 };

export function marketDecider(policy: MarkSanityPolicy): Decider<MarketCommand, MarketState, MarketEvent> {
  return {
    initialState: EMPTY_MARKET,
    decide(command, state) {
      switch (command.type) {
        case 'RecordMark':
          return [{ type: 'MarkRecorded', data: recordMark(command, state, policy) }];
        case 'CheckStale':
          return checkStale(command, state, policy);
        default:
          return assertNever(command, 'market command');
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
      const atMs = ms(d.at);
      const plausible = d.sane || d.flag === 'JUMP';
      const sources = plausible && d.source !== undefined ? { ...state.sources, [d.source]: { price: Number(d.observedPrice ?? d.price), atMs } } : state.sources;
      if (d.sane) {
        const lastSane: SaneMark = { price: d.price, at: d.at, atMs, receivedAtMs: d.receivedAt !== undefined ? ms(d.receivedAt) : atMs, volAnnual: d.volAnnual, fundingRate: d.fundingRate };
        // A zero vol is the feed's "unknown" (SPEC §4, one meaning everywhere): keep the last real one.
        const lastVolAnnual = isRealVol(d.volAnnual) ? d.volAnnual : state.lastVolAnnual;
        return { underlying: d.underlying, lastSane, previousSane: state.lastSane, lastVolAnnual, last: d, sources, recorded, ...withDailyClose(state, Number(d.price), atMs) };
      }
      if (d.flag === 'JUMP') {
        const candidate: Candidate = { price: Number(d.observedPrice ?? d.price), atMs };
        const run = d.jumpRun ?? 1;
        const pending: PendingLevel = run > 1 && state.pending ? { first: state.pending.first, last: candidate, run } : { first: candidate, last: candidate, run: 1 };
        const range = state.flaggedRange;
        const flaggedRange = range ? { low: Math.min(range.low, candidate.price), high: Math.max(range.high, candidate.price) } : { low: candidate.price, high: candidate.price };
        return { ...state, underlying: d.underlying, last: d, pending, flaggedRange, sources, recorded };
      }
      return { ...state, underlying: d.underlying, last: d, recorded };
    }
    case 'MarkStale':
      return { ...state, staleAlarmFor: event.data.lastAcceptedAt };
    default:
      return assertNever(event, 'market event');
  }
}

/** A vol that means something: a finite number above zero ("0" or absent = unknown). */
export function isRealVol(vol: string | undefined): vol is string {
  const v = Number(vol);
  return vol !== undefined && Number.isFinite(v) && v > 0;
}

function recordMark(command: RecordMark, state: MarketState, policy: MarkSanityPolicy): MarkRecordedData {
  const base: MarkRecordedData = {
    underlying: command.underlying,
    price: command.price,
    ...(command.volAnnual !== undefined ? { volAnnual: command.volAnnual } : {}),
    ...(command.fundingRate !== undefined ? { fundingRate: command.fundingRate } : {}),
    ...(command.source !== undefined ? { source: command.source } : {}),
    sane: true,
    at: command.at,
    receivedAt: command.receivedAt,
  };
  const flagged = (flag: MarkFlag, detail: string, extra: Partial<MarkRecordedData> = {}): MarkRecordedData => ({ ...base, sane: false, flag, detail, ...extra });
  const bad = boundsProblem(command, state, policy);
  if (bad) return flagged(bad.flag, bad.detail);

  const price = Number(command.price);
  const atMs = ms(command.at);
  const prev = state.lastSane;
  const multi = policy.sources.length > 1;
  let level = price;
  if (multi) {
    const consensus = sourcesConsensus(state, command.source as string, { price, atMs }, policy);
    if (consensus.agreed !== undefined) {
      const median = formatPrice(consensus.agreed);
      const observed = median !== command.price ? { observedPrice: command.price } : {};
      return { ...base, price: median, ...observed, basis: 'SOURCES_AGREE', detail: consensus.detail };
    }
    level = consensus.median ?? price;
  }
  if (prev === undefined) return { ...base, basis: 'FIRST' };
  const prevPrice = Number(prev.price);
  const move = level / prevPrice - 1;
  if (Math.abs(move) <= policy.bandFraction) {
    if (level === price) return { ...base, basis: 'IN_BAND' };
    return { ...base, price: formatPrice(level), observedPrice: command.price, basis: 'IN_BAND', detail: 'median of the sources' };
  }
  const movedBy = `moved ${(move * 100).toFixed(2)}% from ${prev.price} to ${command.price}, band ±${(policy.bandFraction * 100).toFixed(2)}%`;
  const run = runLength(state.pending, prevPrice, price, policy.bandFraction);
  const firstAtMs = run > 1 && state.pending ? state.pending.first.atMs : atMs;
  const byCount = policy.jumpConfirmations > 0 && run >= policy.jumpConfirmations;
  const byTime = policy.persistMs > 0 && run >= 2 && atMs - firstAtMs >= policy.persistMs;
  if (byCount || byTime) {
    const why = byCount ? `${run} consistent marks` : `${run} consistent marks over ${atMs - firstAtMs} ms`;
    return { ...base, basis: 'PERSISTED', detail: `new level persisted (${why}): ${movedBy}` };
  }
  return flagged('JUMP', `${movedBy}; candidate ${run} of ${policy.jumpConfirmations || '∞'} (or ${policy.persistMs} ms)`, { jumpRun: run });
}

/** Price bounds, the receiving clock, the source: the checks that keep implausible input out of the view. */
function boundsProblem(command: RecordMark, state: MarketState, policy: MarkSanityPolicy): { flag: MarkFlag; detail: string } | undefined {
  const price = Number(command.price);
  if (!(price > 0) || !Number.isFinite(price)) return { flag: 'NON_POSITIVE', detail: `price ${command.price} is not a finite positive number` };
  if (price < policy.priceMin || price > policy.priceMax) return { flag: 'OUT_OF_RANGE', detail: `price ${command.price} is outside the sane range [${policy.priceMin}, ${policy.priceMax}]` };
  const atMs = ms(command.at);
  const receivedMs = ms(command.receivedAt);
  if (!Number.isFinite(atMs) || !Number.isFinite(receivedMs)) return { flag: 'STALE', detail: `at ${command.at} / receivedAt ${command.receivedAt} is not an instant` };
  if (atMs - receivedMs > policy.futureToleranceMs) {
    return { flag: 'FUTURE', detail: `mark dated ${command.at} is ${atMs - receivedMs} ms ahead of the receiving clock (${command.receivedAt}), tolerance ${policy.futureToleranceMs} ms` };
  }
  if (receivedMs - atMs > policy.maxStaleMs) return { flag: 'STALE', detail: `mark is ${receivedMs - atMs} ms old when received, limit ${policy.maxStaleMs} ms` };
  const prev = state.lastSane;
  // A mark no newer than the last accepted one is a replayed or out-of-order print.
  if (prev && atMs <= prev.atMs) return { flag: 'STALE', detail: `mark at ${command.at} is not newer than the last accepted mark at ${prev.at}` };
  if (policy.sources.length > 1 && (command.source === undefined || !policy.sources.includes(command.source))) {
    return { flag: 'SOURCE', detail: `source ${command.source ?? '(none)'} is not one of the configured sources ${policy.sources.join(', ')}` };
  }
  return undefined;
}

/**
 * Consecutive consistent candidates, this one included: on the same side of the accepted price as
 * the pending run, and not turned back by more than the band from the previous candidate.
 */
export function runLength(pending: PendingLevel | undefined, acceptedPrice: number, price: number, band: number): number {
  if (pending === undefined) return 1;
  const last = pending.last.price;
  const falling = price < acceptedPrice;
  if (falling !== last < acceptedPrice) return 1;
  const consistent = falling ? price <= last * (1 + band) : price >= last * (1 - band);
  return consistent ? pending.run + 1 : 1;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The fresh sources' median, and whether a majority of all configured sources agree on it. */
function sourcesConsensus(state: MarketState, source: string, mark: Candidate, policy: MarkSanityPolicy): { agreed?: number; median?: number; detail?: string } {
  const latest: Record<string, Candidate> = { ...state.sources, [source]: mark };
  const fresh = policy.sources.filter((s) => latest[s] !== undefined && mark.atMs - latest[s].atMs <= policy.sourceWindowMs && latest[s].atMs <= mark.atMs).map((s) => latest[s].price);
  const quorum = Math.floor(policy.sources.length / 2) + 1;
  if (fresh.length < quorum) return {};
  const m = median(fresh);
  const agreeing = fresh.filter((p) => Math.abs(p / m - 1) <= policy.bandFraction);
  if (agreeing.length < quorum) return { median: m };
  return { agreed: median(agreeing), detail: `${agreeing.length} of ${policy.sources.length} sources agree within ±${(policy.bandFraction * 100).toFixed(2)}%` };
}

/** A double as a decimal string with at most 12 fraction digits (MarkPrice's rule), never an exponent. */
export function formatPrice(value: number): string {
  const fixed = value.toFixed(12);
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

function checkStale(command: CheckStale, state: MarketState, policy: MarkSanityPolicy): MarketEvent[] {
  const last = state.lastSane;
  if (last === undefined || policy.alarmStaleMs <= 0 || state.staleAlarmFor === last.at) return [];
  const ageMs = ms(command.now) - last.receivedAtMs;
  if (!(ageMs > policy.alarmStaleMs)) return [];
  return [
    {
      type: 'MarkStale',
      data: {
        underlying: command.underlying,
        lastAcceptedPrice: last.price,
        lastAcceptedAt: last.at,
        lastReceivedAt: new Date(last.receivedAtMs).toISOString(),
        ageMs,
        limitMs: policy.alarmStaleMs,
        at: command.now,
      },
    },
  ];
}
