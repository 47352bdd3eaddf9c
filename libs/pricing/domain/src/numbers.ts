import { invariant } from '@backstop/kernel';

/**
 * A model double as a wire decimal string: fixed `digits` fraction digits, trailing zeros trimmed,
 * never an exponent (SPEC §2: prices, vols and model outputs travel as decimal strings).
 */
export function decimal(value: number, digits = 10): string {
  invariant(Number.isFinite(value), `cannot show ${value} as a decimal`);
  invariant(Math.abs(value) < 1e21, `${value} is too large to show as a decimal`);
  const text = value.toFixed(digits);
  const trimmed = text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
  return trimmed === '-0' ? '0' : trimmed;
}

/**
 * The Monte Carlo seed of a quote, from its id (FNV-1a, 32 bit): the same quote id always gets the
 * same paths, so re-deciding a quote (a replay, a retry) gives the identical price, and a reprice
 * reusing it moves with the market rather than with simulation noise (common random numbers).
 */
export function seedOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** ⌈a / b⌉ for non-negative bigints: the pool's side of a pro-rata premium. */
export function ceilDiv(a: bigint, b: bigint): bigint {
  invariant(a >= 0n && b > 0n, `ceilDiv needs a ≥ 0 and b > 0, got ${a} / ${b}`);
  return (a + b - 1n) / b;
}

/** A decimal string parsed as a double (pricing math), or undefined when it is not a finite number. */
export function toDouble(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}
