import { randomUUID } from 'node:crypto';
import { IntakeModule } from '@backstop/intake-service';
import { replay } from '@backstop/ledger';
import { startTestBackstop, TestBackstop } from '@backstop/platform';
import { LedgerModule } from './ledger.module';
import { LiveLedger, storeReader } from './live-ledger';

interface Balances {
  source: string;
  position: string;
  digest: string;
  balances: { account: string; balance: string; currency: string }[];
}

describe('ledger over HTTP (real app, store file, intake commands + other services\' events)', () => {
  let app: TestBackstop;
  let live: LiveLedger;
  const at = '2026-01-01T00:00:00.000Z';

  /** What the other services would append to their own streams (they are not in this app). */
  const appendAs = (stream: string, type: string, data: Record<string, unknown>) =>
    app.runtime.store.append(stream, [{ id: randomUUID(), type, data: { ...data, at } }], 'any');

  const head = async (): Promise<bigint> => {
    let after = 0n;
    for (;;) {
      const page = await app.runtime.store.readAll({ after, maxCount: 4_096 });
      if (page.length === 0) return after;
      after = page[page.length - 1].position;
    }
  };
  const caughtUp = async () => live.waitFor(await head(), 10_000);
  const account = (body: Balances, name: string) => body.balances.find((l) => l.account === name)?.balance;

  beforeAll(async () => {
    app = await startTestBackstop({ modules: [IntakeModule, LedgerModule] });
    live = app.app.get(LiveLedger);
    app.clock.set(new Date('2026-01-01T00:00:00Z'));
    await app.send('RegisterParty', { partyId: 'desk1', name: 'Desk One', role: 'DESK', credit: { rating: 'A' } });
    await app.send('RegisterParty', { partyId: 'cp1', name: 'CP One', role: 'COUNTERPARTY', credit: { rating: 'BB' } });
    await app.send('RegisterParty', { partyId: 'idle', name: 'Idle', role: 'DESK', credit: { rating: 'A' } });
    await app.send('RegisterContract', {
      contractId: 'c1', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '2', entryPrice: '60000', currency: 'USDC',
      longPartyId: 'desk1', shortPartyId: 'cp1', longInitialMargin: '1000', shortInitialMargin: '1000',
    });
    app.clock.set(new Date('2026-01-02T00:00:00Z'));
    expect((await app.send('DepositCollateral', { contractId: 'c1', partyId: 'cp1', amount: '15000' })).reply.status).toBe('ACCEPTED');
    expect((await app.send('DepositCollateral', { contractId: 'c1', partyId: 'desk1', amount: '12000' })).reply.status).toBe('ACCEPTED');
    app.clock.set(new Date('2026-01-03T00:00:00Z'));
    expect((await app.send('WithdrawCollateral', { contractId: 'c1', partyId: 'cp1', amount: '500' })).reply.status).toBe('ACCEPTED');
    await appendAs('pool-main', 'CapitalDeposited', { poolId: 'main', providerId: 'p1', tranche: 'JUNIOR', amount: '50000', shares: '50000', currency: 'USDC', cancelledShares: '0' });
    await appendAs('coverage-cov1', 'CoverageBound', { coverageId: 'cov1', quoteId: 'q1', contractId: 'c1', protectedPartyId: 'desk1', counterpartyId: 'cp1', currency: 'USDC', coverageLimit: '20000' });
    await appendAs('pricing-account-desk1', 'PremiumAccountFunded', { partyId: 'desk1', amount: '50', currency: 'USDC', balance: '50' });
    await appendAs('pricing-account-desk1', 'PremiumAccountDebited', { partyId: 'desk1', coverageId: 'cov1', amount: '12.5', currency: 'USDC', balance: '37.5', periodStart: at, periodEnd: at });
    await appendAs('coverage-cov1', 'PremiumCharged', { coverageId: 'cov1', payerPartyId: 'desk1', amount: '12.5', currency: 'USDC', periodStart: at, periodEnd: at, rateAnnual: '0.05' });
    await appendAs('margin-desk1', 'FundingExchanged', { contractId: 'c1', payerPartyId: 'desk1', receiverPartyId: 'cp1', amount: '100', currency: 'USDC', rate: '0.0001', mark: '61000' });
    await caughtUp();
  });
  afterAll(() => app.close());

  it('serves the live balances to compliance only', async () => {
    const { status, body } = await app.get<Balances>('/v1/ledger/balances', { role: 'compliance' });
    expect(status).toBe(200);
    expect(body.source).toBe('live');
    expect(account(body, 'collateral:cp1:c1')).toBe('14500.000000');
    expect(account(body, 'collateral:desk1:c1')).toBe('12000.000000');
    expect(account(body, 'variation-margin:cp1:c1')).toBe('100.000000');
    expect(account(body, 'variation-margin:desk1:c1')).toBe('-100.000000');
    expect(account(body, 'pool-capital:junior:p1')).toBe('50000.000000');
    expect(account(body, 'premium-account:desk1')).toBe('37.500000');
    expect(account(body, 'premium-collected:cov1')).toBe('12.500000');
    expect(body.digest).toMatch(/^[0-9a-f]{64}$/);
    expect((await app.get('/v1/ledger/balances', { token: null })).status).toBe(401);
    expect((await app.get('/v1/ledger/balances', { role: 'desk' })).status).toBe(403);
    expect((await app.get('/v1/ledger/digest', { role: 'operator' })).status).toBe(403);
  });

  it('a replay to the live position gives the live digest (one comparison), and so does the CLI-side replay', async () => {
    const liveBody = (await app.get<Balances>('/v1/ledger/balances', { role: 'compliance' })).body;
    const digest = await app.get<{ digest: string; source: string; position: string }>(`/v1/ledger/digest?position=${liveBody.position}`, { role: 'compliance' });
    expect(digest.body).toMatchObject({ source: 'replay', position: liveBody.position, digest: liveBody.digest });
    const replayed = await replay(storeReader(app.runtime.store), { until: { kind: 'position', position: BigInt(liveBody.position) } });
    expect(replayed.digest()).toBe(liveBody.digest);
    expect((await app.get<{ digest: string }>('/v1/ledger/digest', { role: 'compliance' })).body.digest).toBe(liveBody.digest);
  });

  it('replays as of an instant: only what the store had recorded by then', async () => {
    const jan2 = await app.get<Balances>('/v1/ledger/balances?asOf=2026-01-02T12:00:00Z', { role: 'compliance' });
    expect(jan2.status).toBe(200);
    expect(jan2.body.source).toBe('replay');
    expect(jan2.body.balances.map((l) => `${l.account} ${l.balance}`)).toEqual([
      'cash:external:cp1 15000.000000',
      'cash:external:desk1 12000.000000',
      'collateral:cp1:c1 15000.000000',
      'collateral:desk1:c1 12000.000000',
    ]);
    const jan1 = await app.get<Balances>('/v1/ledger/balances?asOf=2026-01-01T12:00:00Z', { role: 'compliance' });
    expect(jan1.body.balances).toEqual([]);
    const byPosition = await app.get<Balances>(`/v1/ledger/balances?asOf=${jan2.body.position}`, { role: 'compliance' });
    expect(byPosition.body.digest).toBe(jan2.body.digest);
  });

  it('scopes to a party or a contract, and says so when there is nothing for it', async () => {
    const desk = await app.get<Balances>('/v1/ledger/balances?party=desk1', { role: 'compliance' });
    expect(desk.body.balances.map((l) => l.account)).toEqual(['cash:external:desk1', 'collateral:desk1:c1', 'premium-account:desk1', 'premium-collected:cov1', 'variation-margin:desk1:c1']);
    const contract = await app.get<Balances>('/v1/ledger/balances?contract=c1', { role: 'compliance' });
    expect(contract.body.balances.map((l) => l.account)).toEqual(['collateral:cp1:c1', 'collateral:desk1:c1', 'premium-collected:cov1', 'variation-margin:cp1:c1', 'variation-margin:desk1:c1']);
    const ghost = await app.get<{ message: string }>('/v1/ledger/balances?party=ghost', { role: 'compliance' });
    expect(ghost.status).toBe(404);
    expect(ghost.body.message).toMatch(/no postings for party ghost \(not a registered party\) up to position \d+/);
    const idle = await app.get<{ message: string }>('/v1/ledger/balances?party=idle', { role: 'compliance' });
    expect(idle.body.message).toMatch(/party idle \(registered, but nothing has moved money for it\)/);
  });

  it('rejects a bad asOf, position, party or limit with the parameter and the expected format', async () => {
    const bad = await app.get<{ message: string }>('/v1/ledger/balances?asOf=yesterday', { role: 'compliance' });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/asOf "yesterday" must be a global position \(an integer such as 1234\) or an ISO-8601 UTC instant such as 2026-01-31T08:00:00Z/);
    expect((await app.get<{ message: string }>('/v1/ledger/digest?position=-3', { role: 'compliance' })).body.message).toMatch(/position must be a global position/);
    expect((await app.get('/v1/ledger/balances?party=%20x', { role: 'compliance' })).status).toBe(400);
    expect((await app.get<{ message: string }>('/v1/ledger/accounts/collateral:cp1:c1?limit=0', { role: 'compliance' })).body.message).toMatch(/limit must be an integer from 1 to 1000/);
  });

  it("pages through one account's history with the events behind each posting", async () => {
    type History = { postings: { eventType: string; amount: string; balanceAfter: string; side: string; counterAccount: string; eventId: string }[]; nextAfter?: string; balances: unknown[] };
    const first = await app.get<History>('/v1/ledger/accounts/collateral:cp1:c1?limit=1', { role: 'compliance' });
    expect(first.status).toBe(200);
    expect(first.body.postings).toEqual([expect.objectContaining({ eventType: 'CollateralDeposited', side: 'credit', counterAccount: 'cash:external:cp1', amount: '15000.000000', balanceAfter: '15000.000000' })]);
    expect(first.body.balances).toEqual([{ currency: 'USDC', balance: '14500.000000' }]);
    const second = await app.get<History>(`/v1/ledger/accounts/collateral:cp1:c1?limit=1&after=${first.body.nextAfter}`, { role: 'compliance' });
    expect(second.body.postings).toEqual([expect.objectContaining({ eventType: 'CollateralWithdrawn', side: 'debit', counterAccount: 'cash:external:cp1', balanceAfter: '14500.000000' })]);
    expect(second.body.nextAfter).toBeUndefined();
    expect((await app.get('/v1/ledger/accounts/collateral:nobody:c1', { role: 'compliance' })).status).toBe(404);
  });

  it('explains a default and documents the endpoints in OpenAPI', async () => {
    const d = { defaultId: 'cp1' };
    await appendAs('default-cp1', 'DefaultDeclared', { ...d, partyId: 'cp1', reason: 'OPERATOR', detail: 'test', lastSaneMarks: {}, triggerEventId: 'x', bookPosition: '0', currency: 'USDC' });
    await appendAs('default-cp1', 'ContractClosedOut', { ...d, contractId: 'c1', closeOutPrice: '70000', protectedPartyId: 'desk1', lossOwed: '20000', currency: 'USDC' });
    await appendAs('default-cp1', 'LossesAssessed', { ...d, partyId: 'cp1', currency: 'USDC', contractCollateral: '14600', parties: [{ partyId: 'desk1', lossOwed: '20000' }], excludedContracts: [] });
    await appendAs('default-cp1', 'LossAllocated', { ...d, layer: 'DEFAULTER_CONTRACT_COLLATERAL', step: 1, available: '14600', amount: '14600', remaining: '0', perParty: { desk1: '14600' } });
    await appendAs('default-cp1', 'LossAllocated', { ...d, layer: 'JUNIOR_TRANCHE', step: 3, available: '50000', amount: '5400', remaining: '44600', perParty: { desk1: '5400' }, perProvider: { p1: '5400' } });
    await appendAs('default-cp1', 'PayoutMade', { ...d, partyId: 'desk1', amount: '20000', fromDefaulter: '14600', fromPool: '5400', currency: 'USDC' });
    await caughtUp();
    const report = await app.get<{ defaulter: string; layers: { layer: string; amount: string }[]; totals: Record<string, unknown> }>('/v1/ledger/defaults/cp1', { role: 'compliance' });
    expect(report.status).toBe(200);
    expect(report.body.layers.map((l) => `${l.layer} ${l.amount}`)).toEqual(['DEFAULTER_CONTRACT_COLLATERAL 14600.000000', 'JUNIOR_TRANCHE 5400.000000']);
    expect(report.body.totals).toMatchObject({ paidOut: '20000.000000', layersMatchPayouts: true, lossAccountedFor: true });
    expect((await app.get('/v1/ledger/defaults/d9', { role: 'compliance' })).status).toBe(404);
    const docs = await app.get<{ paths: Record<string, unknown> }>('/docs-json');
    expect(Object.keys(docs.body.paths)).toEqual(expect.arrayContaining(['/v1/ledger/balances', '/v1/ledger/digest', '/v1/ledger/accounts/{account}', '/v1/ledger/defaults/{defaultId}', '/v1/ledger/status']));
  });

  it('halts loudly on an event it cannot book, naming it; replays before it still work', async () => {
    const before = await head();
    const refused = await appendAs('pool-main', 'CapitalWithdrawn', { poolId: 'main', providerId: 'p1', tranche: 'JUNIOR', shares: '1', amount: '999999', currency: 'USDC' });
    await expect(live.waitFor(refused.position, 5_000)).rejects.toThrow(/halted at position/);
    const status = await app.get<{ halted: { eventType: string; position: string; reason: string } }>('/v1/ledger/status', { role: 'compliance' });
    expect(status.body.halted).toMatchObject({ eventType: 'CapitalWithdrawn', position: refused.position.toString(), reason: expect.stringMatching(/junior tranche's capital .* would go below zero/) });
    const liveRead = await app.get<{ message: string }>('/v1/ledger/balances', { role: 'compliance' });
    expect(liveRead.status).toBe(503);
    expect(liveRead.body.message).toMatch(/halted at CapitalWithdrawn .* would go below zero/);
    expect((await app.get(`/v1/ledger/balances?asOf=${before}`, { role: 'compliance' })).status).toBe(200);
    const beyond = await app.get<{ message: string }>(`/v1/ledger/digest?position=${refused.position}`, { role: 'compliance' });
    expect(beyond.status).toBe(500);
    expect(beyond.body.message).toMatch(/cannot book CapitalWithdrawn/);
  });
});
