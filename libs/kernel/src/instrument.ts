/**
 * What a derivative contract is, as the models see it. Prices here are doubles (pricing math);
 * amounts that reach the ledger are converted with floatToMinor at one documented place.
 *
 * Sides: the LONG side is the buyer (pays funding when the rate is positive, owns the option);
 * the SHORT side is the seller / option writer.
 */
export type InstrumentKind = 'PERPETUAL' | 'FUTURE' | 'OPTION';
export type OptionType = 'CALL' | 'PUT';
export type Side = 'LONG' | 'SHORT';

export interface ContractTerms {
  readonly kind: InstrumentKind;
  /** e.g. "BTC-USD" */
  readonly underlying: string;
  /** Units of the underlying, > 0. */
  readonly size: number;
  /** Entry price (PERPETUAL, FUTURE) or option premium per unit paid by the long (OPTION). */
  readonly entryPrice: number;
  /** FUTURE and OPTION only: ms since epoch. */
  readonly expiryMs?: number;
  /** OPTION only. */
  readonly optionType?: OptionType;
  /** OPTION only, > 0. */
  readonly strike?: number;
}

export function otherSide(side: Side): Side {
  return side === 'LONG' ? 'SHORT' : 'LONG';
}

/**
 * A contract's terms as they travel on the wire and in events (decimal strings, ISO instants):
 * what intake records, and what pricing, margin and settlement carry when they decide on it.
 */
export interface ContractWireTerms {
  readonly kind: InstrumentKind;
  readonly underlying: string;
  readonly size: string;
  /** Entry price (PERPETUAL, FUTURE) or option premium per unit (OPTION). */
  readonly entryPrice: string;
  readonly optionType?: OptionType;
  readonly strike?: string;
  /** FUTURE and OPTION: ISO-8601 UTC. */
  readonly expiry?: string;
  readonly currency: string;
  readonly longPartyId: string;
  readonly shortPartyId: string;
}

/** The models' view of wire terms (prices as doubles, for valuation only; money uses the strings). */
export function termsFromWire(wire: Omit<ContractWireTerms, 'currency' | 'longPartyId' | 'shortPartyId'>): ContractTerms {
  return {
    kind: wire.kind,
    underlying: wire.underlying,
    size: Number(wire.size),
    entryPrice: Number(wire.entryPrice),
    ...(wire.expiry !== undefined ? { expiryMs: Date.parse(wire.expiry) } : {}),
    ...(wire.optionType !== undefined ? { optionType: wire.optionType } : {}),
    ...(wire.strike !== undefined ? { strike: Number(wire.strike) } : {}),
  };
}
