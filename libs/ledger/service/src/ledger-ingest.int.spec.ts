import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore, StoredEvent } from '@backstop/event-store';
import { replay } from '@backstop/ledger';
import { encodeEnvelope, InProcessBus, TopicName } from '@backstop/messaging';
import { BackstopApp, bootstrapBackstop, eventEnvelope, ownerOf } from '@backstop/platform';
import { silentLogger } from '@backstop/telemetry';
import { LEDGER_INBOX_STREAM, LedgerIngest } from './ledger-ingest';
import { LedgerServiceModule } from './ledger-service.module';

/**
 * The ledger service's ingest on the real app and a real store file, fed by an in-process bus in
 * 'distributed' mode, so the test decides the order messages arrive in (the Kafka e2e,
 * test/e2e/ledger-service.e2e.spec.ts, runs it over the real broker).
 */
describe('ledger service ingest: topics → inbox → books in an order the books accept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-ledger-ingest-'));
  const ledgerFile = join(dir, 'ledger.db');
  const at = '2026-01-01T00:00:00.000Z';
  let source: SqliteEventStore;
  let sourceEvents: StoredEvent[];
  let app: BackstopApp | undefined;
  let bus: InProcessBus;
  const brokersBefore = process.env.KAFKA_BROKERS;

  const start = async () => {
    bus = new InProcessBus();
    app = await bootstrapBackstop({
      services: [],
      name: 'ledger',
      modules: [LedgerServiceModule],
      bus,
      logger: silentLogger,
      config: { port: 0, host: '127.0.0.1', dataFile: ledgerFile, mode: 'distributed', topicPrefix: '' },
    });
    return app;
  };
  /** Publishes stored events of the source (as the services' publishers do) in the order given. */
  const publish = async (events: readonly StoredEvent[]) => {
    for (const event of events) {
      const owner = ownerOf(event.stream)!;
      await bus.publish(owner.topic satisfies TopicName, [encodeEnvelope(eventEnvelope(event))]);
    }
  };
  const ledgerEvents = async (): Promise<StoredEvent[]> => app!.runtime.store.readAll({ after: 0n, maxCount: 1_000 });
  const booked = async () => (await ledgerEvents()).filter((e) => e.stream !== LEDGER_INBOX_STREAM);
  const waitFor = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 20_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  /** backstop_messages_total of this process for one outcome, summed over topics. */
  const consumed = async (outcome: string): Promise<number> => {
    const text = await app!.runtime.metrics.render();
    const lines = [...text.matchAll(new RegExp(`^backstop_messages_total\\{[^}]*outcome="${outcome}"[^}]*\\} (\\d+)$`, 'gm'))];
    return lines.reduce((sum, m) => sum + Number(m[1]), 0);
  };
  const digestOf = async (events: readonly StoredEvent[]) => (await replay(async (after, maxCount) => events.filter((e) => e.position > after).slice(0, maxCount))).digest();

  beforeAll(async () => {
    // configFromEnv wants brokers for a process that runs no service; this bus is in-process.
    process.env.KAFKA_BROKERS = 'in-process:9092';
    source = new SqliteEventStore(join(dir, 'services.db'));
    const append = (stream: string, type: string, data: Record<string, unknown>) => source.append(stream, [{ id: randomUUID(), type, data: { ...data, at } }], 'any');
    for (const partyId of ['desk1', 'cp1', 'p1']) await append(`party-${partyId}`, 'PartyRegistered', { partyId, name: partyId, role: 'DESK', credit: { rating: 'A' } });
    await append('contract-c1', 'ContractRegistered', { contractId: 'c1', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '1', entryPrice: '1', currency: 'USDC', longPartyId: 'desk1', shortPartyId: 'cp1', longInitialMargin: '0', shortInitialMargin: '0' });
    await append('contract-c1', 'CollateralDeposited', { contractId: 'c1', partyId: 'desk1', side: 'LONG', amount: '100', currency: 'USDC', balance: '100' });
    await append('contract-c1', 'CollateralWithdrawn', { contractId: 'c1', partyId: 'desk1', side: 'LONG', amount: '40', currency: 'USDC', balance: '60' });
    await append('pool-main', 'CapitalDeposited', { poolId: 'main', providerId: 'p1', tranche: 'JUNIOR', amount: '1000', shares: '1000', currency: 'USDC', cancelledShares: '0' });
    await append('coverage-cov1', 'CoverageBound', { coverageId: 'cov1', quoteId: 'q1', contractId: 'c1', protectedPartyId: 'desk1', counterpartyId: 'cp1', currency: 'USDC', coverageLimit: '500' });
    await append('pricing-account-desk1', 'PremiumAccountFunded', { partyId: 'desk1', amount: '10', currency: 'USDC', balance: '10' });
    await append('pricing-account-desk1', 'PremiumAccountDebited', { partyId: 'desk1', coverageId: 'cov1', amount: '4', currency: 'USDC', balance: '6', periodStart: at, periodEnd: at });
    await append('pool-main', 'PremiumIncomeDistributed', {
      poolId: 'main', coverageId: 'cov1', payerPartyId: 'desk1', amount: '4', currency: 'USDC', fromReserve: '0',
      perTranche: { JUNIOR: '4', SENIOR: '0' }, perProvider: { JUNIOR: { p1: '4' }, SENIOR: {} }, undistributed: '0',
    });
    sourceEvents = await source.readAll({ after: 0n, maxCount: 1_000 });
  });

  afterAll(async () => {
    await app?.close();
    await source.close();
    rmSync(dir, { recursive: true, force: true });
    if (brokersBefore === undefined) delete process.env.KAFKA_BROKERS;
    else process.env.KAFKA_BROKERS = brokersBefore;
  });

  it('holds back what the books would refuse until the event from another topic arrives, then books everything once', async () => {
    await start();
    const ingest = app!.app.get(LedgerIngest);
    const byType = (type: string) => sourceEvents.filter((e) => e.type === type);
    const pricing = sourceEvents.filter((e) => ownerOf(e.stream)!.service === 'premium-pricing');
    const others = sourceEvents.filter((e) => ownerOf(e.stream)!.service !== 'premium-pricing');
    // Settlement's distribution (and everything else) arrives before pricing's debit of that premium.
    await publish(others);
    // Booked all but one AND holding that one back: booked alone could pass before the admitter has
    // even reached the distribution (seen under CI load), which would not show that it holds it back.
    await waitFor('all but the distribution booked, the distribution held back', async () => (await booked()).length === others.length - 1 && ingest.pendingCount() === 1);
    expect(ingest.pendingCount()).toBe(1);
    expect((await booked()).map((e) => e.type)).not.toContain('PremiumIncomeDistributed');
    await publish(pricing);
    await waitFor('everything booked', async () => (await booked()).length === sourceEvents.length);
    expect(ingest.pendingCount()).toBe(0);
    const types = (await booked()).map((e) => e.type);
    expect(types.indexOf('PremiumIncomeDistributed')).toBeGreaterThan(types.indexOf('PremiumAccountDebited'));
    // Same ids, each stream in the services' order, same books as the services' store.
    const ids = (events: readonly StoredEvent[], stream: string) => events.filter((e) => e.stream === stream).map((e) => e.id);
    for (const stream of new Set(sourceEvents.map((e) => e.stream))) expect([stream, ids(await booked(), stream)]).toEqual([stream, ids(sourceEvents, stream)]);
    expect(await digestOf(await ledgerEvents())).toBe(await digestOf(sourceEvents));
    expect(byType('PremiumIncomeDistributed')[0].id).toBe((await booked()).find((e) => e.type === 'PremiumIncomeDistributed')!.id);
    // The admitted copy carries where the event sits in its service's store.
    const copy = (await booked()).find((e) => e.type === 'CollateralWithdrawn')!;
    const original = byType('CollateralWithdrawn')[0];
    expect(copy.metadata.source).toEqual({ stream: original.stream, revision: original.revision, position: original.position.toString() });
    expect(copy.data).toEqual(original.data);
    expect((await app!.runtime.readiness()).checks['ledger-admitter']).toBeUndefined();
  });

  it('stores nothing twice when every message is delivered again, before or after a restart on the same store', async () => {
    const before = await ledgerEvents();
    await publish(sourceEvents);
    await waitFor('every redelivery to be consumed', async () => (await consumed('duplicate')) === sourceEvents.length);
    await new Promise((r) => setTimeout(r, 300));
    expect(await ledgerEvents()).toHaveLength(before.length);
    await app!.close();
    app = undefined;
    // A new process on the same store, and a bus that delivers everything again (offsets lost).
    await start();
    await publish([...sourceEvents].reverse());
    // Each one reaches the consumer and is recognised as handled (its message id is in the store).
    await waitFor('every redelivery to be consumed', async () => (await consumed('duplicate')) === sourceEvents.length);
    await waitFor('the ledger to be ready', async () => (await app!.runtime.readiness()).ready);
    expect((await ledgerEvents()).map((e) => e.id)).toEqual(before.map((e) => e.id));
    expect(app!.app.get(LedgerIngest).pendingCount()).toBe(0);
  });
});
