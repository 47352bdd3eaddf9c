/**
 * Starts the whole app (`npm start`'s entry: four services + ledger, embedded store, in-process
 * bus) as a child process on 127.0.0.1 for the benches, and stops it with SIGTERM. Not a bench itself.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** GET on 127.0.0.1: the status code, or 0 when nothing answers (refused, timed out). */
export function httpStatus(port: number, path: string, timeoutMs = 2_000): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

export interface AppProcess {
  readonly port: number;
  readonly child: ChildProcess;
  readonly startedAt: number;
  stop(): Promise<void>;
}

export async function startApp(env: Record<string, string>): Promise<AppProcess> {
  const port = await freePort();
  const startedAt = performance.now();
  // BENCH_APP_NODE_FLAGS: extra node flags for the app, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it under the bench's load.
  const flags = (process.env.BENCH_APP_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...flags, '-r', join(ROOT, 'tools', 'register.js'), join(ROOT, 'apps', 'backstop', 'src', 'main.ts')], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    port,
    child,
    startedAt,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls until `path` answers `status` (every 10 ms); returns ms since the process was spawned. */
export async function waitForStatus(app: AppProcess, path: string, status: number | ((s: number) => boolean), timeoutMs: number): Promise<number> {
  const ok = typeof status === 'number' ? (s: number) => s === status : status;
  const deadline = app.startedAt + timeoutMs;
  while (performance.now() < deadline) {
    if (app.child.exitCode !== null) throw new Error(`the app exited with code ${app.child.exitCode} while starting`);
    if (ok(await httpStatus(app.port, path))) return performance.now() - app.startedAt;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${path} did not answer as expected within ${timeoutMs} ms`);
}
