import { randomUUID } from 'node:crypto';
import { IntakeModule } from '@backstop/intake-service';
import { HOUR_MS, iso, toMinor } from '@backstop/kernel';
import { encodeEnvelope, makeEnvelope, TOPICS } from '@backstop/messaging';
import { startTestBackstop, TestBackstop } from '@backstop/platform';
import { PricingModule } from './pricing.module';

const T0_MS = Date.parse('2026-01-01T00:00:00.000Z');
const t = (hours: number) => iso(T0_MS + hours * HOUR_MS);

/** Loosely typed JSON for assertions (events and read bodies are checked field by field). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

interface StoredView {
  type: string;
  data: Json;
}

describe('premium-pricing over HTTP (real app, store file, intake alongside)', () => {
  let app: TestBackstop;
  const events = async (stream: string): Promise<StoredView[]> => (await app.runtime.store.readStream(stream)).map((e) => ({ type: e.type, data: e.data }));
  const types = async (stream: string) => (await events(stream)).map((e) => e.type);
  const at = async (hours: number) => {
    app.clock.set(new Date(t(hours)));
  };
  /**
   * margin-monitor's accepted mark (not part of this spec's app): pricing prices on the accepted
   * view margin publishes, never on the raw feed, so the spec appends MarkRecorded as margin would.
   */
  const mark = async (price: string, volAnnual: string, hours: number, extra: Json = { sane: true, basis: 'IN_BAND' }) => {
    await appendAsOtherService('market-BTC-USD', 'MarkRecorded', { underlying: 'BTC-USD', price, volAnnual, at: t(hours), receivedAt: t(hours), ...extra }, hours);
  };
  /**
   * Simulates the default-settlement service (not part of this spec's app): its CapacityAssessed
   * event, appended straight to its `pool-main` stream. Pricing's consumer picks it up from the
   * store exactly as it would the real one (and from Kafka in a distributed deployment).
   */
  const appendAsOtherService = async (stream: string, type: string, data: Json, hours: number) => {
    await app.runtime.store.append(stream, [{ id: randomUUID(), type, data, metadata: { causationId: randomUUID(), correlationId: 'test', occurredAt: t(hours), schemaVersion: 1 } }], 'any');
    await app.settle();
  };
  const assessCapacity = (headroom: string, hours: number, worstCounterparties: string[] = []) =>
    appendAsOtherService(
      'pool-main',
      'CapacityAssessed',
      { poolId: 'main', currency: 'USDC', capital: '2000000.000000', cover2Requirement: '0.000000', headroom, worstScenario: 'BTC -35%', worstCounterparties, at: t(hours) },
      hours,
    );
  const contract = (contractId: string, longPartyId: string, size = '2') => ({
    contractId,
    kind: 'PERPETUAL',
    underlying: 'BTC-USD',
    size,
    entryPrice: '60000',
    currency: 'USDC',
    longPartyId,
    shortPartyId: 'cp1',
    longInitialMargin: '12000',
    shortInitialMargin: '12000',
  });
  const accepted = async (type: string, payload: Record<string, unknown>) => {
    const { status, reply } = await app.send(type, payload);
    if (status !== 200) throw new Error(`${type} rejected: ${JSON.stringify(reply.violations)}`);
    return reply;
  };
  const balance = async (partyId: string) => (await app.get<{ balances: Record<string, string> }>(`/v1/pricing/accounts/${partyId}`)).body.balances.USDC;

  // This spec checks the service's rules, not Monte Carlo accuracy (the model's and the deciders'
  // specs do): a smaller simulation, through the service's own settings, keeps it fast.
  const savedEnv = { paths: process.env.PRICING_MC_PATHS, steps: process.env.PRICING_MC_STEPS };
  beforeAll(async () => {
    process.env.PRICING_MC_PATHS = '500';
    process.env.PRICING_MC_STEPS = '20';
    app = await startTestBackstop({ modules: [IntakeModule, PricingModule], start: new Date(t(0)) });
    await accepted('RegisterParty', { partyId: 'desk1', name: 'Desk One', role: 'DESK', credit: { rating: 'A' } });
    await accepted('RegisterParty', { partyId: 'desk2', name: 'Desk Two', role: 'DESK', credit: { rating: 'A' } });
    await accepted('RegisterParty', { partyId: 'cp1', name: 'CP One', role: 'COUNTERPARTY', credit: { pdAnnual: '0.02' } });
    for (const [id, desk, size] of [['c1', 'desk1', '2'], ['c2', 'desk2', '2'], ['big', 'desk2', '200']] as const) {
      await accepted('RegisterContract', contract(id, desk, size));
      await accepted('DepositCollateral', { contractId: id, partyId: 'cp1', amount: '12000' });
    }
    await accepted('FundPremiumAccount', { partyId: 'desk1', amount: '1000', currency: 'USDC' });
    await accepted('FundPremiumAccount', { partyId: 'desk2', amount: '100000', currency: 'USDC' });
  });
  afterAll(async () => {
    await app?.close();
    for (const [name, value] of [['PRICING_MC_PATHS', savedEnv.paths], ['PRICING_MC_STEPS', savedEnv.steps]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  describe('quote → bind → reprice → charge → miss → cure → lapse, limit cut, end with the contract', () => {
    it('will not quote before a mark is in, then quotes with every component', async () => {
      const early = await app.send('RequestQuote', { quoteId: 'q0', contractId: 'c1', protectedPartyId: 'desk1', coverageLimit: '50000', termDays: 30 });
      expect(early.status).toBe(422);
      expect(early.reply.violations?.[0]).toMatchObject({ field: 'payload.contractId', rule: 'marketData' });

      await mark('60000', '0.6', 0);
      const reply = await accepted('RequestQuote', { quoteId: 'q1', contractId: 'c1', protectedPartyId: 'desk1', coverageLimit: '50000', termDays: 30 });
      expect(reply).toMatchObject({ stream: 'quote-q1', revision: 0, ids: { quoteId: 'q1' }, events: ['QuoteIssued'] });
      const { status, body } = await app.get<Json>('/v1/quotes/q1');
      expect(status).toBe(200);
      expect(body).toMatchObject({ status: 'OPEN', counterpartyId: 'cp1', coverageLimit: '50000.000000', intervalHours: 8, validUntil: t(0.25) });
      for (const component of ['expectedExposure', 'credit', 'lgd', 'expectedLoss', 'stressContribution', 'capitalCharge', 'loading', 'premiumTotal', 'model']) {
        expect(body.components).toHaveProperty(component);
      }
      expect(body.components.credit).toMatchObject({ pdAnnual: '0.02', source: 'intake profile' });
      expect(body.components.model).toMatchObject({ paths: 500, steps: 20 });
      expect((await app.get('/v1/quotes/nope')).status).toBe(404);
    });

    it('rejects a bind before any capacity assessment, saying so', async () => {
      const { status, reply } = await app.send('BindCoverage', { coverageId: 'cov1', quoteId: 'q1' });
      expect(status).toBe(422);
      expect(reply.violations?.[0]).toMatchObject({ field: 'payload.quoteId', rule: 'noCapacityAssessment', message: expect.stringMatching(/^no capacity assessment yet for USDC/) });
    });

    it('binds once the pool is assessed, one coverage per quote, and names the capacity left when it runs out', async () => {
      await assessCapacity('100000.000000', 0);
      const reply = await accepted('BindCoverage', { coverageId: 'cov1', quoteId: 'q1' });
      expect(reply).toMatchObject({ stream: 'coverage-cov1', ids: { coverageId: 'cov1', quoteId: 'q1' }, events: ['CoverageBound'] });
      const coverage = (await app.get<Json>('/v1/coverages/cov1')).body;
      expect(coverage).toMatchObject({ status: 'ACTIVE', start: t(0), end: t(720), coverageLimit: '50000.000000', premium: { next: null, nextChargeAt: t(8) } });
      expect((await app.get<Json>('/v1/quotes/q1')).body).toMatchObject({ status: 'BOUND', coverageId: 'cov1' });

      const again = await app.send('BindCoverage', { coverageId: 'cov9', quoteId: 'q1' });
      expect(again.reply.violations?.[0]).toMatchObject({ field: 'payload.quoteId', rule: 'quoteBound' });

      await accepted('RequestQuote', { quoteId: 'q2', contractId: 'c2', protectedPartyId: 'desk2', coverageLimit: '30000', termDays: 10 });
      await accepted('BindCoverage', { coverageId: 'cov2', quoteId: 'q2' });

      await accepted('RequestQuote', { quoteId: 'qbig', contractId: 'big', protectedPartyId: 'desk2', coverageLimit: '5000000', termDays: 30 });
      const big = await app.send('BindCoverage', { coverageId: 'covbig', quoteId: 'qbig' });
      expect(big.reply.violations?.[0]).toMatchObject({ field: 'payload.quoteId', rule: 'poolCapacity' });
      const capacity = (await app.get<{ currencies: { available: string }[] }>('/v1/pricing/capacity')).body.currencies[0];
      expect(big.reply.violations?.[0].message).toContain(`the pool has ${capacity.available} USDC left`);
      expect(toMinor(capacity.available, 6)).toBeLessThan(100_000_000_000n);
      expect((await app.get('/v1/coverages/covbig')).status).toBe(404);
    });

    it('rejects binding an expired quote', async () => {
      await accepted('RequestQuote', { quoteId: 'q-late', contractId: 'c1', protectedPartyId: 'desk1', coverageLimit: '1000', termDays: 5 });
      await at(0.3);
      const late = await app.send('BindCoverage', { coverageId: 'cov-late', quoteId: 'q-late' });
      expect(late.reply.violations?.[0]).toMatchObject({ field: 'payload.quoteId', rule: 'quoteExpired' });
      expect((await app.get<Json>('/v1/quotes/q-late')).body.status).toBe('EXPIRED');
    });

    it('re-prices open coverages for the next interval when the mark moves past the threshold', async () => {
      await at(1);
      await mark('61000', '0.6', 1); // +1.7%: below the 10% threshold
      expect(await types('coverage-cov1')).toEqual(['CoverageBound']);
      await mark('70000', '0.6', 1);
      const repriced = (await events('coverage-cov1')).find((e) => e.type === 'CoverageRepriced')!;
      expect(repriced.data).toMatchObject({ effectiveFrom: t(8), reason: 'BTC-USD mark moved +16.67% (60000 → 70000), threshold 10%' });
      const coverage = (await app.get<Json>('/v1/coverages/cov1')).body;
      expect(coverage.premium.next).toMatchObject({ perInterval: repriced.data.newPremiumPerInterval, effectiveFrom: t(8) });
    });

    it('prices only on the accepted view: a mark margin flagged (a 10^30 print, a zero vol) changes nothing (issue 8 defect 3, issue 9 defect 7)', async () => {
      await mark('1000000000000000000000000000000', '0.6', 1.5, { sane: false, flag: 'OUT_OF_RANGE', detail: 'outside the sane range' });
      await mark('20000', '0.6', 1.6, { sane: false, flag: 'JUMP', jumpRun: 1 });
      expect((await events('pricing-market-BTC-USD')).map((e) => e.data.price)).toEqual(['60000', '61000', '70000']);
      // An accepted mark with vol 0 (unknown) moves the price and keeps the last real vol.
      await mark('70100', '0', 1.7);
      expect((await events('pricing-market-BTC-USD')).at(-1)?.data).toEqual({ underlying: 'BTC-USD', price: '70100', at: t(1.7) });
      expect((await app.get<Json>('/v1/coverages/cov1')).status).toBe(200);
    });

    it('charges the premium at the end of each 8 h interval, from the premium account, at the rate of that interval', async () => {
      const bound = (await events('coverage-cov1'))[0].data;
      await app.tickAt(t(8));
      const charged = (await events('coverage-cov1')).filter((e) => e.type === 'PremiumCharged');
      expect(charged).toHaveLength(1);
      expect(charged[0].data).toMatchObject({ payerPartyId: 'desk1', amount: bound.premiumPerInterval, currency: 'USDC', periodStart: t(0), periodEnd: t(8) });
      expect(toMinor(await balance('desk1'), 6)).toBe(1_000_000_000n - toMinor(bound.premiumPerInterval, 6));
      expect((await types('pricing-account-desk1')).filter((x) => x === 'PremiumAccountDebited')).toHaveLength(1);
      await app.tickAt(t(8)); // the same tick again charges nothing twice
      expect((await types('coverage-cov1')).filter((x) => x === 'PremiumCharged')).toHaveLength(1);
    });

    it('re-prices when intake downgrades the counterparty', async () => {
      await at(9);
      await accepted('UpdateCreditProfile', { partyId: 'cp1', credit: { pdAnnual: '0.05' }, reason: 'downgrade' });
      await app.settle();
      const reprices = (await events('coverage-cov1')).filter((e) => e.type === 'CoverageRepriced');
      expect(reprices).toHaveLength(2);
      expect(reprices[1].data).toMatchObject({ effectiveFrom: t(16), reason: 'counterparty PD moved +150% (0.02 → 0.05), threshold 25%' });
      expect(toMinor(reprices[1].data.newPremiumPerInterval, 6)).toBeGreaterThan(toMinor(reprices[1].data.oldPremiumPerInterval, 6));
    });

    it('re-prices on a credit feed score (backstop.credit.scores) newer than intake\'s profile', async () => {
      await at(9.5);
      // A score dated 10 years ahead of the receiving clock is dead-lettered, so it cannot hide the real one.
      const future = makeEnvelope({ type: 'CreditScore', key: 'cp1', time: t(9.5), payload: { partyId: 'cp1', pdAnnual: '0.9', source: 'test-feed', at: t(9.5 + 24 * 3650) } });
      await app.runtime.bus.publish(app.runtime.topics.of(TOPICS.creditScores), [encodeEnvelope(future)]);
      await app.settle();
      expect(await events('pricing-credit-cp1')).toEqual([]);
      expect(await app.input('CreditScore', { partyId: 'cp1', pdAnnual: '0.1', source: 'test-feed', at: t(9.5) }, 'cp1')).toBe(202);
      // (the future-dated one is retried, then dead-lettered, before the consumer reaches this one)
      for (let i = 0; i < 200 && (await events('pricing-credit-cp1')).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      await app.settle();
      expect((await events('pricing-credit-cp1')).map((e) => e.data.pdAnnual)).toEqual(['0.1']);
      const reprices = (await events('coverage-cov1')).filter((e) => e.type === 'CoverageRepriced');
      expect(reprices).toHaveLength(3);
      expect(reprices[2].data).toMatchObject({ effectiveFrom: t(16), reason: 'counterparty PD moved +100% (0.05 → 0.1), threshold 25%' });
      expect(reprices[2].data.components.credit).toMatchObject({ pdAnnual: '0.1', source: 'test-feed' });
    });

    it('a charge that cannot be paid starts a grace period; money arriving within it pays at once', async () => {
      await at(10);
      await accepted('WithdrawPremiumAccount', { partyId: 'desk1', amount: await balance('desk1'), currency: 'USDC' });
      await app.tickAt(t(16));
      const missed = (await events('coverage-cov1')).filter((e) => e.type === 'PremiumPaymentMissed');
      expect(missed.map((e) => e.data)).toEqual([expect.objectContaining({ periodStart: t(8), periodEnd: t(16), graceUntil: t(40) })]);
      expect((await app.get<Json>('/v1/coverages/cov1')).body.unpaid).toHaveLength(1);

      await at(20);
      await accepted('FundPremiumAccount', { partyId: 'desk1', amount: '500', currency: 'USDC' });
      const cured = (await events('coverage-cov1')).filter((e) => e.type === 'PremiumCharged').pop()!;
      expect(cured.data).toMatchObject({ periodStart: t(8), periodEnd: t(16), amount: missed[0].data.amount, at: t(20) });
      expect((await app.get<Json>('/v1/coverages/cov1')).body.unpaid).toEqual([]);
    });

    it('unpaid at the end of its grace period, the coverage lapses with an event saying why, and frees its capacity', async () => {
      await at(21);
      await accepted('WithdrawPremiumAccount', { partyId: 'desk1', amount: await balance('desk1'), currency: 'USDC' });
      await app.tickAt(t(24));
      await app.tickAt(t(47.9));
      expect(await types('coverage-cov1')).not.toContain('CoverageLapsed');
      await app.tickAt(t(48));
      const all = await events('coverage-cov1');
      const lapsed = all.find((e) => e.type === 'CoverageLapsed')!;
      expect(lapsed.data.reason).toMatch(/for 2026-01-01T16:00:00.000Z–2026-01-02T00:00:00.000Z still unpaid at the end of its grace period \(2026-01-03T00:00:00.000Z\)/);
      // Billed up to the deadline (the desk was covered), nothing after it.
      expect(all.filter((e) => e.type === 'PremiumPaymentMissed').map((e) => e.data.periodStart)).toEqual([t(8), t(16), t(24), t(32), t(40)]);
      expect((await app.get<Json>('/v1/coverages/cov1')).body.status).toBe('LAPSED');
      expect((await events('pricing-capacity')).filter((e) => e.type === 'CapacityReleased').map((e) => e.data.coverageId)).toEqual(['cov1']);
    });

    it('cuts limits, saying why, when an assessment shows the pool short of capacity', async () => {
      await at(49);
      await assessCapacity('-10000.000000', 49, ['cp1']);
      const cut = (await events('coverage-cov2')).find((e) => e.type === 'CoverageLimitReduced')!;
      expect(cut.data).toMatchObject({ oldLimit: '30000.000000', effectiveFrom: t(56) });
      expect(toMinor(cut.data.newLimit, 6)).toBeLessThan(30_000_000_000n);
      expect(cut.data.reason).toMatch(/^pool main capacity stressed: assessment at 2026-01-03T01:00:00.000Z leaves -10000.000000 USDC .* limits on cp1 cut pro rata to free 10000.000000/);
      expect((await app.get<Json>('/v1/coverages/cov2')).body.coverageLimit).toBe(cut.data.newLimit);
    });

    it('ends a coverage with its contract, charging the last part of the interval, and frees its capacity', async () => {
      await at(50);
      await accepted('CloseContract', { contractId: 'c2', partyId: 'desk2', closePrice: '70000' });
      await accepted('CloseContract', { contractId: 'c2', partyId: 'cp1', closePrice: '70000' });
      await app.settle();
      const all = await events('coverage-cov2');
      expect(all.find((e) => e.type === 'CoverageEnded')?.data).toMatchObject({ reason: 'CONTRACT_CLOSED', end: t(50) });
      const last = all.filter((e) => e.type === 'PremiumCharged').pop()!;
      expect(last.data).toMatchObject({ periodStart: t(48), periodEnd: t(50) });
      expect((await app.get<Json>('/v1/coverages/cov2')).body.status).toBe('ENDED');
      expect((await app.get<{ openCoverages: unknown[] }>('/v1/pricing/capacity')).body.openCoverages).toEqual([]);
    });

    it('does not read the raw feed: a MarkPrice on backstop.market.marks is margin`s to judge, pricing moves on accepted marks only', async () => {
      // Straight onto the raw topic, as any Kafka producer could: pricing has no consumer there any more.
      const raw = makeEnvelope({ type: 'MarkPrice', key: 'BTC-USD', time: t(50), payload: { underlying: 'BTC-USD', price: '99999', volAnnual: '0.6', at: t(50) } });
      await app.runtime.bus.publish(app.runtime.topics.of(TOPICS.marketMarks), [encodeEnvelope(raw)]);
      await app.settle();
      // A malformed accepted mark is skipped with a log line; the next one is consumed.
      await mark('lots', '0.6', 50.2);
      await mark('71000', '0.6', 50.5);
      expect((await app.get<Json>('/v1/pricing/markets/BTC-USD')).body).toMatchObject({ price: '71000', priceAt: t(50.5) });
    });

    it('ends coverages when margin settles their contract, or settlement settles the counterparty\'s default (their events simulated)', async () => {
      await at(51);
      await assessCapacity('10000000.000000', 51);
      for (const [quoteId, coverageId, contractId, protectedPartyId] of [['q3', 'cov3', 'big', 'desk2'], ['q4', 'cov4', 'c1', 'desk1']]) {
        await accepted('RequestQuote', { quoteId, contractId, protectedPartyId, coverageLimit: '1000', termDays: 5 });
        await accepted('BindCoverage', { coverageId, quoteId });
      }
      const settled = { contractId: 'big', reason: 'EXPIRY', price: '71000', payerPartyId: 'cp1', receiverPartyId: 'desk2', amount: '22000.000000', currency: 'USDC', at: t(52) };
      await appendAsOtherService('margin-big', 'ContractSettled', settled, 52);
      expect((await events('coverage-cov3')).find((e) => e.type === 'CoverageEnded')?.data).toMatchObject({ reason: 'CONTRACT_SETTLED', end: t(52), detail: 'contract big settled (EXPIRY) at 71000' });
      expect(await types('coverage-cov4')).toEqual(['CoverageBound']);
      await appendAsOtherService('default-d1', 'DefaultSettled', { defaultId: 'd1', partyId: 'cp1', totals: {}, at: t(53) }, 53);
      expect((await events('coverage-cov4')).find((e) => e.type === 'CoverageEnded')?.data).toMatchObject({ reason: 'DEFAULT_SETTLED', end: t(53) });
    });

    it('from a default on, quotes and binds nothing on or against the defaulter, and charges no premium after the default instant (issue 8 defects 4, 5)', async () => {
      await accepted('RegisterParty', { partyId: 'cp2', name: 'CP Two', role: 'COUNTERPARTY', credit: { pdAnnual: '0.02' } });
      await accepted('RegisterContract', { ...contract('c5', 'desk2'), shortPartyId: 'cp2' });
      await accepted('DepositCollateral', { contractId: 'c5', partyId: 'cp2', amount: '12000' });
      await at(60);
      await mark('71000', '0.6', 60);
      await assessCapacity('10000000.000000', 60);
      await accepted('RequestQuote', { quoteId: 'q5', contractId: 'c5', protectedPartyId: 'desk2', coverageLimit: '1000', termDays: 5 });
      await accepted('RequestQuote', { quoteId: 'q6', contractId: 'c5', protectedPartyId: 'desk2', coverageLimit: '1000', termDays: 5 });
      await accepted('BindCoverage', { coverageId: 'cov5', quoteId: 'q5' });
      // margin-monitor declares cp2 in default at 61 h (its event simulated).
      await appendAsOtherService('margin-cp2', 'DefaultTriggered', { partyId: 'cp2', reason: 'OPERATOR', detail: 'court order', lastSaneMarks: {}, at: t(61) }, 61);
      const quote = await app.send('RequestQuote', { quoteId: 'q7', contractId: 'c5', protectedPartyId: 'desk2', coverageLimit: '1000', termDays: 5 });
      expect(quote.reply.violations).toEqual([expect.objectContaining({ field: 'payload.contractId', rule: 'notInDefault', message: expect.stringMatching(/counterparty cp2 is in default/) })]);
      const bind = await app.send('BindCoverage', { coverageId: 'cov6', quoteId: 'q6' });
      expect(bind.reply.violations).toEqual([expect.objectContaining({ field: 'payload.quoteId', rule: 'notInDefault' })]);
      // Bound at 60 h, in default from 61 h: the 60–68 h period ends after the default; nothing is charged.
      await app.tickAt(t(77));
      expect((await types('coverage-cov5')).filter((x) => x === 'PremiumCharged')).toEqual([]);
    });
  });

  describe('every field of every command, with bad values', () => {
    const valid: Record<string, Record<string, unknown>> = {
      RequestQuote: { quoteId: 'q-new', contractId: 'c1', protectedPartyId: 'desk1', coverageLimit: '1000', termDays: 7 },
      BindCoverage: { coverageId: 'cov-new', quoteId: 'q1' },
      FundPremiumAccount: { partyId: 'desk1', amount: '1', currency: 'USDC' },
      WithdrawPremiumAccount: { partyId: 'desk1', amount: '1', currency: 'USDC' },
    };
    const decimalFields = new Set(['coverageLimit', 'amount']);

    for (const [type, payload] of Object.entries(valid)) {
      for (const field of Object.keys(payload)) {
        it(`${type}.${field}: wrong type, missing, float for a decimal string`, async () => {
          const wrongType = await app.send(type, { ...payload, [field]: { nested: true } });
          expect(wrongType.status).toBe(422);
          expect(wrongType.reply.violations?.map((v) => v.field)).toContain(`payload.${field}`);
          const { [field]: _dropped, ...without } = payload;
          const missing = await app.send(type, without);
          expect(missing.reply.violations?.map((v) => v.field)).toContain(`payload.${field}`);
          if (decimalFields.has(field)) {
            const float = await app.send(type, { ...payload, [field]: 12.5 });
            expect(float.reply.violations?.find((v) => v.field === `payload.${field}`)?.message).toMatch(/decimal string/);
          }
        });
      }
    }

    it('out-of-range and rule-breaking values, each with its field and rule', async () => {
      const cases: [string, Record<string, unknown>, string, string][] = [
        ['RequestQuote', { ...valid.RequestQuote, termDays: 0 }, 'payload.termDays', 'min'],
        ['RequestQuote', { ...valid.RequestQuote, termDays: 366 }, 'payload.termDays', 'max'],
        ['RequestQuote', { ...valid.RequestQuote, termDays: 1.5 }, 'payload.termDays', 'isInt'],
        ['RequestQuote', { ...valid.RequestQuote, coverageLimit: '-5' }, 'payload.coverageLimit', 'positive'],
        ['RequestQuote', { ...valid.RequestQuote, coverageLimit: '1.0000001' }, 'payload.coverageLimit', 'isDecimalString'],
        ['RequestQuote', { ...valid.RequestQuote, contractId: 'ghost' }, 'payload.contractId', 'notYetKnown'],
        ['RequestQuote', { ...valid.RequestQuote, contractId: 'c2' }, 'payload.contractId', 'openContract'],
        ['RequestQuote', { ...valid.RequestQuote, protectedPartyId: 'desk2' }, 'payload.protectedPartyId', 'contractParty'],
        ['RequestQuote', { ...valid.RequestQuote, quoteId: 'q1' }, 'payload.quoteId', 'unique'],
        ['RequestQuote', { ...valid.RequestQuote, quoteId: 'bad id!' }, 'payload.quoteId', 'isEntityId'],
        ['BindCoverage', { coverageId: 'cov-x', quoteId: 'ghost' }, 'payload.quoteId', 'knownQuote'],
        ['BindCoverage', { coverageId: 'cov1', quoteId: 'q2' }, 'payload.coverageId', 'unique'],
        ['FundPremiumAccount', { ...valid.FundPremiumAccount, partyId: 'ghost' }, 'payload.partyId', 'notYetKnown'],
        ['FundPremiumAccount', { ...valid.FundPremiumAccount, amount: '-1' }, 'payload.amount', 'isAmount'],
        ['FundPremiumAccount', { ...valid.FundPremiumAccount, amount: '0' }, 'payload.amount', 'positive'],
        ['FundPremiumAccount', { ...valid.FundPremiumAccount, currency: 'EUR' }, 'payload.currency', 'isCurrency'],
        ['FundPremiumAccount', { ...valid.FundPremiumAccount, amount: '1.001', currency: 'USD' }, 'payload.amount', 'isAmount'],
        ['WithdrawPremiumAccount', { ...valid.WithdrawPremiumAccount, amount: '1000000' }, 'payload.amount', 'insufficientFunds'],
        ['BindCoverage', { ...valid.BindCoverage, surprise: 1 }, 'payload.surprise', 'whitelistValidation'],
      ];
      for (const [type, payload, field, rule] of cases) {
        const { status, reply } = await app.send(type, payload);
        expect({ type, status, violation: reply.violations?.[0] }).toMatchObject({ type, status: 422, violation: { field, rule } });
      }
    });

    it('keeps serving after all of that', async () => {
      expect((await app.get('/health/ready')).status).toBe(200);
      expect((await app.send('FundPremiumAccount', valid.FundPremiumAccount)).reply.status).toBe('ACCEPTED');
    });
  });
});
