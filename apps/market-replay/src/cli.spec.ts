import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseOptions, runCli } from './cli';

const dir = mkdtempSync(join(tmpdir(), 'market-replay-'));
const file = join(dir, 'eth-usd-daily.csv');
writeFileSync(file, ['snapped_at,price,market_cap,total_volume', '2021-01-01 00:00:00 UTC,730.5,1,1', '2021-01-02 00:00:00 UTC,775.1,1,1', '2021-01-03 00:00:00 UTC,980.2,1,1'].join('\n'));

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) }, env: {} } };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('market-replay arguments', () => {
  it('reads the underlying from the file name and the dates inclusively', () => {
    expect(parseOptions(['--file', file, '--from', '2021-01-02', '--to', '2021-01-02', '--dry-run'], {})).toMatchObject({
      underlying: 'ETH-USD',
      fromMs: Date.UTC(2021, 0, 2),
      toMs: Date.UTC(2021, 0, 3) - 1,
      volWindow: 30,
      speed: 0,
      batch: 500,
      target: { kind: 'dry-run' },
    });
    expect(parseOptions([file, '--brokers', 'a:9092, b:9092'], { KAFKA_TOPIC_PREFIX: 'dev.' })).toMatchObject({ target: { kind: 'kafka', brokers: ['a:9092', 'b:9092'], topicPrefix: 'dev.' } });
    expect(parseOptions([file], { KAFKA_BROKERS: 'k:9092' })).toMatchObject({ target: { kind: 'kafka', brokers: ['k:9092'] } });
    // The same KAFKA_* security settings as the services, validated the same way.
    expect(parseOptions([file], { KAFKA_BROKERS: 'k:9093', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'replay', KAFKA_SASL_PASSWORD: 'pw' })).toMatchObject({
      target: { kind: 'kafka', connection: { sasl: { mechanism: 'scram-sha-512', username: 'replay' } } },
    });
    expect(() => parseOptions([file], { KAFKA_BROKERS: 'k:9093', KAFKA_SASL_MECHANISM: 'kerberos' })).toThrow(/KAFKA_SASL_MECHANISM must be one of/);
  });

  it.each([
    [['--from', '2021-02-30', '--dry-run'], '--from must be a date YYYY-MM-DD, got "2021-02-30"'],
    [['--to', 'yesterday', '--dry-run'], '--to must be a date YYYY-MM-DD'],
    [['--from', '2021-01-03', '--to', '2021-01-01', '--dry-run'], '--from 2021-01-03 is after --to 2021-01-01'],
    [['--speed=-1', '--dry-run'], '--speed must be a number ≥ 0'],
    [['--batch', '5000', '--dry-run'], '--batch must be a whole number from 1 to 1000'],
    [['--vol', '65%', '--dry-run'], '--vol must be a decimal annual vol'],
    [['--vol-window', '1', '--dry-run'], '--vol-window must be a whole number from 2'],
    [['--underlying', 'btc', '--dry-run'], '--underlying must look like BTC-USD'],
    [[], 'no target: give --http <url>'],
    [['--http', 'http://x', '--dry-run'], 'give one target'],
    [['--nope'], "unknown option '--nope'"],
  ])('rejects %j with a clear message and exit code 2', async (args, message) => {
    const { err, io: cliIo } = io();
    expect(await runCli(['--file', file, ...args], cliIo)).toBe(2);
    expect(err.join('')).toContain(message);
    expect(err.join('')).toContain('Run with --help');
  });

  it('says which file is missing', async () => {
    const { err, io: cliIo } = io();
    expect(await runCli(['--file', join(dir, 'missing.csv'), '--underlying', 'BTC-USD', '--dry-run'], cliIo)).toBe(2);
    expect(err.join('')).toContain(`cannot read ${join(dir, 'missing.csv')}: no such file`);
  });

  it('says when the dates hold no prices, naming what the file covers', async () => {
    const { err, io: cliIo } = io();
    expect(await runCli(['--file', file, '--from', '2030-01-01', '--dry-run'], cliIo)).toBe(2);
    expect(err.join('')).toContain('no prices between the dates given (the file covers 2021-01-01 to 2021-01-03)');
  });

  it('says when the target cannot be reached, with exit code 1', async () => {
    const { err, io: cliIo } = io();
    const port = await closedPort();
    expect(await runCli(['--file', file, '--http', `http://127.0.0.1:${port}`], cliIo)).toBe(1);
    expect(err.join('')).toMatch(new RegExp(`cannot reach http://127.0.0.1:${port}/health/live: ECONNREFUSED`));
  });

  it('prints usage with --help', async () => {
    const { out, io: cliIo } = io();
    expect(await runCli(['--help'], cliIo)).toBe(0);
    expect(out.join('')).toMatch(/--speed <factor>/);
  });

  it('dry-runs NDJSON envelopes to stdout, paced by --speed', async () => {
    const { out, err, io: cliIo } = io();
    const started = Date.now();
    // Two days of market time at 86400×2 (two days per second): about one second of wall time.
    expect(await runCli(['--file', file, '--dry-run', '--vol', '0.7', '--speed', String(2 * 86_400)], cliIo)).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    const lines = out.join('').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((e) => e.payload.price)).toEqual(['730.5', '775.1', '980.2']);
    expect(lines.every((e) => e.payload.volAnnual === '0.7')).toBe(true);
    expect(err.join('')).toContain('published 3 of 3 MarkPrice (ETH-USD 2021-01-01 → 2021-01-03) to stdout (dry run)');
  });
});
