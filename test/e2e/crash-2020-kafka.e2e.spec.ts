import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore, StoredEvent } from '@backstop/event-store';
import { replay } from '@backstop/ledger';
import { ConsumerHandle, encodeEnvelope, KafkaBus, makeEnvelope, TOPICS, TopicName, TopicNames } from '@backstop/messaging';
import { commandEnvelope, CommandReply, SERVICE_NAMES, ServiceName } from '@backstop/platform';
import { describeKafka, readAllEvents, RunningApp, sleep, uniquePrefix, waitUntil, WORKSPACE_ROOT } from '@backstop/testing';
import { advanceTestClocks, publishCommand, SERVICE_COMMAND_TOPICS, startServiceApps, stopServiceHarness, waitForServicesQuiet, COMMAND_SERVICE as SCENARIO_COMMAND_SERVICE } from './scenario/services';
import { checkCrashOutcome, runCrashScenario, SCENARIO_ENV, ScenarioRun, ScenarioTarget } from './scenario/crash-2020';

const DATA_DIR = join(WORKSPACE_ROOT, '..', 'shared', 'data');
const START = '2026-03-06T00:00:00.000Z';

const COMMAND_SERVICE: Record<string, ServiceName> = SCENARIO_COMMAND_SERVICE;
const COMMAND_TOPIC: Record<ServiceName, TopicName> = SERVICE_COMMAND_TOPICS;

/**
 * The same crash with the four services as four processes (apps/<service>/src/main.ts) talking only
 * over the real Kafka broker: commands on the *.commands topics, replies on backstop.replies, marks
 * on backstop.market.marks, events from each service's store streams on backstop.events.*. They
 * share one embedded store file, as they would share one EventStoreDB. Each runs on a test clock
 * (BACKSTOP_TEST_CLOCK) that the test moves, so deadlines and premium intervals fall as in a replay.
 */
describeKafka('March 2020 BTC crash, four services over Kafka', (brokers) => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-crash-kafka-'));
  const dataFile = join(dir, 'backstop.db');
  const prefix = uniquePrefix('crash');
  const topics = new TopicNames(prefix);
  const apps = new Map<ServiceName, RunningApp>();
  const replies = new Map<string, CommandReply>();
  const kafkaEvents: { topic: string; type: string }[] = [];
  let client: KafkaBus;
  let observer: ConsumerHandle;
  let store: SqliteEventStore;
  let run: ScenarioRun;

  const readAll = (): Promise<StoredEvent[]> => readAllEvents(store);

  /** Quiet: every service's publisher has published the head and the head stopped moving. */
  const quiescent = () => waitForServicesQuiet(store, SERVICE_NAMES);

  beforeAll(async () => {
    const env = {
      ...SCENARIO_ENV,
      KAFKA_BROKERS: brokers.join(','),
      KAFKA_TOPIC_PREFIX: prefix,
      BACKSTOP_DATA_FILE: dataFile,
      BACKSTOP_TEST_CLOCK: START,
      BACKSTOP_MARKET_DATA_DIR: DATA_DIR,
      LOG_LEVEL: 'info',
    };
    await startServiceApps(apps, SERVICE_NAMES, env, 90_000);
    store = new SqliteEventStore(dataFile);
    client = new KafkaBus({ brokers, clientId: 'crash-e2e' });
    observer = await client.subscribe({
      groupId: `${prefix}observer`,
      topics: [topics.of(TOPICS.replies), topics.of(TOPICS.intakeEvents), topics.of(TOPICS.pricingEvents), topics.of(TOPICS.marginEvents), topics.of(TOPICS.settlementEvents)],
      handle: async (m) => {
        const body = JSON.parse(m.value.toString()) as { type: string; payload: CommandReply };
        if (m.topic === topics.of(TOPICS.replies)) replies.set(m.key, body.payload);
        else kafkaEvents.push({ topic: m.topic, type: body.type });
      },
    });
    const target: ScenarioTarget = {
      send: (type, payload) => publishCommand(client, topics.of(COMMAND_TOPIC[COMMAND_SERVICE[type]]), commandEnvelope(type, payload), replies),
      mark: async (payload) => {
        await client.publish(topics.of(TOPICS.marketMarks), [encodeEnvelope(makeEnvelope({ type: 'MarkPrice', key: payload.underlying, time: payload.at, payload }))]);
        await waitUntil(async () => (await store.readStream(`market-${payload.underlying}`)).some((e) => e.data.at === payload.at) || undefined, 30_000, `the mark at ${payload.at} to be recorded`);
      },
      advanceTo: (iso) => advanceTestClocks(apps.values(), iso, quiescent),
      events: readAll,
    };
    run = await runCrashScenario(target, DATA_DIR, Date.parse(START), undefined, 6 * 3_600_000);
  }, 600_000);

  afterAll(() => stopServiceHarness({ observer, client, apps, store, dir }));

  it('calls margin, covers the missed call, closes out and runs the waterfall exactly', async () => {
    await checkCrashOutcome(run, {
      balancesAt: async (position) => {
        const projection = await replay((after, maxCount) => store.readAll({ after, maxCount }), { until: { kind: 'position', position } });
        return new Map(projection.balances().map((line) => [line.account, line.balanceMinor]));
      },
    });
  });

  it('carried every service event over Kafka: the observer saw each settlement step on backstop.events.settlement', async () => {
    await sleep(500);
    const settlement = kafkaEvents.filter((e) => e.topic === topics.of(TOPICS.settlementEvents)).map((e) => e.type);
    expect(settlement).toEqual(expect.arrayContaining(['CapitalDeposited', 'MarginCoveredByBackstop', 'DefaultDeclared', 'LossAllocated', 'PayoutMade', 'DefaultSettled']));
    const margin = kafkaEvents.filter((e) => e.topic === topics.of(TOPICS.marginEvents)).map((e) => e.type);
    expect(margin).toEqual(expect.arrayContaining(['MarginCallIssued', 'MarginCallMissed', 'DefaultTriggered']));
    const pricing = kafkaEvents.filter((e) => e.topic === topics.of(TOPICS.pricingEvents)).map((e) => e.type);
    expect(pricing).toEqual(expect.arrayContaining(['QuoteIssued', 'CoverageBound', 'CoverageRepriced', 'PremiumCharged']));
  });
});
