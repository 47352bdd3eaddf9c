/**
 * Contract cash flows (SPEC §3 step 6), computed exactly on decimal strings (bigint), not doubles:
 * they are ledger amounts moving between the two sides.
 *
 * - Funding (perpetuals): payment = rate × size × mark at the funding instant; the long pays the
 *   short when the rate is positive, the short pays the long when negative (the perpetual swap
 *   convention, e.g. BitMEX "Perpetual Contracts Guide", funding = position value × funding rate).
 * - Settlement (expiry or a close by both sides) realises the long side's mark-to-market at the
 *   settlement price, the same quantity valuation.ts marks every tick:
 *     PERPETUAL / FUTURE: (price − entryPrice) × size
 *     OPTION at EXPIRY:   (intrinsic(price) − premium) × size   (price = the underlying's expiry mark)
 *     OPTION on CLOSE:    (closePrice − premium) × size          (closePrice = the agreed option value per unit)
 *   A positive value is paid by the short to the long, a negative one by the long to the short.
 *   Options are therefore margined futures-style: the premium is the reference value, and what
 *   changes hands through the margin account is the difference.
 *
 * Rounding: a flow is a transfer between two parties, not to or from the pool, so "the pool's favour"
 * does not apply; the amount rounds toward zero (the payer never pays a fraction it does not owe)
 * and both sides book the same integer, so the transfer always balances.
 */
import { InstrumentKind, OptionType, toMinor } from '@backstop/kernel';

/** Wire prices, sizes and rates carry at most 12 fraction digits (intake's and our DTOs' limit). */
export const DECIMAL_SCALE = 12;

function dec(text: string): bigint {
  return toMinor(text, DECIMAL_SCALE);
}

/** value at `fromScale` fraction digits → `toScale` digits, truncated toward zero. */
function rescaleTowardZero(value: bigint, fromScale: number, toScale: number): bigint {
  if (fromScale < toScale) throw new RangeError(`cannot rescale from ${fromScale} up to ${toScale} digits`);
  return value / 10n ** BigInt(fromScale - toScale);
}

export interface FlowTerms {
  readonly kind: InstrumentKind;
  readonly size: string;
  readonly entryPrice: string;
  readonly optionType?: OptionType;
  readonly strike?: string;
}

/** A signed flow: > 0 the short pays the long, < 0 the long pays the short (minor units). */
export type LongGainMinor = bigint;

export function fundingLongGainMinor(terms: FlowTerms, rate: string, mark: string, currencyScale: number): LongGainMinor {
  if (terms.kind !== 'PERPETUAL') throw new RangeError(`funding applies to perpetuals, not ${terms.kind}`);
  const owedByLong = dec(rate) * dec(terms.size) * dec(mark);
  return -rescaleTowardZero(owedByLong, 3 * DECIMAL_SCALE, currencyScale);
}

function intrinsic(optionType: OptionType, underlying: bigint, strike: bigint): bigint {
  const value = optionType === 'CALL' ? underlying - strike : strike - underlying;
  return value > 0n ? value : 0n;
}

export type SettlementReason = 'EXPIRY' | 'CLOSE';

export function settlementLongGainMinor(terms: FlowTerms, reason: SettlementReason, price: string, currencyScale: number): LongGainMinor {
  const size = dec(terms.size);
  const entry = dec(terms.entryPrice);
  let unitValue = dec(price);
  if (terms.kind === 'OPTION' && reason === 'EXPIRY') {
    if (terms.optionType === undefined || terms.strike === undefined) throw new RangeError('an option needs optionType and strike to settle');
    unitValue = intrinsic(terms.optionType, unitValue, dec(terms.strike));
  }
  return rescaleTowardZero((unitValue - entry) * size, 2 * DECIMAL_SCALE, currencyScale);
}

/** Who pays whom, and how much (≥ 0), for a signed long gain. A zero flow is booked long → short. */
export function payerAndReceiver(longGainMinor: LongGainMinor, longPartyId: string, shortPartyId: string): { payer: string; receiver: string; amountMinor: bigint } {
  if (longGainMinor > 0n) return { payer: shortPartyId, receiver: longPartyId, amountMinor: longGainMinor };
  return { payer: longPartyId, receiver: shortPartyId, amountMinor: -longGainMinor };
}

