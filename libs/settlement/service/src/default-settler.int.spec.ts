/**
 * Exactly-once settlement against the real embedded store (SQLite file): the same trigger twice,
 * two replicas racing on separate connections, and a crash after every possible append.
 * Upstream facts (intake's contract, pricing's coverage, margin's trigger) are appended straight to
 * their streams here: they stand in for those services.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventStore, SqliteEventStore } from '@backstop/event-store';
import { ManualClock, toMinor } from '@backstop/kernel';
import { Envelope } from '@backstop/messaging';
import { decideOnStream, eventEnvelope, loadState, ReadModel } from '@backstop/platform';
import { poolDecider, PoolCommand } from '@backstop/settlement';
import { silentLogger } from '@backstop/telemetry';
import { settlementConfigFromEnv } from './config';
import { DefaultSettler } from './default-settler';
import { SETTLEMENT_FACTS } from './facts-view';

const T0 = '2026-01-01T00:00:00.000Z';
const config = settlementConfigFromEnv({});
let dir: string;
let file: string;
let seq = 0;
const stores: EventStore[] = [];

function open(): SqliteEventStore {
  const store = new SqliteEventStore(file);
  stores.push(store);
  return store;
}

/** default-settlement's read model of the other services' facts, over the store it writes to. */
const factsOf = (store: EventStore) => new ReadModel(store, { service: 'default-settlement', ...SETTLEMENT_FACTS });

/** An upstream fact, appended to its stream and kept in settlement's read model, as its consumer would. */
async function fact(store: EventStore, stream: string, type: string, data: Record<string, unknown>): Promise<void> {
  seq += 1;
  await store.append(stream, [{ id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`, type, data, metadata: { causationId: `seed-${seq}` } }], 'any');
  const events = await store.readStream(stream);
  await factsOf(store).observe(eventEnvelope(events[events.length - 1]));
}

/**
 * cp1 is short 10 BTC perpetual at 60 000 against desk1, with 50 000 posted; desk1 is covered up to
 * 100 000. Junior: p1 60 000; senior: p2 100 000. BTC's last sane mark is 75 000.
 */
async function seed(store: EventStore): Promise<Envelope> {
  for (const [providerId, tranche, amount] of [['p1', 'JUNIOR', '60000'], ['p2', 'SENIOR', '100000']] as const) {
    const command: PoolCommand = { type: 'DepositCapital', providerId, tranche, amount, provider: { partyId: providerId, role: 'PROVIDER' }, at: T0 };
    await decideOnStream(store, 'pool-main', poolDecider, command, { causationId: `deposit-${providerId}`, correlationId: 'seed', occurredAt: T0 });
  }
  await fact(store, 'contract-c1', 'ContractRegistered', {
    contractId: 'c1', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '10', entryPrice: '60000', currency: 'USDC',
    longPartyId: 'desk1', shortPartyId: 'cp1', longInitialMargin: '0', shortInitialMargin: '50000', at: T0,
  });
  await fact(store, 'contract-c1', 'CollateralDeposited', { contractId: 'c1', partyId: 'cp1', side: 'SHORT', amount: '50000', currency: 'USDC', balance: '50000', at: T0 });
  await fact(store, 'coverage-cov1', 'CoverageBound', {
    coverageId: 'cov1', contractId: 'c1', protectedPartyId: 'desk1', counterpartyId: 'cp1', currency: 'USDC', coverageLimit: '100000',
    start: T0, end: '2026-12-31T00:00:00.000Z', at: T0,
  });
  return trigger(store);
}

async function trigger(store: EventStore): Promise<Envelope> {
  await fact(store, 'margin-cp1', 'DefaultTriggered', { partyId: 'cp1', reason: 'SECOND_DEADLINE', detail: 'past the second deadline', lastSaneMarks: { 'BTC-USD': '75000' }, at: T0 });
  const events = await store.readStream('margin-cp1');
  return eventEnvelope(events[events.length - 1]);
}

const settler = (store: EventStore) => new DefaultSettler({ store, config, clock: new ManualClock(new Date(T0)), logger: silentLogger, facts: factsOf(store) });

/** What was paid, once: the facts an auditor would check. */
async function outcome(store: EventStore) {
  const pool = await store.readStream('pool-main');
  const defaults = await store.readStream('default-cp1');
  const { state } = await loadState(store, 'pool-main', poolDecider);
  return {
    charges: pool.filter((e) => e.type === 'DefaultLossCharged').length,
    freezes: pool.filter((e) => e.type === 'WithdrawalsFrozen').length,
    unfreezes: pool.filter((e) => e.type === 'WithdrawalsUnfrozen').length,
    frozen: state.frozen.size,
    declared: defaults.filter((e) => e.type === 'DefaultDeclared').length,
    settled: defaults.filter((e) => e.type === 'DefaultSettled').length,
    payouts: defaults.filter((e) => e.type === 'PayoutMade').map((e) => [e.data.partyId, e.data.fromDefaulter, e.data.fromPool]),
    junior: state.tranches.JUNIOR.capitalMinor,
    senior: state.tranches.SENIOR.capitalMinor,
    defaultEvents: defaults.length,
  };
}

// 75 000 × 1.005 = 75 375 close-out; (75 375 − 60 000) × 10 = 153 750 owed. Collateral pays 50 000;
// the pool pays to the 100 000 limit: junior 60 000, senior 40 000; 3 750 stays a claim.
const ONCE = {
  charges: 1,
  freezes: 1,
  unfreezes: 1,
  frozen: 0,
  declared: 1,
  settled: 1,
  payouts: [['desk1', '50000.000000', '100000.000000']],
  junior: 0n,
  senior: toMinor('60000', 6),
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'settler-'));
  file = join(dir, 'store.db');
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('settling a default exactly once', () => {
  it('settles a trigger through the waterfall, and a replayed trigger pays nothing more', async () => {
    const store = open();
    const envelope = await seed(store);
    const first = await settler(store).onTrigger(envelope);
    expect(first?.status).toBe('SETTLED');
    const once = await outcome(store);
    expect(once).toMatchObject(ONCE);
    await settler(store).onTrigger(envelope);
    // A second trigger for the same party (another reason, another event) opens no second case.
    await settler(store).onTrigger(await trigger(store));
    expect(await outcome(store)).toEqual(once);
  });

  it('pays once when two replicas on separate connections race on the same trigger', async () => {
    let envelope = await seed(open());
    for (let round = 0; round < 6; round += 1) {
      if (round > 0) {
        for (const s of stores.splice(0)) await s.close();
        rmSync(dir, { recursive: true, force: true });
        dir = mkdtempSync(join(tmpdir(), 'settler-'));
        file = join(dir, 'store.db');
        // This round's trigger: the read model waits for the very trigger it settles.
        envelope = await seed(open());
      }
      const random = lcg(round + 1);
      const [a, b] = [jittery(open(), random), jittery(open(), random)];
      const results = await Promise.all([settler(a).onTrigger(envelope), settler(b).onTrigger(envelope), settler(b).resumeFrozen()]);
      expect(results.slice(0, 2).map((r) => r?.status)).toEqual(['SETTLED', 'SETTLED']);
      expect(await outcome(open())).toMatchObject(ONCE);
    }
  });

  it('finishes a settlement interrupted after any append, without paying twice', async () => {
    const clean = open();
    await settler(clean).onTrigger(await seed(clean));
    const expected = await outcome(clean);
    for (let crashAt = 1; crashAt <= 6; crashAt += 1) {
      for (const s of stores.splice(0)) await s.close();
      rmSync(dir, { recursive: true, force: true });
      dir = mkdtempSync(join(tmpdir(), 'settler-'));
      file = join(dir, 'store.db');
      const store = open();
      const envelope = await seed(store);
      await expect(settler(crashing(store, crashAt)).onTrigger(envelope)).rejects.toThrow(/simulated crash/);
      // The resume ticker finishes what it can see (a freeze); the redelivered trigger does the rest.
      await settler(open()).resumeFrozen();
      await settler(open()).onTrigger(envelope);
      expect(await outcome(open())).toEqual(expected);
    }
  });
});

/** A store whose Nth append fails before writing: a process killed mid-settlement. */
function crashing(store: EventStore, failAt: number): EventStore {
  let appends = 0;
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop !== 'append') return Reflect.get(target, prop, receiver);
      return (...args: Parameters<EventStore['append']>) => {
        appends += 1;
        if (appends === failAt) return Promise.reject(new Error(`simulated crash before append ${failAt}`));
        return target.append(...args);
      };
    },
  });
}

/** A store that waits a random 0-3 ms before every call, so two settlers interleave at every await. */
function jittery(store: EventStore, random: () => number): EventStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || prop === 'onAppend') return value;
      return async (...args: unknown[]) => {
        await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 4)));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** Seeded generator (a test's race must be reproducible). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}
