import { isIsoUtc } from '@backstop/kernel';
import { Posting } from './postings';
import { LedgerProjection } from './projection';
import { SourceEvent } from './source-events';

/** Reads the store in global order: events strictly after `after`, at most `maxCount` (the store's readAll). */
export type PageReader = (after: bigint, maxCount: number) => Promise<readonly SourceEvent[]>;

/**
 * How far a replay goes. Instants are measured against the store's recordedAt, in position order:
 * the state "as of T" is the state after the last event before the first one recorded after T
 * (a prefix of the global order, so it is always a state the live projection passed through).
 */
export type Until =
  | { readonly kind: 'head' }
  | { readonly kind: 'position'; readonly position: bigint }
  | { readonly kind: 'instant'; readonly at: string };

export const HEAD: Until = { kind: 'head' };
export const REPLAY_PAGE_DEFAULT = 1_000;
export const REPLAY_PAGE_MAX = 4_096;

export interface ReplayOptions {
  readonly until?: Until;
  readonly pageSize?: number;
  /** Called after each page: events applied so far and the position reached. */
  readonly onProgress?: (eventsApplied: number, position: bigint) => void;
  /** Every event applied with its postings (history, explain-default). */
  readonly onEvent?: (event: SourceEvent, postings: readonly Posting[]) => void;
}

/** Parses `--as-of` / `?asOf=`: a global position (digits) or an ISO-8601 UTC instant; undefined if neither. */
export function parseAsOf(text: string): Until | undefined {
  if (/^\d{1,19}$/.test(text)) return { kind: 'position', position: BigInt(text) };
  if (isIsoUtc(text)) return { kind: 'instant', at: text };
  return undefined;
}

export const AS_OF_FORMAT = 'a global position (an integer such as 1234) or an ISO-8601 UTC instant such as 2026-01-31T08:00:00Z';

function reached(event: SourceEvent, until: Until): boolean {
  switch (until.kind) {
    case 'head':
      return false;
    case 'position':
      return event.position > until.position;
    case 'instant':
      return Date.parse(event.recordedAt) > Date.parse(until.at);
    default: {
      const _exhaustive: never = until;
      return _exhaustive;
    }
  }
}

/** An empty projection fed from the start of the store up to `until`, in bounded pages. */
export async function replay(read: PageReader, options: ReplayOptions = {}): Promise<LedgerProjection> {
  const until = options.until ?? HEAD;
  const pageSize = Math.min(Math.max(1, options.pageSize ?? REPLAY_PAGE_DEFAULT), REPLAY_PAGE_MAX);
  const projection = new LedgerProjection();
  let after = 0n;
  for (;;) {
    const page = await read(after, pageSize);
    if (page.length === 0) return projection;
    for (const event of page) {
      if (reached(event, until)) {
        options.onProgress?.(projection.eventsApplied, projection.position);
        return projection;
      }
      const postings = projection.apply(event);
      options.onEvent?.(event, postings);
    }
    options.onProgress?.(projection.eventsApplied, projection.position);
    after = page[page.length - 1].position;
  }
}
