import { createHash } from 'node:crypto';
import { EventStore, NewEvent, StoredEvent } from './port';
import { EventIntegrityError } from './store-errors';

/**
 * Tamper evidence (SPEC section 7): every event's metadata carries `prevHash` (its stream
 * predecessor's hash, or GENESIS) and `hash` = sha256 of its canonical content plus prevHash.
 * Altering an event breaks its own hash; removing or reordering one breaks the next prevHash.
 */
export const GENESIS_HASH = '0'.repeat(64);

export interface ChainFields {
  readonly prevHash: string;
  readonly hash: string;
}

export function chainEvent(stream: string, revision: number, event: NewEvent, prevHash: string): ChainFields {
  const { prevHash: _p, hash: _h, ...metadata } = (event.metadata ?? {}) as Record<string, unknown>;
  const content = canonical({ stream, revision, id: event.id, type: event.type, data: event.data, metadata });
  return { prevHash, hash: createHash('sha256').update(prevHash).update(content).digest('hex') };
}

export function hashOf(event: StoredEvent): string | undefined {
  return typeof event.metadata.hash === 'string' ? event.metadata.hash : undefined;
}

export type ChainBreak = {
  readonly stream: string;
  readonly revision: number;
  readonly position: bigint;
  readonly eventId: string;
  readonly problem: 'ALTERED' | 'MISSING_PREDECESSOR' | 'REORDERED_OR_REMOVED' | 'UNCHAINED' | 'UNREADABLE';
  readonly detail: string;
};

export interface VerifyResult {
  readonly eventsChecked: number;
  readonly streamsChecked: number;
  /** The first broken link in global order, if any. */
  readonly firstBreak?: ChainBreak;
}

/** Walks the whole store in global order and recomputes every link; names the first broken one. */
export async function verifyChains(store: EventStore, onProgress?: (checked: number) => void): Promise<VerifyResult> {
  const heads = new Map<string, { revision: number; hash: string }>();
  let after = 0n;
  let checked = 0;
  for (;;) {
    let page: StoredEvent[];
    let refused: EventIntegrityError | undefined;
    try {
      page = await store.readAll({ after, maxCount: 2_000 });
    } catch (err) {
      if (!(err instanceof EventIntegrityError)) throw err;
      // The store refused an event of this page (not decodable, or altered): take the good ones
      // before it one by one, so the counts and the first break are exact.
      ({ page, refused } = await readUpTo(store, after, err));
    }
    for (const event of page) {
      checked += 1;
      const problem = checkLink(event, heads.get(event.stream));
      if (problem) return { eventsChecked: checked, streamsChecked: heads.size, firstBreak: problem };
      heads.set(event.stream, { revision: event.revision, hash: hashOf(event)! });
    }
    if (refused) {
      return { eventsChecked: checked + 1, streamsChecked: heads.size, firstBreak: { ...refused.at, problem: refused.problem, detail: refused.detail } };
    }
    if (page.length === 0) break;
    after = page[page.length - 1].position;
    onProgress?.(checked);
  }
  return { eventsChecked: checked, streamsChecked: heads.size };
}

async function readUpTo(store: EventStore, after: bigint, first: EventIntegrityError): Promise<{ page: StoredEvent[]; refused: EventIntegrityError }> {
  const page: StoredEvent[] = [];
  for (let cursor = after; cursor < first.at.position; ) {
    try {
      const [event] = await store.readAll({ after: cursor, maxCount: 1 });
      if (!event || event.position >= first.at.position) break;
      page.push(event);
      cursor = event.position;
    } catch (err) {
      if (err instanceof EventIntegrityError) return { page, refused: err };
      throw err;
    }
  }
  return { page, refused: first };
}

function checkLink(event: StoredEvent, head: { revision: number; hash: string } | undefined): ChainBreak | undefined {
  const at = { stream: event.stream, revision: event.revision, position: event.position, eventId: event.id };
  const stored = hashOf(event);
  const prevHash = typeof event.metadata.prevHash === 'string' ? event.metadata.prevHash : undefined;
  if (!stored || !prevHash) return { ...at, problem: 'UNCHAINED', detail: 'the event has no hash chain fields' };
  const expectedPrev = head?.hash ?? GENESIS_HASH;
  const expectedRevision = head ? head.revision + 1 : 0;
  if (event.revision !== expectedRevision) {
    return { ...at, problem: 'REORDERED_OR_REMOVED', detail: `revision ${event.revision} follows revision ${head?.revision ?? 'none'}` };
  }
  if (prevHash !== expectedPrev) {
    return { ...at, problem: head ? 'REORDERED_OR_REMOVED' : 'MISSING_PREDECESSOR', detail: `prevHash ${prevHash.slice(0, 12)}… does not match the predecessor's hash ${expectedPrev.slice(0, 12)}…` };
  }
  const recomputed = chainEvent(event.stream, event.revision, event, prevHash).hash;
  if (recomputed !== stored) {
    return { ...at, problem: 'ALTERED', detail: `content hash ${recomputed.slice(0, 12)}… differs from the recorded ${stored.slice(0, 12)}…` };
  }
  return undefined;
}

/** Stable JSON: sorted keys, bigints as strings; what the hash is taken over. */
export function canonical(value: unknown): string {
  return canonicalPlain(value) ?? canonicalGeneral(value);
}

/** The definition of canonical(): the key-sorted copy, stringified. Slower (it copies every object). */
export function canonicalGeneral(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

const INDEX_KEY = /^(?:0|[1-9]\d*)$/;

/**
 * canonical() for plain JSON values (what the store reads back: strings, finite numbers, booleans,
 * null, arrays, plain objects), written straight into one string without copying: the catch-up
 * profile spent 20% in sortKeys/canonical. Returns undefined for anything else (bigint, undefined,
 * Date, class instances, array-index keys, whose order JSON.stringify changes), which takes the
 * general path; the result is byte-identical to canonicalGeneral (property-tested).
 */
function canonicalPlain(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : undefined;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i += 1) {
          const item = canonicalPlain(value[i]);
          if (item === undefined) return undefined;
          out += i === 0 ? item : `,${item}`;
        }
        return `${out}]`;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return undefined;
      const keys = Object.keys(value).sort();
      let out = '{';
      for (let i = 0; i < keys.length; i += 1) {
        const key = keys[i];
        if (INDEX_KEY.test(key)) return undefined;
        const item = canonicalPlain((value as Record<string, unknown>)[key]);
        if (item === undefined) return undefined;
        out += `${i === 0 ? '' : ','}${JSON.stringify(key)}:${item}`;
      }
      return `${out}}`;
    }
    default:
      return undefined;
  }
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === 'bigint') return value.toString();
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value as object).sort().map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]));
  }
  return value;
}
