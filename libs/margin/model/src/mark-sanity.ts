/**
 * Mark sanity (SPEC §4): a mark that jumps beyond a band from the last sane one, a stale feed, or a
 * non-positive price is flagged. A flagged mark must not trigger margin calls on its own — the
 * caller keeps using the last sane mark and raises the flag (an index bug at a large venue once
 * caused invalid liquidations that had to be refunded).
 */
import { Side } from '@backstop/kernel';

export interface MarkObservation {
  readonly price: number;
  /** When the feed observed this price, ms since epoch. */
  readonly atMs: number;
}

/**
 * JUMP: beyond the band of the last accepted mark, not (yet) confirmed; STALE: too old when it
 * reached us, or not newer than the last accepted one; NON_POSITIVE: zero, negative or not a
 * number; OUT_OF_RANGE: above the configured absolute ceiling or below the floor; FUTURE: dated
 * ahead of the receiving clock beyond the tolerance; SOURCE: from a source not configured.
 */
export type MarkFlag = 'JUMP' | 'STALE' | 'NON_POSITIVE' | 'OUT_OF_RANGE' | 'FUTURE' | 'SOURCE';

export type MarkCheck = { readonly ok: true } | { readonly ok: false; readonly flag: MarkFlag; readonly detail: string };

export interface MarkCheckInput {
  /** The last SANE mark (not merely the last received), or undefined for the first one. */
  readonly prev: MarkObservation | undefined;
  readonly next: MarkObservation;
  /** Largest accepted |next/prev − 1|, e.g. 0.2. */
  readonly bandFraction: number;
  /** Largest accepted age of `next` at `nowMs`. */
  readonly maxStaleMs: number;
  readonly nowMs: number;
}

const OK: MarkCheck = { ok: true };

/** First problem found, in order NON_POSITIVE, STALE, JUMP. */
export function checkMark(input: MarkCheckInput): MarkCheck {
  const { prev, next, bandFraction, maxStaleMs, nowMs } = input;
  if (!(bandFraction > 0) || !(maxStaleMs >= 0)) throw new RangeError('bandFraction must be > 0 and maxStaleMs ≥ 0');
  if (!(next.price > 0) || !Number.isFinite(next.price)) {
    return { ok: false, flag: 'NON_POSITIVE', detail: `mark ${next.price} is not a finite positive price` };
  }
  const ageMs = nowMs - next.atMs;
  if (ageMs > maxStaleMs) {
    return { ok: false, flag: 'STALE', detail: `mark is ${ageMs} ms old, limit ${maxStaleMs} ms` };
  }
  if (prev === undefined) return OK;
  const move = next.price / prev.price - 1;
  if (Math.abs(move) > bandFraction) {
    return { ok: false, flag: 'JUMP', detail: `mark moved ${(move * 100).toFixed(2)}% from ${prev.price} to ${next.price}, band ±${(bandFraction * 100).toFixed(2)}%` };
  }
  return OK;
}

/**
 * Close-out price of a defaulter's position (SPEC §3.9): the last sane mark moved against the
 * defaulter by the liquidation cost — a long is sold below the mark, a short bought back above.
 * For an option, pass the option's value as `lastSaneMark`.
 */
export function closeOutPrice(lastSaneMark: number, defaulterSide: Side, liquidationCostFraction: number): number {
  if (!(lastSaneMark >= 0) || !Number.isFinite(lastSaneMark)) throw new RangeError(`lastSaneMark must be finite and ≥ 0, got ${lastSaneMark}`);
  if (!(liquidationCostFraction >= 0 && liquidationCostFraction < 1)) throw new RangeError(`liquidationCostFraction must be in [0, 1), got ${liquidationCostFraction}`);
  return defaulterSide === 'LONG' ? lastSaneMark * (1 - liquidationCostFraction) : lastSaneMark * (1 + liquidationCostFraction);
}
