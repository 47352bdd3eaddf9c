import { createHash } from 'node:crypto';
import { Clock, systemClock } from '@backstop/kernel';
import { EventStore, SubscriptionHandle, openEventStore, startCatchUpSubscription, verifyChains } from '@backstop/event-store';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import {
  encodeEnvelope,
  Envelope,
  classifyError,
  FieldViolation,
  flattenValidationErrors,
  RunnerHandle,
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
import { INPUT_SCHEMAS } from './inputs';

/** Input topics and the schema every message on them must meet (the HTTP input endpoints check the same). */
const INPUT_TOPIC_SCHEMAS: Partial<Record<TopicName, Record<string, new () => object>>> = {
  [TOPICS.marketMarks]: { MarkPrice: INPUT_SCHEMAS.MarkPrice },
  [TOPICS.creditScores]: { CreditScore: INPUT_SCHEMAS.CreditScore },
};

/** A schema-invalid input is the message's fault: the runner dead-letters it at once (never retried). */
function inputViolations(topics: readonly TopicName[], envelope: Envelope): FieldViolation[] {
  const schema = topics.map((t) => INPUT_TOPIC_SCHEMAS[t]?.[envelope.type]).find((s) => s !== undefined);
  if (!schema) return [];
  if (envelope.schemaVersion !== 1) {
    return [{ field: 'schemaVersion', rule: 'supportedVersion', message: `${envelope.type} schema version ${envelope.schemaVersion} is not supported (supported: 1)` }];
  }
  const payload = plainToInstance(schema, envelope.payload);
  return flattenValidationErrors(validateSync(payload, { whitelist: true, forbidNonWhitelisted: true })).map((v) => ({ ...v, field: `payload.${v.field}` }));
}

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
  private readonly running: RunnerHandle[] = [];
  private readonly subscriptions: SubscriptionHandle[] = [];
  private started = false;

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
      overrides.store ?? openEventStore({ connectionString: config.eventStoreConnectionString, dataFile: config.dataFile }, clock),
      process.env.BACKSTOP_FAULT_KILL_AFTER,
      (message) => logger.warn(message),
    );
    const bus =
      overrides.bus ??
      (config.mode === 'distributed'
        ? new KafkaBus({
            brokers: config.kafkaBrokers ?? [],
            clientId: `backstop-${config.services.join('-')}`,
            partitions: config.kafkaPartitions,
            log: (level, message, extra) => logger[level](message, extra),
          })
        : new InProcessBus());
    return new Runtime(config, store, bus, logger, new MetricsRegistry(), clock);
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

  async start(): Promise<void> {
    await this.verifyStore();
    this.started = true;
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
    for (const ticker of this.tickers) {
      const timer = setInterval(() => void this.tickOne(ticker), Math.max(ticker.everyMs, 100));
      timer.unref();
      this.timers.push(timer);
    }
    this.logger.info('runtime started', {
      mode: this.config.mode,
      store: `${this.store.kind} (${this.store.location})`,
      bus: `${this.bus.kind} (${this.bus.location})`,
      consumers: this.consumers.map((c) => c.name),
    });
  }

  /**
   * Refuses to start on a store whose hash chains do not verify (an altered, removed or undecodable
   * event): serving or booking from it would spread the damage. BACKSTOP_VERIFY_ON_START=off skips
   * it (e.g. to start a service for a forensic read); the message names the first broken event.
   */
  private async verifyStore(): Promise<void> {
    if (process.env.BACKSTOP_VERIFY_ON_START === 'off') return;
    const started = Date.now();
    const result = await verifyChains(this.store);
    const b = result.firstBreak;
    if (b) {
      throw new Error(
        `the event store ${this.store.kind} (${this.store.location}) does not verify: stream ${b.stream}, revision ${b.revision}, position ${b.position}, event ${b.eventId}: ${b.problem} — ${b.detail}. ` +
          'Run `npm run compliance -- verify` for the report; BACKSTOP_VERIFY_ON_START=off starts anyway',
      );
    }
    this.logger.info('event store verified', { events: result.eventsChecked, streams: result.streamsChecked, ms: Date.now() - started });
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
            const envelope = eventEnvelope(event);
            try {
              await definition.handle(envelope);
            } catch (err) {
              // As on Kafka: the event's own fault is dead-lettered with the reason and skipped; anything else is retried (and shows in readiness).
              if (classifyError(err) !== 'invalid') throw err;
              await this.deadLetterEvent(groupId, owner.topic, envelope, err as Error);
            }
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
      validate: (envelope) => inputViolations(definition.topics, envelope),
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

  /** A store-fed event its consumer refuses: on backstop.dlq (the in-process bus here) with the reason, like the runner's. */
  private async deadLetterEvent(groupId: string, topic: TopicName, envelope: Envelope, err: Error): Promise<void> {
    const value = encodeEnvelope(envelope).value;
    this.logger.warn('event dead-lettered', { consumer: groupId, eventId: envelope.id, type: envelope.type, reason: err.message });
    this.metrics.counter('backstop_messages_total', 'Messages consumed, by topic and outcome').inc({ topic: this.topics.of(topic), outcome: 'dead_letter_handler_rejected' });
    await this.bus.publish(this.topics.of(TOPICS.dlq), [
      {
        key: envelope.key,
        value: JSON.stringify({
          reason: 'HANDLER_REJECTED',
          detail: err.message,
          consumerGroup: groupId,
          source: { topic: this.topics.of(topic), partition: 0, offset: String(envelope.payload._position ?? ''), key: envelope.key, headers: {} },
          originalBase64: Buffer.from(value).toString('base64'),
          originalBytes: Buffer.byteLength(value),
          originalSha256: createHash('sha256').update(value).digest('hex'),
          originalTruncated: false,
          deadLetteredAt: this.clock.now().toISOString(),
        }),
        headers: { 'dlq-reason': 'HANDLER_REJECTED', 'original-topic': this.topics.of(topic) },
      },
    ]);
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
    checks.started = this.started ? 'ok' : 'starting';
    for (const s of this.subscriptions) {
      const error = s.lastError();
      if (error) checks[`subscription:${s.name}`] = `retrying: ${(error as Error).message}`;
    }
    // A consumer that stopped, crashed or keeps failing on the store/broker takes no more messages.
    for (const consumer of this.running) {
      const status = consumer.status();
      if (status.state !== 'running') checks[`consumer:${consumer.groupId}`] = `${status.state}: ${status.detail}`;
    }
    return { ready: Object.values(checks).every((v) => v === 'ok'), checks };
  }

  async stop(): Promise<void> {
    this.timers.splice(0).forEach((t) => clearInterval(t));
    await this.ticking;
    for (const s of this.subscriptions.splice(0)) await s.stop();
    for (const r of this.running.splice(0)) await r.stop().catch(() => undefined);
    await this.bus.close();
    await this.store.close();
    this.logger.info('runtime stopped');
  }
}
