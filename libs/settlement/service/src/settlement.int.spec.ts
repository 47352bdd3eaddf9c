/**
 * default-settlement over HTTP in the real app (Nest, command pipeline, SQLite store file, store-fed
 * consumers, manual clock), with contract-intake for parties and contracts.
 *
 * premium-pricing and margin-monitor are not in this process: their facts (CoverageBound,
 * PremiumCharged, MarkRecorded, MarginCallMissed, DefaultTriggered) are appended straight to their
 * streams with the store, standing in for those services exactly as their events would arrive.
 */
import { randomUUID } from 'node:crypto';
import { IntakeModule } from '@backstop/intake-service';
import { decideOnStream, startTestBackstop, TestBackstop } from '@backstop/platform';
import { defaultDecider, poolDecider } from '@backstop/settlement';
import { SettlementModule } from './settlement.module';

const T0 = '2026-01-01T00:00:00.000Z';
const END = '2027-01-01T00:00:00.000Z';

describe('default-settlement over HTTP (real app, store file)', () => {
  let app: TestBackstop;

  /** Stands in for another service publishing a fact on its own stream. */
  const upstream = async (stream: string, type: string, data: Record<string, unknown>) => {
    await app.runtime.store.append(stream, [{ id: randomUUID(), type, data: { ...data, at: app.clock.now().toISOString() }, metadata: { causationId: randomUUID(), correlationId: 'test' } }], 'any');
    await app.settle();
  };
  const accepted = async (type: string, payload: Record<string, unknown>) => {
    const { status, reply } = await app.send(type, payload);
    expect({ status, violations: reply.violations }).toEqual({ status: 200, violations: undefined });
    return reply;
  };
  const pool = async () => (await app.get<PoolBody>('/v1/pool')).body;
  const provider = async (id: string) => (await app.get<ProviderBody>(`/v1/pool/providers/${id}`)).body;
  const poolEvents = async () => (await app.runtime.store.readStream('pool-main')).map((e) => e.type);

  beforeAll(async () => {
    app = await startTestBackstop({ modules: [IntakeModule, SettlementModule], start: new Date(T0) });
    for (const [partyId, role] of [['p1', 'PROVIDER'], ['p2', 'PROVIDER'], ['desk1', 'DESK'], ['desk2', 'DESK'], ['cp1', 'COUNTERPARTY'], ['cp2', 'COUNTERPARTY']]) {
      await accepted('RegisterParty', { partyId, name: partyId, role, credit: { rating: 'BBB' } });
    }
  });
  afterAll(() => app.close());

  it('takes capital from registered providers into two tranches, and rejects everyone else with the rule', async () => {
    const reply = await accepted('DepositCapital', { providerId: 'p1', tranche: 'JUNIOR', amount: '60000' });
    expect(reply).toMatchObject({ status: 'ACCEPTED', stream: 'pool-main', revision: 0, ids: { poolId: 'main', providerId: 'p1' }, events: ['CapitalDeposited'] });
    await accepted('DepositCapital', { providerId: 'p2', tranche: 'JUNIOR', amount: '40000' });
    await accepted('DepositCapital', { providerId: 'p2', tranche: 'SENIOR', amount: '300000', currency: 'USDC' });

    const desk = await app.send('DepositCapital', { providerId: 'desk1', tranche: 'JUNIOR', amount: '1' });
    expect(desk.status).toBe(422);
    expect(desk.reply.violations).toEqual([expect.objectContaining({ field: 'payload.providerId', rule: 'providerRole' })]);
    const ghost = await app.send('DepositCapital', { providerId: 'ghost', tranche: 'JUNIOR', amount: '1' });
    // Unknown to this service's read model: maybe not registered, maybe not arrived yet; retryable.
    expect(ghost.reply.violations).toEqual([expect.objectContaining({ field: 'payload.providerId', rule: 'notYetKnown' })]);
    expect(ghost.reply.retryable).toBe(true);
    const bad = await app.send('DepositCapital', { providerId: 'p1', tranche: 'MEZZANINE', amount: 12.5 });
    expect(bad.reply.violations?.map((v) => `${v.field}:${v.rule}`)).toEqual(['payload.tranche:isIn', 'payload.amount:isDecimalString']);
    const usdt = await app.send('DepositCapital', { providerId: 'p1', tranche: 'JUNIOR', amount: '1', currency: 'USDT' });
    expect(usdt.reply.violations).toEqual([expect.objectContaining({ field: 'payload.currency', rule: 'poolCurrency' })]);

    expect(await pool()).toMatchObject({
      capital: '400000.000000',
      tranches: { JUNIOR: { capital: '100000.000000', sharePrice: '1.000000', providers: 2 }, SENIOR: { capital: '300000.000000', providers: 1 } },
    });
    expect((await provider('p2')).tranches.map((t) => [t.tranche, t.value])).toEqual([['JUNIOR', '40000.000000'], ['SENIOR', '300000.000000']]);
    expect((await app.get('/v1/pool/providers/nobody')).status).toBe(404);
  });

  it('pays a withdrawal only after the cooldown, inside its window', async () => {
    const request = await accepted('RequestWithdrawal', { providerId: 'p2', tranche: 'SENIOR', shares: '100000000000' });
    expect(request.events).toEqual(['WithdrawalRequested']);
    const early = await app.send('WithdrawCapital', { providerId: 'p2', tranche: 'SENIOR' });
    expect(early.reply.violations).toEqual([expect.objectContaining({ rule: 'cooldown', message: 'the withdrawal window opens at 2026-01-21T00:00:00.000Z' })]);
    await app.tickAt('2026-01-21T01:00:00.000Z');
    expect((await provider('p2')).tranches[1].pendingWithdrawal).toMatchObject({ phase: 'OPEN', valueAtRequest: '100000.000000' });
    await accepted('WithdrawCapital', { providerId: 'p2', tranche: 'SENIOR' });
    expect((await provider('p2')).tranches[1]).toMatchObject({ value: '200000.000000', withdrawn: '100000.000000', pendingWithdrawal: null });
  });

  it('shares premium income by tranche weight (junior 3 : senior 1) and by shares within a tranche', async () => {
    await upstream('coverage-cov0', 'PremiumCharged', { coverageId: 'cov0', payerPartyId: 'desk1', amount: '500', currency: 'USDC', periodStart: T0, periodEnd: T0 });
    // Junior 100 000 × 3 against senior 200 000 × 1: 300 and 200; junior 60:40 between p1 and p2.
    expect((await provider('p1')).tranches[0]).toMatchObject({ premiumIncome: '180.000000', value: '60180.000000' });
    expect((await provider('p2')).tranches.map((t) => t.premiumIncome)).toEqual(['120.000000', '200.000000']);
  });

  it('measures Cover 2 from coverages, collateral and marks, and publishes it when coverage changes', async () => {
    await accepted('RegisterContract', {
      contractId: 'c1', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '10', entryPrice: '60000', currency: 'USDC',
      longPartyId: 'desk1', shortPartyId: 'cp1', longInitialMargin: '50000', shortInitialMargin: '50000',
    });
    await accepted('DepositCollateral', { contractId: 'c1', partyId: 'cp1', amount: '50000' });
    await upstream('market-BTC-USD', 'MarkRecorded', { underlying: 'BTC-USD', price: '60000', volAnnual: '0.6', sane: true });
    await upstream('coverage-cov1', 'CoverageBound', {
      coverageId: 'cov1', quoteId: 'q1', contractId: 'c1', protectedPartyId: 'desk1', counterpartyId: 'cp1', currency: 'USDC',
      coverageLimit: '200000', premiumRateAnnual: '0.05', premiumPerInterval: '10', intervalHours: 8, start: T0, end: END,
    });
    const stress = (await app.get<StressBody>('/v1/stress')).body;
    // desk1 is long: the worst is a rally. +5σ over 5 days at 60% vol is +42.07%: 252 420 owed, 50 000 collateral, capped at the 200 000 limit.
    expect(stress).toMatchObject({ cover2Requirement: '200000.000000', worstCounterparties: [{ counterpartyId: 'cp1', loss: '200000.000000' }], historySource: expect.stringMatching(/shared\/data$/) });
    expect(stress.scenarios.map((s) => s.name)).toEqual(expect.arrayContaining([expect.stringMatching(/^historical 2020-03-08→2020-03-13 BTC-USD -42.23%, ETH-USD -53.41%$/)]));
    const published = (await pool()).capacity;
    expect(published).toMatchObject({ trigger: 'CAPITAL_OR_COVERAGE_CHANGED', cover2Requirement: '200000.000000', headroom: '100500.000000', worstCounterparties: [{ counterpartyId: 'cp1' }] });
  });

  it('re-assesses at the cut limit when pricing cuts it, and re-assesses on a repricing', async () => {
    const assessments = async () => (await app.runtime.store.readStream('pool-main-capacity')).length;
    const before = await assessments();
    await upstream('coverage-cov1', 'CoverageLimitReduced', {
      coverageId: 'cov1', oldLimit: '200000.000000', newLimit: '180000.000000', oldStressContribution: '200000.000000', newStressContribution: '180000.000000',
      oldPremiumPerInterval: '10.000000', newPremiumPerInterval: '9.000000', effectiveFrom: T0, reason: 'pool main capacity stressed',
    });
    expect(await assessments()).toBe(before + 1);
    expect((await pool()).capacity).toMatchObject({ trigger: 'CAPITAL_OR_COVERAGE_CHANGED', cover2Requirement: '180000.000000', headroom: '120500.000000', worstCounterparties: [{ counterpartyId: 'cp1', loss: '180000.000000' }] });
    await upstream('coverage-cov1', 'CoverageRepriced', {
      coverageId: 'cov1', oldRateAnnual: '0.05', newRateAnnual: '0.06', oldPremiumPerInterval: '9.000000', newPremiumPerInterval: '10.800000', reason: 'mark moved', effectiveFrom: T0, stressContribution: '170000.000000',
    });
    expect(await assessments()).toBe(before + 2);
    // The stress revalues the contract and caps it at the limit: a new stress contribution does not lower the requirement.
    expect((await pool()).capacity).toMatchObject({ trigger: 'CAPITAL_OR_COVERAGE_CHANGED', cover2Requirement: '180000.000000' });
  });

  it('advances pool capital for a missed margin call, junior first, once per call', async () => {
    await upstream('margin-cp1', 'MarginCallMissed', { callId: 'call1', partyId: 'cp1', amount: '20000', currency: 'USDC' });
    await upstream('margin-cp1', 'MarginCallMissed', { callId: 'call1', partyId: 'cp1', amount: '20000', currency: 'USDC' });
    const events = await app.runtime.store.readStream('pool-main');
    const covers = events.filter((e) => e.type === 'MarginCoveredByBackstop');
    // desk1 is protected against cp1 (cov1, limit 180 000 after the cut): the advance is earmarked for it.
    expect(covers.map((e) => e.data)).toEqual([expect.objectContaining({ amount: '20000.000000', perTranche: { JUNIOR: '20000.000000', SENIOR: '0.000000' }, perProvider: { JUNIOR: { p1: '12000.000000', p2: '8000.000000' }, SENIOR: {} }, perProtectedParty: { desk1: '20000.000000' } })]);
    expect(await pool()).toMatchObject({ marginAdvances: [{ partyId: 'cp1', outstanding: '20000.000000' }] });
  });

  it('settles a default down the waterfall, pays within the coverage, freezes withdrawals meanwhile, and pays once', async () => {
    await accepted('RequestWithdrawal', { providerId: 'p1', tranche: 'JUNIOR' });
    const before = (await app.runtime.store.readStream('pool-main')).length;
    await upstream('margin-cp1', 'DefaultTriggered', { partyId: 'cp1', reason: 'SECOND_DEADLINE', detail: 'equity below maintenance past the second deadline', lastSaneMarks: { 'BTC-USD': '75000' } });

    const d = (await app.get<DefaultBody>('/v1/defaults/cp1')).body;
    expect(d).toMatchObject({ status: 'SETTLED', partyId: 'cp1', closeOuts: [expect.objectContaining({ contractId: 'c1', closeOutPrice: '75375', lossOwed: '153750.000000', markSource: 'TRIGGER' })] });
    // 153 750 owed: cp1's collateral 50 000, the pool's advance for it 20 000, junior to its last unit, senior the rest.
    expect(d.waterfall.map((l) => [l.layer, l.taken, l.remaining])).toEqual([
      ['DEFAULTER_CONTRACT_COLLATERAL', '50000.000000', '0.000000'],
      ['POOL_MARGIN_ADVANCE', '20000.000000', '0.000000'],
      ['JUNIOR_TRANCHE', '80300.000000', '0.000000'],
      ['SENIOR_TRANCHE', '3450.000000', '196750.000000'],
      ['UNPAID_CLAIMS', '0.000000', undefined],
    ]);
    expect(d.waterfall[2].perProvider).toEqual({ p1: '48180.000000', p2: '32120.000000' });
    // The advance is pool money earmarked for desk1 (SPEC §3.8): it counts against desk1's limit with the tranches.
    expect(d.payouts).toEqual([expect.objectContaining({ partyId: 'desk1', amount: '153750.000000', fromDefaulter: '50000.000000', fromPool: '103750.000000', perCoverage: { cov1: '103750.000000' } })]);
    // Nothing left unpaid for desk1; the pool's 20 000 advance was not repaid (the defaulter had nothing left): its providers are owed it.
    expect(d.claims).toEqual([]);
    expect(d.totals).toMatchObject({ loss: '153750.000000', fromDefaulter: '50000.000000', fromPool: '103750.000000', unpaid: '0.000000', advanceUnreturned: '20000.000000' });

    // Frozen from before the charge until after the settlement; the provider balances moved by exactly their takes.
    expect((await poolEvents()).slice(before)).toEqual(expect.arrayContaining(['WithdrawalsFrozen', 'DefaultLossCharged', 'WithdrawalsUnfrozen']));
    const order = (await poolEvents()).slice(before).filter((t) => t.startsWith('Withdrawals') || t === 'DefaultLossCharged');
    expect(order).toEqual(['WithdrawalsFrozen', 'DefaultLossCharged', 'WithdrawalsUnfrozen']);
    expect((await provider('p1')).tranches[0]).toMatchObject({ value: '0.000000', defaultLosses: '60180.000000' });
    expect((await provider('p2')).tranches.map((t) => [t.value, t.defaultLosses])).toEqual([['0.000000', '40120.000000'], ['196750.000000', '3450.000000']]);
    expect(await pool()).toMatchObject({ capital: '196750.000000', withdrawals: { frozen: false }, marginAdvances: [], settledDefaults: ['cp1'] });

    // The same trigger again, and another one for the same party: nothing more is paid.
    const length = (await app.runtime.store.readStream('default-cp1')).length;
    const poolLength = (await poolEvents()).length;
    await upstream('margin-cp1', 'DefaultTriggered', { partyId: 'cp1', reason: 'OPERATOR', detail: 'again', lastSaneMarks: { 'BTC-USD': '90000' } });
    expect((await app.runtime.store.readStream('default-cp1')).length).toBe(length);
    expect((await poolEvents()).slice(poolLength).filter((t) => t !== 'CapacityAssessed')).toEqual([]);

    // p1 asked to withdraw before the default: it still bears the loss (the lesser of the two values).
    await app.tickAt('2026-02-11T00:00:00.000Z');
    await accepted('WithdrawCapital', { providerId: 'p1', tranche: 'JUNIOR' });
    expect((await provider('p1')).tranches[0]).toMatchObject({ withdrawn: '0.000000', shares: '0' });
  });

  it('repays a recovery up the waterfall: senior first, then junior, pro rata', async () => {
    await accepted('RecordRecovery', { defaultId: 'cp1', amount: '10000', reference: 'estate distribution 1' });
    const d = (await app.get<DefaultBody>('/v1/defaults/cp1')).body;
    expect(d.recoveryAllocations.map((a) => [a.layer, a.amount, a.perCreditor])).toEqual([
      ['SENIOR_TRANCHE', '3450.000000', { p2: '3450.000000' }],
      ['JUNIOR_TRANCHE', '6550.000000', { p1: '3930.000000', p2: '2620.000000' }],
    ]);
    const unknown = await app.send('RecordRecovery', { defaultId: 'nobody', amount: '1', reference: 'x' });
    expect(unknown.reply.violations).toEqual([expect.objectContaining({ field: 'payload.defaultId', rule: 'knownDefault' })]);
    expect((await app.get('/v1/defaults/nobody')).status).toBe(404);
  });

  it('refuses withdrawals while a settlement is unfinished, and a restarted service finishes it', async () => {
    await accepted('RegisterContract', {
      contractId: 'c2', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '1', entryPrice: '60000', currency: 'USDC',
      longPartyId: 'cp2', shortPartyId: 'desk2', longInitialMargin: '10000', shortInitialMargin: '10000',
    });
    // Cover 2 (180 000 on cov1) leaves 16 750 of headroom on 196 750: 50 000 shares would break it, 10 000 do not.
    const tooMuch = await app.send('RequestWithdrawal', { providerId: 'p2', tranche: 'SENIOR', shares: '50000000000' });
    expect(tooMuch.reply.violations).toEqual([
      expect.objectContaining({ field: 'payload.shares', rule: 'cover2', message: expect.stringMatching(/would break Cover 2: .* headroom 16750\.000000 USDC$/) }),
    ]);
    await accepted('RequestWithdrawal', { providerId: 'p2', tranche: 'SENIOR', shares: '10000000000' });
    app.clock.set(new Date('2026-03-04T00:00:00.000Z'));
    // A settlement that stopped after its first two steps (a crash): the case declared, the pool frozen.
    const at = app.clock.now().toISOString();
    const cause = (id: string) => ({ causationId: id, correlationId: 'crashed', occurredAt: at });
    await decideOnStream(app.runtime.store, 'default-cp2', defaultDecider, {
      type: 'DeclareDefault', defaultId: 'cp2', partyId: 'cp2', reason: 'OPERATOR', detail: 'flagged', lastSaneMarks: { 'BTC-USD': '50000' },
      triggerEventId: 'crashed-trigger', bookPosition: String(Number.MAX_SAFE_INTEGER), currency: 'USDC', at,
    }, cause('crashed-trigger'));
    await decideOnStream(app.runtime.store, 'pool-main', poolDecider, { type: 'FreezeWithdrawals', defaultId: 'cp2', partyId: 'cp2', at }, cause('cp2:freeze'));

    const frozen = await app.send('WithdrawCapital', { providerId: 'p2', tranche: 'SENIOR' });
    expect(frozen.status).toBe(422);
    expect(frozen.reply.violations).toEqual([expect.objectContaining({ field: 'payload.providerId', rule: 'withdrawalsFrozen', message: expect.stringMatching(/default cp2 is being settled/) })]);
    expect(await pool()).toMatchObject({ withdrawals: { frozen: true, frozenFor: [{ defaultId: 'cp2', partyId: 'cp2' }] } });

    // The resume ticker drives it to the end; desk2 is owed (60 000 − 50 000 × 0.995) = 10 250, cp2's 0 collateral, no coverage.
    await app.tickAt('2026-03-04T06:00:00.000Z');
    const d = (await app.get<DefaultBody>('/v1/defaults/cp2')).body;
    expect(d.status).toBe('SETTLED');
    expect(d.claims).toEqual([expect.objectContaining({ partyId: 'desk2', amount: '10250.000000', withinCoverage: '0.000000' })]);
    expect(d.waterfall.at(-1)).toMatchObject({ layer: 'UNPAID_CLAIMS', taken: '10250.000000' });
    expect(d.waterfall.find((l) => l.layer === 'SENIOR_TRANCHE')?.taken).toBe('0.000000');
    await accepted('WithdrawCapital', { providerId: 'p2', tranche: 'SENIOR' });
  });

  it("closes an operator's default out at the price the operator gave, recorded with the actor, plus the liquidation cost (issue 8 defect 2)", async () => {
    // intake's fact as settlement's book reads it (how intake accepts contracts is not this test's subject).
    await upstream('contract-c3', 'ContractRegistered', {
      contractId: 'c3', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '2', entryPrice: '60000', currency: 'USDC',
      longPartyId: 'cp3', shortPartyId: 'desk3', longInitialMargin: '1000', shortInitialMargin: '1000', at: app.clock.now().toISOString(),
    });
    // The accepted mark lags a crash at 78 000; the operator can liquidate at 30 000.
    await upstream('margin-cp3', 'DefaultTriggered', {
      partyId: 'cp3', reason: 'OPERATOR', detail: 'exchange halted', lastSaneMarks: { 'BTC-USD': '78000' },
      closeOutPrices: { 'BTC-USD': '30000' }, declaredBy: 'operator:ops-1',
    });
    const d = (await app.get<DefaultBody & { declaredBy: string; closeOutPrices: Record<string, string>; closeOuts: unknown[] }>('/v1/defaults/cp3')).body;
    expect(d).toMatchObject({ status: 'SETTLED', declaredBy: 'operator:ops-1', closeOutPrices: { 'BTC-USD': '30000' } });
    // cp3 is long: the close-out price moves against it by the perpetual's 0.5%: 30 000 × 0.995 = 29 850;
    // desk3 (short 2 at 60 000) is owed (60 000 − 29 850) × 2 = 60 300.
    expect(d.closeOuts).toEqual([expect.objectContaining({ contractId: 'c3', mark: '30000', markSource: 'OPERATOR', closeOutPrice: '29850', lossOwed: '60300.000000' })]);
  });
});

interface PoolBody {
  capital: string;
  capacity: Record<string, unknown> | null;
  withdrawals: { frozen: boolean };
}
interface ProviderBody {
  tranches: { tranche: string; value: string; premiumIncome: string; pendingWithdrawal: Record<string, unknown> | null; defaultLosses: string }[];
}
interface StressBody {
  scenarios: { name: string }[];
}
interface DefaultBody {
  status: string;
  waterfall: { layer: string; taken: string; remaining?: string; perProvider?: Record<string, string> }[];
  totals: Record<string, string>;
  payouts: unknown[];
  claims: unknown[];
  recoveryAllocations: { layer: string; amount: string; perCreditor: Record<string, string> }[];
}
