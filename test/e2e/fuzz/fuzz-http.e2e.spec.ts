import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntakeModule } from '@backstop/intake-service';
import { MarginModule } from '@backstop/margin-service';
import { PricingModule } from '@backstop/pricing-service';
import { SettlementModule } from '@backstop/settlement-service';
import { ServiceName, SERVICE_NAMES, startTestBackstop, TestBackstop } from '@backstop/platform';
import { readAllEvents } from '@backstop/testing';
import { FUZZ_RUNS, FUZZ_SEED, hostileCommands, hostileInputs, HostileMessage } from './hostile';

const CONCURRENCY = 16;

/**
 * Issue 9: FUZZ_RUNS (default 10,000) hostile bodies on each HTTP command route, into the four
 * services in one process: POST /v1/commands (spread over every command type) and the operator's
 * input routes POST /v1/market/marks and /v1/credit/scores. Each gets a 4xx naming fields and rules
 * (never a 5xx), nothing is written for any of them, and the service still accepts a good command.
 */
describe(`fuzz: ${FUZZ_RUNS} hostile bodies per HTTP command route (seed ${FUZZ_SEED})`, () => {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'backstop-fuzz-http-'));
  let app: TestBackstop;
  beforeAll(async () => {
    app = await startTestBackstop({ modules: [IntakeModule, PricingModule, MarginModule, SettlementModule], config: { dataFile: join(dir, 'backstop.db') } });
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * One POST; a connection reset before any response (undici reusing a keep-alive socket the server
   * is closing, frequent on a loaded machine) is retried: no status came back, so nothing is judged.
   */
  const send = async (path: string, token: string, body: string): Promise<Response> => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await fetch(`${app.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body });
      } catch (err) {
        const code = ((err as Error).cause as { code?: string } | undefined)?.code;
        if (attempt >= 3 || (code !== 'ECONNRESET' && code !== 'UND_ERR_SOCKET')) throw err;
      }
    }
  };

  const post = async (path: string, messages: readonly HostileMessage[]) => {
    const token = app.runtime.auth.tokenFor('operator') ?? '';
    const results: { message: HostileMessage; status: number; body: { violations?: { field?: string; rule?: string }[] } }[] = [];
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < messages.length; i = next++) {
        const res = await send(path, token, messages[i].text);
        const text = await res.text();
        let body: { violations?: { field?: string; rule?: string }[] } = {};
        try {
          body = JSON.parse(text);
        } catch {
          body = {};
        }
        results.push({ message: messages[i], status: res.status, body });
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    return results;
  };

  const check = (route: string, results: Awaited<ReturnType<typeof post>>) => {
    const statuses: Record<number, number> = {};
    results.forEach((r) => (statuses[r.status] = (statuses[r.status] ?? 0) + 1));
    // Every one refused with a client error; never a 5xx, never accepted.
    expect(results.filter((r) => r.status < 400 || r.status >= 500).map((r) => ({ status: r.status, body: r.body, sent: r.message.text.slice(0, 300), mutations: r.message.mutations }))).toEqual([]);
    // JSON the body parser cannot read is its 400 (with Nest's message); every other refusal names the field and the rule.
    const unnamed = results.filter((r) => !r.message.mutations.includes('notJson') && !r.message.mutations.includes('nonFinite')).filter((r) => !r.body.violations?.length || r.body.violations.some((v) => !v.field || !v.rule));
    expect(unnamed.map((r) => ({ status: r.status, body: r.body, sent: r.message.text.slice(0, 300), mutations: r.message.mutations }))).toEqual([]);
    process.stderr.write(`fuzz (HTTP ${route}): ${results.length} bodies, seed ${FUZZ_SEED}: statuses ${JSON.stringify(statuses)}\n`);
  };

  it('POST /v1/commands: every hostile command is refused with 4xx naming the field and rule, nothing is written, and the service still works', async () => {
    const before = (await readAllEvents(app.runtime.store)).length;
    const perService = Math.ceil(FUZZ_RUNS / SERVICE_NAMES.length);
    const messages = SERVICE_NAMES.flatMap((s: ServiceName, i) => hostileCommands(s, perService, FUZZ_SEED + 100 + i));
    check('/v1/commands', await post('/v1/commands', messages));
    const ids = new Set(messages.map((m) => m.id));
    const events = await readAllEvents(app.runtime.store);
    expect(events.slice(before).filter((e) => ids.has(String(e.metadata.causationId)) || ids.has(String(e.metadata.correlationId)))).toEqual([]);
    const good = await app.send('RegisterParty', { partyId: 'after-fuzz', name: 'After', role: 'DESK', credit: { rating: 'A' } });
    expect(good).toMatchObject({ status: 200, reply: { status: 'ACCEPTED' } });
    expect((await fetch(`${app.url}/health/ready`)).status).toBe(200);
  }, 600_000);

  it.each([
    ['/v1/market/marks', 'MarkPrice'],
    ['/v1/credit/scores', 'CreditScore'],
  ] as const)('POST %s: every hostile input is refused with 4xx naming the field and rule', async (route, kind) => {
    const before = (await readAllEvents(app.runtime.store)).length;
    check(route, await post(route, hostileInputs(kind, FUZZ_RUNS, FUZZ_SEED + (kind === 'MarkPrice' ? 200 : 300))));
    await app.settle();
    // Refused inputs never reach a consumer: nothing after them records a mark or a score.
    expect((await readAllEvents(app.runtime.store)).slice(before).filter((e) => /Mark|Credit|Score/.test(e.type))).toEqual([]);
    expect((await fetch(`${app.url}/health/ready`)).status).toBe(200);
  }, 600_000);
});
