/**
 * The revaluation hot path (SPEC §3.7: every mark tick re-values every open contract).
 *
 * One row per open position (a contract has two rows: one per side), stored as struct-of-arrays
 * with a fixed capacity, so a tick allocates nothing: `revalue` reads typed arrays and writes the
 * caller's output array. Rows move on removal (swap-remove), so callers address a position by its
 * `key` (their own stable integer id) and read results by slot through `keyAt(slot)`.
 * The per-row arithmetic is the same scalar code as valuation.ts (linearPnl, optionPnl).
 */
import { assertNever, ContractTerms, invariant, OptionType, Side } from '@backstop/kernel';
import { assertValuable, linearPnl, optionPnl, sideSign } from './valuation';

/** Row kind codes (Uint8Array). Options carry their type in the code. */
export const KIND_CODE = { PERPETUAL: 0, FUTURE: 1, CALL: 2, PUT: 3 } as const;
export type KindCode = (typeof KIND_CODE)[keyof typeof KIND_CODE];

/** Upper bound on rows in one book (TigerBeetle habit: a limit on everything). */
export const PORTFOLIO_CAPACITY_MAX = 4_000_000;

export interface BookEntry {
  /** Caller's stable id of this position, a non-negative safe integer, unique in the book. */
  readonly key: number;
  readonly terms: ContractTerms;
  readonly side: Side;
  /** Caller's dense index of the underlying (e.g. BTC-USD → 0). */
  readonly underlyingIndex: number;
  /** Caller's dense index of the party holding this side. */
  readonly partyIndex: number;
}

export function kindCodeOf(terms: ContractTerms): KindCode {
  switch (terms.kind) {
    case 'PERPETUAL':
      return KIND_CODE.PERPETUAL;
    case 'FUTURE':
      return KIND_CODE.FUTURE;
    case 'OPTION':
      return terms.optionType === 'CALL' ? KIND_CODE.CALL : KIND_CODE.PUT;
    default:
      return assertNever(terms.kind, 'instrument kind');
  }
}

function isIndex(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
}

export class PortfolioBook {
  readonly capacity: number;
  private rows = 0;
  private partyIndexHigh = -1;
  private readonly keys: Float64Array;
  private readonly size: Float64Array;
  private readonly entry: Float64Array;
  private readonly strike: Float64Array;
  private readonly expiryMs: Float64Array;
  private readonly kind: Uint8Array;
  private readonly sign: Int8Array;
  private readonly underlying: Uint32Array;
  private readonly party: Uint32Array;
  private readonly slotByKey = new Map<number, number>();

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > PORTFOLIO_CAPACITY_MAX) {
      throw new RangeError(`capacity must be an integer in [1, ${PORTFOLIO_CAPACITY_MAX}], got ${capacity}`);
    }
    this.capacity = capacity;
    this.keys = new Float64Array(capacity);
    this.size = new Float64Array(capacity);
    this.entry = new Float64Array(capacity);
    this.strike = new Float64Array(capacity);
    this.expiryMs = new Float64Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.sign = new Int8Array(capacity);
    this.underlying = new Uint32Array(capacity);
    this.party = new Uint32Array(capacity);
  }

  /** Number of open rows; slots 0..count−1 are live. */
  get count(): number {
    return this.rows;
  }

  /** Adds a position and returns its current slot. */
  add(e: BookEntry): number {
    if (!Number.isSafeInteger(e.key) || e.key < 0) throw new RangeError(`key must be a non-negative safe integer, got ${e.key}`);
    if (this.slotByKey.has(e.key)) throw new RangeError(`key ${e.key} is already in the book`);
    if (!isIndex(e.underlyingIndex)) throw new RangeError(`underlyingIndex must be a uint32, got ${e.underlyingIndex}`);
    if (!isIndex(e.partyIndex)) throw new RangeError(`partyIndex must be a uint32, got ${e.partyIndex}`);
    if (this.rows === this.capacity) throw new RangeError(`portfolio book is full (capacity ${this.capacity})`);
    assertValuable(e.terms);
    const slot = this.rows++;
    this.keys[slot] = e.key;
    this.size[slot] = e.terms.size;
    this.entry[slot] = e.terms.entryPrice;
    this.strike[slot] = e.terms.strike ?? 0;
    this.expiryMs[slot] = e.terms.expiryMs ?? Number.POSITIVE_INFINITY;
    this.kind[slot] = kindCodeOf(e.terms);
    this.sign[slot] = sideSign(e.side);
    this.underlying[slot] = e.underlyingIndex;
    this.party[slot] = e.partyIndex;
    this.slotByKey.set(e.key, slot);
    this.partyIndexHigh = Math.max(this.partyIndexHigh, e.partyIndex);
    return slot;
  }

  /** Removes a position by key (the last row moves into its slot). False when the key is absent. */
  remove(key: number): boolean {
    const slot = this.slotByKey.get(key);
    if (slot === undefined) return false;
    const last = --this.rows;
    this.slotByKey.delete(key);
    if (slot !== last) {
      this.keys[slot] = this.keys[last];
      this.size[slot] = this.size[last];
      this.entry[slot] = this.entry[last];
      this.strike[slot] = this.strike[last];
      this.expiryMs[slot] = this.expiryMs[last];
      this.kind[slot] = this.kind[last];
      this.sign[slot] = this.sign[last];
      this.underlying[slot] = this.underlying[last];
      this.party[slot] = this.party[last];
      this.slotByKey.set(this.keys[slot], slot);
    }
    return true;
  }

  /** Current slot of a key, or −1. */
  slotOf(key: number): number {
    return this.slotByKey.get(key) ?? -1;
  }

  keyAt(slot: number): number {
    this.assertSlot(slot);
    return this.keys[slot];
  }

  partyAt(slot: number): number {
    this.assertSlot(slot);
    return this.party[slot];
  }

  underlyingAt(slot: number): number {
    this.assertSlot(slot);
    return this.underlying[slot];
  }

  /**
   * Writes the mark-to-market of every row on `underlyingIndex` into outPnl[slot]; rows on other
   * underlyings are left untouched. Returns how many rows were revalued. Allocates nothing.
   */
  revalue(underlyingIndex: number, mark: number, volAnnual: number, nowMs: number, outPnl: Float64Array): number {
    invariant(outPnl.length >= this.rows, `outPnl has ${outPnl.length} slots for ${this.rows} rows`);
    let revalued = 0;
    for (let slot = 0; slot < this.rows; slot++) {
      if (this.underlying[slot] !== underlyingIndex) continue;
      outPnl[slot] = this.pnlAt(slot, mark, volAnnual, nowMs);
      revalued++;
    }
    return revalued;
  }

  /**
   * outEquity[p] = collateralByParty[p] + Σ pnl of p's rows (SPEC §3.7: equity = collateral + MTM).
   * Parties without rows get their collateral. Allocates nothing.
   */
  equityByParty(pnl: Float64Array, collateralByParty: Float64Array, outEquity: Float64Array): void {
    invariant(pnl.length >= this.rows, `pnl has ${pnl.length} slots for ${this.rows} rows`);
    invariant(outEquity.length === collateralByParty.length, 'outEquity and collateralByParty differ in length');
    invariant(outEquity.length > this.partyIndexHigh, `outEquity has ${outEquity.length} parties, book uses index ${this.partyIndexHigh}`);
    outEquity.set(collateralByParty);
    for (let slot = 0; slot < this.rows; slot++) {
      outEquity[this.party[slot]] += pnl[slot];
    }
  }

  private pnlAt(slot: number, mark: number, volAnnual: number, nowMs: number): number {
    const kind = this.kind[slot];
    if (kind === KIND_CODE.PERPETUAL || kind === KIND_CODE.FUTURE) {
      return linearPnl(this.sign[slot], this.size[slot], this.entry[slot], mark);
    }
    const optionType: OptionType = kind === KIND_CODE.CALL ? 'CALL' : 'PUT';
    return optionPnl(
      this.sign[slot],
      this.size[slot],
      this.entry[slot],
      optionType,
      this.strike[slot],
      this.expiryMs[slot],
      mark,
      volAnnual,
      nowMs,
    );
  }

  private assertSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.rows) throw new RangeError(`slot ${slot} is not live (count ${this.rows})`);
  }
}
