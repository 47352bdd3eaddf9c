import { createHash } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import { Logger, MetricsRegistry, inSpan, silentLogger } from '@backstop/telemetry';
import { Envelope, FieldViolation, parseEnvelope } from './envelope';
import { classifyError, RedeliverLaterError } from './errors';
import { BatchControl, BUS_LIMITS, ConsumerHandle, ConsumerStatus, MessageBus, OutgoingMessage, TransportMessage } from './port';

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

/**
 * What a handler may send besides its store writes: queued, and published with the rest of its
 * batch (one produce per topic) before the batch's offsets are committed. A redelivered message runs
 * its handler again, so what it queues must be safe to send twice (replies are keyed by command id).
 */
export interface HandlerContext {
  publish(topic: string, messages: readonly OutgoingMessage[]): void;
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
  readonly handle: (envelope: Envelope, message: TransportMessage, context: HandlerContext) => Promise<string | void>;
  /** Called for a message already handled: e.g. re-send the stored reply. */
  readonly onDuplicate?: (envelope: Envelope, storedResult: string, context: HandlerContext) => Promise<void>;
  /** Attempts of a handler failing for an unknown reason before it is dead-lettered. */
  readonly retriesMax?: number;
  readonly retryBackoffMs?: number;
  /** Cap of the backoff between attempts after a transient failure (the message is retried until it passes). */
  readonly redeliveryBackoffMsMax?: number;
  readonly messageBytesMax?: number;
  /** Original bytes kept in a dead letter: a bigger message is cut there (its digest and size recorded). */
  readonly deadLetterOriginalBytesMax?: number;
  /**
   * Within a batch, what handlers queued is published and the offsets committed once this many
   * messages are done or `batchFlushMs` after the first one not yet flushed, whichever comes first
   * (so a long batch's first replies do not wait for its end), and always at the end of the batch.
   */
  readonly batchFlushMessages?: number;
  readonly batchFlushMs?: number;
  /**
   * Messages of one batch handled at once (default 1: strictly in offset order). Above 1, messages
   * with the same key still run one after another in offset order; different keys run side by
   * side (so their store appends can share a group commit). Offsets are still committed as a prefix.
   */
  readonly concurrency?: number;
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
  /** Bytes of queued values per produce: the broker's limit (1 MiB by default) applies to a whole record batch. */
  produceBytesMax: 700_000,
  batchFlushMessages: 500,
  batchFlushMs: 100,
} as const;

export interface RunnerHandle extends ConsumerHandle {
  readonly groupId: string;
  /** running, retrying a transient failure, stopped or crashed: /health/ready reports it. */
  status(): ConsumerStatus;
}

interface Queued {
  readonly topic: string;
  readonly message: OutgoingMessage;
  /** A dead letter: sent alone if the batch is refused, and then without the original bytes if refused again. */
  readonly deadLetter?: { readonly fallback: OutgoingMessage; readonly source: TransportMessage; readonly reason: DeadLetterReason };
}

/** A transient failure outlasted the consumer's hold on the partition: the rest of the batch is redelivered. */
class BatchAbandoned extends RedeliverLaterError {}

/**
 * Our own consumer loop over the bus port (not NestJS's Kafka transport, which commits nothing on an
 * unhandled error and so blocks a partition on one poison message, nestjs/nest#14664). It takes one
 * fetched batch per partition at a time (kafkajs eachBatch) and per message, in order:
 * parse → dedupe by message id (durably) → validate → handle → remember; what the handlers queued
 * (replies) and the dead letters are published batched, one produce per topic, and only then are
 * the offsets committed, so a commit never covers an effect that is not durable.
 * The message's own faults (junk, unknown type, schema or rule violations) are dead-lettered at
 * once with the reason and the original bytes; a handler failing for an unknown reason is retried a
 * bounded number of times, then dead-lettered. Infrastructure failures (store, broker) are never
 * dead-lettered: what is done is flushed and committed, and the message is retried in place with
 * backoff (heartbeating meanwhile) while the consumer reports itself not ready; if the partition
 * moves meanwhile, the new owner gets it. Nothing else ever escapes to the bus, so no message can
 * stop the consumer.
 */
export async function startConsumer(options: ConsumerRunnerOptions): Promise<RunnerHandle> {
  const logger = (options.logger ?? silentLogger).child({ consumerGroup: options.groupId });
  const retriesMax = options.retriesMax ?? 3;
  const backoffMs = options.retryBackoffMs ?? 100;
  const redeliveryBackoffMsMax = options.redeliveryBackoffMsMax ?? 5_000;
  const bytesMax = options.messageBytesMax ?? BUS_LIMITS.messageBytesMax;
  const originalBytesMax = options.deadLetterOriginalBytesMax ?? RUNNER_LIMITS.deadLetterOriginalBytesMax;
  const flushMessages = options.batchFlushMessages ?? RUNNER_LIMITS.batchFlushMessages;
  const flushMs = options.batchFlushMs ?? RUNNER_LIMITS.batchFlushMs;
  const concurrency = options.concurrency ?? 1;
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

  /** What one batch (or the part of it since the last flush) has to send before its offsets are committed. */
  class Outbox {
    private queued: Queued[] = [];

    get size(): number {
      return this.queued.length;
    }

    /** Takes what another outbox queued (one message's output, once it is settled). */
    absorb(other: Outbox): void {
      this.queued.push(...other.queued);
      other.queued = [];
    }

    /** A point to roll back to when a handler attempt fails after queueing. */
    mark(): number {
      return this.queued.length;
    }

    rollback(mark: number): void {
      this.queued.length = mark;
    }

    context(): HandlerContext {
      return { publish: (topic, messages) => messages.forEach((message) => this.queued.push({ topic, message })) };
    }

    deadLetter(message: TransportMessage, reason: DeadLetterReason, detail: string, violations?: readonly FieldViolation[]): void {
      const record = (keep: number): OutgoingMessage => ({
        key: cut(message.key, 1_024),
        value: JSON.stringify(deadLetterRecord(message, reason, detail, violations, keep)),
        headers: { 'dlq-reason': reason, 'original-topic': message.topic },
      });
      this.queued.push({ topic: options.dlqTopic, message: record(originalBytesMax), deadLetter: { fallback: record(0), source: message, reason } });
      logger.warn('message dead-lettered', { reason, detail: cut(detail, 500), topic: message.topic, partition: message.partition, offset: message.offset });
    }

    /** One produce per topic (split by count and bytes); on success the queue is empty. */
    async flush(): Promise<void> {
      const byTopic = new Map<string, Queued[]>();
      for (const q of this.queued) byTopic.set(q.topic, [...(byTopic.get(q.topic) ?? []), q]);
      for (const [topic, items] of byTopic) {
        for (const chunk of chunks(items)) {
          try {
            await options.bus.publish(topic, chunk.map((q) => q.message));
          } catch (err) {
            // The broker refused a record (its size...): send them one by one to find which.
            if (classifyError(err) === 'transient') throw err;
            for (const q of chunk) await publishAlone(topic, q);
          }
          // Sent: not again if a later topic fails.
          const sent = new Set(chunk);
          this.queued = this.queued.filter((q) => !sent.has(q));
          for (const q of chunk) {
            if (!q.deadLetter) continue;
            handled?.inc({ topic: q.deadLetter.source.topic, outcome: `dead_letter_${q.deadLetter.reason.toLowerCase()}` });
            deadLetters?.inc({ group: options.groupId, reason: q.deadLetter.reason });
          }
        }
      }
    }
  }

  const chunks = (items: readonly Queued[]): Queued[][] => {
    const out: Queued[][] = [];
    let chunk: Queued[] = [];
    let bytes = 0;
    for (const q of items) {
      const size = Buffer.byteLength(q.message.value) + Buffer.byteLength(q.message.key);
      if (chunk.length > 0 && (chunk.length >= BUS_LIMITS.publishBatchMax || bytes + size > RUNNER_LIMITS.produceBytesMax)) {
        out.push(chunk);
        chunk = [];
        bytes = 0;
      }
      chunk.push(q);
      bytes += size;
    }
    if (chunk.length > 0) out.push(chunk);
    return out;
  };

  /**
   * One record alone. A dead letter the broker refuses goes again without the original bytes (its
   * digest and size kept). Any other record the broker refuses (a reply over its size limit) can
   * never be sent: it is logged and counted, never retried forever; the effect it reports is stored
   * (a retry of the command gets its stored reply).
   */
  const publishAlone = async (topic: string, q: Queued): Promise<void> => {
    try {
      await options.bus.publish(topic, [q.message]);
    } catch (err) {
      if (classifyError(err) === 'transient') throw err;
      if (q.deadLetter) {
        logger.warn('dead letter refused by the broker; sending it without the original bytes', { error: (err as Error).message, offset: q.deadLetter.source.offset });
        await options.bus.publish(topic, [q.deadLetter.fallback]);
        return;
      }
      handled?.inc({ topic, outcome: 'publish_refused' });
      logger.error('the broker refused a record a handler queued; it is dropped', { topic, key: cut(q.message.key, 200), error: (err as Error).message });
    }
  };

  /** Settles one message into the outbox; only a transient failure leaves here. */
  const handleOne = async (message: TransportMessage, outbox: Outbox): Promise<void> => {
    if (message.undecodable !== undefined) return outbox.deadLetter(message, 'UNDECODABLE', message.undecodable);
    const parsed = parseEnvelope(message.value, bytesMax);
    if (!parsed.ok) return outbox.deadLetter(message, parsed.reason, parsed.detail, parsed.violations);
    const envelope = parsed.envelope;
    if (!options.accepts(envelope.type)) {
      return outbox.deadLetter(message, 'UNKNOWN_TYPE', `message type "${envelope.type}" is not handled on ${message.topic} by ${options.groupId}`);
    }
    const previous = await options.processed.findProcessed(options.groupId, envelope.id);
    if (previous !== undefined) {
      handled?.inc({ topic: message.topic, outcome: 'duplicate' });
      logger.debug('duplicate message skipped', { messageId: envelope.id, type: envelope.type });
      await options.onDuplicate?.(envelope, previous, outbox.context());
      return;
    }
    const violations = options.validate?.(envelope) ?? [];
    if (violations.length > 0) {
      return outbox.deadLetter(message, 'INVALID_PAYLOAD', `${envelope.type} ${envelope.id}: ${violations.map((v) => `${v.field}: ${v.message}`).join('; ')}`, violations);
    }
    for (let attempt = 1; ; attempt += 1) {
      const mark = outbox.mark();
      try {
        const result = await inSpan(
          `consume ${envelope.type}`,
          SpanKind.CONSUMER,
          envelope,
          { 'messaging.destination.name': message.topic, 'messaging.message.id': envelope.id },
          () => options.handle(envelope, message, outbox.context()),
        );
        await options.processed.recordProcessed(options.groupId, envelope.id, result ?? '');
        handled?.inc({ topic: message.topic, outcome: 'ok' });
        return;
      } catch (err) {
        outbox.rollback(mark);
        const kind = classifyError(err);
        const why = (err as Error)?.message ?? String(err);
        if (kind === 'transient') throw err;
        if (kind === 'invalid') return outbox.deadLetter(message, 'HANDLER_REJECTED', `${envelope.type} ${envelope.id}: ${why}`, (err as { violations?: FieldViolation[] }).violations);
        if (attempt > retriesMax) return outbox.deadLetter(message, 'HANDLER_FAILED', `${why} (after ${attempt} attempts)`);
        logger.warn('handler failed, retrying', { attempt, messageId: envelope.id, error: why });
        await sleep(backoffMs * attempt);
      }
    }
  };

  /** Settles one message; a fault of the runner itself (e.g. a duplicate's stored result unreadable) dead-letters it. */
  const settle = async (message: TransportMessage, outbox: Outbox): Promise<void> => {
    const mark = outbox.mark();
    try {
      await handleOne(message, outbox);
    } catch (err) {
      outbox.rollback(mark);
      if (classifyError(err) === 'transient') throw err;
      const why = (err as Error)?.message ?? String(err);
      logger.error('message could not be handled; dead-lettering it', { error: why, offset: message.offset });
      outbox.deadLetter(message, 'HANDLER_FAILED', `unexpected: ${why}`);
    }
  };

  /** Records a transient failure (readiness shows it) and waits its backoff, heartbeating. */
  const backOff = async (err: unknown, message: TransportMessage, control: BatchControl): Promise<void> => {
    const attempts = (failing?.attempts ?? 0) + 1;
    failing = { error: cut((err as Error)?.message ?? String(err), 500), since: failing?.since ?? now().toISOString(), attempts };
    handled?.inc({ topic: message.topic, outcome: 'redelivered' });
    logger.warn('infrastructure failure; retrying the message', { attempts, error: failing.error, topic: message.topic, offset: message.offset });
    const until = Date.now() + Math.min(redeliveryBackoffMsMax, backoffMs * 2 ** Math.min(attempts - 1, 10));
    for (let left = until - Date.now(); left > 0; left = until - Date.now()) {
      await sleep(Math.min(left, 500));
      await control.heartbeat();
    }
    if (!control.isActive()) throw new BatchAbandoned(err);
  };

  /** A message or a flush got through: a transient failure being retried is over. */
  const recovered = () => {
    if (failing) logger.info('consumer recovered', { after: failing.attempts, error: failing.error });
    failing = undefined;
  };

  const handleBatch = async (messages: readonly TransportMessage[], control: BatchControl): Promise<void> => {
    const outbox = new Outbox();
    const settled = new Array<boolean>(messages.length).fill(false);
    /** The settled prefix of the batch (what may be committed once its output is sent), and what is committed. */
    let done = 0;
    let committed = 0;
    let lastFlushAt = Date.now();
    let abandoned: unknown;
    /** Publishes what is queued (retrying a transient failure) and commits the settled prefix; one flush at a time. */
    let flushing: Promise<void> = Promise.resolve();
    const flush = (message: TransportMessage): Promise<void> => {
      flushing = flushing.then(async () => {
        lastFlushAt = Date.now();
        for (;;) {
          try {
            await outbox.flush();
            break;
          } catch (err) {
            await backOff(err, message, control);
          }
        }
        recovered();
        const prefix = done;
        if (prefix > committed) {
          await control.commit(prefix);
          committed = prefix;
        }
      });
      return flushing;
    };
    const runOne = async (index: number): Promise<void> => {
      const message = messages[index];
      let output: Outbox;
      for (;;) {
        if (!control.isActive()) throw new BatchAbandoned(new Error('the consumer is stopping or lost the partition'));
        output = new Outbox();
        try {
          await settle(message, output);
          break;
        } catch (err) {
          // Transient (store or broker down): what is done so far is flushed and committed, then this message is tried again.
          await flush(message);
          await backOff(err, message, control);
        }
      }
      outbox.absorb(output);
      settled[index] = true;
      while (done < messages.length && settled[done]) done += 1;
      recovered();
      if (outbox.size >= flushMessages || done - committed >= flushMessages || Date.now() - lastFlushAt >= flushMs) await flush(message);
      await control.heartbeat();
    };
    // One chain per key, in offset order within it (key order holds); with concurrency 1, one chain: the batch in offset order.
    const chains: number[][] = [];
    if (concurrency <= 1) chains.push(messages.map((_, i) => i));
    else {
      const byKey = new Map<string, number[]>();
      messages.forEach((m, i) => {
        const chain = byKey.get(m.key);
        if (chain) chain.push(i);
        else {
          const created = [i];
          byKey.set(m.key, created);
          chains.push(created);
        }
      });
    }
    const worker = async () => {
      for (let chain = chains.shift(); chain && abandoned === undefined; chain = chains.shift()) {
        for (const index of chain) {
          if (abandoned !== undefined) return;
          try {
            await runOne(index);
          } catch (err) {
            abandoned ??= err;
            return;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, chains.length)) }, worker));
    if (abandoned !== undefined) {
      // What settled before is still sent and committed; the rest is redelivered.
      await flush(messages[Math.min(done, messages.length - 1)]).catch(() => undefined);
      throw abandoned;
    }
    await flush(messages[messages.length - 1]);
  };

  const handle = await options.bus.subscribe({ groupId: options.groupId, topics: options.topics, handleBatch });
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
