import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describePostgres, EventStore, PostgresEventStore, SqliteEventStore, StoredEvent } from '@backstop/event-store';
import { isLedgerEventType, replay } from '@backstop/ledger';
import { commandEnvelope, CommandReply, SERVICE_NAMES, ServiceName } from '@backstop/platform';
import { bearer, describeKafka, readAllEvents, RunningApp, uniquePrefix, waitUntil, WORKSPACE_ROOT } from '@backstop/testing';
import { ledgerDigest, startLedgerApp, startServiceApps, stopServiceHarness } from './scenario/services';

/*
 * The ledger as its own service over the real broker: the four services run as four processes
 * publishing their events to Kafka (sharing one store of theirs, as in crash-2020-kafka), and the
 * ledger (apps/ledger) runs as a separate process with ITS OWN store, fed only by the topics.
 * Every expected balance below is summed here from the commands the test sends, not read from
 * the services.
 */

/** Which service takes each command the test sends (over its HTTP API). */
const OWNER: Record<string, ServiceName> = {
  RegisterParty: 'contract-intake',
  RegisterContract: 'contract-intake',
  AcceptContract: 'contract-intake',
  DepositCollateral: 'contract-intake',
  FundPremiumAccount: 'premium-pricing',
  WithdrawPremiumAccount: 'premium-pricing',
  DepositCapital: 'default-settlement',
};

const USDC_SCALE = 6n;
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
  const kafkaEnv = { KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: prefix, LOG_LEVEL: 'warn' };
  const ledgerEnv = { ...kafkaEnv, BACKSTOP_DATA_FILE: ledgerFile };
  const send = async (type: string, payload: Record<string, unknown>): Promise<CommandReply> => {
    const res = await fetch(`${apps.get(OWNER[type])!.url}/v1/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer('operator') },
      body: JSON.stringify(commandEnvelope(type, payload)),
    });
    const reply = (await res.json()) as CommandReply;
    if (reply.status !== 'ACCEPTED') throw new Error(`${type} ${JSON.stringify(payload)} was rejected (${res.status}): ${JSON.stringify(reply)}`);
    return reply;
  };
  const depositCollateral = async (contractId: string, partyId: string, amount: string) => {
    await send('DepositCollateral', { contractId, partyId, amount });
    expected.paidIn(partyId, `collateral:${partyId}:${contractId}`, amount);
  };
  const fundPremiums = async (partyId: string, amount: string) => {
    await send('FundPremiumAccount', { partyId, amount, currency: 'USDC' });
    expected.paidIn(partyId, `premium-account:${partyId}`, amount);
  };

  /** The services' own store: the events they published, in their order. */
  const servicesEvents = async (): Promise<StoredEvent[]> => {
    const store = new SqliteEventStore(servicesFile);
    try {
      return await readAllEvents(store);
    } finally {
      await store.close();
    }
  };
  const ledgerEvents = async (store: EventStore): Promise<StoredEvent[]> => readAllEvents(store);

  beforeAll(async () => {
    await startServiceApps(apps, SERVICE_NAMES, { ...kafkaEnv, BACKSTOP_DATA_FILE: servicesFile }, 240_000);
    apps.set('ledger', await startLedgerApp(ledgerEnv, 240_000));
    for (const [partyId, role] of [['desk1', 'DESK'], ['cpA', 'COUNTERPARTY'], ['provJ', 'PROVIDER'], ['provS', 'PROVIDER']] as const) {
      await send('RegisterParty', { partyId, name: partyId, role, credit: { rating: 'A' } });
    }
    const contract = { contractId: 'perpA', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '2', entryPrice: '9000', currency: 'USDC', longPartyId: 'cpA', shortPartyId: 'desk1', longInitialMargin: '0', shortInitialMargin: '0' };
    const registered = await send('RegisterContract', contract);
    if (registered.events?.includes('ContractProposed')) await send('AcceptContract', { contractId: 'perpA', partyId: 'cpA' });
  }, 600_000);

  afterAll(async () => {
    await stopServiceHarness({ apps, dir });
  }, 60_000);

  it('books every money event of the four topics; its digest at a position is the compliance CLI replay of its own store', async () => {
    await send('DepositCapital', { providerId: 'provJ', tranche: 'JUNIOR', amount: '12000' });
    expected.paidIn('provJ', 'pool-capital:junior:provJ', '12000');
    await send('DepositCapital', { providerId: 'provS', tranche: 'SENIOR', amount: '60000' });
    expected.paidIn('provS', 'pool-capital:senior:provS', '60000');
    await depositCollateral('perpA', 'cpA', '19000');
    await depositCollateral('perpA', 'desk1', '25000.5');
    await fundPremiums('desk1', '5000');
    await send('WithdrawPremiumAccount', { partyId: 'desk1', amount: '1250.25', currency: 'USDC' });
    expected.paidOut('desk1', 'premium-account:desk1', '1250.25');

    const ledger = apps.get('ledger')!;
    const books = await waitForBooks(ledger.url, expected, 'first deposits');
    const live = (await ledgerDigest(ledger.url))!;
    expect(live).toMatchObject({ source: 'live', digest: books.digest });
    // The CLI, reading the ledger's own file, replays to the same position and gets the same digest...
    expect(await cliDigest(['--data', ledgerFile], live.position)).toBe(live.digest);
    // ...and so does the service's own replay endpoint at that position.
    expect((await ledgerDigest(ledger.url, live.position))!.digest).toBe(live.digest);
    // The same events in the services' store give the same books (positions differ, balances do not).
    const store = new SqliteEventStore(servicesFile);
    try {
      expect((await replay((after, maxCount) => store.readAll({ after, maxCount }))).digest()).toBe(live.digest);
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
      for (let i = 1; i <= 12; i += 1) await depositCollateral('perpA', i % 2 === 0 ? 'cpA' : 'desk1', `${100 + i}.${i}`);
    })();
    await waitUntil(async () => (BigInt((await ledgerDigest(ledger.url))?.position ?? '0') > before ? true : undefined), 60_000, 'the ledger to book part of the burst');
    await ledger.kill();
    await burst;
    // More while it is down.
    await fundPremiums('desk1', '77.7');
    await send('DepositCapital', { providerId: 'provJ', tranche: 'JUNIOR', amount: '500' });
    expected.paidIn('provJ', 'pool-capital:junior:provJ', '500');

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
        return Object.fromEntries([...byStream].sort(([a], [b]) => a.localeCompare(b)));
      };
      expect(order(ledgerBooks)).toEqual(order(published));
    } finally {
      await store.close();
    }
    const live = (await ledgerDigest(ledger.url))!;
    expect(live.digest).toBe(books.digest);
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
      pgLedger = await startLedgerApp({ ...kafkaEnv, BACKSTOP_POSTGRES_URL: db().url, BACKSTOP_POSTGRES_SCHEMA: schema, BACKSTOP_DATA_FILE: join(dir, 'must-not-exist.db') });
      const books = await waitForBooks(pgLedger.url, expected, 'the PostgreSQL ledger');
      const live = (await ledgerDigest(pgLedger.url))!;
      expect(live.digest).toBe(books.digest);
      // Same balances as the embedded ledger, though its positions are its own.
      expect(live.digest).toBe((await ledgerDigest(apps.get('ledger')!.url))!.digest);
      expect(await cliDigest(['--postgres-url', db().url, '--postgres-schema', schema], live.position)).toBe(live.digest);
      const store = new PostgresEventStore(db().url, { schema, poolSize: 1 });
      try {
        const published = (await servicesEvents()).filter((e) => isLedgerEventType(e.type));
        expect(booked(await ledgerEvents(store)).map((e) => e.id).sort()).toEqual(published.map((e) => e.id).sort());
      } finally {
        await store.close();
      }
    }, 600_000);
  });
});
