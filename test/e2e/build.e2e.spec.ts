import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeKafka, RunningApp, spawnApp, TEST_TOKENS, TEST_TOKENS_ENV, uniquePrefix, waitUntil, WORKSPACE_ROOT } from '@backstop/testing';

/**
 * The image runs `node dist/apps/<service>/main.js`: these run the bundles the build target makes
 * (tools/build/bundle.js, what `nx run-many -t build` calls), with plain node (no TypeScript
 * loader), from a working directory outside the workspace, as the container would.
 */
const OUT = join(WORKSPACE_ROOT, 'tmp', `build-e2e-${process.pid}`);

/** Runs a built bundle with plain node from a fresh directory; stop() also removes that directory. */
async function runBundle(app: string, env: Record<string, string>): Promise<RunningApp> {
  const cwd = mkdtempSync(join(tmpdir(), `backstop-${app}-`));
  const running = await spawnApp([join(OUT, app, 'main.js')], {
    cwd,
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', BACKSTOP_TOKENS: TEST_TOKENS_ENV, BACKSTOP_DATA_FILE: join(cwd, 'backstop.db'), ...env },
    name: `${app} bundle`,
  });
  return {
    ...running,
    stop: async () => {
      const code = await running.stop();
      rmSync(cwd, { recursive: true, force: true });
      return code;
    },
  };
}

beforeAll(() => {
  execFileSync(process.execPath, [join(WORKSPACE_ROOT, 'tools/build/bundle.js'), '--outdir', OUT, 'backstop', 'contract-intake'], { cwd: WORKSPACE_ROOT, stdio: 'pipe', timeout: 120_000 });
}, 130_000);
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

describe('the built bundles', () => {
  it('inline the workspace code and leave only npm packages and node built-ins to require', () => {
    for (const app of ['backstop', 'contract-intake']) {
      const code = readFileSync(join(OUT, app, 'main.js'), 'utf8');
      expect(code).not.toMatch(/require\(["']@backstop\//);
      expect(code).not.toMatch(/require\(["'][^"']+\.ts["']\)/);
      const manifest = JSON.parse(readFileSync(join(OUT, app, 'bundle.json'), 'utf8')) as { external: string[] };
      const dependencies = Object.keys((JSON.parse(readFileSync(join(WORKSPACE_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
      // Every external is a production dependency (the image installs only those) or a node built-in.
      const root = (m: string) => (m.startsWith('@') ? m.split('/').slice(0, 2).join('/') : m.split('/')[0]);
      expect(manifest.external.filter((m) => !m.startsWith('node:') && !dependencies.includes(root(m)))).toEqual([]);
    }
  });

  it('backstop: starts with plain node, answers /health/live and takes a command (decorator metadata survived bundling)', async () => {
    const app = await runBundle('backstop', { BACKSTOP_MARKET_DATA_DIR: join(WORKSPACE_ROOT, '..', 'shared', 'data') });
    try {
      const live = await fetch(`${app.url}/health/live`);
      expect(live.status).toBe(200);
      expect(await live.json()).toEqual({ status: 'ok' });
      const ready = await waitUntil(async () => ((await fetch(`${app.url}/health/ready`)).status === 200 ? true : undefined), 30_000, 'ready');
      expect(ready).toBe(true);
      const auth = { authorization: `Bearer ${TEST_TOKENS.operator}`, 'content-type': 'application/json' };
      const command = {
        id: '0b6c3f5e-1d2a-4c1b-9e0f-5a6b7c8d9e01', type: 'RegisterParty', schemaVersion: 1, time: '2026-01-01T00:00:00Z', key: 'desk1', correlationId: 'build-e2e',
        payload: { partyId: 'desk1', name: 'Desk One', role: 'DESK', credit: { rating: 'A' } },
      };
      const accepted = await fetch(`${app.url}/v1/commands`, { method: 'POST', headers: auth, body: JSON.stringify(command) });
      expect(await accepted.json()).toMatchObject({ status: 'ACCEPTED', stream: 'party-desk1' });
      // class-validator's metadata (decorators) works in the bundle: a bad payload is refused field by field.
      const invalid = await fetch(`${app.url}/v1/commands`, { method: 'POST', headers: auth, body: JSON.stringify({ ...command, id: '0b6c3f5e-1d2a-4c1b-9e0f-5a6b7c8d9e02', payload: { partyId: 'desk2', role: 'DESK' } }) });
      expect(invalid.status).toBe(422);
      expect(JSON.stringify(await invalid.json())).toMatch(/name/);
      expect(app.output()).not.toMatch(/built-in crash days/); // the market data was found
    } finally {
      await app.stop();
    }
  }, 90_000);
});

describe('start-up with placeholder tokens', () => {
  it('refuses to start, naming the variable and the rule', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'backstop-placeholder-'));
    try {
      const result = spawnSync(process.execPath, [join(OUT, 'backstop', 'main.js')], {
        cwd,
        env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', BACKSTOP_DATA_FILE: join(cwd, 'b.db'), BACKSTOP_TOKENS: 'REPLACE-operator-token-with-a-random-value=operator' },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(result.status).toBe(1);
      expect(result.stdout + result.stderr).toMatch(/BACKSTOP_TOKENS: the operator token REPL… looks like a placeholder \(it contains the placeholder word "replace"\)/);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 40_000);
});

describeKafka('the contract-intake bundle', (brokers) => {
  it('runs one service alone against Kafka and reports ready', async () => {
    const app = await runBundle('contract-intake', { KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: uniquePrefix('bundle') });
    try {
      expect((await fetch(`${app.url}/health/live`)).status).toBe(200);
      const ready = await waitUntil(async () => {
        const res = await fetch(`${app.url}/health/ready`);
        return res.status === 200 ? ((await res.json()) as { mode: string; services: string[] }) : undefined;
      }, 60_000, 'contract-intake ready');
      expect(ready).toMatchObject({ mode: 'distributed', services: ['contract-intake'] });
    } finally {
      await app.stop();
    }
  }, 120_000);
});
