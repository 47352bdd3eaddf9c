import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntakeModule } from '@backstop/intake-service';
import { encodeEnvelope, makeEnvelope, TOPICS } from '@backstop/messaging';
import { startTestBackstop, TestBackstop } from '@backstop/platform';
import { MarginModule } from './margin.module';

type MarginBody = { status: string; revision: number; accounts: Record<string, string>[]; openCalls: { callId: string; status: string }[]; positions: unknown[] };

/** The monitor is a projection of margin-monitor's own streams: a restart rebuilds it from the store file. */
describe('margin-monitor across a restart (same store file)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'margin-restart-'));
  const dataFile = join(dir, 'backstop.db');
  const start = (at: string) => startTestBackstop({ modules: [IntakeModule, MarginModule], config: { dataFile }, start: new Date(at) });
  let app: TestBackstop | undefined;
  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps positions, equity and open calls, and misses the call at its deadline after the restart', async () => {
    const first = await start('2026-01-01T00:00:00Z');
    app = first;
    for (const [partyId, role] of [['desk1', 'DESK'], ['cp1', 'COUNTERPARTY']]) await first.send('RegisterParty', { partyId, name: partyId, role, credit: { rating: 'A' } });
    const contract = { contractId: 'c1', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '2', entryPrice: '60000', currency: 'USDC', longPartyId: 'desk1', shortPartyId: 'cp1', longInitialMargin: '0', shortInitialMargin: '0' };
    expect((await first.send('RegisterContract', contract)).reply.status).toBe('ACCEPTED');
    await first.send('DepositCollateral', { contractId: 'c1', partyId: 'desk1', amount: '25000' });
    await first.send('DepositCollateral', { contractId: 'c1', partyId: 'cp1', amount: '25000' });
    await first.settle();
    await first.input('MarkPrice', { underlying: 'BTC-USD', price: '60000', volAnnual: '0.6', at: '2026-01-01T00:10:00Z' }, 'BTC-USD');
    await first.settle();

    // A schema-invalid mark is dead-lettered with the reason; the consumer carries on with the next one.
    const dlq: string[] = [];
    const dlqReader = await first.runtime.bus.subscribe({ groupId: 'test-dlq', topics: [first.runtime.topics.of(TOPICS.dlq)], handle: async (m) => void dlq.push(m.value.toString()) });
    // HTTP refuses it (400); a Kafka producer could still send it, so put it on the topic directly.
    expect(await first.input('MarkPrice', { underlying: 'BTC-USD', price: 'lots', at: '2026-01-01T00:20:00Z' }, 'BTC-USD')).toBe(400);
    const junk = makeEnvelope({ type: 'MarkPrice', key: 'BTC-USD', time: '2026-01-01T00:20:00Z', payload: { underlying: 'BTC-USD', price: 'lots', at: '2026-01-01T00:20:00Z' } });
    await first.runtime.bus.publish(first.runtime.topics.of(TOPICS.marketMarks), [encodeEnvelope(junk)]);
    await first.input('MarkPrice', { underlying: 'BTC-USD', price: '52000', volAnnual: '0.6', at: '2026-01-01T01:00:00Z' }, 'BTC-USD');
    for (let i = 0; i < 100 && (await first.get<MarginBody>('/v1/margin/desk1', { role: 'operator' })).body.status !== 'IN_CALL'; i++) await new Promise((r) => setTimeout(r, 30));
    await first.settle();
    // The junk came over the bus and the good mark through the store's inbox: two paths, so wait for the DLQ too.
    for (let i = 0; i < 200 && dlq.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    await dlqReader.stop();
    expect(JSON.parse(dlq[0])).toMatchObject({ reason: 'HANDLER_FAILED', detail: expect.stringMatching(/invalid MarkPrice payload: price: price must be a decimal string.*after 4 attempts/), originalBase64: Buffer.from(encodeEnvelope(junk).value).toString('base64') });

    const before = (await first.get<MarginBody>('/v1/margin/desk1', { role: 'operator' })).body;
    expect(before).toMatchObject({ status: 'IN_CALL', openCalls: [{ callId: 'mc-desk1-1', status: 'ISSUED' }] });
    await first.close();
    app = undefined;

    const second = await start('2026-01-01T02:00:00Z');
    app = second;
    expect((await second.get<MarginBody>('/v1/margin/desk1', { role: 'operator' })).body).toEqual(before);
    expect((await second.get<{ lastSane: { price: string } }>('/v1/marks/BTC-USD', { role: 'operator' })).body.lastSane.price).toBe('52000');
    await second.tickAt('2026-01-01T05:00:00Z');
    await second.settle();
    expect((await second.get<MarginBody>('/v1/margin/desk1', { role: 'operator' })).body.openCalls).toEqual([expect.objectContaining({ callId: 'mc-desk1-1', status: 'MISSED' })]);
    // Nothing decided twice: one call, one miss.
    const types = (await second.runtime.store.readStream('margin-desk1')).map((e) => e.type);
    expect(types.filter((t) => t === 'MarginCallIssued')).toHaveLength(1);
    expect(types.filter((t) => t === 'MarginCallMissed')).toHaveLength(1);
  });
});
