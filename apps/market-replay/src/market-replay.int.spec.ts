import { IntakeModule } from '@backstop/intake-service';
import { PricingModule } from '@backstop/pricing-service';
import { startTestBackstop, TestBackstop } from '@backstop/platform';
import { runCli } from './cli';

const BTC = `${__dirname}/../../../../shared/data/btc-usd-daily.csv`;

describe('market-replay against a running app over HTTP', () => {
  let app: TestBackstop;
  beforeAll(async () => {
    app = await startTestBackstop({ modules: [IntakeModule, PricingModule] });
  });
  afterAll(() => app?.close());

  it('publishes the March 2020 crash as marks with realised vol, which the pricing service records', async () => {
    const err: string[] = [];
    const code = await runCli(['--file', BTC, '--from', '2020-03-01', '--to', '2020-03-31', '--http', app.url, '--token', app.runtime.auth.tokenFor('operator')!, '--batch', '10'], {
      stdout: { write: () => undefined },
      stderr: { write: (t: string) => err.push(t) },
      env: {},
    });
    expect({ code, err: err.join('') }).toMatchObject({ code: 0, err: expect.stringContaining(`published 31 of 31 MarkPrice (BTC-USD 2020-03-01 → 2020-03-31) to ${app.url}/v1/market/marks`) });
    expect(err.join('')).toMatch(/\[#+\] 100% 31\/31 2020-03-31 BTC-USD/);
    await app.settle();
    const observed = (await app.runtime.store.readStream('pricing-market-BTC-USD')).map((e) => e.data);
    expect(observed).toHaveLength(31);
    const crash = observed.find((m) => m.at === '2020-03-13T00:00:00.000Z')!;
    const before = observed.find((m) => m.at === '2020-03-12T00:00:00.000Z')!;
    expect(Number(crash.price) / Number(before.price) - 1).toBeLessThan(-0.3);
    expect(Number(crash.volAnnual)).toBeGreaterThan(Number(before.volAnnual) * 2);
    const latest = await app.get<{ price: string; priceAt: string; volAnnual: string }>('/v1/pricing/markets/BTC-USD');
    expect(latest.body).toMatchObject({ priceAt: '2020-03-31T00:00:00.000Z', price: observed[30].price, volAnnual: observed[30].volAnnual });
  });

  it('publishes nothing new when the same replay runs again (same message ids)', async () => {
    const code = await runCli(['--file', BTC, '--from', '2020-03-01', '--to', '2020-03-31', '--http', app.url, '--token', app.runtime.auth.tokenFor('operator')!, '--quiet'], { stdout: { write: () => undefined }, stderr: { write: () => undefined }, env: {} });
    expect(code).toBe(0);
    await app.settle();
    expect(await app.runtime.store.readStream('pricing-market-BTC-USD')).toHaveLength(31);
  });

  it('stops with a clear error when the app refuses the marks for want of an operator token', async () => {
    const err: string[] = [];
    const io = { stdout: { write: () => undefined }, stderr: { write: (t: string) => err.push(t) } };
    const code = await runCli(['--file', BTC, '--from', '2020-04-01', '--to', '2020-04-03', '--http', app.url, '--quiet'], { ...io, env: {} });
    expect(code).not.toBe(0);
    expect(err.join('')).toMatch(/refused a batch of \d+ marks .*401.*pass --token or set BACKSTOP_TOKEN/s);
    const asDesk = await runCli(['--file', BTC, '--from', '2020-04-01', '--to', '2020-04-03', '--http', app.url, '--quiet'], { ...io, env: { BACKSTOP_TOKEN: app.runtime.auth.tokenFor('desk')! } });
    expect(asDesk).not.toBe(0);
    expect(err.join('')).toMatch(/403/);
    await app.settle();
    expect(await app.runtime.store.readStream('pricing-market-BTC-USD')).toHaveLength(31);
  });
});
