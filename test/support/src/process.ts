import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { waitUntil } from './wait';

export const WORKSPACE_ROOT = join(__dirname, '..', '..', '..');

export interface RunningApp {
  readonly child: ChildProcess;
  readonly url: string;
  output(): string;
  /** SIGTERM and wait (bounded); SIGKILL if it does not stop in time. */
  stop(): Promise<number | null>;
  kill(): Promise<void>;
}

/** Bearer tokens of the apps startApp runs (BACKSTOP_TOKENS), one per role, none bound to a party. */
export const TEST_TOKENS = {
  operator: 'test-operator-token-0000000001',
  compliance: 'test-compliance-token-00000001',
  desk: 'test-desk-token-00000000000001',
  provider: 'test-provider-token-0000000001',
} as const;

/** The Authorization header for one of TEST_TOKENS. */
export function bearer(role: keyof typeof TEST_TOKENS = 'operator'): { authorization: string } {
  return { authorization: `Bearer ${TEST_TOKENS[role]}` };
}

/** BACKSTOP_TOKENS for TEST_TOKENS: `token=role`, comma-separated. */
export const TEST_TOKENS_ENV = Object.entries(TEST_TOKENS).map(([role, token]) => `${token}=${role}`).join(',');

export interface SpawnAppOptions {
  readonly cwd: string;
  /** The child's whole environment (nothing is inherited unless the caller passes it). */
  readonly env: NodeJS.ProcessEnv;
  /** Names the process in errors ("<name> exited during start-up", "<name> to listen"). */
  readonly name: string;
  readonly timeoutMs?: number;
}

/**
 * Runs `node <args>` and waits until it logs "listening on http://...": the one start-up and stop
 * path of every app a test runs (TypeScript entries through startApp, built bundles as they are).
 */
export async function spawnApp(args: readonly string[], options: SpawnAppOptions): Promise<RunningApp> {
  const child = spawn(process.execPath, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  const url = await waitUntil(
    () => {
      if (gone) throw new Error(`${options.name} exited during start-up:\n${out}`);
      return /listening on (http:\/\/[\d.]+:\d+)/.exec(out)?.[1];
    },
    options.timeoutMs ?? 60_000,
    `${options.name} to listen`,
  ).catch((err: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${err.message}\n${out.slice(-3000)}`);
  });
  return {
    child,
    url,
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Starts an app entry (e.g. apps/backstop/src/main.ts) on a free port and waits until it listens.
 * It accepts TEST_TOKENS unless `env` sets BACKSTOP_TOKENS.
 */
export async function startApp(entry: string, env: Record<string, string>, timeoutMs = 60_000): Promise<RunningApp> {
  return spawnApp(['-r', join(WORKSPACE_ROOT, 'tools/register.js'), join(WORKSPACE_ROOT, entry)], {
    cwd: WORKSPACE_ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', BACKSTOP_TOKENS: TEST_TOKENS_ENV, ...env },
    name: entry,
    timeoutMs,
  });
}
