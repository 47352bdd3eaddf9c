/** Small checks and sums shared by the settlement models; input problems are RangeErrors. */

export function sumMinor(amounts: readonly bigint[]): bigint {
  return amounts.reduce((total, amount) => total + amount, 0n);
}

export function requireNonNegative(amountMinor: bigint, field: string): void {
  if (amountMinor < 0n) throw new RangeError(`${field} must not be negative (got ${amountMinor})`);
}

export function requireUnique(ids: readonly string[], field: string): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) throw new RangeError(`${field} "${id}" appears twice`);
    seen.add(id);
  }
}
