import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describePostgres, EventStore, PostgresEventStore, SqliteEventStore, StoredEvent, SubscriptionHandle } from '@backstop/event-store';
import { isLedgerEventType, replay } from '@backstop/ledger';
import { KafkaBus, TopicNames } from '@backstop/messaging';
import { commandEnvelope, CommandReply, SERVICE_NAMES, ServiceName, startEventPublisher } from '@backstop/platform';
import { MetricsRegistry, silentLogger } from '@backstop/telemetry';
import { bearer, describeKafka, readAllEvents, RunningApp, uniquePrefix, waitUntil, WORKSPACE_ROOT } from '@backstop/testing';
import { ledgerDigest, startLedgerApp, startServiceApps, stopServiceHarness } from './scenario/services';

/*
 * The ledger as its own service over the real broker. The services' side is their store and their
 * event publishers (libs/platform/src/publisher.ts, the code every service runs) putting each owned
 * stream's events on its topic; the ledger (apps/ledger) runs as a separate process with ITS OWN
 * store, fed only by the topics. Pricing's publisher starts late, so settlement's distribution of a
 * premium reaches the ledger before pricing's debit of it: the ledger must hold it back.
 * Every expected balance below is summed here from the amounts the test writes.
 */

const USDC_SCALE = 6n;

/** Minor units → the wire's decimal string ("12000.500000"). */
function decimal(minor: bigint): string {
  const sign = minor < 0n ? '-' : '';
  const abs = minor < 0n ? -minor : minor;
  return `${sign}${abs / 10n ** USDC_SCALE}.${(abs % 10n ** USDC_SCALE).toString().padStart(Number(USDC_SCALE), '0')}`;
}

/** "19000" or "12.5" USDC → minor units, the test's own arithmetic. */
function usdc(amount: string): bigint {
  const [whole, fraction = ''] = amount.split('.');
  return BigInt(whole) * 10n ** USDC_SCALE + BigInt((fraction + '000000').slice(0, Number(USDC_SCALE)));
}

/** The books the commands imply: account → balance on its normal side (minor units). */
class ExpectedBooks {
  readonly balances = new Map<string, bigint>();
  add(account: string, amountMinor: bigint): void {
    this.balances.set(account, (this.balances.get(account) ?? 0n) + amountMinor);
  }
  /** Money in from outside: the party's external cash account (debit-normal) and the account it funds. */
  paidIn(party: string, into: string, amount: string): void {
    this.add(`cash:external:${party}`, usdc(amount));
    this.add(into, usdc(amount));
  }
  paidOut(party: string, from: string, amount: string): void {
    this.add(`cash:external:${party}`, -usdc(amount));
    this.add(from, -usdc(amount));
  }
  asObject(): Record<string, string> {
    return Object.fromEntries([...this.balances].filter(([, v]) => v !== 0n).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, v.toString()]));
  }
}

interface BalancesBody {
  position: string;
  digest: string;
  balances: { account: string; currency: string; balanceMinor: string }[];
}

async function ledgerBalances(url: string): Promise<BalancesBody | undefined> {
  const res = await fetch(`${url}/v1/ledger/balances`, { headers: bearer('compliance') });
  if (res.status === 503) return undefined;
  if (res.status !== 200) throw new Error(`GET /v1/ledger/balances: ${res.status} ${await res.text()}`);
  return (await res.json()) as BalancesBody;
}

function booksOf(body: BalancesBody): Record<string, string> {
  return Object.fromEntries(
    body.balances
      .filter((b) => b.currency === 'USDC' && b.balanceMinor !== '0')
      .sort((a, b) => a.account.localeCompare(b.account))
      .map((b) => [b.account, b.balanceMinor]),
  );
}

/** Waits until the ledger at `url` has exactly the expected books (its live projection). */
async function waitForBooks(url: string, expected: ExpectedBooks, what: string): Promise<BalancesBody> {
  const want = JSON.stringify(expected.asObject());
  let last = '';
  return waitUntil(
    async () => {
      const body = await ledgerBalances(url);
      if (!body) return undefined;
      last = JSON.stringify(booksOf(body));
      return last === want ? body : undefined;
    },
    180_000,
    `${what}: the ledger's books to be ${want}`,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nlast seen: ${last}`);
  });
}

function cli(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-r', join(WORKSPACE_ROOT, 'tools/register.js'), join(WORKSPACE_ROOT, 'apps/compliance-cli/src/main.ts'), ...args],
      { cwd: WORKSPACE_ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The CLI's digest line ("<digest>  position <n>  all accounts") of a store at a position. */
async function cliDigest(store: string[], position: string): Promise<string> {
  const run = await cli(['digest', ...store, '--position', position, '--quiet']);
  if (run.code !== 0) throw new Error(`compliance digest failed (${run.code}): ${run.stderr}`);
  const [digest, , at] = run.stdout.trim().split(/\s+/);
  expect(at).toBe(position);
  return digest;
}

/** The ledger's own books: every event not in its inbox, in position order. */
function booked(events: readonly StoredEvent[]): StoredEvent[] {
  return events.filter((e) => !e.stream.startsWith('inbox-'));
}

describeKafka('the ledger service: the event topics into its own store, over the real broker', (brokers) => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-ledger-svc-'));
  const servicesFile = join(dir, 'services.db');
  const ledgerFile = join(dir, 'ledger.db');
  const prefix = uniquePrefix('ledger');
  const apps = new Map<string, RunningApp>();
  const expected = new ExpectedBooks();
  // LOG_LEVEL info: startApp waits for the "listening on" line, logged at info.
  const kafkaEnv = { KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: prefix, LOG_LEVEL: 'info' };
  const ledgerEnv = { ...kafkaEnv, BACKSTOP_DATA_FILE: ledgerFile };
  const at = '2026-03-06T00:00:00.000Z';
  const publishers: SubscriptionHandle[] = [];
  let services: SqliteEventStore;
  let bus: KafkaBus;

  /** A service's event publisher, as its process runs it (checkpointed in the services' store). */
  const startPublisher = async (owners: readonly ServiceName[], name: string) => {
    publishers.push(await startEventPublisher({ store: services, bus, topics: new TopicNames(prefix), services: owners, logger: silentLogger, metrics: new MetricsRegistry(), name }));
  };
  const append = (stream: string, type: string, data: Record<string, unknown>) =>
    services.append(stream, [{ id: randomUUID(), type, data: { ...data, at }, metadata: { schemaVersion: 1 } }], 'any');
  const collateral = new Map<string, bigint>();
  /** Intake's CollateralDeposited, with the balance it states (kept here). */
  const depositCollateral = async (partyId: string, amount: string) => {
    const balance = (collateral.get(partyId) ?? 0n) + usdc(amount);
    collateral.set(partyId, balance);
    const side = partyId === 'desk1' ? 'LONG' : 'SHORT';
    await append('contract-c1', 'CollateralDeposited', { contractId: 'c1', partyId, side, amount, currency: 'USDC', balance: decimal(balance) });
    expected.paidIn(partyId, `collateral:${partyId}:c1`, amount);
  };

  /** The services' store: the events they published, in their order. */
  const servicesEvents = (): Promise<StoredEvent[]> => readAllEvents(services);
  const ledgerEvents = (store: EventStore): Promise<StoredEvent[]> => readAllEvents(store);
  /** The books of the services' own store, replayed by the ledger domain (not by the service under test). */
  const servicesDigest = async (): Promise<string> => (await replay((after, maxCount) => services.readAll({ after, maxCount }))).digest();

  beforeAll(async () => {
    services = new SqliteEventStore(servicesFile);
    bus = new KafkaBus({ brokers, clientId: 'ledger-e2e' });
    await bus.ensureTopics(new TopicNames(prefix).all());
    apps.set('ledger', await startLedgerApp(ledgerEnv, 240_000));
  }, 300_000);

  afterAll(async () => {
    for (const p of publishers) await p.stop();
    await bus?.close();
    await stopServiceHarness({ apps, store: services, dir });
  }, 60_000);

  it('holds back an event until the event from another topic it depends on arrives, then books all; digest = CLI replay of its store', async () => {
    // Intake, margin and settlement publish; pricing's publisher is not running yet.
    await startPublisher(['contract-intake', 'margin-monitor', 'default-settlement'], 'publisher-intake-margin-settlement');
    for (const [partyId, role] of [['desk1', 'DESK'], ['cp1', 'COUNTERPARTY'], ['p1', 'PROVIDER']] as const) {
      await append(`party-${partyId}`, 'PartyRegistered', { partyId, name: partyId, role, credit: { rating: 'A' } });
    }
    await append('contract-c1', 'ContractRegistered', {
      contractId: 'c1', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '2', entryPrice: '60000', currency: 'USDC',
      longPartyId: 'desk1', shortPartyId: 'cp1', longInitialMargin: '1000', shortInitialMargin: '1000',
    });
    await depositCollateral('cp1', '15000');
    await depositCollateral('desk1', '12000.5');
    await append('pool-main', 'CapitalDeposited', { poolId: 'main', providerId: 'p1', tranche: 'JUNIOR', amount: '50000', shares: '50000', currency: 'USDC', cancelledShares: '0' });
    expected.paidIn('p1', 'pool-capital:junior:p1', '50000');
    await append('margin-c1', 'FundingExchanged', { contractId: 'c1', payerPartyId: 'desk1', receiverPartyId: 'cp1', amount: '100', currency: 'USDC', rate: '0.0001', mark: '61000' });
    expected.add('variation-margin:desk1:c1', -usdc('100'));
    expected.add('variation-margin:cp1:c1', usdc('100'));
    // Pricing's events, in pricing's streams...
    await append('coverage-cov1', 'CoverageBound', { coverageId: 'cov1', quoteId: 'q1', contractId: 'c1', protectedPartyId: 'desk1', counterpartyId: 'cp1', currency: 'USDC', coverageLimit: '20000' });
    await append('pricing-account-desk1', 'PremiumAccountFunded', { partyId: 'desk1', amount: '50', currency: 'USDC', balance: '50' });
    await append('pricing-account-desk1', 'PremiumAccountDebited', { partyId: 'desk1', coverageId: 'cov1', amount: '12.5', currency: 'USDC', balance: '37.5', periodStart: at, periodEnd: at });
    // ...and settlement distributing that premium, published at once.
    await append('pool-main', 'PremiumIncomeDistributed', {
      poolId: 'main', coverageId: 'cov1', payerPartyId: 'desk1', amount: '12.5', currency: 'USDC', fromReserve: '0',
      perTranche: { JUNIOR: '12.5', SENIOR: '0' }, perProvider: { JUNIOR: { p1: '12.5' }, SENIOR: {} }, undistributed: '0',
    });

    const ledger = apps.get('ledger')!;
    // Everything but pricing's part is booked; the distribution waits for the premium it distributes.
    await waitForBooks(ledger.url, expected, 'without pricing');
    await waitUntil(async () => {
      const metrics = await (await fetch(`${ledger.url}/metrics`)).text();
      return /^backstop_ledger_pending_events 1$/m.test(metrics) || undefined;
    }, 60_000, 'the distribution to wait in the ledger');

    await startPublisher(['premium-pricing'], 'publisher-premium-pricing');
    expected.paidIn('desk1', 'premium-account:desk1', '50');
    expected.add('premium-account:desk1', -usdc('12.5'));
    expected.add('pool-capital:junior:p1', usdc('12.5')); // premium-collected:cov1 took 12.5 and passed it on: 0
    const books = await waitForBooks(ledger.url, expected, 'with pricing');
    const live = (await ledgerDigest(ledger.url))!;
    expect(live).toMatchObject({ source: 'live', digest: books.digest });
    // The CLI, reading the ledger's own file, replays to the same position and gets the same digest...
    expect(await cliDigest(['--data', ledgerFile], live.position)).toBe(live.digest);
    // ...as does the service's own replay at that position; and the services' books are the same.
    expect((await ledgerDigest(ledger.url, live.position))!.digest).toBe(live.digest);
    expect(await servicesDigest()).toBe(live.digest);
    // In the ledger's store, the distribution comes after the debit it depends on.
    const store = new SqliteEventStore(ledgerFile);
    try {
      const types = booked(await ledgerEvents(store)).map((e) => e.type);
      expect(types.indexOf('PremiumIncomeDistributed')).toBeGreaterThan(types.indexOf('PremiumAccountDebited'));
    } finally {
      await store.close();
    }
    const ready = await waitUntil(async () => {
      const res = await fetch(`${ledger.url}/health/ready`);
      return res.status === 200 ? res.json() : undefined;
    }, 60_000, 'the ledger to be ready');
    expect(ready).toMatchObject({ status: 'ok', mode: 'distributed', services: [] });
  }, 600_000);

  it('killed (SIGKILL) while events flow and while it is down, restarted on the same store: loses nothing, books nothing twice', async () => {
    let ledger = apps.get('ledger')!;
    const before = BigInt((await ledgerDigest(ledger.url))!.position);
    // A burst of deposits; the ledger is killed once it has started booking them.
    const burst = (async () => {
      for (let i = 1; i <= 20; i += 1) {
        await depositCollateral(i % 2 === 0 ? 'cp1' : 'desk1', `${100 + i}.${i}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    await waitUntil(async () => (BigInt((await ledgerDigest(ledger.url))?.position ?? '0') > before ? true : undefined), 60_000, 'the ledger to book part of the burst');
    await ledger.kill();
    await burst;
    // More while it is down.
    await depositCollateral('cp1', '77.7');
    await append('pool-main', 'CapitalDeposited', { poolId: 'main', providerId: 'p1', tranche: 'JUNIOR', amount: '500', shares: '500', currency: 'USDC', cancelledShares: '0' });
    expected.paidIn('p1', 'pool-capital:junior:p1', '500');

    ledger = await startLedgerApp(ledgerEnv);
    apps.set('ledger', ledger);
    // Killed again while it catches up.
    await ledger.kill();
    ledger = await startLedgerApp(ledgerEnv);
    apps.set('ledger', ledger);
    const books = await waitForBooks(ledger.url, expected, 'after two SIGKILLs');

    // Its books hold each event the services published exactly once, each stream in its own order.
    const store = new SqliteEventStore(ledgerFile);
    try {
      const ledgerBooks = booked(await ledgerEvents(store));
      const published = (await servicesEvents()).filter((e) => isLedgerEventType(e.type));
      expect(ledgerBooks.map((e) => e.id).sort()).toEqual(published.map((e) => e.id).sort());
      const order = (events: StoredEvent[]) => {
        const byStream = new Map<string, string[]>();
        for (const e of events) byStream.set(e.stream, [...(byStream.get(e.stream) ?? []), e.id]);
        return Object.fromEntries([...byStream].sort(([x], [y]) => x.localeCompare(y)));
      };
      expect(order(ledgerBooks)).toEqual(order(published));
    } finally {
      await store.close();
    }
    const live = (await ledgerDigest(ledger.url))!;
    expect(live.digest).toBe(books.digest);
    expect(await servicesDigest()).toBe(live.digest);
    expect(await cliDigest(['--data', ledgerFile], live.position)).toBe(live.digest);
    const verify = await cli(['verify', '--data', ledgerFile]);
    expect(verify).toMatchObject({ code: 0 });
    expect(verify.stdout).toMatch(/^OK: /);
  }, 900_000);

  describePostgres('a second ledger on PostgreSQL', (db) => {
    const schema = 'ledger';
    let pgLedger: RunningApp | undefined;
    afterAll(async () => {
      await pgLedger?.stop();
    }, 30_000);

    it('rebuilds the same books from the topics into its empty PostgreSQL store; the CLI replays it there', async () => {
      const neverFile = join(dir, 'must-not-exist.db');
      pgLedger = await startLedgerApp({ ...kafkaEnv, BACKSTOP_POSTGRES_URL: db().url, BACKSTOP_POSTGRES_SCHEMA: schema, BACKSTOP_DATA_FILE: neverFile });
      const books = await waitForBooks(pgLedger.url, expected, 'the PostgreSQL ledger');
      const live = (await ledgerDigest(pgLedger.url))!;
      expect(live.digest).toBe(books.digest);
      // Same balances as the embedded ledger and the services' books, though its positions are its own.
      expect(live.digest).toBe((await ledgerDigest(apps.get('ledger')!.url))!.digest);
      expect(live.digest).toBe(await servicesDigest());
      expect(await cliDigest(['--postgres-url', db().url, '--postgres-schema', schema], live.position)).toBe(live.digest);
      const store = new PostgresEventStore(db().url, { schema, poolSize: 1 });
      try {
        const published = (await servicesEvents()).filter((e) => isLedgerEventType(e.type));
        expect(booked(await ledgerEvents(store)).map((e) => e.id).sort()).toEqual(published.map((e) => e.id).sort());
      } finally {
        await store.close();
      }
      expect(existsSync(neverFile)).toBe(false);
    }, 600_000);
  });
});

/** Which service process takes each command the second scenario sends (over its HTTP API). */
const COMMAND_OWNER: Record<string, ServiceName> = {
  RegisterParty: 'contract-intake',
  RegisterContract: 'contract-intake',
  AcceptContract: 'contract-intake',
  DepositCollateral: 'contract-intake',
  FundPremiumAccount: 'premium-pricing',
  WithdrawPremiumAccount: 'premium-pricing',
  DepositCapital: 'default-settlement',
};

/*
 * The same ledger process beside the four services as four processes (apps/<service>/src/main.ts,
 * sharing one store of theirs, as in crash-2020-kafka), driven by commands over their HTTP APIs.
 */
describeKafka('the ledger service beside the four service processes, over the real broker', (brokers) => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-ledger-svcs-'));
  const servicesFile = join(dir, 'services.db');
  const ledgerFile = join(dir, 'ledger.db');
  const prefix = uniquePrefix('ledgersvc');
  const apps = new Map<string, RunningApp>();
  const expected = new ExpectedBooks();
  const kafkaEnv = { KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: prefix, LOG_LEVEL: 'info' };

  const send = async (type: string, payload: Record<string, unknown>): Promise<CommandReply> => {
    const res = await fetch(`${apps.get(COMMAND_OWNER[type])!.url}/v1/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer('operator') },
      body: JSON.stringify(commandEnvelope(type, payload)),
    });
    const reply = (await res.json()) as CommandReply;
    if (reply.status !== 'ACCEPTED') throw new Error(`${type} ${JSON.stringify(payload)} was rejected (${res.status}): ${JSON.stringify(reply)}`);
    return reply;
  };

  beforeAll(async () => {
    await startServiceApps(apps, SERVICE_NAMES, { ...kafkaEnv, BACKSTOP_DATA_FILE: servicesFile }, 240_000);
    apps.set('ledger', await startLedgerApp({ ...kafkaEnv, BACKSTOP_DATA_FILE: ledgerFile }, 240_000));
  }, 900_000);

  afterAll(async () => {
    await stopServiceHarness({ apps, dir });
  }, 90_000);

  it('books what the services did from their topics; its digest equals the CLI replay of its store and the services\' books', async () => {
    for (const [partyId, role] of [['desk1', 'DESK'], ['cpA', 'COUNTERPARTY'], ['provJ', 'PROVIDER']] as const) {
      await send('RegisterParty', { partyId, name: partyId, role, credit: { rating: 'A' } });
    }
    const contract = { contractId: 'perpA', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '2', entryPrice: '9000', currency: 'USDC', longPartyId: 'cpA', shortPartyId: 'desk1', longInitialMargin: '0', shortInitialMargin: '0' };
    const registered = await send('RegisterContract', contract);
    if (registered.events?.includes('ContractProposed')) await send('AcceptContract', { contractId: 'perpA', partyId: 'cpA' });
    await send('DepositCapital', { providerId: 'provJ', tranche: 'JUNIOR', amount: '12000' });
    expected.paidIn('provJ', 'pool-capital:junior:provJ', '12000');
    await send('DepositCollateral', { contractId: 'perpA', partyId: 'cpA', amount: '19000' });
    expected.paidIn('cpA', 'collateral:cpA:perpA', '19000');
    await send('DepositCollateral', { contractId: 'perpA', partyId: 'desk1', amount: '25000.5' });
    expected.paidIn('desk1', 'collateral:desk1:perpA', '25000.5');
    await send('FundPremiumAccount', { partyId: 'desk1', amount: '5000', currency: 'USDC' });
    expected.paidIn('desk1', 'premium-account:desk1', '5000');
    await send('WithdrawPremiumAccount', { partyId: 'desk1', amount: '1250.25', currency: 'USDC' });
    expected.paidOut('desk1', 'premium-account:desk1', '1250.25');

    const ledger = apps.get('ledger')!;
    const books = await waitForBooks(ledger.url, expected, 'the services\' deposits');
    const live = (await ledgerDigest(ledger.url))!;
    expect(live.digest).toBe(books.digest);
    expect(await cliDigest(['--data', ledgerFile], live.position)).toBe(live.digest);
    const services = new SqliteEventStore(servicesFile);
    try {
      expect((await replay((after, maxCount) => services.readAll({ after, maxCount }))).digest()).toBe(live.digest);
      const published = (await readAllEvents(services)).filter((e) => isLedgerEventType(e.type) && e.stream.split('-')[0] !== 'inbox');
      const ledgerStore = new SqliteEventStore(ledgerFile);
      try {
        expect(booked(await readAllEvents(ledgerStore)).map((e) => e.id).sort()).toEqual(published.map((e) => e.id).sort());
      } finally {
        await ledgerStore.close();
      }
    } finally {
      await services.close();
    }
  }, 600_000);
});
