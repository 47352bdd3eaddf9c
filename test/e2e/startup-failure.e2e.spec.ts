import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Inject, Injectable, Module } from '@nestjs/common';
import { bootstrapBackstop, SERVICE_NAMES, StartupError } from '@backstop/platform';
import { silentLogger } from '@backstop/telemetry';
import { WORKSPACE_ROOT } from '@backstop/testing';

/**
 * A Nest dependency-injection failure at start-up must end the process, non-zero, with the cause on
 * stderr: an orchestrator restarts (and shows) a crashed pod, a hung one only fails its probes.
 */
describe('start-up failures exit non-zero with the cause', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-startup-failure-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (failure: string, env: Record<string, string> = {}) =>
    new Promise<{ code: number | null; stderr: string; ms: number }>((resolve) => {
      const started = Date.now();
      const child = spawn(process.execPath, ['-r', join(WORKSPACE_ROOT, 'tools/register.js'), join(WORKSPACE_ROOT, 'test/e2e/startup-failure-child.ts'), failure], {
        cwd: WORKSPACE_ROOT,
        env: { ...process.env, PORT: '0', HOST: '127.0.0.1', KAFKA_BROKERS: '', BACKSTOP_TOKENS: 'startup-failure-operator-token-1=operator', BACKSTOP_DATA_FILE: join(dir, `${failure}.db`), ...env },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      // A hang is the defect under test: kill the child after 45 s and report it as such.
      const guard = setTimeout(() => child.kill('SIGKILL'), 45_000);
      child.on('exit', (code) => {
        clearTimeout(guard);
        resolve({ code, stderr, ms: Date.now() - started });
      });
    });

  it('a provider whose dependency no module provides: exit 1 naming the provider and the token', async () => {
    const { code, stderr } = await run('missing-provider');
    expect(code).toBe(1);
    expect(stderr).toContain('Backstop failed while creating the Nest application (modules, dependency injection)');
    expect(stderr).toMatch(/can't resolve dependencies of the NeedsAClock \(\?\)/);
    expect(stderr).toContain('"WALL_CLOCK" at index [0]');
  }, 60_000);

  it('a module importing undefined (a circular file import): exit 1 with the scan error, not an empty message', async () => {
    const { code, stderr } = await run('undefined-import');
    expect(code).toBe(1);
    expect(stderr).toContain('Backstop failed while creating the Nest application');
    expect(stderr).toMatch(/index \[0\] is of type "undefined"|TypeError/);
    expect(stderr).not.toMatch(/dependency injection\): \s*$/m);
  }, 60_000);

  it('a provider factory that never settles: exit 1 after BACKSTOP_STARTUP_TIMEOUT_MS, saying so', async () => {
    const { code, stderr, ms } = await run('never-settles', { BACKSTOP_STARTUP_TIMEOUT_MS: '1500' });
    expect(code).toBe(1);
    expect(stderr).toContain('did not finish within 1500 ms (BACKSTOP_STARTUP_TIMEOUT_MS)');
    expect(ms).toBeLessThan(30_000);
  }, 60_000);

  it('a bad BACKSTOP_STARTUP_TIMEOUT_MS stops the start naming the variable and the rule', async () => {
    const { code, stderr } = await run('missing-provider', { BACKSTOP_STARTUP_TIMEOUT_MS: 'soon' });
    expect(code).toBe(1);
    expect(stderr).toContain('BACKSTOP_STARTUP_TIMEOUT_MS must be an integer 100..600000, got "soon"');
  }, 60_000);

  it('in process: bootstrapBackstop rejects with a StartupError and closes the store it opened', async () => {
    @Injectable()
    class NeedsAFeed {
      constructor(@Inject('PRICE_FEED') readonly feed: unknown) {}
    }
    @Module({ providers: [NeedsAFeed] })
    class BrokenModule {}
    const dataFile = join(dir, 'in-process.db');
    const failure = await bootstrapBackstop({
      services: SERVICE_NAMES,
      modules: [BrokenModule],
      logger: silentLogger,
      config: { dataFile, port: 0, host: '127.0.0.1', mode: 'single-process', kafkaBrokers: undefined },
    }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(StartupError);
    expect((failure as Error).message).toMatch(/NeedsAFeed \(\?\).*"PRICE_FEED"/s);
    // The store was opened (its file exists) and closed again: SQLite removes the WAL file when the
    // last connection closes cleanly.
    expect(existsSync(dataFile)).toBe(true);
    expect(existsSync(`${dataFile}-wal`)).toBe(false);
  }, 60_000);
});
