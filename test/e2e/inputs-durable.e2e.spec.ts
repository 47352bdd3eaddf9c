import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@backstop/event-store';
import { makeEnvelope } from '@backstop/messaging';
import { bearer, RunningApp, startApp, waitUntil } from '@backstop/testing';

/**
 * Issue 9, defect 6: POST /v1/market/marks and /v1/credit/scores answer 202 only for what is durable.
 * The app is SIGKILLed while marks are being posted; every mark it acknowledged is in the store, and
 * after a restart the input consumers have handled every one of them.
 */
describe('acknowledged marks and credit scores survive a SIGKILL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-inputs-'));
  const dataFile = join(dir, 'backstop.db');
  let app: RunningApp | undefined;
  afterAll(async () => {
    await app?.kill().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  const post = async (url: string, path: string, envelope: unknown): Promise<number> => {
    const res = await fetch(`${url}/v1/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer('operator') }, body: JSON.stringify(envelope) });
    await res.text();
    return res.status;
  };

  it('loses none of the acknowledged inputs', async () => {
    app = await startApp('apps/backstop/src/main.ts', { BACKSTOP_DATA_FILE: dataFile, KAFKA_BROKERS: '' });
    const url = app.url;
    const acked: string[] = [];
    const startMs = Date.now() - 86_400_000;
    let killed = false;
    let n = 0;
    const lane = async () => {
      while (!killed) {
        const i = n++;
        const mark = makeEnvelope({ type: 'MarkPrice', key: 'BTC-USD', time: new Date(startMs + i * 1000).toISOString(), payload: { underlying: 'BTC-USD', price: String(60_000 + (i % 7)), volAnnual: '0.6', at: new Date(startMs + i * 1000).toISOString() } });
        const credit = makeEnvelope({ type: 'CreditScore', key: 'p1', time: mark.time, payload: { partyId: 'p1', pdAnnual: '0.01', source: 'spec', at: mark.time } });
        const [first, second] = await Promise.all([post(url, 'market/marks', mark), post(url, 'credit/scores', credit)]).catch(() => [0, 0]);
        if (first === 202) acked.push(mark.id);
        if (second === 202) acked.push(credit.id);
      }
    };
    const lanes = [lane(), lane(), lane(), lane()];
    await waitUntil(() => acked.length >= 200 || undefined, 60_000, '200 acknowledged inputs');
    await app.kill(); // SIGKILL, with requests in flight
    killed = true;
    await Promise.all(lanes);
    app = undefined;

    const store = new SqliteEventStore(dataFile);
    try {
      const stored = new Set<string>();
      for (const stream of ['inbox-market-marks', 'inbox-credit-scores']) {
        for (const e of await store.readStream(stream)) stored.add((e.data as { envelope: { id: string } }).envelope.id);
      }
      expect(acked.filter((id) => !stored.has(id))).toEqual([]);
    } finally {
      await store.close();
    }

    // After a restart the consumers handle every acknowledged input (their checkpoints reach the inbox heads).
    app = await startApp('apps/backstop/src/main.ts', { BACKSTOP_DATA_FILE: dataFile, KAFKA_BROKERS: '' });
    const check = new SqliteEventStore(dataFile);
    try {
      const head = async (stream: string) => (await check.readStream(stream)).at(-1)!.position;
      const [marksHead, creditHead] = [await head('inbox-market-marks'), await head('inbox-credit-scores')];
      await waitUntil(async () => {
        const margin = (await check.loadCheckpoint('margin-monitor.marks.inbox')) ?? 0n;
        const credit = (await check.loadCheckpoint('premium-pricing.pricing-credit-scores.inbox')) ?? 0n;
        return (margin >= marksHead && credit >= creditHead) || undefined;
      }, 60_000, 'the input consumers to reach the inbox heads');
    } finally {
      await check.close();
    }
    await app.stop();
    app = undefined;
  }, 180_000);
});
