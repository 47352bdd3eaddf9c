import { Admin, Consumer, IHeaders, Kafka, logLevel, LogEntry, Producer } from 'kafkajs';
import { BUS_LIMITS, ConsumerHandle, ConsumerStatus, MessageBus, OutgoingMessage, SubscribeOptions } from './port';

export interface KafkaBusConfig {
  /** KAFKA_BROKERS, comma separated host:port. */
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** Partitions for topics this service creates (scale-out unit: one consumer per partition). */
  readonly partitions?: number;
  readonly log?: (level: 'error' | 'warn' | 'info', message: string, extra?: Record<string, unknown>) => void;
  /** How long subscribe() waits for the consumer to join its group. */
  readonly joinTimeoutMs?: number;
}

/**
 * kafkajs behind the bus port. The producer is idempotent with acks=all, so a retried send is not
 * duplicated by the broker. Consumers run one message at a time per partition (key order) and
 * commit only after the handler resolved; the consumer runner makes sure handlers do not throw on
 * bad input (they dead-letter it), so one poison message never blocks a partition.
 */
export class KafkaBus implements MessageBus {
  readonly kind = 'kafka';
  readonly location: string;
  private readonly kafka: Kafka;
  private producer?: Promise<Producer>;
  private admin?: Promise<Admin>;
  private readonly consumers = new Set<Consumer>();
  private readonly created = new Set<string>();

  constructor(private readonly config: KafkaBusConfig) {
    this.location = config.brokers.join(',');
    const log = config.log;
    this.kafka = new Kafka({
      clientId: config.clientId,
      brokers: [...config.brokers],
      connectionTimeout: 5_000,
      requestTimeout: 30_000,
      retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5_000 },
      logLevel: logLevel.WARN,
      logCreator:
        () =>
        ({ level, log: entry }: LogEntry) => {
          if (!log) return;
          const { message, ...extra } = entry;
          log(level === logLevel.ERROR ? 'error' : level === logLevel.WARN ? 'warn' : 'info', `kafkajs: ${message}`, extra);
        },
    });
  }

  async ensureTopics(topics: readonly string[]): Promise<void> {
    const missing = topics.filter((t) => !this.created.has(t));
    if (missing.length === 0) return;
    const admin = await this.connectedAdmin();
    const existing = new Set(await admin.listTopics());
    const toCreate = missing.filter((t) => !existing.has(t));
    if (toCreate.length > 0) {
      try {
        await admin.createTopics({
          waitForLeaders: false,
          topics: toCreate.map((topic) => ({ topic, numPartitions: this.config.partitions ?? 3, replicationFactor: 1 })),
        });
      } catch (err) {
        // Another replica may have created them first; anything else surfaces below if leaders never appear.
        this.config.log?.('info', 'createTopics did not complete; checking the topics exist', { error: (err as Error).message });
      }
    }
    await this.waitForLeaders(admin, missing);
    missing.forEach((t) => this.created.add(t));
  }

  async publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    if (messages.length > BUS_LIMITS.publishBatchMax) {
      throw new RangeError(`publish of ${messages.length} messages; the limit is ${BUS_LIMITS.publishBatchMax}`);
    }
    const producer = await this.connectedProducer();
    await producer.send({
      topic,
      acks: -1,
      messages: messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers ?? {} })),
    });
  }

  async subscribe(options: SubscribeOptions): Promise<ConsumerHandle> {
    const consumer = this.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
      retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 5_000 },
    });
    this.consumers.add(consumer);
    const joined = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`consumer group ${options.groupId} did not join within ${this.config.joinTimeoutMs ?? 30_000} ms`)),
        this.config.joinTimeoutMs ?? 30_000,
      );
      const off = consumer.on(consumer.events.GROUP_JOIN, () => {
        clearTimeout(timer);
        off();
        resolve();
      });
    });
    // kafkajs stops a consumer for good on a non-retriable error (and restarts it on a retriable one):
    // remember which, so readiness can say a consumer no longer consumes.
    let status: ConsumerStatus = { state: 'running', detail: 'ok' };
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      const error = payload.error?.message ?? String(payload.error);
      status = payload.restart ? { state: 'retrying', detail: `restarting after: ${error}` } : { state: 'crashed', detail: `crashed: ${error}` };
    });
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (status.state === 'retrying') status = { state: 'running', detail: 'ok' };
    });
    consumer.on(consumer.events.STOP, () => {
      if (status.state !== 'crashed') status = { state: 'stopped', detail: 'stopped' };
    });
    await this.ensureTopics(options.topics);
    await consumer.connect();
    await consumer.subscribe({ topics: [...options.topics], fromBeginning: options.fromBeginning ?? true });
    await consumer.run({
      autoCommit: true,
      autoCommitInterval: 500,
      partitionsConsumedConcurrently: 1,
      eachMessage: async ({ topic, partition, message }) => {
        await options.handle({
          topic,
          partition,
          offset: message.offset,
          key: message.key?.toString('utf8') ?? '',
          value: message.value ?? Buffer.alloc(0),
          headers: decodeHeaders(message.headers),
        });
      },
    });
    await joined;
    return {
      status: () => status,
      stop: async () => {
        this.consumers.delete(consumer);
        await consumer.disconnect();
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((c) => c.disconnect()));
    this.consumers.clear();
    if (this.producer) await (await this.producer).disconnect();
    if (this.admin) await (await this.admin).disconnect();
  }

  /**
   * kafkajs's own waitForLeaders can fail with "does not host this topic-partition" while a new
   * topic propagates; poll the metadata instead, bounded in time.
   */
  private async waitForLeaders(admin: Admin, topics: readonly string[], timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError = 'no metadata yet';
    while (Date.now() < deadline) {
      try {
        const { topics: described } = await admin.fetchTopicMetadata({ topics: [...topics] });
        const ready = described.length === topics.length && described.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0));
        if (ready) return;
        lastError = 'partitions without a leader';
      } catch (err) {
        lastError = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`topics ${topics.join(', ')} have no leaders after ${timeoutMs} ms (${lastError}) on ${this.location}`);
  }

  private connectedProducer(): Promise<Producer> {
    this.producer ??= (async () => {
      const producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await producer.connect();
      return producer;
    })();
    return this.producer;
  }

  private connectedAdmin(): Promise<Admin> {
    this.admin ??= (async () => {
      const admin = this.kafka.admin();
      await admin.connect();
      return admin;
    })();
    return this.admin;
  }
}

function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[name] = first.toString();
  }
  return out;
}
