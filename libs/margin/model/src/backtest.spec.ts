import { BacktestInputError, chiSquare1Survival, kupiecPof, parsePriceCsv, runBacktest, sparkline } from './backtest';
import { volatilityPath } from './volatility';

const DAY_MS = 86_400_000;
const T0 = Date.UTC(2020, 0, 1);

function csv(prices: readonly number[], startMs = T0): string {
  const rows = prices.map((p, i) => `${new Date(startMs + i * DAY_MS).toISOString().slice(0, 10)} 00:00:00 UTC,${p},,`);
  return ['snapped_at,price,market_cap,total_volume', ...rows].join('\n');
}

/** A deterministic pseudo-random walk (xorshift), so the fixtures need no data files. */
function walk(days: number, volAnnual: number, seed = 7): number[] {
  let x = seed;
  const uniform = () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return ((x >>> 0) + 0.5) / 4294967296;
  };
  const prices = [100];
  for (let i = 1; i < days; i++) {
    const z = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    prices.push(prices[i - 1] * Math.exp((volAnnual / Math.sqrt(365)) * z));
  }
  return prices;
}

describe('Kupiec proportion-of-failures test', () => {
  it('has the χ²(1) tail at the textbook critical values', () => {
    // χ²(1) quantiles: 3.841459 (95%), 6.634897 (99%), 2.705543 (90%)
    expect(chiSquare1Survival(3.841458820694124)).toBeCloseTo(0.05, 10);
    expect(chiSquare1Survival(6.634896601021214)).toBeCloseTo(0.01, 10);
    expect(chiSquare1Survival(2.705543454095404)).toBeCloseTo(0.1, 10);
    expect(chiSquare1Survival(0)).toBe(1);
  });

  it('matches the likelihood ratio computed from the binomial likelihoods', () => {
    // n = 250, x = 8, p = 1%: LR = −2 ln[(0.99^242 · 0.01^8) / ((242/250)^242 · (8/250)^8)]
    const lr = -2 * (242 * Math.log(0.99) + 8 * Math.log(0.01) - 242 * Math.log(242 / 250) - 8 * Math.log(8 / 250));
    expect(kupiecPof(250, 8, 0.01).statistic).toBeCloseTo(lr, 10);
    expect(kupiecPof(250, 8, 0.01).pValue).toBeLessThan(0.05);
    expect(kupiecPof(250, 4, 0.01).pValue).toBeGreaterThan(0.05);
    // no breach at all: LR = −2n ln(1 − p)
    expect(kupiecPof(1000, 0, 0.005).statistic).toBeCloseTo(-2 * 1000 * Math.log(0.995), 10);
    expect(kupiecPof(1000, 5, 0.005).statistic).toBeCloseTo(0, 12);
    expect(() => kupiecPof(10, 11, 0.01)).toThrow(/breaches/);
  });
});

describe('price CSV', () => {
  it('reads a CoinGecko export, empty volume cells and all, and counts gaps', () => {
    const text = 'snapped_at,price,market_cap,total_volume\n2020-01-01 00:00:00 UTC,7200.5,1,\n2020-01-02 00:00:00 UTC,7300,,\n2020-01-05 00:00:00 UTC,1e-9,,\n';
    const parsed = parsePriceCsv(text);
    expect(parsed.observations.map((o) => o.price)).toEqual([7200.5, 7300, 1e-9]);
    expect(parsed.gaps).toBe(1);
  });

  it.each([
    ['price "abc"', 'snapped_at,price\n2020-01-01 00:00:00 UTC,1\n2020-01-02 00:00:00 UTC,abc\n', /line 3: price "abc"/],
    ['price 0', 'snapped_at,price\n2020-01-01 00:00:00 UTC,1\n2020-01-02 00:00:00 UTC,0\n', /line 3: price "0" must be a finite number > 0/],
    ['negative price', 'snapped_at,price\n2020-01-01 00:00:00 UTC,-5\n', /line 2: price "-5"/],
    ['bad time', 'snapped_at,price\n2020-13-01 00:00:00 UTC,1\n', /line 2: snapped_at/],
    ['out of order', 'snapped_at,price\n2020-01-02 00:00:00 UTC,1\n2020-01-01 00:00:00 UTC,1\n', /line 3: snapped_at .* not after line 2/],
    ['no header', '2020-01-01 00:00:00 UTC,1\n', /line 1: the header/],
    ['one row', 'snapped_at,price\n2020-01-01 00:00:00 UTC,1\n', /at least two/],
  ])('rejects %s naming the line and field', (_name, text, message) => {
    expect(() => parsePriceCsv(text)).toThrow(BacktestInputError);
    expect(() => parsePriceCsv(text)).toThrow(message);
  });
});

describe('volatility path', () => {
  it('is the RiskMetrics EWMA after the seed, and the look-back vol is the plain RMS', () => {
    const prices = [100, 110, 99, 105, 120];
    const obs = prices.map((price, i) => ({ atMs: T0 + i * DAY_MS, price }));
    const path = volatilityPath(obs, { seedObservations: 2 });
    const r = prices.slice(1).map((p, i) => Math.log(p / prices[i]));
    let v = (r[0] ** 2 + r[1] ** 2) / 2;
    expect(path[2]!.ewmaVolAnnual).toBeCloseTo(Math.sqrt(v * 365), 12);
    for (let i = 2; i < r.length; i++) v = 0.94 * v + 0.06 * r[i] ** 2;
    expect(path[4]!.ewmaVolAnnual).toBeCloseTo(Math.sqrt(v * 365), 12);
    expect(path[4]!.lookbackVolAnnual).toBeCloseTo(Math.sqrt((r.reduce((s, x) => s + x * x, 0) / 4) * 365), 12);
    expect(path[0]).toBeUndefined();
  });
});

describe('margin backtest', () => {
  it('holds 99.5% on a fat-free random walk: few breaches, no rejection', () => {
    const report = runBacktest(parsePriceCsv(csv(walk(2000, 0.8))), { underlying: 'TEST', mporDays: 5, confidence: 0.995 });
    expect(report.results).toHaveLength(4);
    for (const r of report.results) {
      expect(r.days).toBe(2000 - 30 - 5 + 1 - 1);
      expect(r.rejected).toBe(false);
    }
  });

  it('rejects a margin that misses: a −60% jump every 30 days against a thin-tailed, floor-free scan', () => {
    const prices = [100];
    for (let i = 1; i < 900; i++) prices.push(prices[i - 1] * (i % 30 === 0 ? 0.4 : 2.5 ** (1 / 29)));
    const report = runBacktest(parsePriceCsv(csv(prices)), {
      underlying: 'JUMPY', mporDays: 5, confidence: 0.995, params: { tailDegreesOfFreedom: 0 }, books: ['PERPETUAL'], sides: ['LONG'], lookbackFloorWeight: 0,
    });
    expect(report.results[0].breachRate).toBeGreaterThan(0.05);
    expect(report.results[0].rejected).toBe(true);
    expect(report.results[0].kupiecPValue).toBeLessThan(0.05);
  });

  it('survives a 99% fall in a week and prices near zero: finite figures, a bounded long loss, breaches counted', () => {
    const prices = walk(800, 1.5);
    for (let i = 0; i < 7; i++) prices[400 + i] = prices[399 + i] * 0.01 ** (1 / 7);
    for (let i = 407; i < 800; i++) prices[i] = prices[i - 1] * (prices[i] / prices[i - 1]) * 1e-9 ** (1 / 393) ;
    const report = runBacktest(parsePriceCsv(csv(prices)), { underlying: 'DEAD', mporDays: 5, confidence: 0.995 });
    for (const r of report.results) {
      for (const d of r.path) {
        expect(Number.isFinite(d.requirement) && Number.isFinite(d.loss)).toBe(true);
        if (r.book === 'PERPETUAL' && r.side === 'LONG') expect(d.loss).toBeLessThanOrEqual(1);
      }
    }
    const long = report.results.find((r) => r.book === 'PERPETUAL' && r.side === 'LONG')!;
    expect(long.breaches).toBeGreaterThan(0);
    expect(long.worstBreach!.atMs).toBeGreaterThanOrEqual(T0 + 390 * DAY_MS);
    expect(long.worstBreach!.atMs).toBeLessThanOrEqual(T0 + 407 * DAY_MS);
  });

  it('spans a gap in the data: the move runs to the first price at least MPOR days later', () => {
    const text = csv([100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100]).split('\n');
    text.splice(8, 3); // drop three days
    const report = runBacktest(parsePriceCsv(text.join('\n')), { underlying: 'GAP', mporDays: 2, confidence: 0.995, warmupObservations: 2, books: ['PERPETUAL'], sides: ['LONG'] });
    expect(report.gaps).toBe(1);
    expect(report.results[0].days).toBeGreaterThan(0);
  });

  it('draws requirement and loss on one scale, marking breach columns', () => {
    const s = sparkline([{ atMs: 0, requirement: 0.1, loss: 0.05 }, { atMs: 1, requirement: 0.1, loss: 0.2 }], 2);
    expect(s.requirement).toBe('▅▅');
    expect(s.loss).toBe('▃█');
    expect(s.breaches).toBe(' !');
  });
});
