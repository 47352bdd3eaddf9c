/**
 * The expiry settlement price of dated futures and options (SPEC §3.6, issue 8 defect 9): the
 * time-weighted average of the ACCEPTED price over a window around expiry — Deribit settles at a
 * 30-minute TWAP of its index, CME's crypto futures at an hour-window reference rate — so one print
 * cannot set it, and it is known when the window closes, not whenever the next mark happens to come.
 */
import { iso } from '@backstop/kernel';
import { formatPrice } from './market';

export interface AcceptedPoint {
  readonly atMs: number;
  readonly price: string;
}

export type SettlementPriceBasis = 'TWAP' | 'LAST_ACCEPTED';

export interface SettlementPrice {
  readonly price: string;
  readonly basis: SettlementPriceBasis;
  readonly detail: string;
}

/**
 * The accepted price in force over [startMs, endMs], time-weighted (each accepted mark weighs from
 * its time to the next one's, the mark in force at `startMs` from the start). `marks` are sorted by
 * time. No mark inside the window: the last accepted mark before it, and the basis says so. No
 * accepted mark at all by `endMs`: undefined (nothing to settle at yet).
 */
export function settlementPrice(marks: readonly AcceptedPoint[], startMs: number, endMs: number): SettlementPrice | undefined {
  let before: AcceptedPoint | undefined;
  const inside: AcceptedPoint[] = [];
  for (const m of marks) {
    if (m.atMs < startMs) before = m;
    else if (m.atMs <= endMs) inside.push(m);
  }
  const window = `[${iso(startMs)}, ${iso(endMs)}]`;
  if (inside.length === 0) {
    if (before === undefined) return undefined;
    return { price: before.price, basis: 'LAST_ACCEPTED', detail: `no accepted mark in the settlement window ${window}: settled at the last accepted mark, ${before.price} at ${iso(before.atMs)}` };
  }
  const segments: { price: number; fromMs: number }[] = [];
  if (before !== undefined) segments.push({ price: Number(before.price), fromMs: startMs });
  for (const m of inside) segments.push({ price: Number(m.price), fromMs: m.atMs });
  let weighted = 0;
  let total = 0;
  for (let i = 0; i < segments.length; i++) {
    const toMs = i + 1 < segments.length ? segments[i + 1].fromMs : endMs;
    const w = toMs - segments[i].fromMs;
    weighted += segments[i].price * w;
    total += w;
  }
  // A zero-length window (or every mark at its end): the plain average of the marks inside it.
  const price = total > 0 ? weighted / total : inside.reduce((s, m) => s + Number(m.price), 0) / inside.length;
  return { price: formatPrice(price), basis: 'TWAP', detail: `time-weighted average of ${inside.length} accepted mark(s) in ${window}${before ? ` and the mark in force at its start (${before.price})` : ''}` };
}
