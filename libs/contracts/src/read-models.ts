/**
 * Services talk only through the event topics (SPEC section 1): a service keeps the facts it needs
 * from another service as its own read model, in its own store. These names are shared so every
 * reader of a store (the ledger, compliance) can tell a kept copy from a fact of the store's owner.
 */

/** Stream category of read-model copies: `view-<service>:<source stream>` (never published, never booked). */
export const READ_MODEL_CATEGORY = 'view';
/** Event type of a read-model copy; its data holds the source event (type, stream, revision, data). */
export const FACT_OBSERVED = 'FactObserved';

export function isReadModelStream(stream: string): boolean {
  return stream.startsWith(`${READ_MODEL_CATEGORY}-`);
}

/**
 * Rejection rule of a command that needs a fact this service has not received yet (eventual
 * consistency between services): not a bad command; the same command, retried later, may pass.
 * Replies carrying only such violations say `retryable: true`.
 */
export const NOT_YET_KNOWN = 'notYetKnown';
