import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntakeModule } from '@backstop/intake-service';
import { MarginModule } from '@backstop/margin-service';
import { PricingModule } from '@backstop/pricing-service';
import { SettlementModule } from '@backstop/settlement-service';
import { ConsumerHandle, DeadLetter, encodeEnvelope, KafkaBus, OutgoingMessage, TOPICS, TopicName, TopicNames } from '@backstop/messaging';
import { commandEnvelope, CommandReply, ServiceName, startTestBackstop, TestBackstop } from '@backstop/platform';
import { describeKafka, readAllEvents, uniquePrefix, waitUntil } from '@backstop/testing';
import { FUZZ_KAFKA_RUNS as FUZZ_RUNS, FUZZ_SEED, hostileCommands, HostileMessage, TEMPLATES } from './hostile';

const COMMAND_TOPICS: Record<ServiceName, TopicName> = {
  'contract-intake': TOPICS.intakeCommands,
  'premium-pricing': TOPICS.pricingCommands,
  'margin-monitor': TOPICS.marginCommands,
  'default-settlement': TOPICS.settlementCommands,
};
const SERVICES = Object.keys(COMMAND_TOPICS) as ServiceName[];
/** Produce in batches bounded by bytes: the broker's limit applies to a whole record batch. */
const BATCH_BYTES_MAX = 600_000;
const BATCH_MESSAGES_MAX = 500;

/**
 * Issue 9: FUZZ_KAFKA_RUNS (default 10,000) hostile messages on EACH command topic, over the real broker,
 * into the four services in one process. Every message gets a rejection reply or a dead-letter
 * record with a reason; no consumer stops (a command sent afterwards is answered and /health/ready
 * is 200); nothing is written to the store for any of them. FUZZ_SEED / FUZZ_RUNS change the run.
 */
describeKafka(`fuzz: ${FUZZ_RUNS} hostile messages per command topic (seed ${FUZZ_SEED})`, (brokers) => {
  const prefix = uniquePrefix('fuzz');
  const topics = new TopicNames(prefix);
  // tmpfs when there is one: the store fsyncs every write, which this many rejections do not need to measure.
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'backstop-fuzz-'));
  /** One process-like app per service (each its own producer, as deployed), on one shared store file. */
  const apps = new Map<ServiceName, TestBackstop>();
  let client: KafkaBus;
  let observer: ConsumerHandle;
  const replies = new Map<string, CommandReply[]>();
  const dead = new Map<string, DeadLetter>();

  beforeAll(async () => {
    const modules = { 'contract-intake': IntakeModule, 'premium-pricing': PricingModule, 'margin-monitor': MarginModule, 'default-settlement': SettlementModule } as const;
    for (const service of SERVICES) {
      apps.set(service, await startTestBackstop({
        modules: [modules[service]],
        services: [service],
        config: { mode: 'distributed', kafkaBrokers: brokers, topicPrefix: prefix, dataFile: join(dir, 'backstop.db') },
      }));
    }
    client = new KafkaBus({ brokers, clientId: 'fuzz-e2e' });
    observer = await client.subscribe({
      groupId: `${prefix}observer`,
      topics: [topics.of(TOPICS.replies), topics.of(TOPICS.dlq)],
      handle: async (m) => {
        const body = JSON.parse(m.value.toString());
        if (m.topic === topics.of(TOPICS.dlq)) dead.set((body as DeadLetter).source.key, body as DeadLetter);
        else replies.set(m.key, [...(replies.get(m.key) ?? []), body.payload as CommandReply]);
      },
    });
  }, 120_000);
  afterAll(async () => {
    await observer?.stop();
    await client?.close();
    for (const app of apps.values()) await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const produce = async (topic: string, messages: readonly OutgoingMessage[]) => {
    let batch: OutgoingMessage[] = [];
    let bytes = 0;
    for (const m of messages) {
      const size = Buffer.byteLength(m.value);
      if (batch.length > 0 && (bytes + size > BATCH_BYTES_MAX || batch.length >= BATCH_MESSAGES_MAX)) {
        await client.publish(topic, batch);
        batch = [];
        bytes = 0;
      }
      batch.push(m);
      bytes += size;
    }
    if (batch.length > 0) await client.publish(topic, batch);
  };

  /** Messages not yet answered: a dead letter under its Kafka key, or a reply under its command id. */
  const unanswered = (service: ServiceName, sent: readonly HostileMessage[]) => {
    const expected = new Map<string, number>();
    sent.forEach((m, i) => {
      if (!dead.has(`fz-${service}-${i}`)) expected.set(m.id, (expected.get(m.id) ?? 0) + 1);
    });
    let missing = 0;
    for (const [id, count] of expected) missing += Math.max(0, count - (replies.get(id)?.length ?? 0));
    return missing;
  };

  it('answers every hostile message with a rejection or a dead letter with a reason, writes nothing, and keeps every consumer', async () => {
    const started = Date.now();
    const cpu = process.cpuUsage();
    const sent = new Map(SERVICES.map((s) => [s, hostileCommands(s, FUZZ_RUNS, FUZZ_SEED + SERVICES.indexOf(s))]));
    const store = apps.get('contract-intake')!.runtime.store;
    const before = (await readAllEvents(store)).length;
    await Promise.all(
      SERVICES.map((service) =>
        produce(topics.of(COMMAND_TOPICS[service]), sent.get(service)!.map((m, i) => ({ key: `fz-${service}-${i}`, value: m.text }))),
      ),
    );
    const produced = Date.now();
    await waitUntil(() => (SERVICES.every((s) => unanswered(s, sent.get(s)!) === 0) ? true : undefined), Math.max(600_000, FUZZ_RUNS * 200), 'an answer to every hostile message').catch(async (err: Error) => {
      const readiness = await Promise.all([...apps.values()].map((a) => a.runtime.readiness()));
      throw new Error(`${err.message}; unanswered: ${SERVICES.map((s) => `${s} ${unanswered(s, sent.get(s)!)}`).join(', ')}; readiness ${JSON.stringify(readiness.map((r) => r.checks))}`);
    });
    const answered = Date.now();
    const used = process.cpuUsage(cpu);
    process.stderr.write(`fuzz timing: produced after ${produced - started} ms, answered after ${answered - started} ms, cpu ${Math.round((used.user + used.system) / 1000)} ms\n`);

    const fuzzIds = new Set([...sent.values()].flatMap((list) => list.map((m) => m.id)));
    const allReplies = [...replies.entries()].filter(([id]) => fuzzIds.has(id)).flatMap(([, r]) => r);
    // Every reply is a rejection naming fields and rules; every dead letter has a reason and detail.
    const byId = new Map([...sent.values()].flat().map((m) => [m.id, m]));
    expect(allReplies.filter((r) => r.status !== 'REJECTED').map((r) => ({ ...r, sent: byId.get(r.commandId)?.text.slice(0, 400), mutations: byId.get(r.commandId)?.mutations }))).toEqual([]);
    expect(allReplies.filter((r) => !r.violations?.length || r.violations.some((v) => !v.field || !v.rule))).toEqual([]);
    const letters = [...dead.values()].filter((d) => d.source.key.startsWith('fz-'));
    expect(letters.filter((d) => !d.reason || !d.detail)).toEqual([]);
    // Nothing was written for them.
    const events = await readAllEvents(store);
    // (Services may write their own events meanwhile, e.g. a capacity assessment: none is caused by a fuzz message.)
    expect(events.slice(before).filter((e) => fuzzIds.has(String(e.metadata.causationId)) || fuzzIds.has(String(e.metadata.correlationId)))).toEqual([]);

    // No consumer stopped: one well-formed command per topic is still answered, and the process is ready.
    const after = SERVICES.map((service) => {
      const [type, payload] = Object.entries(TEMPLATES[service])[0];
      return { service, envelope: commandEnvelope(type, payload) };
    });
    for (const { service, envelope } of after) await client.publish(topics.of(COMMAND_TOPICS[service]), [encodeEnvelope(envelope)]);
    for (const { envelope } of after) await waitUntil(() => replies.get(envelope.id)?.[0], 60_000, `the reply to ${envelope.type} after the fuzz`);
    expect(replies.get(after[0].envelope.id)?.[0]).toMatchObject({ status: 'ACCEPTED', commandType: 'RegisterParty' });
    for (const app of apps.values()) expect((await fetch(`${app.url}/health/ready`)).status).toBe(200);

    const reasons: Record<string, number> = {};
    letters.forEach((d) => (reasons[d.reason] = (reasons[d.reason] ?? 0) + 1));
    process.stderr.write(
      `fuzz (Kafka): ${FUZZ_RUNS} messages x ${SERVICES.length} topics, seed ${FUZZ_SEED}: ${allReplies.length} rejection replies, ` +
        `${letters.length} dead letters ${JSON.stringify(reasons)}; produced in ${((produced - started) / 1000).toFixed(1)} s, all answered after ${((answered - started) / 1000).toFixed(1)} s\n`,
    );
  }, Math.max(900_000, FUZZ_RUNS * 300));
});
