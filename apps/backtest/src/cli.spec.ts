import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './cli';

const ROOT = join(__dirname, '..', '..', '..');
const DATA = join(ROOT, '..', 'shared', 'data');
const DAY_MS = 86_400_000;

function run(args: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = runCli(args, { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) } });
  return { code, out, err };
}

function file(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'backtest-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function csv(prices: readonly number[]): string {
  const t0 = Date.UTC(2019, 0, 1);
  return ['snapped_at,price,market_cap,total_volume', ...prices.map((p, i) => `${new Date(t0 + i * DAY_MS).toISOString().slice(0, 10)} 00:00:00 UTC,${p},,`)].join('\n');
}

const row = (out: string, book: string, side: string) => out.split('\n').find((l) => l.startsWith(`| ${book} | ${side} |`)) ?? '';

describe('npm run backtest', () => {
  it.each(['btc-usd-daily.csv', 'eth-usd-daily.csv'])('passes at 99.5%% on %s for long and short perpetuals and a short option book', (name) => {
    const { code, out } = run(['--file', join(DATA, name)]);
    expect(code).toBe(0);
    for (const [book, side] of [['perpetual', 'long'], ['perpetual', 'short'], ['option strangle', 'short']]) {
      const line = row(out, book, side);
      expect(line).toMatch(/\| pass/);
      const cells = line.split('|').map((c) => c.trim());
      expect(Number(cells[3])).toBeGreaterThan(2000); // days
      expect(cells[6]).toBe('0.50%'); // target
    }
    expect(out).toMatch(/margin {3}[▁▂▃▄▅▆▇█]+/);
    expect(out).toMatch(/loss {5}[▁▂▃▄▅▆▇█]+/);
  });

  it('names the underlying from the file and restricts to one side and book', () => {
    const { code, out } = run(['--file', join(DATA, 'eth-usd-daily.csv'), '--side', 'short', '--book', 'perpetual', '--mpor-days', '2', '--confidence', '0.99']);
    expect(code).toBe(0);
    expect(out).toMatch(/^ETH-USD: .* MPOR 2 d, confidence 99\.0%/);
    expect(out.split('\n').filter((l) => l.startsWith('| perpetual') || l.startsWith('| option'))).toHaveLength(1);
  });

  it('runs a coin that falls 99% in a week to near zero, and exits 1 only if a side rejects', () => {
    const prices = [1];
    for (let i = 1; i < 700; i++) prices.push(prices[i - 1] * (i >= 500 && i < 507 ? 0.01 ** (1 / 7) : Math.exp(0.05 * Math.sin(i * 1.7))));
    for (let i = 507; i < 700; i++) prices[i] = Math.max(prices[i], 1e-12);
    const { code, out } = run(['--file', file('dead-usd.csv', csv(prices))]);
    expect([0, 1]).toContain(code);
    expect(code === 1).toBe(/REJECTED/.test(out));
    expect(out).not.toMatch(/NaN|Infinity/);
    expect(row(out, 'perpetual', 'long')).toMatch(/\| \d+ \| [1-9]\d* \|/); // the crash breaches
  });

  it('exits 1 when a side rejects the target: a jumpy coin margined at 60%', () => {
    const prices = [100];
    for (let i = 1; i < 900; i++) prices.push(prices[i - 1] * (i % 30 === 0 ? 0.4 : 2.5 ** (1 / 29)));
    const { code, out } = run(['--file', file('jumpy.csv', csv(prices)), '--confidence', '0.999', '--mpor-days', '1']);
    // at 99.9% a −60% jump every month (3.3% of days) is far more often than 0.1%
    expect(out).toMatch(/REJECTED \(too many breaches\)/);
    expect(code).toBe(1);
  });

  it.each([
    ['a bad price line', csv([1, 2, 3]).replace(',2,,', ',two,,'), /line 3: price "two" must be a finite number > 0/],
    ['a zero price', csv([1, 0, 3]), /line 3: price "0"/],
    ['rows out of order', 'snapped_at,price\n2020-01-02 00:00:00 UTC,1\n2020-01-01 00:00:00 UTC,1\n', /line 3: snapped_at/],
    ['too short a series', csv([1, 2, 3, 4]), /too few/],
  ])('exits 2 on %s, naming the line and field', (_name, text, message) => {
    const { code, err, out } = run(['--file', file('bad.csv', text)]);
    expect(code).toBe(2);
    expect(err).toMatch(message);
    expect(out).toBe('');
  });

  it.each([
    [['--file', '/nonexistent.csv'], /no such file/],
    [[], /--file is required/],
    [['--file', join(DATA, 'btc-usd-daily.csv'), '--side', 'up'], /--side "up" must be long or short/],
    [['--file', join(DATA, 'btc-usd-daily.csv'), '--confidence', '1.5'], /--confidence "1.5" must be in \(0.5, 1\)/],
    [['--file', join(DATA, 'btc-usd-daily.csv'), '--mpor-days', '0'], /--mpor-days "0"/],
    [['--bogus'], /bogus/],
  ])('exits 2 on bad arguments %p', (args, message) => {
    const { code, err } = run(args as string[]);
    expect(code).toBe(2);
    expect(err).toMatch(message);
  });

  it('is wired as the npm script, with its exit code', () => {
    const result = spawnSync('npm', ['run', '-s', 'backtest', '--', '--file', join(DATA, 'eth-usd-daily.csv'), '--book', 'perpetual'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/\| perpetual \| long \| \d+ \|/);
  });
});
