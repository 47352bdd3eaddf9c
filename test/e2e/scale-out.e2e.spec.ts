import { Admin, AssignerProtocol, Kafka } from 'kafkajs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describePostgres, EventStore, PostgresEventStore, StoredEvent } from '@backstop/event-store';
import { ConsumerHandle, encodeEnvelope, Envelope, KafkaBus, makeEnvelope, TOPICS, TopicNames } from '@backstop/messaging';
import { commandEnvelope, CommandReply, ownerOf, ServiceName } from '@backstop/platform';
import { bearer, describeKafka, readAllEvents, RunningApp, startApp, uniquePrefix, waitUntil, WORKSPACE_ROOT } from '@backstop/testing';
import { checkCrashOutcome, runCrashScenario, SCENARIO_ENV, ScenarioRun, ScenarioTarget } from './scenario/crash-2020';
import { SERVICE_COMMAND_TOPICS, stopServiceHarness, COMMAND_SERVICE as SCENARIO_COMMAND_SERVICE } from './scenario/services';

const DATA_DIR = join(WORKSPACE_ROOT, '..', 'shared', 'data');
const START = '2026-03-06T00:00:00.000Z';
const PARTITIONS = 3;
// In this order, as in distributed.e2e.spec.ts: checkCrashOutcome walks the concatenated events and
// stops at settlement's DefaultLossCharged by position, which only the settlement store's positions before it mean.
const SERVICES: readonly ServiceName[] = ['contract-intake', 'default-settlement', 'premium-pricing', 'margin-monitor'];
/** Two replica processes of these, sharing one PostgreSQL schema per service; one of the others. */
const REPLICATED: readonly ServiceName[] = ['premium-pricing', 'default-settlement'];
const COMMAND_SERVICE: Record<string, ServiceName> = SCENARIO_COMMAND_SERVICE;
const QUIET_MS = 1_500;
/** Longer than the consumer session timeout (10 s) plus a rebalance: a command on a killed replica's partition waits for the takeover. */
const REPLY_WAIT_MS = 90_000;

/**
 * Scale-out (issue 10): premium-pricing and default-settlement run as TWO replica processes each,
 * the two replicas of a service on ONE PostgreSQL schema and in one consumer group per consumer;
 * intake (PostgreSQL) and margin (PostgreSQL) run once. The 2020 crash runs with every command of
 * a replicated service sent to replica 1, replica 2 or the command topic in turn, and each of them
 * sent AGAIN with the same id to the other replica (a client retrying elsewhere): one outcome per
 * id. Mid-run pricing's second replica is SIGKILLed after the first bind, settlement's second
 * after the second mark: the survivors take over the partitions (checked on the broker's group
 * assignment) and the close-out and waterfall are still exact (checkCrashOutcome: figures from the
 * scenario's inputs), with each premium, deposit, payout and default applied once.
 */
describeKafka('scale-out: two replicas of pricing and of settlement over Kafka on PostgreSQL', (brokers) => {
  describePostgres('scale-out deployment', (db) => {
    const dir = mkdtempSync(join(tmpdir(), 'backstop-scaleout-'));
    const prefix = uniquePrefix('scale');
    const topics = new TopicNames(prefix);
    const apps = new Map<string, RunningApp>();
    const killed = new Set<string>();
    const stores = new Map<ServiceName, EventStore>();
    /** Every reply seen on the replies topic, by command id, in order. */
    const kafkaReplies = new Map<string, CommandReply[]>();
    /** Final outcome of each command id, whichever way it was sent, and every outcome it got. */
    const outcomes = new Map<string, { type: string; replies: CommandReply[] }>();
    const assignments: Record<string, Record<string, number[]>> = {};
    let client: KafkaBus;
    let admin: Admin;
    let observer: ConsumerHandle;
    let run: ScenarioRun;
    let turn = 0;
    let binds = 0;
    let marks = 0;

    const live = (): RunningApp[] => [...apps.entries()].filter(([name]) => !killed.has(name)).map(([, app]) => app);
    const replicas = (service: ServiceName): string[] => (REPLICATED.includes(service) ? [`${service}-1`, `${service}-2`] : [`${service}-1`]);
    const ownEvents = async (service: ServiceName): Promise<StoredEvent[]> =>
      (await readAllEvents(stores.get(service)!)).filter((e) => ownerOf(e.stream)?.service === service);
    const allEvents = async (): Promise<StoredEvent[]> => (await Promise.all(SERVICES.map((s) => ownEvents(s)))).flat();

    const quiet = async (): Promise<void> => {
      const heads = async () => Promise.all(SERVICES.map(async (s) => (await readAllEvents(stores.get(s)!)).at(-1)?.position ?? 0n));
      let last = '';
      let since = Date.now();
      await waitUntil(async () => {
        const now = (await heads()).join(',');
        if (now !== last) {
          last = now;
          since = Date.now();
          return undefined;
        }
        for (const [i, s] of SERVICES.entries()) {
          if (((await stores.get(s)!.loadCheckpoint(`publisher-${s}`)) ?? 0n) < BigInt(now.split(',')[i])) return undefined;
        }
        return Date.now() - since > QUIET_MS || undefined;
      }, 120_000, 'the services to go quiet');
    };
    const advanceTo = async (iso: string): Promise<void> => {
      await quiet();
      for (const app of live()) {
        const res = await fetch(`${app.url}/v1/test/clock`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ now: iso }) });
        if (res.status !== 200) throw new Error(`test clock refused ${iso}: ${res.status} ${await res.text()}`);
      }
      await quiet();
    };

    const viaHttp = async (app: RunningApp, envelope: Envelope<unknown>): Promise<CommandReply> => {
      const res = await fetch(`${app.url}/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer('operator') }, body: JSON.stringify(envelope) });
      return (await res.json()) as CommandReply;
    };
    const viaKafka = async (service: ServiceName, envelope: Envelope<unknown>): Promise<CommandReply> => {
      const seen = kafkaReplies.get(envelope.id)?.length ?? 0;
      await client.publish(topics.of(SERVICE_COMMAND_TOPICS[service]), [encodeEnvelope(envelope)]);
      return waitUntil(() => kafkaReplies.get(envelope.id)?.[seen], REPLY_WAIT_MS, `the reply to ${envelope.type} ${envelope.id}`);
    };
    /** One way in: replica 1's HTTP, replica 2's HTTP or the command topic, by turn (a killed replica is skipped). */
    const once = async (service: ServiceName, envelope: Envelope<unknown>, way: number): Promise<CommandReply> => {
      const names = replicas(service).filter((n) => !killed.has(n));
      const ways = [...names.map((n) => (e: Envelope<unknown>) => viaHttp(apps.get(n)!, e)), (e: Envelope<unknown>) => viaKafka(service, e)];
      const deadline = Date.now() + 30_000;
      for (;;) {
        const reply = await ways[way % ways.length](envelope);
        if (reply.retryable !== true || Date.now() > deadline) return reply;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    };
    const send = async (type: string, payload: Record<string, unknown>): Promise<CommandReply> => {
      const service = COMMAND_SERVICE[type];
      const envelope = commandEnvelope(type, payload);
      const way = turn++;
      const first = await once(service, envelope, way);
      // The same command again, another way in (the other replica when there is one): same outcome, no second effect.
      const again = await once(service, envelope, way + 1);
      outcomes.set(envelope.id, { type, replies: [first, again] });
      if (type === 'BindCoverage' && ++binds === 1) await kill('premium-pricing-1');
      return first;
    };

    /** The group's members (by KAFKA_CLIENT_ID) and the partitions each holds, from the broker. */
    const groupAssignment = async (group: string): Promise<Record<string, number[]>> => {
      const described = await admin.describeGroups([topics.group(group)]);
      const out: Record<string, number[]> = {};
      for (const m of described.groups[0].members) {
        const decoded = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
        out[m.clientId] = Object.values(decoded?.assignment ?? {}).flat().sort((a, b) => a - b);
      }
      return out;
    };
    const assignedTo = (group: string, clients: string[]) =>
      waitUntil(async () => {
        const a = await groupAssignment(group);
        const all = Object.values(a).flat().sort((x, y) => x - y).join();
        const ok = Object.keys(a).sort().join() === [...clients].sort().join() && clients.every((c) => a[c].length > 0) && all === [...Array(PARTITIONS).keys()].join();
        return ok ? a : undefined;
      }, 60_000, `group ${group} assigned to ${clients.join(', ')}`);

    /** backstop_events_published_total of one process, all topics. */
    const publishedBy = async (name: string): Promise<number> => {
      const text = await (await fetch(`${apps.get(name)!.url}/metrics`)).text();
      return text.split('\n').filter((l) => l.startsWith('backstop_events_published_total{')).reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
    };
    const published: Record<string, number> = {};

    const kill = async (name: string): Promise<void> => {
      const service = name.replace(/-\d$/, '') as ServiceName;
      for (const replica of replicas(service)) published[replica] = await publishedBy(replica);
      assignments[`${service}.commands before`] = await assignedTo(`${service}.commands`, replicas(service));
      killed.add(name);
      await apps.get(name)!.kill();
      const survivor = replicas(service).find((n) => !killed.has(n))!;
      assignments[`${service}.commands after`] = await assignedTo(`${service}.commands`, [survivor]);
    };

    beforeAll(async () => {
      const base = {
        ...SCENARIO_ENV,
        KAFKA_BROKERS: brokers.join(','),
        KAFKA_TOPIC_PREFIX: prefix,
        KAFKA_PARTITIONS: String(PARTITIONS),
        BACKSTOP_TEST_CLOCK: START,
        BACKSTOP_MARKET_DATA_DIR: DATA_DIR,
        BACKSTOP_DATA_FILE: '',
        BACKSTOP_POSTGRES_URL: db().url,
        LOG_LEVEL: 'info',
      };
      for (const service of SERVICES) {
        for (const name of replicas(service)) {
          apps.set(name, await startApp(`apps/${service}/src/main.ts`, { ...base, BACKSTOP_POSTGRES_SCHEMA: service.split('-')[1], KAFKA_CLIENT_ID: name }, 180_000));
        }
        stores.set(service, new PostgresEventStore(db().url, { schema: service.split('-')[1], poolSize: 2 }));
      }
      client = new KafkaBus({ brokers, clientId: 'scale-out-e2e' });
      admin = new Kafka({ brokers, clientId: 'scale-out-e2e-admin', logLevel: 0 }).admin();
      await admin.connect();
      observer = await client.subscribe({
        groupId: `${prefix}observer`,
        topics: [topics.of(TOPICS.replies)],
        handle: async (m) => {
          const body = JSON.parse(m.value.toString()) as { payload: CommandReply };
          kafkaReplies.set(m.key, [...(kafkaReplies.get(m.key) ?? []), body.payload]);
        },
      });
      const margin = stores.get('margin-monitor')!;
      const target: ScenarioTarget = {
        send,
        mark: async (payload) => {
          await client.publish(topics.of(TOPICS.marketMarks), [encodeEnvelope(makeEnvelope({ type: 'MarkPrice', key: payload.underlying, time: payload.at, payload }))]);
          await waitUntil(async () => (await margin.readStream(`market-${payload.underlying}`)).some((e) => e.data.at === payload.at) || undefined, 30_000, `the mark at ${payload.at} to be recorded`);
          if (++marks === 2) await kill('default-settlement-2');
        },
        advanceTo,
        events: allEvents,
      };
      run = await runCrashScenario(target, DATA_DIR, Date.parse(START), undefined, 6 * 3_600_000);
      await quiet();
    }, 1_500_000);

    afterAll(async () => {
      await admin?.disconnect();
      for (const store of stores.values()) await store.close();
      await stopServiceHarness({ observer, client, apps, dir });
    }, 120_000);

    it('spread each replicated service\'s partitions over both replicas, and the survivor took all of them after the SIGKILL', () => {
      for (const service of REPLICATED) {
        const before = assignments[`${service}.commands before`];
        expect(Object.keys(before).sort()).toEqual(replicas(service));
        expect(Object.values(before).flat().sort()).toEqual([0, 1, 2]);
        const after = assignments[`${service}.commands after`];
        expect(Object.values(after)).toEqual([[0, 1, 2]]);
      }
      expect([...killed].sort()).toEqual(['default-settlement-2', 'premium-pricing-1']);
    });

    it('published each service\'s events from both replicas\' store-fed publishers (accepted and documented: consumers dedupe by message id)', () => {
      for (const service of REPLICATED) for (const replica of replicas(service)) expect({ replica, published: published[replica] > 0 }).toEqual({ replica, published: true });
    });

    it('gave every command exactly one outcome, the same both times it was sent', () => {
      expect(outcomes.size).toBeGreaterThan(20);
      for (const [id, { type, replies }] of outcomes) {
        const [a, b] = replies.map((r) => ({ status: r.status, events: r.events ?? [] }));
        expect({ id, type, status: a.status }).toEqual({ id, type, status: 'ACCEPTED' });
        expect({ id, type, again: b }).toEqual({ id, type, again: a });
      }
      // On the replies topic: no command got two different outcomes.
      for (const [id, replies] of kafkaReplies) expect({ id, statuses: new Set(replies.filter((r) => r.retryable !== true).map((r) => r.status)).size }).toEqual({ id, statuses: 1 });
    });

    it('applied nothing twice: one decision per causation, one premium per coverage, one deposit per command, one payout and default', async () => {
      const sent = [...outcomes.values()];
      const count = (type: string) => sent.filter((o) => o.type === type).length;
      const pricing = await ownEvents('premium-pricing');
      const settlement = await ownEvents('default-settlement');
      const intake = await ownEvents('contract-intake');
      for (const events of [pricing, settlement, intake]) {
        const ids = events.map((e) => e.id);
        expect(new Set(ids).size).toBe(ids.length);
        // One decision per causation and stream: its events are ONE append (consecutive revisions; a
        // waterfall's several LossAllocated are one decision). A causation applied twice would show a gap.
        const byCause = new Map<string, number[]>();
        for (const e of events) {
          const key = `${e.stream}|${String(e.metadata.causationId)}`;
          byCause.set(key, [...(byCause.get(key) ?? []), e.revision]);
        }
        const twice = [...byCause].filter(([, revs]) => revs.some((r, i) => i > 0 && r !== revs[i - 1] + 1)).map(([key]) => key);
        expect(twice).toEqual([]);
      }
      expect(pricing.filter((e) => e.type === 'CoverageBound')).toHaveLength(count('BindCoverage'));
      expect(pricing.filter((e) => e.type === 'PremiumAccountFunded')).toHaveLength(count('FundPremiumAccount'));
      expect(settlement.filter((e) => e.type === 'CapitalDeposited')).toHaveLength(count('DepositCapital'));
      expect(intake.filter((e) => e.type === 'CollateralDeposited')).toHaveLength(count('DepositCollateral'));
      expect(settlement.filter((e) => e.type === 'DefaultDeclared')).toHaveLength(1);
      expect(settlement.filter((e) => e.type === 'PayoutMade')).toHaveLength(1);
      const premiums = pricing.filter((e) => /^(PremiumCharged|PremiumAccountDebited|PremiumIncomeDistributed)$/.test(e.type));
      const perCharge = premiums.map((e) => `${e.stream}|${String(e.metadata.causationId)}`);
      expect(new Set(perCharge).size).toBe(perCharge.length);
    });

    it('closed out and ran the waterfall exactly, as the single-process run does', async () => {
      // The books are checked through the ledger service in distributed.e2e; here, the waterfall's figures.
      await checkCrashOutcome(run, 'not-checked');
    });
  });
});
