import { Clock, systemClock } from '@backstop/kernel';
import { EventStore, SubscriptionHandle, openEventStore, startCatchUpSubscription } from '@backstop/event-store';
import {
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

const COMMAND_TOPICS: Record<ServiceName, TopicName> = {
  'contract-intake': TOPICS.intakeCommands,
  'premium-pricing': TOPICS.pricingCommands,
  'margin-monitor': TOPICS.marginCommands,
  'default-settlement': TOPICS.settlementCommands,
};

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
      processed: this.store,
      logger: this.logger.child({ component: 'command-consumer', service }),
      metrics: this.metrics,
      accepts: (type) => this.commands.definitionsFor(service).some((d) => d.type === type),
      handle: async (envelope) => {
        const reply = await this.commands.execute(envelope);
        await this.publishReply(envelope, reply);
        return JSON.stringify(reply);
      },
      // A redelivered command gets its reply again: the client may have missed the first one.
      onDuplicate: (envelope, stored) => this.publishReply(envelope, JSON.parse(stored) as CommandReply),
    });
    this.running.push(handle);
  }

  private async startConsumer(definition: ConsumerDefinition): Promise<void> {
    const groupId = `${definition.service}.${definition.name}`;
    const types = new Set(definition.types);
    const fromStore = this.config.mode === 'single-process' && definition.topics.every((t) => EVENT_TOPICS.has(t));
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
