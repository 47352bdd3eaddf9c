import { toMinor } from '@backstop/kernel';
import { Tranche, trancheOf } from './accounts';

/**
 * The per-provider / per-tranche / per-creditor splits settlement puts in its events. docs/events.md
 * names the fields, not their shape, so these shapes are accepted (amounts are decimal strings):
 *   { "p1": "10.5", "p2": "4" }                                   id → amount
 *   { "JUNIOR": { "p1": "10.5" }, "SENIOR": { "p2": "4" } }       tranche → id → amount
 *   { "p1": { "tranche": "JUNIOR", "amount": "10.5" } }           id → { tranche?, amount }
 *   [ { "providerId": "p1", "tranche": "JUNIOR", "amount": "10.5" } ]  (or creditorId / partyId / id)
 */
export interface Part {
  readonly id: string;
  readonly tranche?: Tranche;
  readonly amountMinor: bigint;
}

const MAX_PARTS = 10_000;

export function parseParts(value: unknown, scale: number, field: string): Part[] {
  const parts = Array.isArray(value) ? fromArray(value, scale, field) : fromRecord(value, scale, field);
  if (parts.length > MAX_PARTS) throw new RangeError(`${field} has ${parts.length} entries; the limit is ${MAX_PARTS}`);
  return parts;
}

function fromArray(items: readonly unknown[], scale: number, field: string): Part[] {
  return items.map((item, i) => {
    if (!item || typeof item !== 'object') throw new RangeError(`${field}[${i}] must be an object with an id and an amount`);
    const o = item as Record<string, unknown>;
    const id = [o.providerId, o.creditorId, o.partyId, o.id].find((v) => typeof v === 'string') as string | undefined;
    if (!id) throw new RangeError(`${field}[${i}] has no providerId / creditorId / partyId`);
    return { id, ...trancheField(o.tranche ?? o.layer, `${field}[${i}].tranche`), amountMinor: amount(o.amount, scale, `${field}[${i}].amount`) };
  });
}

function fromRecord(value: unknown, scale: number, field: string): Part[] {
  if (!value || typeof value !== 'object') throw new RangeError(`${field} must be an object or an array of parts`);
  return Object.entries(value as Record<string, unknown>).flatMap(([key, v]): Part[] => {
    if (typeof v === 'string') return [{ id: key, amountMinor: amount(v, scale, `${field}.${key}`) }];
    if (!v || typeof v !== 'object') throw new RangeError(`${field}.${key} must be an amount or an object`);
    const o = v as Record<string, unknown>;
    if (typeof o.amount === 'string') {
      return [{ id: key, ...trancheField(o.tranche, `${field}.${key}.tranche`), amountMinor: amount(o.amount, scale, `${field}.${key}.amount`) }];
    }
    const tranche = trancheOf(key);
    if (!tranche) throw new RangeError(`${field}.${key} is an object but "${key}" is not a tranche (JUNIOR or SENIOR)`);
    return fromRecord(o, scale, `${field}.${key}`).map((p) => ({ ...p, tranche }));
  });
}

function trancheField(value: unknown, field: string): { tranche?: Tranche } {
  if (value === undefined) return {};
  const tranche = trancheOf(value);
  if (!tranche) throw new RangeError(`${field} "${String(value)}" is not a tranche (JUNIOR or SENIOR)`);
  return { tranche };
}

/** A wire amount: a decimal string in the currency's scale, never negative. */
export function amount(value: unknown, scale: number, field: string): bigint {
  if (typeof value !== 'string') throw new RangeError(`${field} must be a decimal string, got ${JSON.stringify(value)}`);
  const minor = toMinor(value, scale);
  if (minor < 0n) throw new RangeError(`${field} must not be negative, got ${value}`);
  return minor;
}

export function sumParts(parts: readonly Part[]): bigint {
  return parts.reduce((s, p) => s + p.amountMinor, 0n);
}
