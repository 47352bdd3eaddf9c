import { randomUUID } from 'node:crypto';
import { IntakeModule } from '@backstop/intake-service';
import { fromMinor } from '@backstop/kernel';
import { OTC_MARGIN_PARAMS, portfolioInitialMargin, requirementToMinor } from '@backstop/margin-model';
import { encodeEnvelope, makeEnvelope, TOPICS } from '@backstop/messaging';
import { startTestBackstop, TestBackstop } from '@backstop/platform';
import { MarginModule } from './margin.module';

type MarginBody = {
  status: string;
  accounts: { equity: string; ownEquity: string; cashFlows: string; initialRequirement: string; maintenanceRequirement: string }[];
  openCalls: { callId: string; status: string; amount: string; deadline: string; secondDeadline: string }[];
  calls: { callId: string; status: string }[];
  default?: { reason: string };
};
type MarkBody = { lastSane: { price: string } | null; last: { price: string; sane: boolean; flag?: string } | null; marksRecorded: number; pending?: { price: number; run: number } };

describe('margin-monitor over HTTP with contract-intake (real app, store file)', () => {
  let app: TestBackstop;
  const perp = (contractId: string, underlying: string, longPartyId: string, shortPartyId: string, size: string, entryPrice: string) => ({
    contractId,
    kind: 'PERPETUAL',
    underlying,
    size,
    entryPrice,
    currency: 'USDC',
    longPartyId,
    shortPartyId,
    longInitialMargin: '0',
    shortInitialMargin: '0',
  });
  const events = async (stream: string) => (await app.runtime.store.readStream(stream)).map((e) => ({ type: e.type, data: e.data }));
  const margin = async (partyId: string) => (await app.get<MarginBody>(`/v1/margin/${partyId}`, { role: 'operator' })).body;
  /** Moves the clock (running the tickers), then sends a mark observed at that instant. */
  const markAt = async (iso: string, underlying: string, price: string, extra: Record<string, string> = {}) => {
    await app.tickAt(iso);
    expect(await app.input('MarkPrice', { underlying, price, volAnnual: '0.6', at: iso, ...extra }, underlying)).toBe(202);
    await app.settle();
  };
  const deposit = async (contractId: string, partyId: string, amount: string) => {
    expect((await app.send('DepositCollateral', { contractId, partyId, amount })).reply.status).toBe('ACCEPTED');
    await app.settle();
  };

  const DESK1_TOKEN = 'desk1-token-0000000000';
  beforeAll(async () => {
    const saved = process.env.BACKSTOP_TOKENS;
    process.env.BACKSTOP_TOKENS = `${DESK1_TOKEN}=desk:desk1,operator-token-000000000=operator,compliance-token-0000000=compliance,provider-token-000000000=provider`;
    try {
      app = await startTestBackstop({ modules: [IntakeModule, MarginModule] });
    } finally {
      if (saved === undefined) delete process.env.BACKSTOP_TOKENS;
      else process.env.BACKSTOP_TOKENS = saved;
    }
    for (const [partyId, role] of [['desk1', 'DESK'], ['cp1', 'COUNTERPARTY'], ['desk2', 'DESK'], ['cp2', 'COUNTERPARTY']]) {
      expect((await app.send('RegisterParty', { partyId, name: partyId, role, credit: { rating: 'A' } })).reply.status).toBe('ACCEPTED');
    }
    expect((await app.send('RegisterContract', perp('btc1', 'BTC-USD', 'desk1', 'cp1', '2', '60000'))).reply.status).toBe('ACCEPTED');
    expect((await app.send('RegisterContract', perp('eth1', 'ETH-USD', 'desk2', 'cp2', '10', '3000'))).reply.status).toBe('ACCEPTED');
    await deposit('btc1', 'desk1', '25000');
    await deposit('btc1', 'cp1', '25000');
    await deposit('eth1', 'desk2', '6000');
    await deposit('eth1', 'cp2', '6000');
  });
  afterAll(() => app.close());

  it('values positions at a sane mark and reports equity and requirements', async () => {
    await markAt('2026-01-01T00:10:00.000Z', 'BTC-USD', '60000');
    await markAt('2026-01-01T00:10:00.000Z', 'ETH-USD', '3000');
    const desk1 = await margin('desk1');
    expect(desk1).toMatchObject({ status: 'OK', openCalls: [] });
    expect(desk1.accounts[0].equity).toBe('25000.000000');
    // 5-day 99.5% lognormal scan on vol 0.6 with k from a unit-variance Student-t(4): t₀.₉₉₅(4) = 4.6040949 (tables),
    // 1 − exp(−4.6040949·√½·0.6·√(5/365)) ≈ 20.4% of the 120000 notional; the model's object path, rounded up
    const terms = { kind: 'PERPETUAL' as const, underlying: 'BTC-USD', size: 2, entryPrice: 60_000 };
    const initial = portfolioInitialMargin([{ terms, side: 'LONG' }], { 'BTC-USD': { mark: 60_000, volAnnual: 0.6, nowMs: Date.parse('2026-01-01T00:10:00Z') } }, () => OTC_MARGIN_PARAMS);
    expect(initial).toBeCloseTo(120_000 * (1 - Math.exp(-4.6040949 * Math.SQRT1_2 * 0.6 * Math.sqrt(5 / 365))), 0);
    expect(desk1.accounts[0].initialRequirement).toBe(fromMinor(requirementToMinor(initial, 6), 6));
    expect(Number(desk1.accounts[0].maintenanceRequirement)).toBeCloseTo(Number(desk1.accounts[0].initialRequirement) / 2, 4);
    const marks = await app.get<MarkBody>('/v1/marks/BTC-USD', { role: 'operator' });
    expect(marks.body).toMatchObject({ lastSane: { price: '60000' }, last: { sane: true }, marksRecorded: 1 });
    expect((await app.get('/v1/marks/DOGE-USD', { role: 'operator' })).status).toBe(404);
    expect((await app.get('/v1/margin/nobody', { role: 'operator' })).status).toBe(404);
  });

  it('needs a bearer token; a desk sees only its own margin', async () => {
    expect((await app.get('/v1/margin/desk1', { token: null })).status).toBe(401);
    expect((await app.get('/v1/margin/desk1', { token: DESK1_TOKEN })).status).toBe(200);
    const other = await app.get<{ message: string }>('/v1/margin/cp1', { token: DESK1_TOKEN });
    expect(other.status).toBe(403);
    expect(other.body.message).toMatch(/desk token is bound to desk1 and may not read the margin of cp1/);
    expect((await app.get('/v1/margin/cp1', { role: 'compliance' })).status).toBe(200);
    expect((await app.get('/v1/margin/cp1', { role: 'provider' })).status).toBe(403);
    expect((await app.get('/v1/marks/BTC-USD', { role: 'provider' })).status).toBe(200);
  });

  it('issues a call on a drop below maintenance, and a deposit before the deadline cures it', async () => {
    await markAt('2026-01-01T01:00:00.000Z', 'BTC-USD', '52000');
    const called = await margin('desk1');
    expect(called.status).toBe('IN_CALL');
    expect(called.openCalls).toEqual([expect.objectContaining({ callId: 'mc-desk1-1', status: 'ISSUED', deadline: '2026-01-01T05:00:00.000Z', secondDeadline: '2026-01-02T05:00:00.000Z' })]);
    const issued = (await events('margin-desk1')).find((e) => e.type === 'MarginCallIssued');
    expect(issued?.data).toMatchObject({ partyId: 'desk1', equity: '9000.000000', currency: 'USDC', at: '2026-01-01T01:00:00.000Z' });
    expect(Number(issued?.data.amount)).toBeCloseTo(Number(issued?.data.initialRequirement) - 9000, 6);

    // No collateral leaves while the call is open (intake's read model of margin's events).
    const withdrawal = await app.send('WithdrawCollateral', { contractId: 'btc1', partyId: 'desk1', amount: '1' });
    expect(withdrawal.status).toBe(422);
    expect(withdrawal.reply.violations).toEqual([expect.objectContaining({ field: 'payload.amount', rule: 'noOpenMarginCall', message: expect.stringContaining('mc-desk1-1 (issued') })]);

    await app.tickAt('2026-01-01T02:00:00.000Z');
    // back above the initial requirement at 52000 (about 21 250)
    await deposit('btc1', 'desk1', '13000');
    expect((await events('margin-desk1')).filter((e) => e.type === 'MarginCallCured').map((e) => e.data)).toEqual([
      { callId: 'mc-desk1-1', partyId: 'desk1', currency: 'USDC', equity: '22000.000000', cause: 'DEPOSIT', at: '2026-01-01T02:00:00.000Z' },
    ]);
    expect(await margin('desk1')).toMatchObject({ status: 'OK', openCalls: [] });
  });

  it('flags a jump beyond the band and calls no one on it', async () => {
    await markAt('2026-01-01T02:30:00.000Z', 'ETH-USD', '2400');
    const marks = await app.get<MarkBody>('/v1/marks/ETH-USD', { role: 'operator' });
    expect(marks.body).toMatchObject({ lastSane: { price: '3000' }, last: { price: '2400', sane: false, flag: 'JUMP' }, pending: { price: 2400, run: 1, low: 2400, high: 2400 } });
    // At 2400 desk2 would have equity 0, far below maintenance: only the flag keeps it uncalled.
    expect(await margin('desk2')).toMatchObject({ status: 'OK', openCalls: [] });
    expect((await events('margin-desk2')).map((e) => e.type)).not.toContain('MarginCallIssued');
  });

  it('misses a call at its deadline on the clock', async () => {
    await markAt('2026-01-01T03:00:00.000Z', 'BTC-USD', '45000');
    const [call] = (await margin('desk1')).openCalls;
    expect(call).toMatchObject({ callId: 'mc-desk1-2', status: 'ISSUED', deadline: '2026-01-01T07:00:00.000Z' });
    await app.tickAt('2026-01-01T06:59:59.000Z');
    expect((await margin('desk1')).openCalls[0].status).toBe('ISSUED');
    await app.tickAt('2026-01-01T07:00:00.000Z');
    await app.settle();
    expect((await margin('desk1')).openCalls[0].status).toBe('MISSED');
    expect((await events('margin-desk1')).filter((e) => e.type === 'MarginCallMissed').map((e) => e.data)).toEqual([
      { callId: 'mc-desk1-2', partyId: 'desk1', amount: call.amount, currency: 'USDC', at: '2026-01-01T07:00:00.000Z' },
    ]);
  });

  it('exchanges perpetual funding at the funding instant (longs pay shorts at a positive rate)', async () => {
    await markAt('2026-01-01T07:50:00.000Z', 'ETH-USD', '3010', { fundingRate: '0.0001' });
    await markAt('2026-01-01T08:10:00.000Z', 'ETH-USD', '3020', { fundingRate: '0.0001' });
    // 0.0001 × 10 × 3010 = 3.01, at the rate and mark in force before 08:00
    expect((await events('margin-desk2')).filter((e) => e.type === 'FundingExchanged').map((e) => e.data)).toEqual([
      { contractId: 'eth1', payerPartyId: 'desk2', receiverPartyId: 'cp2', amount: '3.010000', currency: 'USDC', rate: '0.0001', mark: '3010', at: '2026-01-01T08:00:00.000Z' },
    ]);
    expect((await margin('desk2')).accounts[0].cashFlows).toBe('-3.010000');
    expect((await margin('cp2')).accounts[0].cashFlows).toBe('3.010000');
  });

  it('triggers a default at the second deadline with the last sane marks', async () => {
    await app.tickAt('2026-01-02T07:00:00.000Z');
    await app.settle();
    const desk1 = await margin('desk1');
    expect(desk1).toMatchObject({ status: 'DEFAULTED', default: { reason: 'SECOND_DEADLINE' }, openCalls: [] });
    const triggered = (await events('margin-desk1')).filter((e) => e.type === 'DefaultTriggered');
    expect(triggered.map((e) => e.data)).toEqual([expect.objectContaining({ partyId: 'desk1', reason: 'SECOND_DEADLINE', callId: 'mc-desk1-2', lastSaneMarks: { 'BTC-USD': '45000' }, at: '2026-01-02T07:00:00.000Z' })]);
    await app.tickAt('2026-01-02T08:00:00.000Z');
    expect((await events('margin-desk1')).filter((e) => e.type === 'DefaultTriggered')).toHaveLength(1);
  });

  it('settles a contract closed by both sides at the close price', async () => {
    await app.send('CloseContract', { contractId: 'eth1', partyId: 'desk2', closePrice: '3050' });
    expect((await app.send('CloseContract', { contractId: 'eth1', partyId: 'cp2', closePrice: '3050' })).reply.events).toEqual(['ContractClosed']);
    await app.settle();
    expect((await events('margin-desk2')).filter((e) => e.type === 'ContractSettled').map((e) => e.data)).toEqual([
      { contractId: 'eth1', reason: 'CLOSE', price: '3050', payerPartyId: 'cp2', receiverPartyId: 'desk2', amount: '500.000000', currency: 'USDC', at: '2026-01-02T08:00:00.000Z' },
    ]);
    const desk2 = await margin('desk2');
    expect(desk2.accounts[0]).toMatchObject({ cashFlows: '496.990000', initialRequirement: '0.000000' });
  });

  it('takes an operator DeclareDefault as a command, and rejects it with the rule when it cannot apply', async () => {
    const accepted = await app.send('DeclareDefault', { partyId: 'cp1', reason: 'insolvency filing' });
    expect(accepted.status).toBe(200);
    expect(accepted.reply).toMatchObject({ status: 'ACCEPTED', stream: 'margin-cp1', events: ['DefaultTriggered'] });
    expect((await events('margin-cp1')).find((e) => e.type === 'DefaultTriggered')?.data).toMatchObject({ reason: 'OPERATOR', detail: 'insolvency filing', lastSaneMarks: { 'BTC-USD': '45000' } });
    const again = await app.send('DeclareDefault', { partyId: 'cp1', reason: 'twice' });
    expect(again.status).toBe(422);
    expect(again.reply.violations).toEqual([expect.objectContaining({ field: 'payload.partyId', rule: 'notInDefault' })]);
    expect((await app.send('DeclareDefault', { partyId: 'ghost', reason: 'x' })).reply.violations).toEqual([expect.objectContaining({ rule: 'knownParty' })]);
    const invalid = await app.send('DeclareDefault', { partyId: 'cp1' });
    expect(invalid.status).toBe(422);
    expect(invalid.reply.violations?.map((v) => `${v.field}:${v.rule}`)).toEqual(expect.arrayContaining(['payload.reason:isNotEmpty', 'payload.reason:isString']));
  });

  it('records a redelivered mark once', async () => {
    const before = (await app.get<MarkBody>('/v1/marks/ETH-USD', { role: 'operator' })).body.marksRecorded;
    const envelope = makeEnvelope({ id: randomUUID(), type: 'MarkPrice', key: 'ETH-USD', time: '2026-01-02T08:00:00.000Z', payload: { underlying: 'ETH-USD', price: '3030', at: '2026-01-02T08:00:00.000Z' } });
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${app.url}/v1/market/marks`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${app.runtime.auth.tokenFor('operator')}` }, body: JSON.stringify(envelope) });
      expect(res.status).toBe(202);
    }
    await app.settle();
    expect((await app.get<MarkBody>('/v1/marks/ETH-USD', { role: 'operator' })).body.marksRecorded).toBe(before + 1);
  });
  it('judges marks by its own clock: a sender`s fresh-looking time, a mark dated 10 years ahead and a 10^29 print change nothing; a silent feed raises MarkStale (issue 9 defect 7)', async () => {
    const now = app.clock.now().getTime();
    const iso = (offsetMs: number) => new Date(now + offsetMs).toISOString();
    // Straight onto the topic, as a Kafka producer would: the envelope time says "fresh".
    const raw = async (price: string, at: string) => {
      await app.runtime.bus.publish(app.runtime.topics.of(TOPICS.marketMarks), [encodeEnvelope(makeEnvelope({ type: 'MarkPrice', key: 'SOL-USD', time: at, payload: { underlying: 'SOL-USD', price, volAnnual: '0.9', at } }))]);
      await app.settle();
    };
    await raw('150', iso(-2 * 3_600_000));
    await raw('151', iso(10 * 365 * 86_400_000));
    // 10^29: 30 digits, the most a MarkPrice may carry (10^30 is refused by the schema and dead-lettered).
    await raw('100000000000000000000000000000', iso(0));
    await raw('152', iso(0));
    const recorded = (await events('market-SOL-USD')).map((e) => e.data);
    expect(recorded.map((d) => [d.price, d.sane, d.flag ?? null])).toEqual([
      ['150', false, 'STALE'],
      ['151', false, 'FUTURE'],
      ['100000000000000000000000000000', false, 'OUT_OF_RANGE'],
      ['152', true, null],
    ]);
    expect(recorded[3]).toMatchObject({ basis: 'FIRST', receivedAt: iso(0) });
    await app.tickAt(iso(6 * 60_000));
    await app.settle();
    expect((await events('market-SOL-USD')).filter((e) => e.type === 'MarkStale').map((e) => e.data)).toEqual([
      { underlying: 'SOL-USD', lastAcceptedPrice: '152', lastAcceptedAt: iso(0), lastReceivedAt: iso(0), ageMs: 360_000, limitMs: 300_000, at: iso(6 * 60_000) },
    ]);
  });
});
