import { createHash } from 'node:crypto';
import { canonical } from '@backstop/event-store';

/**
 * A UUID (version 5 layout, SHA-1) derived from a name: the same command or source event always
 * yields the same event ids, so a redelivered message appends nothing new (the store dedupes ids).
 */
export function deterministicUuid(...parts: readonly (string | number)[]): string {
  const hash = createHash('sha1').update(parts.join('\u0000')).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** "Same id, same body" is judged on the hash of the canonical (sorted-key) JSON. */
export function bodyHash(value: unknown): string {
  return createHash('sha256').update(canonical(value)).digest('hex');
}
