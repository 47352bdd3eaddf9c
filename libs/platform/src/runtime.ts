import { Clock, systemClock } from '@backstop/kernel';
import { DuplicateEventIdError, EventStore, NewEvent, StoredEvent, SubscriptionHandle, openEventStore, startCatchUpSubscription } from '@backstop/event-store';
import {
  DeadLetter,
  isRetryable,
  encodeEnvelope,
  Envelope,
  InProcessBus,
  KafkaBus,
  makeEnvelope,
  MessageBus,
  startConsumer,
  TOPICS,
  TopicName,
  TopicNames,
} from '@backstop/messaging';
import { currentTraceCarrier, Logger, MetricsRegistry, createLogger } from '@backstop/telemetry';
import { TokenRegistry, tokensFromEnv } from './auth';
import { CommandBus, CommandReply } from './commands';
import { RuntimeConfig, ServiceName } from './config';
import { withFaultInjection } from './fault-injection';
import { startEventPublisher } from './publisher';
import { eventEnvelope, ownerOf } from './streams';
import { deterministicUuid } from './ids';

const COMMAND_TOPICS: Record<ServiceName, TopicName> = {
  'contract-intake': TOPICS.intakeCommands,
  'premium-pricing': TOPICS.pricingCommands,
  'margin-monitor': TOPICS.marginCommands,
  'default-settlement': TOPICS.settlementCommands,
};

/** For the command consumer: no message-id record of its own (CommandBus keeps id → body → reply). */
const PIPELINE_DEDUPES = {
  findProcessed: async (): Promise<string | undefined> => undefined,
  recordProcessed: async (): Promise<void> => undefined,
};

/**
 * Single-process inboxes: market data and credit updates taken over HTTP are appended here before
 * they are acknowledged (an in-memory queue would lose them on a crash), and the input consumers
 * read them from the store like events. Not a service's stream: no owner, never published.
 */
const INBOX_STREAMS: Partial<Record<TopicName, string>> = {
  [TOPICS.marketMarks]: 'inbox-market-marks',
  [TOPICS.creditScores]: 'inbox-credit-scores',
};
/** A handler that keeps failing on one inbox message is retried this often, then dead-lettered. */
const INBOX_ATTEMPTS_MAX = 3;

const EVENT_TOPICS = new Set<TopicName>([TOPICS.intakeEvents, TOPICS.pricingEvents, TOPICS.marginEvents, TOPICS.settlementEvents]);

/** A consumer of events or market/credit input, written once and fed by Kafka or by the store. */
export interface ConsumerDefinition {
  /** Unique per service: the consumer group / checkpoint name. */
  readonly name: string;
  readonly service: ServiceName;
  readonly topics: readonly TopicName[];
  readonly types: readonly string[];
  readonly handle: (envelope: Envelope) => Promise<void>;
}

/**
 * Time-driven work (premium charging, margin-call deadlines, expiries): runs every `everyMs` of real
 * time while the runtime is started, with `now` from the injected clock, so a test or a replay that
 * moves a manual clock and calls runtime.tick() gets the same decisions at the same instants.
 */
export interface TickerDefinition {
  readonly name: string;
  readonly service: ServiceName;
  readonly everyMs: number;
  readonly handle: (nowIso: string) => Promise<void>;
}

export interface Readiness {
  readonly ready: boolean;
  readonly checks: Record<string, string>;
}

/**
 * Everything a service needs at run time: store, bus, clock, telemetry, the command pipeline and the
 * consumers. Service modules register into it; start() wires each consumer to its source:
 * distributed → Kafka topics; single-process → event topics straight from the store (durable
 * catch-up subscriptions) and input topics from the in-process bus.
 */
export class Runtime {
  readonly commands: CommandBus;
  readonly topics: TopicNames;
  /** Bearer tokens and their roles (BACKSTOP_TOKENS, or generated dev tokens). */
  readonly auth: TokenRegistry;
  readonly authGenerated: boolean;
  private readonly consumers: ConsumerDefinition[] = [];
  private readonly tickers: TickerDefinition[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private ticking: Promise<void> = Promise.resolve();
  private readonly running: { stop(): Promise<void> }[] = [];
  private readonly subscriptions: SubscriptionHandle[] = [];
  private started = false;
  /**
   * starting: HTTP is bound (liveness answers) while consumers join their groups and store-fed
   * subscriptions catch up; running: ready; stopping: SIGTERM received, no new work is taken.
   */
  private phase: 'created' | 'starting' | 'running' | 'stopping' = 'created';

  constructor(
    readonly config: RuntimeConfig,
    readonly store: EventStore,
    readonly bus: MessageBus,
    readonly logger: Logger,
    readonly metrics: MetricsRegistry,
    readonly clock: Clock,
  ) {
    this.topics = new TopicNames(config.topicPrefix);
    const { principals, generated } = tokensFromEnv();
    this.auth = new TokenRegistry(principals);
    this.authGenerated = generated;
    this.commands = new CommandBus(store, logger.child({ component: 'commands' }), metrics, () => clock.now());
  }

  static create(config: RuntimeConfig, overrides: { clock?: Clock; logger?: Logger; bus?: MessageBus; store?: EventStore } = {}): Runtime {
    const logger = overrides.logger ?? createLogger({ services: config.services.join(',') });
    const clock = overrides.clock ?? systemClock;
    const store = withFaultInjection(
      overrides.store ?? openEventStore({ connectionString: config.eventStoreConnectionString, postgresUrl: config.postgresUrl, postgresSchema: config.postgresSchema, dataFile: config.dataFile }, clock),
      process.env.BACKSTOP_FAULT_KILL_AFTER,
      (message) => logger.warn(message),
    );
    const metrics = new MetricsRegistry();
    const undecodable = metrics.counter('backstop_kafka_undecodable_batches_total', 'Kafka batches a consumer could not decode, dead-lettered with their raw bytes');
    const crashes = metrics.counter('backstop_kafka_consumer_crashes_total', 'Kafka consumer crashes (each restarts; readiness fails until it rejoins)');
    const kafka = config.kafka;
    const bus =
      overrides.bus ??
      (config.mode === 'distributed'
        ? new KafkaBus({
            brokers: config.kafkaBrokers ?? [],
            clientId: kafka?.clientId ?? `backstop-${config.services.join('-')}`,
            partitions: config.kafkaPartitions,
            compression: kafka?.compression,
            createTopics: kafka?.createTopics,
            replicationFactor: kafka?.replicationFactor,
            tls: kafka?.tls,
            sasl: kafka?.sasl,
            onUndecodable: (batch) => undecodable.inc({ topic: batch.topic, codec: batch.codec, consumer_group: batch.groupId }),
            onConsumerCrash: (groupId) => crashes.inc({ consumer_group: groupId }),
            log: (level, message, extra) => logger[level](message, extra),
          })
        : new InProcessBus());
    return new Runtime(config, store, bus, logger, metrics, clock);
  }

  registerConsumer(definition: ConsumerDefinition): void {
    if (this.started) throw new Error(`consumer ${definition.name} registered after start`);
    this.consumers.push(definition);
  }

  registerTicker(definition: TickerDefinition): void {
    if (this.started) throw new Error(`ticker ${definition.name} registered after start`);
    this.tickers.push(definition);
  }

  /** Runs every ticker once, now, in registration order (serialised with the timers). */
  tick(): Promise<void> {
    const run = this.ticking.then(async () => {
      const nowIso = this.clock.now().toISOString();
      for (const ticker of this.tickers) {
        try {
          await ticker.handle(nowIso);
        } catch (err) {
          this.logger.error('ticker failed', { ticker: ticker.name, error: (err as Error).message });
        }
      }
    });
    this.ticking = run;
    return run;
  }

  /** Publish a reply on backstop.replies (key = command id). */
  async publishReply(command: Envelope, reply: CommandReply): Promise<void> {
    const envelope = makeEnvelope({
      type: reply.status === 'ACCEPTED' ? 'CommandAccepted' : 'CommandRejected',
      key: command.id,
      time: this.clock.now().toISOString(),
      correlationId: command.correlationId,
      causationId: command.id,
      ...currentTraceCarrier(),
      payload: reply,
    });
    await this.bus.publish(this.topics.of(TOPICS.replies), [encodeEnvelope(envelope)]);
  }

  /** False while starting or stopping: HTTP refuses new /v1 work with 503 then (see bootstrap). */
  get acceptingWork(): boolean {
    return this.phase === 'running';
  }

  /** SIGTERM: report not ready and refuse new work at once; stop() then drains and closes. */
  beginShutdown(): void {
    this.phase = 'stopping';
  }

  /**
   * Takes input envelopes (MarkPrice, CreditScore) and resolves once they are durable: appended to
   * the store's inbox in the single-process mode, acknowledged by the broker (acks=all) on Kafka.
   * Only then may the HTTP endpoint acknowledge them.
   */
  async acceptInputs(topic: TopicName, envelopes: readonly Envelope[]): Promise<void> {
    const inbox = INBOX_STREAMS[topic];
    if (this.config.mode !== 'single-process' || !inbox) {
      await this.bus.publish(this.topics.of(topic), envelopes.map((e) => encodeEnvelope(e)));
      return;
    }
    const unique = new Map<string, NewEvent>();
    for (const envelope of envelopes) {
      // The event id derives from the message id: a retried post is stored once (the store dedupes ids).
      unique.set(envelope.id, { id: deterministicUuid(inbox, envelope.id), type: envelope.type, data: { envelope: { ...envelope } } });
    }
    const events = [...unique.values()];
    try {
      await this.store.append(inbox, events, 'any');
    } catch (err) {
      // Part of the batch was stored before (a retry after a lost answer): store the rest one by one.
      if (!(err instanceof DuplicateEventIdError)) throw err;
      for (const event of events) await this.store.append(inbox, [event], 'any');
    }
  }

  async start(): Promise<void> {
    this.started = true;
    this.phase = 'starting';
    await this.bus.ensureTopics(this.topics.all());
    for (const service of this.config.services) await this.startCommandConsumer(service);
    for (const consumer of this.consumers) await this.startConsumer(consumer);
    this.subscriptions.push(
      await startEventPublisher({
        store: this.store,
        bus: this.bus,
        topics: this.topics,
        services: this.config.services,
        logger: this.logger.child({ component: 'publisher' }),
        metrics: this.metrics,
      }),
    );
    // Views rebuild from the store before the service takes work (HTTP is already bound, and
    // readiness says "starting" meanwhile); a subscription that keeps failing does not block
    // start-up: readiness reports it as retrying instead.
    for (const s of this.subscriptions) {
      while (!s.caughtUp() && !s.lastError() && this.phase === 'starting') await new Promise((resolve) => setTimeout(resolve, 25));
    }
    for (const ticker of this.tickers) {
      const timer = setInterval(() => void this.tickOne(ticker), Math.max(ticker.everyMs, 100));
      timer.unref();
      this.timers.push(timer);
    }
    if (this.phase === 'starting') this.phase = 'running';
    this.logger.info('runtime started', {
      mode: this.config.mode,
      store: `${this.store.kind} (${this.store.location})`,
      bus: `${this.bus.kind} (${this.bus.location})`,
      consumers: this.consumers.map((c) => c.name),
    });
  }

  private tickOne(ticker: TickerDefinition): Promise<void> {
    const run = this.ticking.then(() =>
      ticker.handle(this.clock.now().toISOString()).catch((err: Error) => this.logger.error('ticker failed', { ticker: ticker.name, error: err.message })),
    );
    this.ticking = run;
    return run;
  }

  private async startCommandConsumer(service: ServiceName): Promise<void> {
    const handle = await startConsumer({
      bus: this.bus,
      groupId: this.topics.group(`${service}.commands`),
      topics: [this.topics.of(COMMAND_TOPICS[service])],
      dlqTopic: this.topics.of(TOPICS.dlq),
      // The command pipeline dedupes by command id AND body itself (a reused id with another body is
      // an idempotencyConflict, as over HTTP); a dedupe by message id here would answer it with the
      // first body's reply. So every delivery goes through the pipeline, and a redelivered command
      // gets its stored reply again (the client may have missed the first one).
      processed: PIPELINE_DEDUPES,
      logger: this.logger.child({ component: 'command-consumer', service }),
      metrics: this.metrics,
      accepts: (type) => this.commands.definitionsFor(service).some((d) => d.type === type),
      handle: async (envelope) => {
        const reply = await this.commands.execute(envelope);
        await this.publishReply(envelope, reply);
      },
    });
    this.running.push(handle);
  }

  private async startConsumer(definition: ConsumerDefinition): Promise<void> {
    const groupId = `${definition.service}.${definition.name}`;
    const types = new Set(definition.types);
    const single = this.config.mode === 'single-process';
    const inboxes = single ? definition.topics.map((t) => INBOX_STREAMS[t]).filter((s): s is string => s !== undefined) : [];
    if (inboxes.length > 0) await this.startInboxConsumer(definition, groupId, new Set(inboxes), types);
    const fromStore = single && definition.topics.every((t) => EVENT_TOPICS.has(t));
    if (fromStore) {
      this.subscriptions.push(
        await startCatchUpSubscription(this.store, {
          name: groupId,
          handle: async (event) => {
            const owner = ownerOf(event.stream);
            if (!owner || !definition.topics.includes(owner.topic) || !types.has(event.type)) return;
            await definition.handle(eventEnvelope(event));
          },
          onError: (error, event, attempt) =>
            this.logger.error('event handler failed; retrying', { consumer: groupId, eventId: event.id, attempt, error: (error as Error).message }),
        }),
      );
      return;
    }
    const handle = await startConsumer({
      bus: this.bus,
      groupId: this.topics.group(groupId),
      topics: definition.topics.map((t) => this.topics.of(t)),
      dlqTopic: this.topics.of(TOPICS.dlq),
      processed: this.store,
      logger: this.logger.child({ component: 'consumer', consumer: groupId }),
      metrics: this.metrics,
      // Event topics carry every type of their service; a consumer simply ignores the ones it does not need.
      accepts: (type) => types.has(type) || definition.topics.some((t) => EVENT_TOPICS.has(t)),
      handle: async (envelope) => {
        if (types.has(envelope.type)) await definition.handle(envelope);
      },
    });
    this.running.push(handle);
  }

  /**
   * Single-process input consumers also read the store's inbox (what HTTP acknowledged). A message
   * the handler keeps failing on is dead-lettered after INBOX_ATTEMPTS_MAX attempts so it cannot
   * stall the marks behind it; a store or broker outage is retried until it passes.
   */
  private async startInboxConsumer(definition: ConsumerDefinition, groupId: string, inboxes: ReadonlySet<string>, types: ReadonlySet<string>): Promise<void> {
    const attempts = new Map<string, number>();
    this.subscriptions.push(
      await startCatchUpSubscription(this.store, {
        name: `${groupId}.inbox`,
        handle: async (event) => {
          if (!inboxes.has(event.stream) || !types.has(event.type)) return;
          const envelope = (event.data as { envelope: Envelope }).envelope;
          try {
            await definition.handle(envelope);
            attempts.delete(event.id);
          } catch (err) {
            const attempt = (attempts.get(event.id) ?? 0) + 1;
            attempts.set(event.id, attempt);
            if (isRetryable(err) || attempt < INBOX_ATTEMPTS_MAX) throw err;
            attempts.delete(event.id);
            await this.deadLetterInbox(event, groupId, `${(err as Error).message ?? String(err)} (after ${attempt} attempts)`);
          }
        },
        retryBackoffMsMax: 1_000,
        onError: (error, event, attempt) =>
          this.logger.warn('inbox handler failed; retrying', { consumer: groupId, eventId: event.id, attempt, error: (error as Error).message }),
      }),
    );
  }

  private async deadLetterInbox(event: StoredEvent, groupId: string, detail: string): Promise<void> {
    const original = Buffer.from(JSON.stringify((event.data as { envelope: unknown }).envelope));
    const record: DeadLetter = {
      reason: 'HANDLER_FAILED',
      detail,
      consumerGroup: groupId,
      source: { topic: event.stream, partition: 0, offset: event.position.toString(), key: event.type, headers: {} },
      originalBase64: original.toString('base64'),
      deadLetteredAt: this.clock.now().toISOString(),
    };
    await this.bus.publish(this.topics.of(TOPICS.dlq), [{ key: event.id, value: JSON.stringify(record), headers: { 'dlq-reason': record.reason, 'original-topic': event.stream } }]);
    this.logger.warn('inbox message dead-lettered', { consumer: groupId, eventId: event.id, detail });
  }

  /** Position every store-fed subscription has reached (tests and readiness). */
  async waitForSubscriptions(position: bigint, timeoutMs: number): Promise<void> {
    await Promise.all(this.subscriptions.map((s) => s.waitFor(position, timeoutMs)));
  }

  async readiness(): Promise<Readiness> {
    const checks: Record<string, string> = {};
    try {
      await this.store.loadCheckpoint('readiness-probe');
      checks.store = 'ok';
    } catch (err) {
      checks.store = `unavailable: ${(err as Error).message}`;
    }
    checks.started = this.phase === 'running' ? 'ok' : this.phase === 'stopping' ? 'stopping' : 'starting';
    Object.assign(checks, this.bus.health?.() ?? {});
    for (const s of this.subscriptions) {
      const error = s.lastError();
      if (error) checks[`subscription:${s.name}`] = `retrying: ${(error as Error).message}`;
      // Not ready until each store-fed view has read to the end of the store once: a pod that
      // rebuilds its views at start-up must not answer reads from half a history.
      else if (!s.caughtUp()) checks[`subscription:${s.name}`] = `catching up (at ${s.position()})`;
    }
    return { ready: Object.values(checks).every((v) => v === 'ok'), checks };
  }

  async stop(): Promise<void> {
    this.phase = 'stopping';
    this.timers.splice(0).forEach((t) => clearInterval(t));
    await this.ticking;
    for (const s of this.subscriptions.splice(0)) await s.stop();
    for (const r of this.running.splice(0)) await r.stop().catch(() => undefined);
    await this.bus.close();
    await this.store.close();
    this.logger.info('runtime stopped');
  }
}
