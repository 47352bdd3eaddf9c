import { createHash } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import { Logger, MetricsRegistry, inSpan, silentLogger } from '@backstop/telemetry';
import { Envelope, FieldViolation, parseEnvelope } from './envelope';
import { classifyError, RedeliverLaterError } from './errors';
import { BUS_LIMITS, ConsumerHandle, ConsumerStatus, MessageBus, TransportMessage } from './port';

/** The durable record of handled message ids (the event store provides it). */
export interface ProcessedMessages {
  findProcessed(consumer: string, messageId: string): Promise<string | undefined>;
  recordProcessed(consumer: string, messageId: string, result: string): Promise<void>;
}

/** An error that says "try again later" (store or broker down): never dead-lettered, redelivered instead. */
export function isRetryable(err: unknown): boolean {
  return classifyError(err) === 'transient';
}

export type DeadLetterReason = 'OVERSIZED' | 'NOT_JSON' | 'INVALID_ENVELOPE' | 'UNKNOWN_TYPE' | 'INVALID_PAYLOAD' | 'HANDLER_REJECTED' | 'HANDLER_FAILED' | 'UNDECODABLE';

export interface DeadLetter {
  readonly reason: DeadLetterReason;
  readonly detail: string;
  /** Every field and rule, when the reason is a validation failure. */
  readonly violations?: readonly FieldViolation[];
  readonly consumerGroup: string;
  readonly source: { topic: string; partition: number; offset: string; key: string; headers: Record<string, string> };
  /** The original bytes, base64, exactly as received (only the first `originalBytesKept` if `originalTruncated`). */
  readonly originalBase64: string;
  readonly originalBytes: number;
  /** sha256 of ALL the original bytes (hex), so a truncated copy can still be matched with its source. */
  readonly originalSha256: string;
  readonly originalTruncated: boolean;
  readonly deadLetteredAt: string;
}

export interface ConsumerRunnerOptions {
  readonly bus: MessageBus;
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly dlqTopic: string;
  readonly processed: ProcessedMessages;
  /** Message types this consumer understands; anything else is dead-lettered as UNKNOWN_TYPE. */
  readonly accepts: (type: string) => boolean;
  /** Schema check of a message before its handler: violations → dead-lettered at once as INVALID_PAYLOAD. */
  readonly validate?: (envelope: Envelope) => readonly FieldViolation[];
  /** Returns what to remember for the message id (e.g. the reply), so a redelivery can repeat it. */
  readonly handle: (envelope: Envelope, message: TransportMessage) => Promise<string | void>;
  /** Called for a message already handled: e.g. re-send the stored reply. */
  readonly onDuplicate?: (envelope: Envelope, storedResult: string) => Promise<void>;
  /** Attempts of a handler failing for an unknown reason before it is dead-lettered. */
  readonly retriesMax?: number;
  readonly retryBackoffMs?: number;
  /** Cap of the backoff before a message is handed back for redelivery after a transient failure. */
  readonly redeliveryBackoffMsMax?: number;
  readonly messageBytesMax?: number;
  /** Original bytes kept in a dead letter: a bigger message is cut there (its digest and size recorded). */
  readonly deadLetterOriginalBytesMax?: number;
  readonly logger?: Logger;
  readonly metrics?: MetricsRegistry;
  readonly now?: () => Date;
}

/** Runner limits: a dead letter must fit the broker's default message.max.bytes (1 MiB) with room to spare. */
export const RUNNER_LIMITS = {
  deadLetterOriginalBytesMax: 262_144,
  deadLetterDetailCharsMax: 4_096,
  deadLetterHeaderCharsMax: 1_024,
  deadLetterHeadersMax: 64,
} as const;

export interface RunnerHandle extends ConsumerHandle {
  readonly groupId: string;
  /** running, retrying a transient failure, stopped or crashed: /health/ready reports it. */
  status(): ConsumerStatus;
}

/**
 * Our own consumer loop over the bus port (not NestJS's Kafka transport, which commits nothing on an
 * unhandled error and so blocks a partition on one poison message, nestjs/nest#14664):
 * parse → dedupe by message id (durably) → validate → handle → remember → commit.
 * The message's own faults (junk, unknown type, schema or rule violations) are dead-lettered at
 * once with the reason and the original bytes; a handler failing for an unknown reason is retried a
 * bounded number of times, then dead-lettered. Infrastructure failures (store, broker) are never
 * dead-lettered: the message is handed back for redelivery with backoff and the consumer reports
 * itself not ready until it gets through. Nothing else ever escapes to the bus, so no message can
 * stop the consumer.
 */
export async function startConsumer(options: ConsumerRunnerOptions): Promise<RunnerHandle> {
  const logger = (options.logger ?? silentLogger).child({ consumerGroup: options.groupId });
  const retriesMax = options.retriesMax ?? 3;
  const backoffMs = options.retryBackoffMs ?? 100;
  const redeliveryBackoffMsMax = options.redeliveryBackoffMsMax ?? 5_000;
  const bytesMax = options.messageBytesMax ?? BUS_LIMITS.messageBytesMax;
  const originalBytesMax = options.deadLetterOriginalBytesMax ?? RUNNER_LIMITS.deadLetterOriginalBytesMax;
  const now = options.now ?? (() => new Date());
  const consumed = options.metrics?.counter('backstop_messages_total', 'Messages consumed, by consumer group, topic and outcome', ['group', 'topic', 'outcome']);
  const handled = consumed && { inc: (labels: { topic: string; outcome: string }) => consumed.inc({ group: options.groupId, ...labels }) };
  const deadLetters = options.metrics?.counter('backstop_dead_letters_total', 'Messages put on the dead-letter topic, by consumer group and reason', ['group', 'reason']);
  /** The transient failure being retried, if any (cleared by the next message that gets through). */
  let failing: { error: string; since: string; attempts: number } | undefined;

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const cut = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text);

  const deadLetterRecord = (message: TransportMessage, reason: DeadLetterReason, detail: string, violations: readonly FieldViolation[] | undefined, keepBytes: number): DeadLetter => {
    const kept = message.value.subarray(0, keepBytes);
    const headers = Object.fromEntries(
      Object.entries(message.headers)
        .slice(0, RUNNER_LIMITS.deadLetterHeadersMax)
        .map(([k, v]) => [cut(k, 200), cut(v, RUNNER_LIMITS.deadLetterHeaderCharsMax)]),
    );
    const truncated = kept.length < message.value.length;
    return {
      reason,
      detail: cut(truncated ? `${detail} [the original is ${message.value.length} bytes; the first ${kept.length} are kept]` : detail, RUNNER_LIMITS.deadLetterDetailCharsMax),
      ...(violations && violations.length > 0 ? { violations: violations.slice(0, 50).map((v) => ({ field: cut(v.field, 300), rule: v.rule, message: cut(v.message, 500) })) } : {}),
      consumerGroup: options.groupId,
      source: { topic: message.topic, partition: message.partition, offset: message.offset, key: cut(message.key, 1_024), headers },
      originalBase64: kept.toString('base64'),
      originalBytes: message.value.length,
      originalSha256: createHash('sha256').update(message.value).digest('hex'),
      originalTruncated: truncated,
      deadLetteredAt: now().toISOString(),
    };
  };

  const deadLetter = async (message: TransportMessage, reason: DeadLetterReason, detail: string, violations?: readonly FieldViolation[]) => {
    // The broker refuses a record over its limit; if even the capped copy is refused, keep only the digest.
    for (const keep of [originalBytesMax, 0]) {
      const record = deadLetterRecord(message, reason, detail, violations, keep);
      try {
        await options.bus.publish(options.dlqTopic, [
          { key: cut(message.key, 1_024), value: JSON.stringify(record), headers: { 'dlq-reason': reason, 'original-topic': message.topic } },
        ]);
        handled?.inc({ topic: message.topic, outcome: `dead_letter_${reason.toLowerCase()}` });
        deadLetters?.inc({ group: options.groupId, reason });
        logger.warn('message dead-lettered', { reason, detail: cut(detail, 500), topic: message.topic, partition: message.partition, offset: message.offset, truncated: record.originalTruncated });
        return;
      } catch (err) {
        if (keep === 0 || classifyError(err) !== 'invalid') throw err;
        logger.warn('dead letter refused by the broker; sending it without the original bytes', { error: (err as Error).message, offset: message.offset });
      }
    }
  };

  const handleOne = async (message: TransportMessage): Promise<void> => {
    if (message.undecodable !== undefined) return deadLetter(message, 'UNDECODABLE', message.undecodable);
    const parsed = parseEnvelope(message.value, bytesMax);
    if (!parsed.ok) return deadLetter(message, parsed.reason, parsed.detail, parsed.violations);
    const envelope = parsed.envelope;
    if (!options.accepts(envelope.type)) {
      return deadLetter(message, 'UNKNOWN_TYPE', `message type "${envelope.type}" is not handled on ${message.topic} by ${options.groupId}`);
    }
    const previous = await options.processed.findProcessed(options.groupId, envelope.id);
    if (previous !== undefined) {
      handled?.inc({ topic: message.topic, outcome: 'duplicate' });
      logger.debug('duplicate message skipped', { messageId: envelope.id, type: envelope.type });
      await options.onDuplicate?.(envelope, previous);
      return;
    }
    const violations = options.validate?.(envelope) ?? [];
    if (violations.length > 0) {
      return deadLetter(message, 'INVALID_PAYLOAD', `${envelope.type} ${envelope.id}: ${violations.map((v) => `${v.field}: ${v.message}`).join('; ')}`, violations);
    }
    for (let attempt = 1; ; attempt += 1) {
      try {
        const result = await inSpan(
          `consume ${envelope.type}`,
          SpanKind.CONSUMER,
          envelope,
          { 'messaging.destination.name': message.topic, 'messaging.message.id': envelope.id },
          () => options.handle(envelope, message),
        );
        await options.processed.recordProcessed(options.groupId, envelope.id, result ?? '');
        handled?.inc({ topic: message.topic, outcome: 'ok' });
        return;
      } catch (err) {
        const kind = classifyError(err);
        const why = (err as Error)?.message ?? String(err);
        if (kind === 'transient') throw err;
        if (kind === 'invalid') return deadLetter(message, 'HANDLER_REJECTED', `${envelope.type} ${envelope.id}: ${why}`, (err as { violations?: FieldViolation[] }).violations);
        if (attempt > retriesMax) return deadLetter(message, 'HANDLER_FAILED', `${why} (after ${attempt} attempts)`);
        logger.warn('handler failed, retrying', { attempt, messageId: envelope.id, error: why });
        await sleep(backoffMs * attempt);
      }
    }
  };

  /** Only a transient failure leaves here (as RedeliverLaterError, after a backoff); everything else is settled. */
  const guarded = async (message: TransportMessage): Promise<void> => {
    try {
      await handleOne(message);
      if (failing) logger.info('consumer recovered', { after: failing.attempts, error: failing.error });
      failing = undefined;
    } catch (caught) {
      let err = caught;
      const kind = classifyError(err);
      const why = (err as Error)?.message ?? String(err);
      if (kind !== 'transient') {
        // A fault of the runner itself (e.g. a duplicate's stored result unreadable): settle the message.
        logger.error('message could not be handled; dead-lettering it', { error: why, offset: message.offset });
        try {
          await deadLetter(message, 'HANDLER_FAILED', `unexpected: ${why}`);
          return;
        } catch (dlqError) {
          if (classifyError(dlqError) !== 'transient') throw new RedeliverLaterError(dlqError);
          err = dlqError;
        }
      }
      const attempts = (failing?.attempts ?? 0) + 1;
      failing = { error: cut((err as Error)?.message ?? String(err), 500), since: failing?.since ?? now().toISOString(), attempts };
      handled?.inc({ topic: message.topic, outcome: 'redelivered' });
      logger.warn('infrastructure failure; the message will be redelivered', { attempts, error: failing.error, topic: message.topic, offset: message.offset });
      await sleep(Math.min(redeliveryBackoffMsMax, backoffMs * 2 ** Math.min(attempts - 1, 10)));
      throw err instanceof RedeliverLaterError ? err : new RedeliverLaterError(err);
    }
  };

  const handle = await options.bus.subscribe({ groupId: options.groupId, topics: options.topics, handle: guarded });
  let stopped = false;
  return {
    groupId: options.groupId,
    status: () => {
      if (stopped) return { state: 'stopped', detail: 'stopped' };
      const bus = handle.status?.();
      if (bus && bus.state !== 'running') return bus;
      if (failing) return { state: 'retrying', detail: `retrying since ${failing.since} (${failing.attempts} attempts): ${failing.error}` };
      return { state: 'running', detail: 'ok' };
    },
    stop: async () => {
      stopped = true;
      await handle.stop();
    },
  };
}
