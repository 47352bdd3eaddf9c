import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WORKSPACE_ROOT } from '@backstop/testing';

/**
 * Docker cannot run on this machine (no engine), so the Dockerfile is checked statically: parsed
 * into stages and instructions (line continuations, comments, ARG defaults in FROM), then held to
 * what the image must be. Building and running it is left to a machine with Docker.
 */
interface Instruction {
  readonly op: string;
  readonly args: string;
}
interface Stage {
  readonly name: string;
  readonly image: string;
  readonly instructions: Instruction[];
}

function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, op, rest] = /^(\S+)\s*(.*)$/.exec(line)!;
    const upper = op.toUpperCase();
    if (upper === 'FROM') {
      const [, image, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)!;
      const resolved = image.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string, b: string) => args[a ?? b] ?? '');
      stages.push({ name: name ?? String(stages.length), image: resolved, instructions: [] });
    } else if (stages.length === 0 && upper === 'ARG') {
      const [key, value = ''] = rest.split('=');
      args[key] = value;
    } else {
      stages.at(-1)!.instructions.push({ op: upper, args: rest });
    }
  }
  return { args, stages };
}

const text = readFileSync(join(WORKSPACE_ROOT, 'Dockerfile'), 'utf8');
const { stages } = parseDockerfile(text);
const stage = (name: string) => stages.find((s) => s.name === name)!;
const ops = (s: Stage, op: string) => s.instructions.filter((i) => i.op === op).map((i) => i.args);
const runtime = stages.at(-1)!;
const nodeMajor = (image: string) => Number(/^node:(\d+)/.exec(image)?.[1]);

describe('Dockerfile', () => {
  it('has a build stage, a production-modules stage and a runtime stage last', () => {
    expect(stages.map((s) => s.name)).toEqual(expect.arrayContaining(['build', 'prod-deps', 'runtime']));
    expect(runtime.name).toBe('runtime');
  });

  it('runs on a supported Node LTS (22 or newer), the same in every stage (better-sqlite3 is native)', () => {
    for (const s of stages) {
      expect(nodeMajor(s.image)).toBeGreaterThanOrEqual(22);
      expect(nodeMajor(s.image) % 2).toBe(0); // even majors are the LTS lines
      expect(s.image).toMatch(/-slim$/);
    }
    expect(new Set(stages.map((s) => s.image)).size).toBe(1);
  });

  it('keeps package.json engines honest: the image Node and the Node this suite runs on', () => {
    const engines = (JSON.parse(readFileSync(join(WORKSPACE_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    const majors = engines.split('||').map((r) => Number(/(\d+)/.exec(r)![1]));
    expect(majors).toContain(nodeMajor(runtime.image));
    expect(majors).toContain(Number(process.versions.node.split('.')[0]));
  });

  it('bundles every app in the build stage and builds native modules where a compiler is', () => {
    const build = stage('build');
    expect(ops(build, 'RUN').join('\n')).toMatch(/npm ci/);
    const bundleRun = ops(build, 'RUN').find((r) => r.includes('tools/build/bundle.js'))!;
    const apps = readdirSync(join(WORKSPACE_ROOT, 'apps'));
    expect(bundleRun.split(/\s+/).filter((w) => apps.includes(w)).sort()).toEqual(apps.sort());
    const deps = stage('prod-deps');
    expect(ops(deps, 'RUN').join('\n')).toMatch(/npm ci --omit=dev/);
    expect(ops(deps, 'RUN').join('\n')).toMatch(/g\+\+/);
  });

  it('ships a slim runtime: bundles and production modules only, no compiler, no TypeScript sources', () => {
    const copies = ops(runtime, 'COPY');
    expect(copies).toEqual(expect.arrayContaining([expect.stringMatching(/^--from=prod-deps \S*node_modules /), expect.stringMatching(/^--from=build \S*dist\/apps /)]));
    expect(copies.filter((c) => !c.startsWith('--from='))).toEqual([]); // nothing straight from the source tree
    expect(ops(runtime, 'RUN').join('\n')).not.toMatch(/apt-get|npm (ci|install)|python3|g\+\+|make/);
    expect(ops(runtime, 'ENV').join(' ')).toMatch(/NODE_ENV=production/);
  });

  it('runs as a numeric non-root user that owns /app/data, and nothing else it could write', () => {
    const user = ops(runtime, 'USER');
    expect(user).toHaveLength(1);
    const [uid, gid] = user[0].split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    const run = ops(runtime, 'RUN').join('\n');
    expect(run).toMatch(new RegExp(`mkdir -p /app/data && chown ${uid}:${gid ?? uid} /app/data`));
    expect(ops(runtime, 'ENV').join(' ')).toMatch(/BACKSTOP_DATA_FILE=\/app\/data\//);
    // USER comes after the last RUN: the final process never runs as root.
    const last = runtime.instructions.map((i) => i.op);
    expect(last.lastIndexOf('USER')).toBeGreaterThan(last.lastIndexOf('RUN'));
  });

  it('puts the stress scenarios\' price files in the image and points settlement at them', () => {
    const env = ops(runtime, 'ENV').join(' ');
    const dir = /BACKSTOP_MARKET_DATA_DIR=(\S+)/.exec(env)?.[1];
    expect(dir).toBe('/app/market-data');
    expect(ops(runtime, 'COPY')).toContain(`--from=market-data *-daily.csv ./market-data/`);
    expect(ops(runtime, 'WORKDIR')).toEqual(['/app']);
    // Built without the market-data context, the default stage stops the build with the reason.
    expect(ops(stage('market-data'), 'RUN').join('\n')).toMatch(/--build-context market-data=.*exit 1/);
  });

  it('checks its own health, and starts the SERVICE bundle with node as the signal receiver', () => {
    const healthcheck = ops(runtime, 'HEALTHCHECK');
    expect(healthcheck).toHaveLength(1);
    expect(healthcheck[0]).toMatch(/--start-period=\d+s/);
    expect(healthcheck[0]).toMatch(/\/health\/live/);
    const cmd = JSON.parse(ops(runtime, 'CMD')[0]) as string[];
    expect(cmd.join(' ')).toMatch(/exec node .*dist\/apps\/\$SERVICE\/main\.js/);
    expect(ops(runtime, 'EXPOSE')).toEqual(['3000']);
  });

  it('leaves host node_modules and build output out of the context', () => {
    const ignored = readFileSync(join(WORKSPACE_ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', 'data', '.git']));
  });
});
