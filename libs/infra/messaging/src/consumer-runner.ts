import { SpanKind } from '@opentelemetry/api';
import { Logger, MetricsRegistry, inSpan, silentLogger } from '@backstop/telemetry';
import { Envelope, parseEnvelope } from './envelope';
import { BUS_LIMITS, ConsumerHandle, MessageBus, TransportMessage } from './port';

/** The durable record of handled message ids (the event store provides it). */
export interface ProcessedMessages {
  findProcessed(consumer: string, messageId: string): Promise<string | undefined>;
  recordProcessed(consumer: string, messageId: string, result: string): Promise<void>;
}

/** An error that says "try again later" (store or broker down): never dead-lettered, redelivered instead. */
export function isRetryable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (err as { retryable?: boolean }).retryable === true || /Unavailable|WrongExpectedRevision/.test(err.name);
}

export type DeadLetterReason = 'OVERSIZED' | 'NOT_JSON' | 'INVALID_ENVELOPE' | 'UNKNOWN_TYPE' | 'HANDLER_FAILED' | 'UNDECODABLE';

export interface DeadLetter {
  readonly reason: DeadLetterReason;
  readonly detail: string;
  readonly consumerGroup: string;
  readonly source: { topic: string; partition: number; offset: string; key: string; headers: Record<string, string> };
  /** The original bytes, base64, exactly as received. */
  readonly originalBase64: string;
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
  /** Returns what to remember for the message id (e.g. the reply), so a redelivery can repeat it. */
  readonly handle: (envelope: Envelope, message: TransportMessage) => Promise<string | void>;
  /** Called for a message already handled: e.g. re-send the stored reply. */
  readonly onDuplicate?: (envelope: Envelope, storedResult: string) => Promise<void>;
  readonly retriesMax?: number;
  readonly retryBackoffMs?: number;
  readonly messageBytesMax?: number;
  readonly logger?: Logger;
  readonly metrics?: MetricsRegistry;
  readonly now?: () => Date;
}

/**
 * Our own consumer loop over the bus port (not NestJS's Kafka transport, which commits nothing on an
 * unhandled error and so blocks a partition on one poison message, nestjs/nest#14664):
 * parse → dedupe by message id (durably) → handle with bounded retries → remember → commit.
 * Junk and handlers that keep failing go to the dead-letter topic with the reason and the original
 * bytes, and the consumer moves on. Retryable infrastructure errors are not dead-lettered: the
 * message is redelivered (nothing accepted is lost).
 */
export async function startConsumer(options: ConsumerRunnerOptions): Promise<ConsumerHandle> {
  const logger = (options.logger ?? silentLogger).child({ consumerGroup: options.groupId });
  const retriesMax = options.retriesMax ?? 3;
  const backoffMs = options.retryBackoffMs ?? 100;
  const bytesMax = options.messageBytesMax ?? BUS_LIMITS.messageBytesMax;
  const now = options.now ?? (() => new Date());
  const handled = options.metrics?.counter('backstop_messages_total', 'Messages consumed, by topic and outcome');

  const deadLetter = async (message: TransportMessage, reason: DeadLetterReason, detail: string) => {
    const record: DeadLetter = {
      reason,
      detail,
      consumerGroup: options.groupId,
      source: { topic: message.topic, partition: message.partition, offset: message.offset, key: message.key, headers: message.headers },
      originalBase64: message.value.toString('base64'),
      deadLetteredAt: now().toISOString(),
    };
    await options.bus.publish(options.dlqTopic, [
      { key: message.key, value: JSON.stringify(record), headers: { 'dlq-reason': reason, 'original-topic': message.topic } },
    ]);
    handled?.inc({ topic: message.topic, outcome: `dead_letter_${reason.toLowerCase()}` });
    logger.warn('message dead-lettered', { reason, detail, topic: message.topic, partition: message.partition, offset: message.offset });
  };

  const handleOne = async (message: TransportMessage) => {
    if (message.undecodable !== undefined) return deadLetter(message, 'UNDECODABLE', message.undecodable);
    const parsed = parseEnvelope(message.value, bytesMax);
    if (!parsed.ok) return deadLetter(message, parsed.reason, parsed.detail);
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
        if (isRetryable(err)) throw err;
        if (attempt > retriesMax) {
          return deadLetter(message, 'HANDLER_FAILED', `${(err as Error).message ?? String(err)} (after ${attempt} attempts)`);
        }
        logger.warn('handler failed, retrying', { attempt, messageId: envelope.id, error: (err as Error).message });
        await new Promise((r) => setTimeout(r, backoffMs * attempt));
      }
    }
  };

  return options.bus.subscribe({ groupId: options.groupId, topics: options.topics, handle: handleOne });
}
