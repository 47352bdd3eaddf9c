import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore, StoredEvent } from '@backstop/event-store';
import { makeEnvelope } from '@backstop/messaging';
import { commandEnvelope, CommandReply } from '@backstop/platform';
import { bearer, readAllEvents, RunningApp, startApp, waitForStoreQuiet, WORKSPACE_ROOT } from '@backstop/testing';
import { minor, runCrashScenario, SCENARIO_ENV, ScenarioTarget, TERMS } from './scenario/crash-2020';

const DATA_DIR = join(WORKSPACE_ROOT, '..', 'shared', 'data');
const START = '2026-03-06T00:00:00.000Z';

/**
 * SIGKILL in the middle of a default settlement: the npm start composition runs as a child process
 * with BACKSTOP_FAULT_KILL_AFTER=DefaultLossCharged:1, so it dies right after the pool was charged
 * for the default and before the waterfall lines and the payout were written. Restarted on the
 * same store file (no fault), it must finish the settlement once: one charge, one payout, nothing
 * lost, nothing paid twice.
 */
describe('SIGKILL mid-settlement, then restart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-kill-'));
  const dataFile = join(dir, 'backstop.db');
  const env = { ...SCENARIO_ENV, BACKSTOP_DATA_FILE: dataFile, BACKSTOP_TEST_CLOCK: START, BACKSTOP_MARKET_DATA_DIR: DATA_DIR, KAFKA_BROKERS: '', LOG_LEVEL: 'info' };
  let app: RunningApp;
  let restarts = 0;
  let store: SqliteEventStore;
  let clockAt = START;

  afterAll(async () => {
    await app?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const readAll = (): Promise<StoredEvent[]> => readAllEvents(store);
  const quiet = () => waitForStoreQuiet(store);
  /** Every call goes through here: if the app was killed by the fault, restart it without the fault. */
  const alive = async () => {
    if (app.child.exitCode === null && app.child.signalCode === null) return;
    expect(app.child.signalCode).toBe('SIGKILL');
    expect(app.output()).toMatch(/fault injection: SIGKILL after append #1 of DefaultLossCharged/);
    restarts += 1;
    app = await startApp('apps/backstop/src/main.ts', { ...env, BACKSTOP_TEST_CLOCK: clockAt }, 90_000);
  };
  const post = async (path: string, body: unknown): Promise<Response> => {
    for (let attempt = 0; ; attempt += 1) {
      await alive();
      try {
        return await fetch(`${app.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer() }, body: JSON.stringify(body) });
      } catch (err) {
        if (attempt >= 3) throw err;
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  };

  it('finishes the settlement once after the restart', async () => {
    app = await startApp('apps/backstop/src/main.ts', { ...env, BACKSTOP_FAULT_KILL_AFTER: 'DefaultLossCharged:1' }, 90_000);
    store = new SqliteEventStore(dataFile);
    const target: ScenarioTarget = {
      send: async (type, payload) => (await (await post('/v1/commands', commandEnvelope(type, payload))).json()) as CommandReply,
      mark: async (payload) => {
        const res = await post('/v1/market/marks', makeEnvelope({ type: 'MarkPrice', key: payload.underlying, time: payload.at, payload }));
        expect(res.status).toBe(202);
      },
      advanceTo: async (iso) => {
        await alive();
        await quiet();
        const res = await post('/v1/test/clock', { now: iso });
        expect(res.status).toBe(200);
        clockAt = iso;
        await quiet();
      },
      events: readAll,
    };
    const run = await runCrashScenario(target, DATA_DIR, Date.parse(START), undefined, 6 * 3_600_000);
    expect(restarts).toBe(1);
    const count = (type: string) => run.events.filter((e) => e.type === type).length;
    expect(count('DefaultDeclared')).toBe(1);
    expect(count('DefaultLossCharged')).toBe(1);
    expect(count('PayoutMade')).toBe(1);
    expect(count('DefaultSettled')).toBe(1);
    expect(count('LossAllocated')).toBe(4);
    const payout = run.events.find((e) => e.type === 'PayoutMade')!;
    expect(minor(payout.data.fromPool)).toBeLessThanOrEqual(minor(TERMS.limitA));
    const layers = run.events.filter((e) => e.type === 'LossAllocated').reduce((s, e) => s + minor(e.data.amount), 0n);
    expect(minor(payout.data.amount)).toBe(layers);
  }, 400_000);
});
