import { createHash } from 'node:crypto';
import { Clock, systemClock } from '@backstop/kernel';
import { DuplicateEventIdError, EventStore, NewEvent, StoredEvent, SubscriptionHandle, openEventStore, startCatchUpSubscription, storeHeadPosition, verifyChains } from '@backstop/event-store';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import {
  DeadLetter,
  isRetryable,
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
  OutgoingMessage,
  startConsumer,
  TOPICS,
  TopicName,
  TopicNames,
} from '@backstop/messaging';
import { currentTraceCarrier, Logger, MetricsRegistry, createLogger } from '@backstop/telemetry';
import { TokenRegistry, tokensFromEnv } from './auth';
import { BearerAuthenticator, jwtConfigFromEnv, JwtVerifier } from './jwt';
import { CommandBus, CommandReply } from './commands';
import { RuntimeConfig, ServiceName } from './config';
import { withFaultInjection } from './fault-injection';
import { OperatorGauges, startOperatorGauges, withStoreMetrics } from './operator-metrics';
import { StoreWriteHealth } from './store-write-health';
import { startEventPublisher } from './publisher';
import { eventEnvelope, ownerOf } from './streams';
import { deterministicUuid } from './ids';
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

/** Commands of one Kafka batch handled at once (different keys only; one key stays in offset order). */
const COMMAND_BATCH_CONCURRENCY = 8;

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
  /** A service, or 'ledger' (the ledger service consumes every event topic and owns no commands). */
  readonly service: ServiceName | 'ledger';
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
  /** HTTP bearer authentication: the static tokens, then JWTs when BACKSTOP_JWT_* configure them. */
  readonly authenticator: BearerAuthenticator;
  private readonly consumers: ConsumerDefinition[] = [];
  private readonly tickers: TickerDefinition[] = [];
  /** Extra readiness checks of a process's own parts ('ok' when fine): e.g. the ledger's admitter. */
  private readonly readinessChecks = new Map<string, () => string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private ticking: Promise<void> = Promise.resolve();
  private readonly running: RunnerHandle[] = [];
  private readonly subscriptions: SubscriptionHandle[] = [];
  private started = false;
  /** SIGTERM received: new HTTP work is refused (503) and readiness fails while in-flight work finishes. */
  private draining = false;
  private inFlight = 0;
  private readonly idleWaiters: (() => void)[] = [];
  /** Kafka consumer groups (group → topics) not yet caught up since start: readiness fails until they are. */
  private readonly catchingUp = new Map<string, readonly string[]>();
  /** Store-fed subscriptions must reach the store head seen at start before the process is ready. */
  private headAtStart = 0n;
  /** Every Kafka consumer group of this process and its topics (the lag gauge). */
  private readonly groups = new Map<string, readonly string[]>();
  private operatorGauges?: OperatorGauges;

  constructor(
    readonly config: RuntimeConfig,
    readonly store: EventStore,
    readonly bus: MessageBus,
    readonly logger: Logger,
    readonly metrics: MetricsRegistry,
    readonly clock: Clock,
    /** Failed store writes (a full disk) counted, logged and reported by readiness; see StoreWriteHealth. */
    readonly storeWrites?: StoreWriteHealth,
  ) {
    this.topics = new TopicNames(config.topicPrefix);
    const jwt = jwtConfigFromEnv();
    // With an identity provider configured, no dev tokens are generated (and logged): only
    // BACKSTOP_TOKENS, if given, stays beside the JWTs (e.g. for a break-glass operator).
    const { principals, generated } = jwt && !process.env.BACKSTOP_TOKENS?.trim() ? { principals: [], generated: false } : tokensFromEnv();
    this.auth = new TokenRegistry(principals);
    this.authGenerated = generated;
    this.authenticator = new BearerAuthenticator(this.auth, jwt ? new JwtVerifier(jwt) : undefined, (reason) =>
      logger.warn('bearer JWT refused', { reason }),
    );
    this.commands = new CommandBus(store, logger.child({ component: 'commands' }), metrics, () => clock.now());
    metrics.sampledGauge('backstop_consumer_lag', 'Messages not yet consumed and committed, by consumer group (read from the broker at scrape time)', ['group'], async () => {
      const lag = this.bus.consumerLag?.bind(this.bus);
      if (!lag) return [];
      return Promise.all([...this.groups].map(async ([group, topics]) => ({ labels: { group }, value: await lag(group, topics) })));
    });
  }

  static create(config: RuntimeConfig, overrides: { clock?: Clock; logger?: Logger; bus?: MessageBus; store?: EventStore } = {}): Runtime {
    const logger = overrides.logger ?? createLogger({ services: config.services.join(',') });
    const clock = overrides.clock ?? systemClock;
    const metrics = new MetricsRegistry();
    const store = withStoreMetrics(withFaultInjection(
      overrides.store ?? openEventStore({ connectionString: config.eventStoreConnectionString, postgresUrl: config.postgresUrl, postgresSchema: config.postgresSchema, dataFile: config.dataFile }, clock),
      process.env.BACKSTOP_FAULT_KILL_AFTER,
      (message) => logger.warn(message),
    ), metrics);
    const storeWrites = new StoreWriteHealth(store, metrics, logger.child({ component: 'event-store' }));
    const undecodable = metrics.counter('backstop_kafka_undecodable_batches_total', 'Kafka batches a consumer could not decode, dead-lettered with their raw bytes');
    const crashes = metrics.counter('backstop_kafka_consumer_crashes_total', 'Kafka consumer crashes (each restarts; readiness fails until it rejoins)');
    const kafka = config.kafka;
    const bus =
      overrides.bus ??
      (config.mode === 'distributed'
        ? new KafkaBus({
            brokers: config.kafkaBrokers ?? [],
            // No service: the ledger service (the only process that runs none).
            clientId: kafka?.clientId ?? `backstop-${config.services.length > 0 ? config.services.join('-') : 'ledger'}`,
            partitions: config.kafkaPartitions,
            compression: kafka?.compression,
            createTopics: kafka?.createTopics,
            replicationFactor: kafka?.replicationFactor,
            tls: kafka?.tls,
            sasl: kafka?.sasl,
            onUndecodable: (batch) => undecodable.inc({ topic: batch.topic, codec: batch.codec, consumer_group: batch.groupId }),
            onConsumerCrash: (groupId) => crashes.inc({ consumer_group: groupId }),
            // kafkajs's own fields (timestamp, logger, broker, ...) go under `kafka`, never over the record's own.
            log: (level, message, extra) => {
              const { timestamp: _timestamp, logger: _logger, ...fields } = (extra ?? {}) as Record<string, unknown>;
              logger[level](message, Object.keys(fields).length > 0 ? { component: 'kafkajs', kafka: fields } : { component: 'kafkajs' });
            },
          })
        : new InProcessBus());
    return new Runtime(config, store, bus, logger, metrics, clock, storeWrites);
  }

  registerConsumer(definition: ConsumerDefinition): void {
    if (this.started) throw new Error(`consumer ${definition.name} registered after start`);
    this.consumers.push(definition);
  }

  registerTicker(definition: TickerDefinition): void {
    if (this.started) throw new Error(`ticker ${definition.name} registered after start`);
    this.tickers.push(definition);
  }

  /** A readiness check of the process's own (answer 'ok' when ready, else why not). */
  registerReadinessCheck(name: string, check: () => string): void {
    this.readinessChecks.set(name, check);
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
    await this.bus.publish(this.topics.of(TOPICS.replies), [this.replyMessage(command, reply)]);
  }

  /** The reply record for backstop.replies (key = command id). */
  replyMessage(command: Envelope, reply: CommandReply): OutgoingMessage {
    const envelope = makeEnvelope({
      type: reply.status === 'ACCEPTED' ? 'CommandAccepted' : 'CommandRejected',
      key: command.id,
      time: this.clock.now().toISOString(),
      correlationId: command.correlationId,
      causationId: command.id,
      ...currentTraceCarrier(),
      payload: reply,
    });
    return encodeEnvelope(envelope);
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

  /**
   * Graceful shutdown, step one (SIGTERM): stop taking new work. HTTP commands answer 503 from now
   * on and readiness fails, so the Service stops routing here while in-flight work completes.
   */
  beginDrain(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * False while starting (consumers joining; their topics may not exist yet): HTTP refuses /v1 with
   * 503 then (see bootstrap). Draining is refused per unit of work instead (beginWork).
   */
  get acceptingWork(): boolean {
    return this.started;
  }

  /**
   * Registers one unit of HTTP work (a command, an input batch); returns its release, or undefined
   * when draining (the caller answers 503). stop() waits for every release before closing the store.
   */
  beginWork(): (() => void) | undefined {
    if (this.draining) return undefined;
    this.inFlight += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight -= 1;
      if (this.inFlight === 0) this.idleWaiters.splice(0).forEach((wake) => wake());
    };
  }

  private async idle(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return;
    await Promise.race([new Promise<void>((resolve) => this.idleWaiters.push(resolve)), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    if (this.inFlight > 0) this.logger.warn('shutdown: HTTP work still in flight after the drain timeout', { inFlight: this.inFlight });
  }

  async start(): Promise<void> {
    await this.verifyStore();
    this.headAtStart = await storeHead(this.store);
    await this.bus.ensureTopics(this.topics.all());
    for (const service of this.config.services) await this.startCommandConsumer(service);
    for (const consumer of this.consumers) await this.startConsumer(consumer);
    // A process that owns no streams (the ledger service) publishes nothing.
    if (this.config.services.length > 0) {
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
    }
    this.operatorGauges = startOperatorGauges(this.store, this.metrics, this.logger.child({ component: 'metrics' }));
    for (const ticker of this.tickers) {
      const timer = setInterval(() => void this.tickOne(ticker), Math.max(ticker.everyMs, 100));
      timer.unref();
      this.timers.push(timer);
    }
    this.started = true;
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
      // The command pipeline dedupes by command id AND body itself (a reused id with another body is
      // an idempotencyConflict, as over HTTP); a dedupe by message id here would answer it with the
      // first body's reply. So every delivery goes through the pipeline, and a redelivered command
      // gets its stored reply again (the client may have missed the first one).
      processed: PIPELINE_DEDUPES,
      // Commands on different keys run side by side within a batch (each still decided on its own
      // stream with its revision check), so their appends share the store's group commit.
      concurrency: COMMAND_BATCH_CONCURRENCY,
      logger: this.logger.child({ component: 'command-consumer', service }),
      metrics: this.metrics,
      accepts: (type) => this.commands.definitionsFor(service).some((d) => d.type === type),
      // The reply is queued and published with the rest of the batch's replies (one produce), before
      // the batch's offsets are committed: a crash in between re-runs the commands, which answer
      // with their stored replies.
      handle: async (envelope, _message, context) => {
        const reply = await this.commands.execute(envelope);
        context.publish(this.topics.of(TOPICS.replies), [this.replyMessage(envelope, reply)]);
      },
    });
    this.catchingUp.set(this.topics.group(`${service}.commands`), [this.topics.of(COMMAND_TOPICS[service])]);
    this.groups.set(this.topics.group(`${service}.commands`), [this.topics.of(COMMAND_TOPICS[service])]);
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
            if (!owner || !definition.topics.includes(owner.topic) || !types.has(event.type)) return false;
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
    this.catchingUp.set(this.topics.group(groupId), definition.topics.map((t) => this.topics.of(t)));
    this.groups.set(this.topics.group(groupId), definition.topics.map((t) => this.topics.of(t)));
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
          if (!inboxes.has(event.stream) || !types.has(event.type)) return false;
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
      originalBytes: original.length,
      originalSha256: createHash('sha256').update(original).digest('hex'),
      originalTruncated: false,
      deadLetteredAt: this.clock.now().toISOString(),
    };
    await this.bus.publish(this.topics.of(TOPICS.dlq), [{ key: event.id, value: JSON.stringify(record), headers: { 'dlq-reason': record.reason, 'original-topic': event.stream } }]);
    this.logger.warn('inbox message dead-lettered', { consumer: groupId, eventId: event.id, detail });
  }

  /** A store-fed event its consumer refuses: on backstop.dlq (the in-process bus here) with the reason, like the runner's. */
  private async deadLetterEvent(groupId: string, topic: TopicName, envelope: Envelope, err: Error): Promise<void> {
    const value = encodeEnvelope(envelope).value;
    this.logger.warn('event dead-lettered', { consumer: groupId, eventId: envelope.id, type: envelope.type, reason: err.message });
    this.metrics.counter('backstop_messages_total', 'Messages consumed, by consumer group, topic and outcome', ['group', 'topic', 'outcome']).inc({ group: groupId, topic: this.topics.of(topic), outcome: 'dead_letter_handler_rejected' });
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
    // Reads can pass while writes fail (a full disk): not ready while the store refuses writes.
    if (this.storeWrites) checks['store-writes'] = await this.storeWrites.check();
    // HTTP is bound before the consumer groups join (a slow rebalance must not fail liveness); until
    // they have joined and caught up, the process is alive but not ready.
    checks.started = this.draining ? 'draining (shutting down)' : this.started ? 'ok' : 'starting (joining consumer groups)';
    if (this.started) await this.checkCaughtUp(checks);
    Object.assign(checks, this.bus.health?.() ?? {});
    for (const s of this.subscriptions) {
      const error = s.lastError();
      if (error) checks[`subscription:${s.name}`] = `retrying: ${(error as Error).message}`;
      // Not ready until each store-fed view has read to the end of the store once: a pod that
      // rebuilds its views at start-up must not answer reads from half a history.
      else if (!s.caughtUp()) checks[`subscription:${s.name}`] = `catching up (at ${s.position()})`;
    }
    for (const [name, check] of this.readinessChecks) {
      const verdict = check();
      if (verdict !== 'ok') checks[name] = verdict;
    }
    // A consumer that stopped, crashed or keeps failing on the store/broker takes no more messages.
    for (const consumer of this.running) {
      const status = consumer.status();
      if (status.state !== 'running') checks[`consumer:${consumer.groupId}`] = `${status.state}: ${status.detail}`;
    }
    return { ready: Object.values(checks).every((v) => v === 'ok'), checks };
  }

  /** Once every group had no lag (and every store subscription reached the head seen at start), readiness stops checking: later lag is a metric, not a reason to take the pod out. */
  private async checkCaughtUp(checks: Record<string, string>): Promise<void> {
    for (const [group, topics] of [...this.catchingUp]) {
      try {
        const lag = this.bus.consumerLag ? await this.bus.consumerLag(group, topics) : 0;
        if (lag === 0) this.catchingUp.delete(group);
        else checks[`consumer:${group}`] = `catching up (lag ${lag})`;
      } catch (err) {
        checks[`consumer:${group}`] = `lag unknown: ${(err as Error).message}`;
      }
    }
    for (const s of this.subscriptions) {
      if (s.position() < this.headAtStart) checks[`subscription:${s.name}`] = `catching up (at ${s.position()} of ${this.headAtStart})`;
    }
  }

  /**
   * Graceful shutdown: refuse new work, stop the tickers, stop the consumers (each finishes the
   * message in hand and commits its offset before leaving the group), wait for in-flight HTTP
   * commands, let the publisher put every event appended so far on the bus, then close bus and store.
   */
  async stop(drainTimeoutMs = 10_000): Promise<void> {
    this.draining = true;
    this.timers.splice(0).forEach((t) => clearInterval(t));
    await this.ticking;
    for (const r of this.running.splice(0)) await r.stop().catch((err: Error) => this.logger.warn('consumer did not stop cleanly', { error: err.message }));
    await this.idle(drainTimeoutMs);
    const head = await storeHead(this.store).catch(() => 0n);
    for (const s of this.subscriptions) {
      await s.waitFor(head, drainTimeoutMs).catch(() => this.logger.warn('shutdown: subscription not caught up; it resumes from its checkpoint at the next start', { subscription: s.name }));
    }
    for (const s of this.subscriptions.splice(0)) await s.stop();
    this.operatorGauges?.stop();
    await this.bus.close();
    await this.store.close();
    this.logger.info('runtime stopped');
  }
}

/** Global position of the last event in the store (0 when empty), without scanning where the adapter can. */
function storeHead(store: EventStore): Promise<bigint> {
  return storeHeadPosition(store);
}
