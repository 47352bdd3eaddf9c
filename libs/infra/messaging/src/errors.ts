import { KafkaJSError } from 'kafkajs';
import { DomainRejection } from '@backstop/kernel';
import { storeErrorKind } from '@backstop/event-store';

/**
 * Thrown by a handler when the MESSAGE is at fault (its payload breaks its schema or a rule):
 * dead-lettered at once with this reason, never retried (a retry cannot change the bytes).
 */
export class InvalidMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidMessageError';
  }
}

/**
 * What the consumer runner throws to the bus to have a message redelivered later (the store or the
 * broker is down). `retriable` makes kafkajs retry and restart instead of crashing the consumer
 * for good, as it does for a TypeError or a non-retriable error.
 */
export class RedeliverLaterError extends Error {
  readonly retriable = true;
  constructor(override readonly cause: unknown) {
    super(`redelivering later: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'RedeliverLaterError';
  }
}

/**
 * - transient: the infrastructure failed (broker, store, a concurrent writer); the message is fine.
 *   Redelivered with backoff, reported as not-ready meanwhile, never dead-lettered.
 * - invalid: the message itself can never succeed (validation, a business rule, a record the broker
 *   refuses for its size). Dead-lettered at once.
 * - unknown: anything else (most likely a bug): retried a bounded number of times, then dead-lettered.
 */
export type ErrorKind = 'transient' | 'invalid' | 'unknown';

/** Broker errors caused by the record itself: the same record fails the same way every time. */
const KAFKA_RECORD_ERRORS = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE', 'INVALID_REQUIRED_ACKS']);

/** Classifies by type: kafkajs errors, store errors (SQLite codes, conflicts), validation errors. */
export function classifyError(err: unknown): ErrorKind {
  if (err instanceof RedeliverLaterError) return 'transient';
  if (err instanceof InvalidMessageError || err instanceof DomainRejection) return 'invalid';
  if (err instanceof KafkaJSError) {
    // kafkajs wraps the broker's answer (NumberOfRetriesExceeded, NonRetriable) around its cause.
    for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
      const type = (e as { type?: unknown }).type;
      if (typeof type === 'string' && KAFKA_RECORD_ERRORS.has(type)) return 'invalid';
      if (e === (e as { cause?: unknown }).cause) break;
    }
    // Connection refused, leader moved, timeouts, retries exhausted, authorization: not the message's fault.
    return 'transient';
  }
  const store = storeErrorKind(err);
  if (store === 'transient') return 'transient';
  if (store === 'permanent') return 'invalid';
  // A RangeError is a limit the input broke (a size, a stack depth), deterministic for these bytes.
  if (err instanceof RangeError || err instanceof SyntaxError) return 'invalid';
  if (err instanceof Error && (err as { retryable?: unknown }).retryable === true) return 'transient';
  return 'unknown';
}
