import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { MarkPriceDto } from '@backstop/platform';
import { markEnvelope, parseCoinGeckoCsv, realizedVols, ReplayInputError } from './series';

const CSV = [
  'snapped_at,price,market_cap,total_volume',
  '2020-03-11 00:00:00 UTC,7906.731528510632,144000000000,40000000000',
  '2020-03-12 00:00:00 UTC,7935.522040170545,145000000000,41000000000',
  '',
  '2020-03-13 00:00:00 UTC,5142.990459018316,94000000000,80000000000',
  'not a date,1,2,3',
  '2020-03-14 00:00:00 UTC,,1,1',
  '2020-03-10 00:00:00 UTC,7921.33200691072,144000000000,39000000000',
  '2020-03-15 00:00:00 UTC,5.5e3,1,1',
  '2020-03-16 00:00:00 UTC,-3,1,1',
  '2020-03-13 00:00:00 UTC,5143.0,1,1',
].join('\n');

describe('CoinGecko CSV', () => {
  const series = parseCoinGeckoCsv(CSV);

  it('reads time and price, sorted by time, the last row winning for a repeated instant', () => {
    expect(series.points.map((p) => [p.at, p.price])).toEqual([
      ['2020-03-10T00:00:00.000Z', '7921.33200691072'],
      ['2020-03-11T00:00:00.000Z', '7906.731528510632'],
      ['2020-03-12T00:00:00.000Z', '7935.522040170545'],
      ['2020-03-13T00:00:00.000Z', '5143.0'],
      ['2020-03-15T00:00:00.000Z', '5500'],
    ]);
  });

  it('reports unusable rows with their line and reason instead of failing', () => {
    expect(series.skipped).toEqual([
      { line: 6, reason: 'snapped_at "not a date" is not a time' },
      { line: 7, reason: 'price "" is not a positive number' },
      { line: 10, reason: 'price "-3" is not a positive number' },
    ]);
  });

  it('refuses a file that is not a CoinGecko export', () => {
    expect(() => parseCoinGeckoCsv('date,close\n2020-01-01,1')).toThrow(ReplayInputError);
    expect(() => parseCoinGeckoCsv('')).toThrow(/snapped_at and price/);
  });

  it('computes realised vol from log returns over a window, annualised with 365 days', () => {
    const prices = [100, 110, 99, 104.5, 100, 120];
    const points = prices.map((p, i) => ({ at: new Date(Date.UTC(2020, 0, 1 + i)).toISOString(), atMs: Date.UTC(2020, 0, 1 + i), price: String(p), line: i + 2 }));
    const vols = realizedVols(points, 3, 2);
    const returns = prices.slice(1).map((p, i) => Math.log(p / prices[i]));
    const stdev = (xs: number[]) => {
      const m = xs.reduce((a, b) => a + b, 0) / xs.length;
      return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
    };
    expect(vols[0]).toBeUndefined();
    expect(vols[1]).toBeUndefined();
    expect(vols[2]).toBeCloseTo(stdev(returns.slice(0, 2)) * Math.sqrt(365), 12);
    expect(vols[5]).toBeCloseTo(stdev(returns.slice(2, 5)) * Math.sqrt(365), 12);
    expect(() => realizedVols(points, 1)).toThrow(/at least 2/);
  });
});

describe('MarkPrice envelopes', () => {
  const [point] = parseCoinGeckoCsv(CSV).points;

  it('builds a MarkPrice the platform accepts, keyed by the underlying, at the CSV time', () => {
    const envelope = markEnvelope(point, 0.6543219, { underlying: 'BTC-USD' });
    expect(envelope).toMatchObject({
      type: 'MarkPrice',
      schemaVersion: 1,
      key: 'BTC-USD',
      time: '2020-03-10T00:00:00.000Z',
      payload: { underlying: 'BTC-USD', price: '7921.33200691072', volAnnual: '0.654322', at: '2020-03-10T00:00:00.000Z' },
    });
    expect(validateSync(plainToInstance(MarkPriceDto, envelope.payload), { whitelist: true, forbidNonWhitelisted: true })).toEqual([]);
  });

  it('gives the same message id to the same mark (a re-run is deduplicated), and new ids to restamped marks', () => {
    const a = markEnvelope(point, 0.6, { underlying: 'BTC-USD' });
    expect(markEnvelope(point, 0.6, { underlying: 'BTC-USD' }).id).toBe(a.id);
    expect(markEnvelope(point, 0.7, { underlying: 'BTC-USD' }).id).not.toBe(a.id);
    const restamped = markEnvelope(point, 0.6, { underlying: 'BTC-USD', restamp: true }, '2026-01-01T00:00:00.000Z');
    expect(restamped.payload.at).toBe('2026-01-01T00:00:00.000Z');
    expect(restamped.id).not.toBe(a.id);
  });

  it('uses a fixed vol when given, and leaves out a vol it does not have', () => {
    expect(markEnvelope(point, 0.6, { underlying: 'BTC-USD', fixedVol: '0.8' }).payload.volAnnual).toBe('0.8');
    expect(markEnvelope(point, undefined, { underlying: 'BTC-USD' }).payload).not.toHaveProperty('volAnnual');
  });
});
