/**
 * HTTP commands per second at saturation and their p99, for the whole app (`npm start`'s entry,
 * embedded store, every consumer running) against a bare node:http server doing one durable insert
 * per request (bench/bare-server.ts) — issue 13 targets: >= 0.5x the throughput, p99 <= 3x.
 * The load: CONNECTIONS keep-alive connections on 127.0.0.1, each sending the next RegisterParty
 * (a new party each time) as soon as the previous one is answered, for DURATION seconds after a
 * warm-up; rounds alternate app and baseline. Only 2xx answers count; any other fails the bench.
 * BENCH_HTTP_SECONDS (default 5), BENCH_HTTP_CONNECTIONS (default 32), BENCH_ROUNDS (default 3).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startApp, waitForStatus } from './app-process';
import { row, stats, writeResults } from './run';

const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 32);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Warm-up load per server before the rounds (JIT of the whole command path), not measured. */
const WARMUP_SECONDS = 3;
const TOKEN = `bench-operator-${randomUUID()}`;

interface Load {
  readonly perSecond: number;
  readonly p99Ms: number;
}

function post(agent: Agent, port: number, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/v1/commands', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${TOKEN}` } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

let partySeq = 0;
function registerParty(): string {
  partySeq += 1;
  const id = randomUUID();
  const partyId = `bench-${process.pid}-${partySeq}`;
  return JSON.stringify({ id, type: 'RegisterParty', schemaVersion: 1, time: '2026-01-01T00:00:00Z', key: partyId, correlationId: id, payload: { partyId, name: `Bench party ${partySeq}`, role: 'DESK', credit: { rating: 'A' } } });
}

async function load(port: number, seconds: number): Promise<Load> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1_000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        const status = await post(agent, port, registerParty());
        if (status < 200 || status >= 300) throw new Error(`command answered ${status}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1_000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { perSecond: latencies.length / elapsed, p99Ms: latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] };
}

export default async function httpCommandsBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-bench-http-'));
  const app = await startApp({ BACKSTOP_DATA_FILE: join(dir, 'app.db'), BACKSTOP_TOKENS: `${TOKEN}=operator` });
  const barePort = await freePort();
  const bare = spawn(process.execPath, ['-r', join(__dirname, '..', 'tools', 'register.js'), join(__dirname, 'bare-server.ts')], {
    env: { ...process.env, PORT: String(barePort), DATA_FILE: join(dir, 'bare.db') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const bareExited = new Promise<void>((resolve) => bare.once('exit', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      bare.stdout!.on('data', (d: Buffer) => (d.toString().includes('listening') ? resolve() : undefined));
      bare.once('exit', (code) => reject(new Error(`bare server exited with ${code}`)));
    });
    await waitForStatus(app, '/health/ready', 200, 120_000);
    // warm-up (JIT, page cache, connection set-up), not measured
    await load(app.port, WARMUP_SECONDS);
    await load(barePort, WARMUP_SECONDS);
    const appLoads: Load[] = [];
    const bareLoads: Load[] = [];
    for (let r = 0; r < ROUNDS; r += 1) {
      appLoads.push(await load(app.port, SECONDS));
      bareLoads.push(await load(barePort, SECONDS));
      const f = (l: Load) => `${l.perSecond.toFixed(0)} commands/s, p99 ${l.p99Ms.toFixed(1)} ms`;
      process.stdout.write(`  round ${r + 1}/${ROUNDS}: app ${f(appLoads[r])}; bare node:http + insert ${f(bareLoads[r])}\n`);
    }
    writeResults('http-commands', [
      row({ measure: `HTTP commands/s at saturation (${CONNECTIONS} connections, RegisterParty)`, unit: 'commands/s', higherIsBetter: true, value: stats(appLoads.map((l) => l.perSecond)), baseline: 'bare node:http + one durable insert per request', baselineValue: stats(bareLoads.map((l) => l.perSecond)), target: '>= 0.5x', targetRatio: 0.5 }),
      row({ measure: `HTTP command p99 at saturation (${CONNECTIONS} connections)`, unit: 'ms', higherIsBetter: false, value: stats(appLoads.map((l) => l.p99Ms)), baseline: 'bare node:http + one durable insert per request', baselineValue: stats(bareLoads.map((l) => l.p99Ms)), target: '<= 3x', targetRatio: 3 }),
    ]);
  } finally {
    await app.stop();
    if (bare.exitCode === null) bare.kill('SIGTERM');
    await bareExited;
    rmSync(dir, { recursive: true, force: true });
  }
}
