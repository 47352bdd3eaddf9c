import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describePostgres, EventStore, PostgresEventStore, SqliteEventStore, StoredEvent } from '@backstop/event-store';
import { isLedgerEventType, replay } from '@backstop/ledger';
import { ConsumerHandle, encodeEnvelope, KafkaBus, makeEnvelope, TOPICS, TopicNames } from '@backstop/messaging';
import { commandEnvelope, CommandReply, ownerOf, ServiceName } from '@backstop/platform';
import { describeKafka, readAllEvents, RunningApp, startApp, uniquePrefix, waitUntil, WORKSPACE_ROOT } from '@backstop/testing';
import { checkCrashOutcome, runCrashScenario, SCENARIO_ENV, ScenarioRun, ScenarioTarget } from './scenario/crash-2020';
import { advanceTestClocks, ledgerDigest, publishCommand, SERVICE_COMMAND_TOPICS, startLedgerApp, stopServiceHarness, COMMAND_SERVICE as SCENARIO_COMMAND_SERVICE } from './scenario/services';

const DATA_DIR = join(WORKSPACE_ROOT, '..', 'shared', 'data');
const START = '2026-03-06T00:00:00.000Z';

/** Where each service keeps its data: two on PostgreSQL (a schema each), two on an embedded SQLite file each. */
type StoreChoice = { readonly kind: 'postgres'; readonly schema: string } | { readonly kind: 'sqlite' };
const DEPLOYMENT: readonly { readonly service: ServiceName; readonly store: StoreChoice }[] = [
  { service: 'contract-intake', store: { kind: 'postgres', schema: 'intake' } },
  { service: 'default-settlement', store: { kind: 'postgres', schema: 'settlement' } },
  { service: 'premium-pricing', store: { kind: 'sqlite' } },
  { service: 'margin-monitor', store: { kind: 'sqlite' } },
];
/** The ledger service (apps/ledger), a fifth process on its own embedded SQLite file, fed only by the event topics. */
const LEDGER_FILE = 'ledger.db';

const COMMAND_SERVICE: Record<string, ServiceName> = SCENARIO_COMMAND_SERVICE;

/** The deployment is quiet when no store has moved for this long (Kafka hops included). */
const QUIET_MS = 1_500;

/**
 * The 2020 crash with the four services as four processes over the real broker, EACH WITH ITS OWN
 * STORE (SPEC section 1): intake and settlement on PostgreSQL, pricing and margin on SQLite files.
 * No service can read another's streams; each knows the others' facts only from the event topics,
 * kept in its own read model. The outcome is checked against figures computed from the scenario's
 * inputs and the published facts (checkCrashOutcome), as the single-process run is.
 */
describeKafka('March 2020 BTC crash, four services over Kafka, each on its own store', (brokers) => {
  describePostgres('distributed deployment', (db) => {
    const dir = mkdtempSync(join(tmpdir(), 'backstop-distributed-'));
    const prefix = uniquePrefix('dist');
    const topics = new TopicNames(prefix);
    const apps = new Map<string, RunningApp>();
    /** The ledger process: not in `apps`, since it has no test clock to move (its books follow the events). */
    let ledger: RunningApp | undefined;
    const ledgerFile = join(dir, LEDGER_FILE);
    const stores = new Map<ServiceName, EventStore>();
    const replies = new Map<string, CommandReply>();
    let client: KafkaBus;
    let observer: ConsumerHandle;
    let run: ScenarioRun;

    const storeEnv = (name: string, store: StoreChoice): Record<string, string> =>
      store.kind === 'postgres'
        ? { BACKSTOP_POSTGRES_URL: db().url, BACKSTOP_POSTGRES_SCHEMA: store.schema, BACKSTOP_DATA_FILE: '' }
        : { BACKSTOP_POSTGRES_URL: '', BACKSTOP_POSTGRES_SCHEMA: '', BACKSTOP_DATA_FILE: join(dir, `${name}.db`) };
    const openStore = (name: string, store: StoreChoice): EventStore =>
      store.kind === 'postgres' ? new PostgresEventStore(db().url, { schema: store.schema, poolSize: 2 }) : new SqliteEventStore(join(dir, `${name}.db`));

    /** Every service's own facts (its owned streams, not its read-model copies or inboxes), store by store. */
    const ownEvents = async (service: ServiceName): Promise<StoredEvent[]> =>
      (await readAllEvents(stores.get(service)!)).filter((e) => ownerOf(e.stream)?.service === service);
    const allEvents = async (): Promise<StoredEvent[]> => (await Promise.all(DEPLOYMENT.map((d) => ownEvents(d.service)))).flat();

    /** Quiet: every store's head stood still for QUIET_MS and each publisher has published its head. */
    const quiet = async (): Promise<void> => {
      const heads = async () => Promise.all(DEPLOYMENT.map(async (d) => (await readAllEvents(stores.get(d.service)!)).at(-1)?.position ?? 0n));
      let last = '';
      let since = Date.now();
      await waitUntil(async () => {
        const now = (await heads()).join(',');
        if (now !== last) {
          last = now;
          since = Date.now();
          return undefined;
        }
        for (const [i, d] of DEPLOYMENT.entries()) {
          if (((await stores.get(d.service)!.loadCheckpoint(`publisher-${d.service}`)) ?? 0n) < BigInt(now.split(',')[i])) return undefined;
        }
        return Date.now() - since > QUIET_MS || undefined;
      }, 60_000, 'the four services (four stores) to go quiet');
    };

    /** A client of the command topics: a command rejected as retryable is sent again, same id, until it is not (publishCommand). */
    const send = (type: string, payload: Record<string, unknown>): Promise<CommandReply> =>
      publishCommand(client, topics.of(SERVICE_COMMAND_TOPICS[COMMAND_SERVICE[type]]), commandEnvelope(type, payload), replies);

    beforeAll(async () => {
      const env = {
        ...SCENARIO_ENV,
        KAFKA_BROKERS: brokers.join(','),
        KAFKA_TOPIC_PREFIX: prefix,
        BACKSTOP_TEST_CLOCK: START,
        BACKSTOP_MARKET_DATA_DIR: DATA_DIR,
        LOG_LEVEL: 'info',
      };
      for (const { service, store } of DEPLOYMENT) {
        apps.set(service, await startApp(`apps/${service}/src/main.ts`, { ...env, ...storeEnv(service, store) }, 120_000));
        stores.set(service, openStore(service, store));
      }
      // The same env as the services (broker, topic prefix), but its own store: a SQLite file no service opens.
      ledger = await startLedgerApp({ ...env, BACKSTOP_POSTGRES_URL: '', BACKSTOP_POSTGRES_SCHEMA: '', BACKSTOP_DATA_FILE: ledgerFile, BACKSTOP_TEST_CLOCK: '' }, 180_000);
      client = new KafkaBus({ brokers, clientId: 'distributed-e2e' });
      observer = await client.subscribe({
        groupId: `${prefix}observer`,
        topics: [topics.of(TOPICS.replies)],
        handle: async (m) => {
          const body = JSON.parse(m.value.toString()) as { payload: CommandReply };
          replies.set(m.key, body.payload);
        },
      });
      const margin = stores.get('margin-monitor')!;
      const target: ScenarioTarget = {
        send,
        mark: async (payload) => {
          await client.publish(topics.of(TOPICS.marketMarks), [encodeEnvelope(makeEnvelope({ type: 'MarkPrice', key: payload.underlying, time: payload.at, payload }))]);
          await waitUntil(async () => (await margin.readStream(`market-${payload.underlying}`)).some((e) => e.data.at === payload.at) || undefined, 30_000, `the mark at ${payload.at} to be recorded`);
        },
        advanceTo: (iso) => advanceTestClocks(apps.values(), iso, quiet),
        events: allEvents,
      };
      run = await runCrashScenario(target, DATA_DIR, Date.parse(START), undefined, 6 * 3_600_000);
    }, 900_000);

    afterAll(async () => {
      for (const store of stores.values()) await store.close();
      await stopServiceHarness({ observer, client, apps: ledger ? new Map([...apps, ['ledger', ledger]]) : apps, dir });
    }, 120_000);

    /** The ledger's store, read here only through the ledger domain's replay (the compliance CLI's code) and by event id. */
    const withLedgerStore = async <T>(use: (store: SqliteEventStore) => Promise<T>): Promise<T> => {
      const store = new SqliteEventStore(ledgerFile);
      try {
        return await use(store);
      } finally {
        await store.close();
      }
    };
    /** Event id → position in the ledger's store, for the events it booked (not its inbox). */
    const ledgerPositions = (): Promise<Map<string, bigint>> =>
      withLedgerStore(async (store) => new Map((await readAllEvents(store)).filter((e) => !e.stream.startsWith('inbox-')).map((e) => [e.id, e.position])));

    /** Caught up: every ledger-relevant event the four services wrote in their own streams is in the ledger's books. */
    const ledgerCaughtUp = async (): Promise<Map<string, bigint>> => {
      const published = (await allEvents()).filter((e) => isLedgerEventType(e.type));
      expect(published.length).toBeGreaterThan(0);
      let missing: string[] = [];
      return waitUntil(async () => {
        const booked = await ledgerPositions();
        missing = published.filter((e) => !booked.has(e.id)).map((e) => `${e.stream}/${e.type}`);
        return missing.length === 0 ? booked : undefined;
      }, 120_000, 'the ledger to book every event the services published').catch((err: Error) => {
        throw new Error(`${err.message}; still missing ${missing.length}: ${missing.slice(0, 10).join(', ')}`);
      });
    };

    it('calls margin, covers the missed call, closes out and runs the waterfall exactly, as the single-process run does; the providers\' books are the ledger service\'s', async () => {
      const booked = await ledgerCaughtUp();
      // The run's positions are default-settlement's (DefaultDeclared and DefaultSettled are its
      // events); the ledger's store has positions of its own. Settlement's position p is, in the
      // ledger, the position by which the ledger had booked everything settlement wrote up to p.
      const settlement = await ownEvents('default-settlement');
      const inLedger = (position: bigint): bigint => {
        let at = 0n;
        for (const e of settlement) {
          if (e.position > position) break;
          const there = booked.get(e.id);
          if (there !== undefined && there > at) at = there;
        }
        return at;
      };
      await checkCrashOutcome(run, {
        balancesAt: (position) =>
          withLedgerStore(async (store) => {
            const projection = await replay((after, maxCount) => store.readAll({ after, maxCount }), { until: { kind: 'position', position: inLedger(position) } });
            return new Map(projection.balances().map((line) => [line.account, line.balanceMinor]));
          }),
      });
      // Every step of the settlement happened once, in default-settlement's own store.
      expect(settlement.filter((e) => e.type === 'DefaultDeclared')).toHaveLength(1);
      expect(settlement.filter((e) => e.type === 'PayoutMade')).toHaveLength(1);
      expect(settlement.filter((e) => e.type === 'MarginCoveredByBackstop').length).toBeGreaterThanOrEqual(1);
    }, 180_000);

    it('the ledger service\'s /v1/ledger digest equals the compliance CLI\'s replay of its own store, and the domain\'s replay of it', async () => {
      await ledgerCaughtUp();
      // Its live books, once every booked event is in the projection.
      const head = await withLedgerStore(async (store) => (await readAllEvents(store)).filter((e) => !e.stream.startsWith('inbox-')).at(-1)!.position);
      const live = await waitUntil(async () => {
        const d = await ledgerDigest(ledger!.url);
        return d && BigInt(d.position) >= head ? d : undefined;
      }, 60_000, `the ledger's live digest to reach position ${head}`);
      expect(live.source).toBe('live');
      // The compliance CLI, as a separate process reading the ledger's file.
      const cli = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['-r', join(WORKSPACE_ROOT, 'tools/register.js'), join(WORKSPACE_ROOT, 'apps/compliance-cli/src/main.ts'), 'digest', '--data', ledgerFile, '--position', live.position, '--quiet'],
          { cwd: WORKSPACE_ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }, timeout: 60_000 },
          (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
      if (cli.code !== 0) throw new Error(`compliance digest failed (${cli.code}): ${cli.stderr}`);
      const [digest, , at] = cli.stdout.trim().split(/\s+/);
      expect([digest, at]).toEqual([live.digest, live.position]);
      // The service's own replay at that position, and the ledger domain's replay of its whole store.
      expect((await ledgerDigest(ledger!.url, live.position))?.digest).toBe(live.digest);
      expect(await withLedgerStore(async (store) => (await replay((after, maxCount) => store.readAll({ after, maxCount }))).digest())).toBe(live.digest);
      // And nothing was held back or left out: the books take every ledger event the services wrote, once.
      const booked = await ledgerPositions();
      const published = (await allEvents()).filter((e) => isLedgerEventType(e.type));
      expect([...booked.keys()].sort()).toEqual(published.map((e) => e.id).sort());
    }, 120_000);

    it('kept each service to its own store: nobody holds another service\'s streams, each holds its read model of the facts it needs', async () => {
      for (const { service } of DEPLOYMENT) {
        const events = await readAllEvents(stores.get(service)!);
        const foreign = events.filter((e) => ownerOf(e.stream) !== undefined && ownerOf(e.stream)!.service !== service);
        expect([service, foreign.map((e) => e.stream)]).toEqual([service, []]);
      }
      const kept = async (service: ServiceName) => new Set((await readAllEvents(stores.get(service)!)).filter((e) => e.type === 'FactObserved').map((e) => String(e.data.type)));
      expect([...(await kept('default-settlement'))]).toEqual(expect.arrayContaining(['PartyRegistered', 'ContractRegistered', 'CoverageBound', 'MarkRecorded', 'DefaultTriggered']));
      expect([...(await kept('premium-pricing'))]).toEqual(expect.arrayContaining(['PartyRegistered', 'ContractRegistered', 'DefaultTriggered']));
      expect([...(await kept('contract-intake'))]).toEqual(expect.arrayContaining(['MarginCallIssued', 'MarkRecorded']));
      expect(stores.get('contract-intake')!.kind).toBe('postgres');
      expect(stores.get('default-settlement')!.kind).toBe('postgres');
      expect(stores.get('premium-pricing')!.kind).toBe('embedded');
      expect(stores.get('margin-monitor')!.kind).toBe('embedded');
    });
  });
});
