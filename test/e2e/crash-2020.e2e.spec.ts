import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { IntakeModule } from '@backstop/intake-service';
import { LedgerModule } from '@backstop/ledger-service';
import { replay } from '@backstop/ledger';
import { MarginModule } from '@backstop/margin-service';
import { commandEnvelope, CommandReply, startTestBackstop, TestBackstop } from '@backstop/platform';
import { PricingModule } from '@backstop/pricing-service';
import { SettlementModule } from '@backstop/settlement-service';
import { StoredEvent } from '@backstop/event-store';
import { WORKSPACE_ROOT, readAllEvents } from '@backstop/testing';
import { checkCrashOutcome, runCrashScenario, SCENARIO_ENV, ScenarioRun, ScenarioTarget } from './scenario/crash-2020';

const DATA_DIR = join(WORKSPACE_ROOT, '..', 'shared', 'data');

/** The crash in the single-process composition (npm start's), on a manual clock. */
describe('March 2020 BTC crash, single process: calls, backstop cover, default, waterfall, ledger', () => {
  let app: TestBackstop;
  let run: ScenarioRun;

  const readAll = (): Promise<StoredEvent[]> => readAllEvents(app.runtime.store);

  beforeAll(async () => {
    process.env.BACKSTOP_MARKET_DATA_DIR = DATA_DIR;
    Object.assign(process.env, SCENARIO_ENV);
    app = await startTestBackstop({ modules: [IntakeModule, PricingModule, MarginModule, SettlementModule, LedgerModule], start: new Date('2026-03-06T00:00:00Z') });
    const target: ScenarioTarget = {
      send: async (type, payload) => {
        const reply: CommandReply = await app.runtime.commands.execute(commandEnvelope(type, payload));
        return reply;
      },
      mark: async (payload) => {
        const status = await app.input('MarkPrice', payload, payload.underlying);
        if (status !== 202) throw new Error(`mark refused: ${status}`);
      },
      advanceTo: async (iso) => {
        await app.settle();
        await app.tickAt(iso);
        await app.settle();
      },
      events: readAll,
    };
    run = await runCrashScenario(target, DATA_DIR, Date.parse('2026-03-06T00:00:00Z'));
  }, 240_000);
  afterAll(() => app?.close());

  it('calls margin, covers the missed call, closes out and runs the waterfall exactly', async () => {
    if (process.env.DEBUG_SCENARIO) console.log(run.events.filter((e) => /Margin|Default|Loss|Payout|Claim|Closed|Cover/.test(e.type)).map((e) => `${e.type} ${JSON.stringify(e.data).slice(0, 300)}`).join('\n'));
    await checkCrashOutcome(run, {
      balancesAt: async (position) => {
        const projection = await replay((after, maxCount) => app.runtime.store.readAll({ after, maxCount }), { until: { kind: 'position', position } });
        return new Map(projection.balances().map((line) => [line.account, line.balanceMinor]));
      },
    });
  });

  it('compliance CLI: explain-default prints the waterfall, and the replayed digest equals the live ledger', async () => {
    const live = await app.get<{ digest: string; position: string }>('/v1/ledger/digest', { role: 'compliance' });
    expect(live.status).toBe(200);
    const cli = (args: string[]) =>
      spawnSync(process.execPath, ['-r', join(WORKSPACE_ROOT, 'tools/register.js'), join(WORKSPACE_ROOT, 'apps/compliance-cli/src/main.ts'), ...args, '--data', app.runtime.store.location], {
        cwd: WORKSPACE_ROOT,
        encoding: 'utf8',
        timeout: 60_000,
      });
    const digest = cli(['digest', '--position', String(live.body.position)]);
    expect(digest.status).toBe(0);
    expect(digest.stdout).toContain(live.body.digest);
    const explained = cli(['explain-default', run.defaultId, '--format', 'json']);
    expect(explained.status).toBe(0);
    const waterfall = JSON.parse(explained.stdout) as Record<string, unknown>;
    const layers = run.events.filter((e) => e.type === 'LossAllocated');
    const text = JSON.stringify(waterfall);
    for (const layer of layers) expect(text).toContain(String(layer.data.amount));
    const verify = cli(['verify']);
    expect(verify.status).toBe(0);
  }, 120_000);
});
