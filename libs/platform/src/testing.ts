import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from '@nestjs/common';
import { ManualClock } from '@backstop/kernel';
import { Envelope, makeEnvelope } from '@backstop/messaging';
import { Logger, silentLogger } from '@backstop/telemetry';
import { Role } from './auth';
import { CommandReply } from './commands';
import { RuntimeConfig, ServiceName, SERVICE_NAMES } from './config';
import { BackstopApp, bootstrapBackstop } from './nest/bootstrap';

async function headPosition(app: BackstopApp): Promise<bigint> {
  let after = 0n;
  for (;;) {
    const page = await app.runtime.store.readAll({ after, maxCount: 4_096 });
    if (page.length === 0) return after;
    after = page[page.length - 1].position;
  }
}

/** A command envelope as a desk would send it (fresh id unless given). */
export function commandEnvelope(type: string, payload: Record<string, unknown>, options: { id?: string; key?: string; time?: string } = {}): Envelope {
  return makeEnvelope({
    id: options.id ?? randomUUID(),
    type,
    key: options.key ?? (String(Object.values(payload)[0] ?? '') || type),
    time: options.time ?? '2026-01-01T00:00:00Z',
    payload,
  });
}

export interface TestBackstop extends BackstopApp {
  readonly clock: ManualClock;
  /** POST /v1/commands (as the operator unless `role` or `token` says otherwise); returns the HTTP status and the reply. */
  /**
   * Sends a command over HTTP. As a client should, a reply that is REJECTED but retryable (a fact
   * from another service not arrived yet) is retried once the app has settled, with the same id;
   * `retryNotYetKnown: false` returns the first reply instead (the race tests).
   */
  send(type: string, payload: Record<string, unknown>, options?: { id?: string; role?: Role; token?: string | null; retryNotYetKnown?: boolean }): Promise<{ status: number; reply: CommandReply }>;
  /** GET as the operator unless `role` or `token` says otherwise (`token: null`: no Authorization header). */
  get<T = unknown>(path: string, options?: { role?: Role; token?: string | null }): Promise<{ status: number; body: T }>;
  /** POST a MarkPrice / CreditScore payload to the input endpoint (published on its topic). */
  input(kind: 'MarkPrice' | 'CreditScore', payload: Record<string, unknown>, key: string): Promise<number>;
  /** Moves the manual clock to `iso` and runs every ticker once. */
  tickAt(iso: string): Promise<void>;
  /** Waits until consumers have handled everything appended so far (the store head stops moving). */
  settle(timeoutMs?: number): Promise<void>;
}

/**
 * The real app (Nest, HTTP, command pipeline, store file) on a free port with a manual clock,
 * for service specs. Single-process unless `config` says otherwise.
 */
export async function startTestBackstop(options: {
  modules: readonly Type<unknown>[];
  services?: readonly ServiceName[];
  config?: Partial<RuntimeConfig>;
  start?: Date;
  /** Where the app logs (silent unless given). */
  logger?: Logger;
}): Promise<TestBackstop> {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-test-'));
  const clock = new ManualClock(options.start ?? new Date('2026-01-01T00:00:00Z'));
  const app = await bootstrapBackstop({
    services: options.services ?? SERVICE_NAMES,
    modules: options.modules,
    clock,
    logger: options.logger ?? silentLogger,
    config: { port: 0, host: '127.0.0.1', dataFile: join(dir, 'backstop.db'), mode: 'single-process', kafkaBrokers: undefined, ...options.config },
  });
  /** The Authorization header: the given token, else the role's (the operator's by default); none for `token: null`. */
  const authorization = (options: { role?: Role; token?: string | null } = {}): Record<string, string> => {
    const token = options.token === undefined ? app.runtime.auth.tokenFor(options.role ?? 'operator') : options.token;
    return token ? { authorization: `Bearer ${token}` } : {};
  };
  const settle = async (timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    let head = -1n;
    for (let stable = 0; stable < 3 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 30));
      const now = await headPosition(app);
      await app.runtime.waitForSubscriptions(now, Math.max(1, deadline - Date.now()));
      stable = now === head ? stable + 1 : 0;
      head = now;
    }
  };
  return {
    ...app,
    clock,
    close: async () => {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
    send: async (type, payload, sendOptions = {}) => {
      const { role, token, retryNotYetKnown = true, ...envelopeOptions } = sendOptions;
      const body = JSON.stringify(commandEnvelope(type, payload, envelopeOptions));
      const post = async () => {
        const res = await fetch(`${app.url}/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', ...authorization({ role, token }) }, body });
        return { status: res.status, reply: (await res.json()) as CommandReply };
      };
      const first = await post();
      if (!retryNotYetKnown || first.reply.retryable !== true) return first;
      await settle();
      return post();
    },
    input: async (kind, payload, key) => {
      const path = kind === 'MarkPrice' ? 'market/marks' : 'credit/scores';
      // A feed's mark reaches us when it is observed: margin judges marks by the receiving clock and
      // flags one dated ahead of it (FUTURE), so a spec's mark moves the manual clock up to its time.
      const observedMs = typeof payload.at === 'string' ? Date.parse(payload.at) : Number.NaN;
      if (kind === 'MarkPrice' && observedMs > clock.now().getTime()) clock.set(new Date(observedMs));
      const res = await fetch(`${app.url}/v1/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...authorization() },
        body: JSON.stringify(makeEnvelope({ type: kind, key, time: clock.now().toISOString(), payload })),
      });
      return res.status;
    },
    tickAt: async (iso) => {
      clock.set(new Date(iso));
      await app.runtime.tick();
    },
    settle,
    get: async <T>(path: string, getOptions: { role?: Role; token?: string | null } = {}) => {
      const res = await fetch(`${app.url}${path}`, { headers: authorization(getOptions) });
      return { status: res.status, body: (await res.json()) as T };
    },
  };
}
