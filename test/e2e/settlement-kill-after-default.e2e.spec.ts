import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore, StoredEvent } from '@backstop/event-store';
import { makeEnvelope } from '@backstop/messaging';
import { commandEnvelope, CommandReply } from '@backstop/platform';
import { bearer, readAllEvents, RunningApp, startApp, waitForStoreQuiet, WORKSPACE_ROOT } from '@backstop/testing';
import { CAST, minor, runCrashScenario, SCENARIO_ENV, ScenarioTarget } from './scenario/crash-2020';

const DATA_DIR = join(WORKSPACE_ROOT, '..', 'shared', 'data');
const START = '2026-03-06T00:00:00.000Z';
/** Longs pay shorts 0.05% of notional at each 8-hour instant: the defaulter cpA is long. */
const FUNDING_RATE = '0.0005';

/**
 * Issue 8, defect 5, "seen after a settlement crash": the npm start composition runs as a child
 * process with BACKSTOP_FAULT_KILL_AFTER=DefaultTriggered:1, so settlement dies right after the
 * default was triggered, before it took it up. Restarted on the same store file 9 hours later, the
 * first thing that reaches it is a mark past a funding instant (every mark carries a funding rate)
 * while the defaulter's perpetual may still be open. Nothing may accrue on it from the default on,
 * the compliance replay must book every event, and the defaulter's collateral layer must stay
 * within what the ledger holds (defect 5: the ledger stopped with "cannot book LossAllocated").
 * Note: on restart settlement catches up from the store and closes the contract out before the
 * HTTP mark reaches margin, so this run guards the crash path end to end; the funding rule itself
 * is pinned by the account decider's specs.
 */
describe('SIGKILL right after a default, a mark after it, then the compliance replay', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-kill-default-'));
  const dataFile = join(dir, 'backstop.db');
  const env = { ...SCENARIO_ENV, BACKSTOP_DATA_FILE: dataFile, BACKSTOP_TEST_CLOCK: START, BACKSTOP_MARKET_DATA_DIR: DATA_DIR, KAFKA_BROKERS: '', LOG_LEVEL: 'info' };
  let app: RunningApp | undefined;
  let restarts = 0;
  let store: SqliteEventStore;
  let clockAt = START;
  let lastPrice = '';
  let markAfterDefault: string | undefined;

  afterAll(async () => {
    await app?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const readAll = (): Promise<StoredEvent[]> => readAllEvents(store);
  const quiet = () => waitForStoreQuiet(store);
  const postTo = (path: string, body: unknown) =>
    fetch(`${app!.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer() }, body: JSON.stringify(body) });
  const sendMark = async (payload: Record<string, string>) => {
    const res = await postTo('/v1/market/marks', makeEnvelope({ type: 'MarkPrice', key: payload.underlying, time: payload.at, payload }));
    expect(res.status).toBe(202);
  };
  /** Every call goes through here: killed by the fault, the app restarts without it and a mark arrives first. */
  const alive = async () => {
    if (app!.child.exitCode === null && app!.child.signalCode === null) return;
    expect(app!.child.signalCode).toBe('SIGKILL');
    expect(app!.output()).toMatch(/fault injection: SIGKILL after append #1 of DefaultTriggered/);
    restarts += 1;
    // Back 9 hours later (past at least one 8-hour funding instant), and a mark at the last price
    // arrives first: funding would be owed on it if anything still accrued after the default.
    clockAt = new Date(Date.parse(clockAt) + 9 * 3_600_000).toISOString();
    app = await startApp('apps/backstop/src/main.ts', { ...env, BACKSTOP_TEST_CLOCK: clockAt }, 90_000);
    markAfterDefault = clockAt;
    await sendMark({ underlying: 'BTC-USD', price: lastPrice, volAnnual: '0.8', fundingRate: FUNDING_RATE, at: clockAt });
    await quiet();
  };
  const post = async (path: string, body: unknown): Promise<Response> => {
    for (let attempt = 0; ; attempt += 1) {
      await alive();
      try {
        return await postTo(path, body);
      } catch (err) {
        if (attempt >= 3) throw err;
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  };
  const cli = (args: string[]) =>
    spawnSync(process.execPath, ['-r', join(WORKSPACE_ROOT, 'tools/register.js'), join(WORKSPACE_ROOT, 'apps/compliance-cli/src/main.ts'), ...args, '--data', dataFile], {
      cwd: WORKSPACE_ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });

  it('books no funding after the default, and the replay books every event within the collateral', async () => {
    app = await startApp('apps/backstop/src/main.ts', { ...env, BACKSTOP_FAULT_KILL_AFTER: 'DefaultTriggered:1' }, 90_000);
    store = new SqliteEventStore(dataFile);
    const target: ScenarioTarget = {
      send: async (type, payload) => (await (await post('/v1/commands', commandEnvelope(type, payload))).json()) as CommandReply,
      mark: async (payload) => {
        await alive();
        lastPrice = payload.price;
        const withRate = { ...payload, fundingRate: FUNDING_RATE };
        const res = await post('/v1/market/marks', makeEnvelope({ type: 'MarkPrice', key: payload.underlying, time: payload.at, payload: withRate }));
        expect(res.status).toBe(202);
      },
      advanceTo: async (wanted) => {
        await alive();
        await quiet();
        // The restart moved the clock ahead: it never goes back (nor is set to where it is).
        if (Date.parse(wanted) <= Date.parse(clockAt)) return;
        const iso = wanted;
        const res = await post('/v1/test/clock', { now: iso });
        expect(res.status).toBe(200);
        clockAt = iso;
        await quiet();
      },
      events: readAll,
    };
    await runCrashScenario(target, DATA_DIR, Date.parse(START), undefined, 6 * 3_600_000);
    expect(restarts).toBe(1);
    expect(markAfterDefault).toBeDefined();
    await app.stop();
    app = undefined;
    const events = await readAll();
    const count = (type: string) => events.filter((e) => e.type === type).length;
    expect([count('DefaultDeclared'), count('DefaultLossCharged'), count('PayoutMade'), count('DefaultSettled')]).toEqual([1, 1, 1, 1]);

    // The mark after the default was recorded, and nothing accrued on the defaulter's contract from the default on.
    const triggered = events.find((e) => e.type === 'DefaultTriggered')!;
    expect(triggered.data.partyId).toBe(CAST.cpA);
    expect(events.some((e) => e.type === 'MarkRecorded' && e.data.at === markAfterDefault && e.position > triggered.position)).toBe(true);
    // (Funding due at the default instant itself is decided before the default, in the same mark's
    // work, and is in the book settlement reads: only what was booked after the trigger is late.)
    const lateFunding = events.filter((e) => e.type === 'FundingExchanged' && e.data.contractId === CAST.c1 && (e.position > triggered.position || Date.parse(String(e.data.at)) > Date.parse(String(triggered.data.at))));
    expect(lateFunding).toEqual([]);

    // The compliance replay, as a child process on the store file: exit 0, every event booked.
    const replayed = cli(['replay', '--format', 'json']);
    expect([replayed.status, replayed.stderr.slice(-500)]).toEqual([0, expect.not.stringMatching(/cannot book/)]);
    const report = JSON.parse(replayed.stdout) as { position: string; eventsApplied: number; unmappedTypes: Record<string, number> };
    expect(BigInt(report.position)).toBe(events.at(-1)!.position);
    // The only types skipped are the durable MarkPrice inputs (no money moves on an input record).
    expect(Object.keys(report.unmappedTypes).filter((t) => t !== 'MarkPrice')).toEqual([]);

    // The waterfall's defaulter-collateral line never exceeds the defaulter's collateral in the
    // ledger just before the waterfall was booked (the ledger's own balance, replayed to there).
    const firstLine = events.find((e) => e.type === 'LossAllocated')!;
    const before = cli(['replay', '--position', String(firstLine.position - 1n), '--party', CAST.cpA, '--contract', CAST.c1, '--format', 'json']);
    expect(before.status).toBe(0);
    const balances = (JSON.parse(before.stdout) as { balances: { account: string; balanceMinor: string }[] }).balances;
    const collateral = balances.find((b) => b.account === `collateral:${CAST.cpA}:${CAST.c1}`);
    expect(collateral).toBeDefined();
    const taken = events.filter((e) => e.type === 'LossAllocated' && e.data.layer === 'DEFAULTER_CONTRACT_COLLATERAL').reduce((s, e) => s + minor(e.data.amount), 0n);
    expect(taken).toBeGreaterThan(0n);
    expect(taken).toBeLessThanOrEqual(BigInt(collateral!.balanceMinor));
  }, 400_000);
});
