import { Admin, Consumer, IHeaders, Kafka, KafkaConfig, KafkaMessage, logLevel, LogEntry, Producer, SASLOptions } from 'kafkajs';
import { compressionType, KafkaCompression, registerKafkaCodecs, UNDECODABLE_CONTINUATION, UNDECODABLE_HEADER, UndecodableBatch } from './kafka-codecs';
import { DEFAULT_KAFKA_COMPRESSION, KafkaSaslConfig, KafkaTlsConfig } from './kafka-config';
import { BUS_LIMITS, ConsumerHandle, ConsumerStatus, MessageBus, OutgoingMessage, SubscribeOptions, TransportMessage } from './port';

export interface KafkaBusConfig {
  /** KAFKA_BROKERS, comma separated host:port. */
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** Partitions for topics this service creates (scale-out unit: one consumer per partition). */
  readonly partitions?: number;
  readonly log?: (level: 'error' | 'warn' | 'info', message: string, extra?: Record<string, unknown>) => void;
  /** How long subscribe() waits for the consumer to join its group. */
  readonly joinTimeoutMs?: number;
  /** KAFKA_COMPRESSION: codec of what this bus produces (default gzip). Every codec is consumed. */
  readonly compression?: KafkaCompression;
  /** KAFKA_CREATE_TOPICS (default true); false only checks that the topics exist. */
  readonly createTopics?: boolean;
  /** KAFKA_REPLICATION_FACTOR for topics this service creates (default 1). */
  readonly replicationFactor?: number;
  readonly tls?: KafkaTlsConfig;
  readonly sasl?: KafkaSaslConfig;
  /** Called for each batch a consumer could not decode (after it is handed on to be dead-lettered). */
  readonly onUndecodable?: (batch: UndecodableBatch & { groupId: string; topic: string; partition: number }) => void;
  /** Called when a consumer crashes (it restarts; readiness reports it until it rejoins). */
  readonly onConsumerCrash?: (groupId: string, error: Error) => void;
}

/** A consumer that crashed on a non-transient error is reported until this long without another crash. */
const CRASH_QUIET_MS = 60_000;

/**
 * kafkajs behind the bus port. The producer is idempotent with acks=all, so a retried send is not
 * duplicated by the broker. Consumers run one message (`handle`, eachMessage) or one fetched batch
 * (`handleBatch`, eachBatch) at a time per partition (key order) and commit only what the handler
 * resolved; the consumer runner makes sure handlers do not throw on
 * bad input (they dead-letter it), so one poison message never blocks a partition.
 * Every codec (none, gzip, snappy, lz4, zstd) is consumed (kafka-codecs.ts); a batch that cannot be
 * decoded reaches the handler as one message flagged `undecodable` carrying the raw batch bytes.
 */
export class KafkaBus implements MessageBus {
  readonly kind = 'kafka';
  readonly location: string;
  private readonly kafka: Kafka;
  private producer?: Promise<Producer>;
  private admin?: Promise<Admin>;
  private readonly consumers = new Set<Consumer>();
  private readonly created = new Set<string>();
  /**
   * Consumer groups whose consumer crashed: readiness reports them. A transient (retriable) crash is
   * over when the group is rejoined; any other (an undecodable batch the guard could not skip...)
   * only when a message is handled again or after CRASH_QUIET_MS without another crash, so a
   * consumer that rejoins and crashes again on the same batch stays reported.
   */
  private readonly crashed = new Map<string, { error: string; at: number; transient: boolean }>();

  constructor(private readonly config: KafkaBusConfig) {
    registerKafkaCodecs();
    this.location = config.brokers.join(',');
    const log = config.log;
    this.kafka = new Kafka({
      clientId: config.clientId,
      brokers: [...config.brokers],
      ...securityOptions(config),
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
    if (toCreate.length > 0 && this.config.createTopics === false) {
      throw new Error(`topics ${toCreate.join(', ')} do not exist on ${this.location}; KAFKA_CREATE_TOPICS=false, so create them first (or set KAFKA_CREATE_TOPICS=true)`);
    }
    if (toCreate.length > 0) {
      try {
        await admin.createTopics({
          waitForLeaders: false,
          topics: toCreate.map((topic) => ({ topic, numPartitions: this.config.partitions ?? 3, replicationFactor: this.config.replicationFactor ?? 1 })),
        });
      } catch (err) {
        // kafkajs already treats "all exist" (another replica won the race) as success. A refusal
        // such as INVALID_REPLICATION_FACTOR is a setting to fix: say which, instead of waiting.
        const causes = (err as { errors?: { type?: string; message?: string }[] }).errors ?? [err as { type?: string; message?: string }];
        const refused = causes.filter((c) => c.type !== undefined && c.type !== 'TOPIC_ALREADY_EXISTS');
        if (refused.length > 0) {
          const detail = [...new Set(refused.map((c) => `${c.type}: ${c.message}`))].join('; ');
          throw new Error(
            `could not create topics ${toCreate.join(', ')} on ${this.location}: ${detail} ` +
              `(KAFKA_PARTITIONS=${this.config.partitions ?? 3}, KAFKA_REPLICATION_FACTOR=${this.config.replicationFactor ?? 1}; ` +
              'or pre-create them and set KAFKA_CREATE_TOPICS=false)',
          );
        }
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
      compression: compressionType(this.config.compression ?? DEFAULT_KAFKA_COMPRESSION),
      messages: messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers ?? {} })),
    });
  }

  async subscribe(options: SubscribeOptions): Promise<ConsumerHandle> {
    if (!options.handle === !options.handleBatch) throw new Error(`subscribe of ${options.groupId}: give either handle or handleBatch`);
    const consumer = this.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
      retry: {
        retries: 10,
        initialRetryTime: 200,
        maxRetryTime: 5_000,
        // kafkajs gives up on non-retriable errors (an undecodable batch among them) and the consumer
        // stops silently; restart instead, and report not-ready until it has rejoined.
        restartOnFailure: async () => true,
      },
    });
    this.consumers.add(consumer);
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      const error = payload.error as Error;
      const transient = (error as { retriable?: boolean }).retriable === true;
      this.crashed.set(options.groupId, { error: error.message, at: Date.now(), transient });
      this.config.onConsumerCrash?.(options.groupId, error);
      this.config.log?.('error', 'Kafka consumer crashed; restarting', { consumerGroup: options.groupId, error: error.message, restart: payload.restart });
    });
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (this.crashed.get(options.groupId)?.transient) this.crashed.delete(options.groupId);
    });
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
    /** The message as the port hands it on, or undefined for the rest of an undecodable batch (already handed on). */
    const toTransport = (topic: string, partition: number, message: KafkaMessage): TransportMessage | undefined => {
      const marker = message.headers?.[UNDECODABLE_HEADER];
      let undecodable: string | undefined;
      if (marker !== undefined) {
        const text = (Array.isArray(marker) ? marker[0] : marker)?.toString() ?? '';
        if (text === UNDECODABLE_CONTINUATION) return undefined;
        const batch = JSON.parse(text) as UndecodableBatch;
        undecodable = `${batch.reason} (batch of ${batch.records} records from offset ${batch.firstOffset})`;
        this.config.log?.('error', 'Kafka batch could not be decoded; dead-lettering its raw bytes', { consumerGroup: options.groupId, topic, partition, ...batch });
        this.config.onUndecodable?.({ ...batch, groupId: options.groupId, topic, partition });
      }
      return {
        ...(undecodable === undefined ? {} : { undecodable }),
        topic,
        partition,
        offset: message.offset,
        key: message.key?.toString('utf8') ?? '',
        value: message.value ?? Buffer.alloc(0),
        headers: decodeHeaders(message.headers),
      };
    };
    const { handle, handleBatch } = options;
    const run = async () => {
    if (handleBatch) {
      await consumer.run({
        autoCommit: true,
        autoCommitInterval: 500,
        partitionsConsumedConcurrently: 1,
        // Offsets are resolved only for what the handler says is durable (control.commit, or the
        // whole batch when it resolves); what is left unresolved is fetched again.
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
          const messages: TransportMessage[] = [];
          for (const message of batch.messages) {
            const transport = toTransport(batch.topic, batch.partition, message);
            if (transport) messages.push(transport);
          }
          let committed = 0;
          const commit = async (count: number) => {
            if (count <= committed) return;
            if (count > messages.length) throw new RangeError(`commit of ${count} messages; the batch has ${messages.length}`);
            committed = count;
            resolveOffset(count === messages.length ? batch.lastOffset() : messages[count - 1].offset);
            await commitOffsetsIfNecessary();
            this.crashed.delete(options.groupId);
          };
          if (messages.length > 0) {
            await handleBatch(messages, { heartbeat, isActive: () => isRunning() && !isStale(), commit });
          }
          await commit(messages.length);
          if (messages.length === 0) resolveOffset(batch.lastOffset());
        },
      });
    } else if (handle) {
      await consumer.run({
        autoCommit: true,
        autoCommitInterval: 500,
        partitionsConsumedConcurrently: 1,
        eachMessage: async ({ topic, partition, message }) => {
          const transport = toTransport(topic, partition, message);
          if (!transport) return; // the rest of a batch already handed on
          await handle(transport);
          this.crashed.delete(options.groupId);
        },
      });
    }
    };
    // kafkajs restarts a consumer only after a retriable error; after a non-retriable one (e.g.
    // "Failed to find group coordinator" once its retries ran out while the broker restarted) the
    // consumer stays stopped for good. Start it again, with backoff, until it runs or is stopped.
    let stopping = false;
    const restartAfterCrash = (attempt: number) => {
      setTimeout(async () => {
        if (stopping) return;
        try {
          await consumer.disconnect().catch(() => undefined);
          if (stopping) return;
          await consumer.connect();
          await consumer.subscribe({ topics: [...options.topics], fromBeginning: options.fromBeginning ?? true });
          await run();
          this.config.log?.('warn', 'Kafka consumer started again after a crash kafkajs would not restart', { consumerGroup: options.groupId, attempt });
        } catch (err) {
          this.config.log?.('error', 'Kafka consumer could not be started again; will retry', { consumerGroup: options.groupId, attempt, error: (err as Error).message });
          restartAfterCrash(attempt + 1);
        }
      }, Math.min(30_000, 1_000 * 2 ** Math.min(attempt, 5)));
    };
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart && !stopping) restartAfterCrash(0);
    });
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (status.state === 'crashed') status = { state: 'running', detail: 'ok' };
    });
    await run();
    await joined;
    return {
      status: () => status,
      stop: async () => {
        stopping = true;
        this.consumers.delete(consumer);
        await consumer.disconnect();
      },
    };
  }

  /** Problems readiness should report: consumers that crashed and have not rejoined. */
  health(): Record<string, string> {
    const checks: Record<string, string> = {};
    for (const [group, crash] of this.crashed) {
      if (Date.now() - crash.at > CRASH_QUIET_MS) continue;
      checks[`kafka-consumer:${group}`] = `crashed, restarting: ${crash.error}`;
    }
    return checks;
  }

  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((c) => c.disconnect()));
    this.consumers.clear();
    if (this.producer) await (await this.producer).disconnect();
    if (this.admin) await (await this.admin).disconnect();
  }

  async consumerLag(groupId: string, topics: readonly string[]): Promise<number> {
    const admin = await this.connectedAdmin();
    let lag = 0;
    for (const topic of topics) {
      const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
      const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
      for (const end of ends) {
        const at = done.get(end.partition);
        // -1: nothing committed yet, so everything from the low watermark is still to read.
        const from = at === undefined || at < 0n ? BigInt(end.low) : at;
        const behind = BigInt(end.high) - from;
        if (behind > 0n) lag += Number(behind);
      }
    }
    return lag;
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

function securityOptions(config: KafkaBusConfig): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const out: { ssl?: KafkaConfig['ssl']; sasl?: SASLOptions } = {};
  if (config.tls) {
    const { ca, cert, key, keyPassphrase, servername } = config.tls;
    // No ca: Node's bundled/system CAs (a managed cluster's public certificate).
    out.ssl = { rejectUnauthorized: true, ...(ca ? { ca: [ca] } : {}), ...(cert ? { cert, key, passphrase: keyPassphrase } : {}), ...(servername ? { servername } : {}) };
  }
  const sasl = config.sasl;
  if (sasl) {
    switch (sasl.mechanism) {
      case 'plain':
      case 'scram-sha-256':
      case 'scram-sha-512':
        out.sasl = { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } as SASLOptions;
        break;
      case 'oauthbearer': {
        const token = sasl.token;
        out.sasl = { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: token() }) };
        break;
      }
      default: {
        const exhaustive: never = sasl;
        throw new Error(`unknown SASL mechanism ${String(exhaustive)}`);
      }
    }
  }
  return out;
}

function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined || name === UNDECODABLE_HEADER) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[name] = first.toString();
  }
  return out;
}
