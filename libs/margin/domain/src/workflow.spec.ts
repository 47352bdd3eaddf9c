import fc from 'fast-check';
import { HOUR_MS, iso, ms } from '@backstop/kernel';
import { markToMarket, MarketPoint, OTC_MARGIN_PARAMS, pnlToMinor, portfolioInitialMargin, Position, requirementToMinor } from '@backstop/margin-model';
import { Assessment } from './account';
import { positionTerms } from './account';
import { MarginMonitor } from './monitor';
import { DEFAULT_MARGIN_POLICY, MarginPolicy } from './policy';
import { InMemoryMarginPort } from './testing/in-memory-port';
import { ContractRegisteredInput, MarginWorkflow, Source } from './workflow';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (hours: number) => iso(T0 + hours * HOUR_MS);
const POLICY: MarginPolicy = { ...DEFAULT_MARGIN_POLICY, defaultMarginParams: OTC_MARGIN_PARAMS };

function harness(policy: MarginPolicy = POLICY, capacity?: number) {
  const monitor = new MarginMonitor(policy, capacity);
  const port = new InMemoryMarginPort(monitor, policy);
  const workflow = new MarginWorkflow(monitor, port);
  let n = 0;
  const source = (): Source => {
    n += 1;
    return { id: `msg-${n}`, correlationId: `corr-${n}` };
  };
  const mark = (price: string, hours: number, extra: { volAnnual?: string; fundingRate?: string; underlying?: string; receivedAt?: string } = {}) =>
    workflow.onMark(source(), { underlying: 'BTC-USD', price, volAnnual: '0.6', at: at(hours), receivedAt: extra.receivedAt ?? at(hours), ...extra });
  const register = (contract: Partial<ContractRegisteredInput> & { contractId: string }) =>
    workflow.onContractRegistered(source(), { ...PERP, ...contract });
  const balances = new Map<string, bigint>();
  const deposit = (contractId: string, partyId: string, amount: number, hours = 0, change: 'DEPOSIT' | 'WITHDRAWAL' = 'DEPOSIT') => {
    const key = `${contractId}/${partyId}`;
    const balance = (balances.get(key) ?? 0n) + BigInt(Math.round(amount * 1e6)) * (change === 'DEPOSIT' ? 1n : -1n);
    balances.set(key, balance);
    const spec = monitor.contractSpec(contractId);
    const side = spec?.longPartyId === partyId ? 'LONG' : 'SHORT';
    return workflow.onCollateral(source(), change, { contractId, partyId, side, amount: amount.toFixed(6), currency: 'USDC', balance: (Number(balance) / 1e6).toFixed(6), at: at(hours) });
  };
  return { monitor, port, workflow, mark, register, deposit, source };
}

const PERP: ContractRegisteredInput = {
  contractId: 'c1',
  kind: 'PERPETUAL',
  underlying: 'BTC-USD',
  size: '2',
  entryPrice: '60000',
  currency: 'USDC',
  longPartyId: 'desk1',
  shortPartyId: 'cp1',
  at: at(0),
};

const usdc = (minor: bigint) => Number(minor) / 1e6;
/** This spec's run count, unless FC_RUNS widens it (a local numRuns would override the global one). */
const runs = (n: number) => (process.env.FC_RUNS ? Number(process.env.FC_RUNS) : n);

/** The model's object path, for comparison: initial of one party's positions at these markets. */
function modelInitial(positions: Position[], markets: Record<string, MarketPoint>): number {
  return portfolioInitialMargin(positions, markets, () => OTC_MARGIN_PARAMS);
}

describe('margin workflow over the in-memory store', () => {
  describe('a contract going live without its initial margin (issue 8, defect 8)', () => {
    it('calls each side at once for its agreed initial margin, and an adverse tick in the grace does not default', async () => {
      const h = harness();
      await h.register({ contractId: 'c1', longInitialMargin: '10000.000000', shortInitialMargin: '12000.000000' });
      // Figures from the policy, not from the code under test: deadline = registration + grace.
      const deadline = iso(T0 + POLICY.callGraceMs);
      const second = iso(T0 + POLICY.callGraceMs + POLICY.secondGraceMs);
      expect(h.port.eventsOf('MarginCallIssued').map((e) => e.data)).toEqual([
        expect.objectContaining({ partyId: 'desk1', amount: '10000.000000', equity: '0.000000', initialRequirement: '10000.000000', deadline, secondDeadline: second, contractId: 'c1', at: at(0) }),
        expect.objectContaining({ partyId: 'cp1', amount: '12000.000000', equity: '0.000000', initialRequirement: '12000.000000', deadline, secondDeadline: second, contractId: 'c1', at: at(0) }),
      ]);
      // The short side posts; the long side does not, and the price falls 10k (long MTM −20,000).
      await h.deposit('c1', 'cp1', 12_000, 0.5);
      expect(h.port.eventsOf('MarginCallCured').map((e) => e.data.partyId)).toEqual(['cp1']);
      await h.mark('60000', 0.75);
      await h.mark('50000', 1);
      await h.workflow.onTick(iso(T0 + POLICY.callGraceMs - 1));
      expect(h.port.eventsOf('DefaultTriggered')).toEqual([]);
      // Unpaid at the deadline, the call takes the normal path: missed, and then the negative equity defaults.
      await h.workflow.onTick(deadline);
      expect(h.port.eventsOf('MarginCallMissed').map((e) => e.data)).toEqual([expect.objectContaining({ partyId: 'desk1', amount: '10000.000000', at: deadline })]);
      await h.mark('50000', POLICY.callGraceMs / HOUR_MS + 0.5);
      expect(h.port.eventsOf('DefaultTriggered').map((e) => e.data)).toEqual([expect.objectContaining({ partyId: 'desk1', reason: 'NEGATIVE_EQUITY' })]);
    });

    it('without an agreed figure, calls for the SPAN initial margin at the accepted mark; a side already covered is not called', async () => {
      const h = harness();
      await h.register({ contractId: 'c0', longPartyId: 'desk1', shortPartyId: 'other' });
      await h.deposit('c0', 'desk1', 100_000);
      await h.mark('60000', 1);
      await h.register({ contractId: 'c1', longPartyId: 'desk2', shortPartyId: 'desk1', at: at(1) });
      const initial = modelInitial([{ terms: positionTerms({ ...PERP, side: 'LONG' }), side: 'LONG' }], { 'BTC-USD': { mark: 60_000, volAnnual: 0.6, nowMs: T0 + HOUR_MS } });
      // desk1 (100,000 posted) covers its new short as well: only desk2 is called for c1.
      const calls = h.port.eventsOf('MarginCallIssued').map((e) => e.data).filter((c) => c.contractId === 'c1');
      expect(calls).toEqual([expect.objectContaining({ partyId: 'desk2', amount: (Number(requirementToMinor(initial, 6)) / 1e6).toFixed(6), equity: '0.000000', at: at(1) })]);
    });
  });

  it('calls on a drop below maintenance for the amount back to initial, and a deposit before the deadline cures it', async () => {
    const h = harness();
    await h.register({ contractId: 'c1' });
    await h.deposit('c1', 'desk1', 25_000);
    await h.deposit('c1', 'cp1', 25_000);
    await h.mark('60000', 1);
    expect(h.port.eventsOf('MarginCallIssued')).toEqual([]);

    await h.mark('52000', 2);
    const calls = h.port.eventsOf('MarginCallIssued');
    expect(calls).toHaveLength(1);
    const terms = positionTerms({ ...PERP, side: 'LONG' });
    const initial = modelInitial([{ terms, side: 'LONG' }], { 'BTC-USD': { mark: 52_000, volAnnual: 0.6, nowMs: T0 + 2 * HOUR_MS } });
    const initialMinor = requirementToMinor(initial, 6);
    expect(calls[0].data).toMatchObject({
      callId: 'mc-desk1-1',
      partyId: 'desk1',
      equity: '9000.000000',
      initialRequirement: (Number(initialMinor) / 1e6).toFixed(6),
      amount: (Number(initialMinor - 9_000_000_000n) / 1e6).toFixed(6),
      deadline: at(6),
      secondDeadline: at(30),
      at: at(2),
    });
    expect(calls[0].causation.causationId).toBe('msg-5:assess:USDC');

    await h.mark('51900', 2.5);
    expect(h.port.eventsOf('MarginCallIssued')).toHaveLength(1);
    // back above initial: the lognormal, fat-tailed scan asks about 21,200 here
    await h.deposit('c1', 'desk1', 15_000, 3);
    expect(h.port.eventsOf('MarginCallCured').map((e) => e.data)).toEqual([
      { callId: 'mc-desk1-1', partyId: 'desk1', currency: 'USDC', equity: '23800.000000', cause: 'DEPOSIT', at: at(3) },
    ]);
    expect(h.monitor.openCallsOf('desk1')).toEqual([]);
  });

  it('misses a call at its deadline on the clock, then defaults at the second deadline; backstop cover is collateral, not own equity', async () => {
    const h = harness();
    await h.register({ contractId: 'c1' });
    await h.deposit('c1', 'desk1', 20_000);
    await h.deposit('c1', 'cp1', 40_000);
    await h.mark('60000', 1);
    await h.mark('53000', 2);
    const [call] = h.port.eventsOf('MarginCallIssued');
    expect(call.data.partyId).toBe('desk1');

    await h.workflow.onTick(at(5.9));
    expect(h.port.eventsOf('MarginCallMissed')).toEqual([]);
    await h.workflow.onTick(at(6.5));
    expect(h.port.eventsOf('MarginCallMissed').map((e) => e.data)).toEqual([{ callId: 'mc-desk1-1', partyId: 'desk1', amount: call.data.amount, currency: 'USDC', at: at(6) }]);
    await h.workflow.onTick(at(7));
    expect(h.port.eventsOf('MarginCallMissed')).toHaveLength(1);

    const before = h.monitor.assess('desk1', 'USDC') as Assessment;
    await h.workflow.onBackstopCover(h.source(), { callId: 'mc-desk1-1', partyId: 'desk1', amount: call.data.amount as string, currency: 'USDC', at: at(7) });
    const after = h.monitor.assess('desk1', 'USDC') as Assessment;
    expect(after.equityMinor - before.equityMinor).toBe(BigInt(Math.round(Number(call.data.amount) * 1e6)));
    expect(after.ownEquityMinor).toBe(before.ownEquityMinor);

    await h.workflow.onTick(at(30));
    expect(h.port.eventsOf('DefaultTriggered').map((e) => e.data)).toEqual([
      expect.objectContaining({ partyId: 'desk1', reason: 'SECOND_DEADLINE', callId: 'mc-desk1-1', lastSaneMarks: { 'BTC-USD': '53000' }, at: at(30) }),
    ]);
    // In default: no more calls, whatever the market does.
    await h.mark('46000', 31);
    expect(h.port.eventsOf('MarginCallIssued').filter((e) => e.data.partyId === 'desk1')).toHaveLength(1);
  });

  it('flags a jump and does not call on it while its level is within the requirement; once it persists the move counts', async () => {
    const h = harness();
    await h.register({ contractId: 'c1' });
    await h.deposit('c1', 'desk1', 25_000);
    await h.deposit('c1', 'cp1', 25_000);
    await h.mark('60000', 1);
    // Marks 18 s apart: the level is accepted on the third consistent one (persistMs is 5 minutes).
    const flagged = await h.mark('50500', 2);
    expect(flagged.mark).toMatchObject({ sane: false, flag: 'JUMP' });
    expect(h.port.eventsOf('MarginCallIssued')).toEqual([]);
    await h.mark('50600', 2.005);
    expect(h.port.eventsOf('MarginCallIssued')).toEqual([]);
    const confirmed = await h.mark('50550', 2.01);
    expect(confirmed.mark).toMatchObject({ sane: true });
    expect(h.port.eventsOf('MarginCallIssued').map((e) => e.data.partyId)).toEqual(['desk1']);
  });

  it('follows a collapse of more than 15% a mark (86 → 0.0002 in daily closes) and defaults the long on it (issue 8 defect 1)', async () => {
    const h = harness();
    await h.register({ contractId: 'c1', entryPrice: '86', size: '1000', longPartyId: 'cp1', shortPartyId: 'desk1' });
    await h.deposit('c1', 'cp1', 20_000);
    await h.deposit('c1', 'desk1', 20_000);
    const closes = ['86', '80', '78', '65', '30', '18', '1.8', '0.03', '0.0002'];
    for (const [day, price] of closes.entries()) await h.mark(price, day * 24);
    // Before: the accepted price stuck at 78 and nobody was called. Now 30 is accepted on day 4.
    const accepted = h.port.eventsOf('MarkRecorded').filter((e) => e.data.sane).map((e) => e.data.price);
    expect(accepted).toEqual(['86', '80', '78', '30', '1.8', '0.0002']);
    const [trigger] = h.port.eventsOf('DefaultTriggered');
    expect(trigger.data).toMatchObject({ partyId: 'cp1', reason: 'NEGATIVE_EQUITY', lastSaneMarks: { 'BTC-USD': '30' } });
  });

  it('one bad tick liquidates nobody: a spike that reverts raises requirements while it is pending, then they fall back', async () => {
    const h = harness();
    await h.register({ contractId: 'c1' });
    await h.deposit('c1', 'desk1', 25_000);
    await h.deposit('c1', 'cp1', 25_000);
    await h.mark('60000', 1);
    const before = h.monitor.accountFigures('desk1')[0];
    const spike = await h.mark('600', 1.01);
    expect(spike.mark).toMatchObject({ sane: false, flag: 'JUMP' });
    const during = h.monitor.accountFigures('desk1')[0];
    expect(during.equityMinor).toBe(before.equityMinor);
    // The long's loss if 600 were real: 2 × 59400.
    expect(during.initialMinor).toBeGreaterThanOrEqual(118_800_000_000n);
    await h.mark('60050', 1.02);
    expect(h.monitor.accountFigures('desk1')[0].initialMinor).toBeLessThan(during.initialMinor);
    for (let hours = 2; hours <= 40; hours += 1) await h.workflow.onTick(at(hours));
    expect(h.port.eventsOf('DefaultTriggered')).toEqual([]);
    expect(h.port.eventsOf('MarkRecorded').filter((e) => e.data.sane).map((e) => e.data.price)).toEqual(['60000', '60050']);
  });

  it('exchanges perpetual funding at each funding instant at the last sane rate and mark before it', async () => {
    const h = harness();
    await h.register({ contractId: 'c1' });
    await h.deposit('c1', 'desk1', 30_000);
    await h.deposit('c1', 'cp1', 30_000);
    await h.mark('60000', 7.9, { fundingRate: '0.0001' });
    await h.mark('60500', 8.1, { fundingRate: '-0.0002' });
    await h.mark('60400', 8.2, { fundingRate: '-0.0002' });
    expect(h.port.eventsOf('FundingExchanged').map((e) => e.data)).toEqual([
      { contractId: 'c1', payerPartyId: 'desk1', receiverPartyId: 'cp1', amount: '12.000000', currency: 'USDC', rate: '0.0001', mark: '60000', at: at(8) },
    ]);
    const long = h.monitor.accountFigures('desk1')[0];
    const short = h.monitor.accountFigures('cp1')[0];
    expect(long.flowsMinor).toBe(-12_000_000n);
    expect(short.flowsMinor).toBe(12_000_000n);
    await h.mark('60300', 16.5, { fundingRate: '-0.0002' });
    expect(h.port.eventsOf('FundingExchanged').map((e) => e.data.payerPartyId)).toEqual(['desk1', 'cp1']);
  });

  it('books no funding on a defaulter\'s contracts from the default on, even a mark 120 ms after DeclareDefault (issue 8 defect 5)', async () => {
    const h = harness();
    await h.register({ contractId: 'c1' });
    await h.deposit('c1', 'desk1', 30_000);
    await h.deposit('c1', 'cp1', 30_000);
    await h.mark('60000', 7.9, { fundingRate: '0.0001' });
    // The operator declares cp1 (the SHORT side: the flows live in desk1's stream) in default just before the instant.
    await h.workflow.declareDefault(h.source(), 'cp1', 'court order', iso(T0 + 8 * HOUR_MS - 100));
    // A mark 120 ms later crosses the 8h funding instant: nothing may move between the sides any more.
    await h.workflow.onMark(h.source(), { underlying: 'BTC-USD', price: '60010', volAnnual: '0.6', fundingRate: '0.0001', at: iso(T0 + 8 * HOUR_MS + 20), receivedAt: iso(T0 + 8 * HOUR_MS + 20) });
    await h.mark('60300', 16.5, { fundingRate: '0.0001' });
    expect(h.port.eventsOf('FundingExchanged')).toEqual([]);
    expect(h.monitor.accountFigures('cp1')[0].flowsMinor).toBe(0n);
  });

  it('records a funding instant without a published rate as a zero flow, so a restart never re-decides it at a later rate', async () => {
    const h = harness();
    await h.register({ contractId: 'c1' });
    await h.mark('60000', 7.9);
    await h.mark('60100', 8.1, { fundingRate: '0.0005' });
    expect(h.port.eventsOf('FundingExchanged').map((e) => e.data)).toEqual([expect.objectContaining({ amount: '0.000000', rate: '0', mark: '60000', at: at(8) })]);
    const { monitor, port } = h.port.restarted(POLICY);
    const after = new MarginWorkflow(monitor, port);
    await after.onMark({ id: 'later', correlationId: 'later' }, { underlying: 'BTC-USD', price: '60200', volAnnual: '0.6', fundingRate: '0.0005', at: at(8.5), receivedAt: at(8.5) });
    expect(port.eventsOf('FundingExchanged')).toHaveLength(1);
  });

  it('a mark redelivered after a crash between recording it and acting on it funds at the rate in force before the instant', async () => {
    const h = harness();
    await h.register({ contractId: 'c1' });
    await h.mark('60000', 7.9, { fundingRate: '0.0001' });
    const input = { underlying: 'BTC-USD', price: '60100', volAnnual: '0.6', fundingRate: '0.0009', at: at(8.1), receivedAt: at(8.1) };
    // The crash: the mark is on the record, nothing that follows from it is.
    await h.port.decideMarket({ type: 'RecordMark', ...input }, { causationId: 'crashed', correlationId: 'crashed', occurredAt: at(8.1) });
    expect(h.port.eventsOf('FundingExchanged')).toEqual([]);
    const { monitor, port } = h.port.restarted(POLICY);
    const outcome = await new MarginWorkflow(monitor, port).onMark({ id: 'crashed', correlationId: 'crashed' }, input);
    expect(outcome.mark).toMatchObject({ sane: true, price: '60100' });
    expect(port.eventsOf('MarkRecorded')).toHaveLength(2);
    expect(port.eventsOf('FundingExchanged').map((e) => e.data)).toEqual([expect.objectContaining({ rate: '0.0001', mark: '60000', amount: '12.000000', at: at(8) })]);
  });

  it('settles a future at expiry at the TWAP of accepted marks in the window, on the clock, and a contract closed by both sides at the close price', async () => {
    const h = harness();
    await h.register({ contractId: 'f1', kind: 'FUTURE', expiry: at(10) });
    await h.register({ contractId: 'c1' });
    await h.deposit('f1', 'desk1', 30_000);
    await h.deposit('f1', 'cp1', 30_000);
    await h.mark('60000', 1);
    // In force over the window [9:30, 10:00]: 60000 until 9:40, 61000 until 9:50, 61300 to the end.
    await h.mark('61000', 9 + 40 / 60);
    await h.mark('61300', 9 + 50 / 60);
    await h.workflow.onTick(at(9.99));
    expect(h.port.eventsOf('ContractSettled')).toEqual([]);
    // The clock reaches expiry: settled now, with no mark needed (never days late).
    await h.workflow.onTick(at(10));
    const twap = (60_000 * 10 + 61_000 * 10 + 61_300 * 10) / 30;
    expect(h.port.eventsOf('ContractSettled').map((e) => e.data)).toEqual([
      expect.objectContaining({ contractId: 'f1', reason: 'EXPIRY', price: String(twap), priceBasis: 'TWAP', payerPartyId: 'cp1', receiverPartyId: 'desk1', amount: (2 * (twap - 60_000)).toFixed(6), at: at(10) }),
    ]);
    expect(h.monitor.positions('desk1').map((p) => p.contractId)).toEqual(['c1']);
    await h.workflow.onContractClosed(h.source(), { contractId: 'c1', closePrice: '60500', at: at(11) });
    expect(h.port.eventsOf('ContractSettled').map((e) => e.data.reason)).toEqual(['EXPIRY', 'CLOSE']);
    expect(h.monitor.positions('desk1')).toEqual([]);
    expect(h.monitor.accountFigures('desk1')[0]).toMatchObject({ flowsMinor: BigInt(Math.round(2 * (twap - 60_000) * 1e6)) + 1_000_000_000n, unrealizedPnlMinor: 0n, initialMinor: 0n });
    expect(h.monitor.rowCount).toBe(0);
  });

  it('settles at the last accepted mark when the window had none, and says so', async () => {
    const h = harness();
    await h.register({ contractId: 'f1', kind: 'FUTURE', expiry: at(10) });
    await h.deposit('f1', 'desk1', 30_000);
    await h.deposit('f1', 'cp1', 30_000);
    await h.mark('60000', 1);
    await h.mark('59000', 2);
    // The feed is silent over expiry; a mark days later does not set the price.
    await h.workflow.onTick(at(10));
    const [settled] = h.port.eventsOf('ContractSettled').map((e) => e.data);
    expect(settled).toMatchObject({ price: '59000', priceBasis: 'LAST_ACCEPTED', at: at(10), payerPartyId: 'desk1', amount: '2000.000000' });
    expect(String(settled.priceDetail)).toMatch(/no accepted mark in the settlement window .*: settled at the last accepted mark, 59000/);
    await h.mark('40000', 58);
    expect(h.port.eventsOf('ContractSettled')).toHaveLength(1);
  });

  it('rejects nothing silently: an unknown contract close is reported, an operator default is answered', async () => {
    const h = harness();
    await h.workflow.onContractClosed(h.source(), { contractId: 'ghost', closePrice: '1', at: at(1) });
    expect(h.port.rejections.map((r) => r.rejection.violations[0].rule)).toEqual(['knownPosition']);
    await expect(h.workflow.declareDefault(h.source(), 'nobody', 'x', at(1))).rejects.toMatchObject({ violations: [expect.objectContaining({ rule: 'knownParty' })] });
    await h.register({ contractId: 'c1' });
    await h.mark('60000', 1);
    const outcome = await h.workflow.declareDefault(h.source(), 'cp1', 'court order', at(2));
    expect(outcome.events[0].data).toEqual({ partyId: 'cp1', reason: 'OPERATOR', detail: 'court order', lastSaneMarks: { 'BTC-USD': '60000' }, declaredBy: 'backstop.margin.commands', at: at(2) });
  });

  it('calls nobody on a partial valuation: a party with an underlying not marked yet waits for that mark (issue 10, seed -269371386)', async () => {
    const h = harness();
    // desk1: long 1 BTC perpetual, short 20 ETH perpetuals (a hedge the BTC mark alone does not see).
    await h.register({ contractId: 'btc', longPartyId: 'desk1', shortPartyId: 'cp1', size: '1', entryPrice: '60000' });
    await h.register({ contractId: 'eth', underlying: 'ETH-USD', longPartyId: 'cp2', shortPartyId: 'desk1', size: '20', entryPrice: '3000' });
    await h.deposit('btc', 'desk1', 16_000);
    await h.deposit('btc', 'cp1', 100_000);
    await h.deposit('eth', 'cp2', 100_000);
    const calls = () => h.port.eventsOf('MarginCallIssued').filter((e) => e.data.partyId === 'desk1');
    // BTC alone: 16,000 − 15,000 = 1,000 of equity against a BTC requirement of thousands.
    await h.mark('45000', 1);
    const partial = h.monitor.assess('desk1', 'USDC') as Assessment;
    expect(partial.equityMinor).toBe(1_000_000_000n);
    expect(partial.equityMinor < partial.maintenanceMinor).toBe(true);
    expect(h.monitor.partiallyValued('desk1', 'USDC')).toBe(true);
    expect(calls()).toEqual([]);
    // ETH marked: the short gains 20 × 1,000; valued in full, the account is sound.
    await h.mark('2000', 2, { underlying: 'ETH-USD' });
    expect(h.monitor.partiallyValued('desk1', 'USDC')).toBe(false);
    const full = h.monitor.assess('desk1', 'USDC') as Assessment;
    expect(full.equityMinor).toBe(21_000_000_000n);
    expect(full.equityMinor >= full.maintenanceMinor).toBe(true);
    expect(calls()).toEqual([]);
    // Valued in full, BTC falls on: called on the mark that takes equity (21,000 − 11,500 = 9,500) below maintenance.
    await h.mark('41000', 3);
    await h.mark('37000', 4);
    expect(calls()).toEqual([]);
    await h.mark('33500', 5);
    const after = h.monitor.assess('desk1', 'USDC') as Assessment;
    expect(after.equityMinor).toBe(9_500_000_000n);
    expect(after.equityMinor < after.maintenanceMinor).toBe(true);
    expect(calls()).toHaveLength(1);
    expect(h.port.eventsOf('DefaultTriggered')).toEqual([]);
  });

  it('grows the book past its capacity without changing any figure', async () => {
    const small = harness(POLICY, 2);
    const large = harness(POLICY, 64);
    for (const h of [small, large]) {
      for (let i = 0; i < 7; i++) await h.register({ contractId: `c${i}`, size: String(i + 1), longPartyId: `p${i % 3}`, shortPartyId: `q${i % 2}` });
      await h.mark('60000', 1);
      await h.workflow.onContractClosed(h.source(), { contractId: 'c3', closePrice: '60000', at: at(1.5) });
      await h.mark('58000', 2);
    }
    for (const party of ['p0', 'p1', 'p2', 'q0', 'q1']) expect(small.monitor.accountFigures(party)).toEqual(large.monitor.accountFigures(party));
  });
});

// ---- properties --------------------------------------------------------------------------------

const UNDERLYINGS = ['BTC-USD', 'ETH-USD'] as const;
const BASE: Record<string, number> = { 'BTC-USD': 60_000, 'ETH-USD': 3_000 };
const PARTIES = ['a', 'b', 'c', 'd'];

const decimal = (min: number, max: number, digits: number) => fc.integer({ min: Math.round(min * 10 ** digits), max: Math.round(max * 10 ** digits) }).map((n) => (n / 10 ** digits).toFixed(digits));

const contractArb = fc
  .record({
    kind: fc.constantFrom('PERPETUAL', 'FUTURE', 'OPTION') as fc.Arbitrary<'PERPETUAL' | 'FUTURE' | 'OPTION'>,
    underlying: fc.constantFrom(...UNDERLYINGS),
    size: decimal(0.01, 20, 2),
    entryMove: fc.double({ min: -0.2, max: 0.2, noNaN: true }),
    optionType: fc.constantFrom('CALL', 'PUT') as fc.Arbitrary<'CALL' | 'PUT'>,
    strikeMove: fc.double({ min: -0.3, max: 0.3, noNaN: true }),
    expiryDays: fc.integer({ min: 2, max: 120 }),
    parties: fc.shuffledSubarray(PARTIES, { minLength: 2, maxLength: 2 }),
    collateral: fc.tuple(fc.integer({ min: 0, max: 400_000 }), fc.integer({ min: 0, max: 400_000 })),
  })
  .map((c) => {
    const base = BASE[c.underlying];
    const option = c.kind === 'OPTION';
    return {
      kind: c.kind,
      underlying: c.underlying,
      size: c.size,
      entryPrice: option ? (base * 0.05 * (1 + c.entryMove)).toFixed(2) : (base * (1 + c.entryMove)).toFixed(2),
      ...(option ? { optionType: c.optionType, strike: (base * (1 + c.strikeMove)).toFixed(2) } : {}),
      ...(c.kind !== 'PERPETUAL' ? { expiry: at(c.expiryDays * 24) } : {}),
      currency: 'USDC',
      longPartyId: c.parties[0],
      shortPartyId: c.parties[1],
      collateral: c.collateral,
    };
  });

const marketArb = fc.record({
  move: fc.double({ min: -0.12, max: 0.12, noNaN: true }),
  vol: decimal(0.2, 1.5, 2),
});

type ContractCase = typeof contractArb extends fc.Arbitrary<infer T> ? T : never;

async function build(contracts: ContractCase[], markets: { move: number; vol: string }[]) {
  const h = harness();
  for (const [i, c] of contracts.entries()) {
    const { collateral, ...spec } = c;
    await h.register({ ...spec, contractId: `k${i}` });
    if (collateral[0] > 0) await h.deposit(`k${i}`, c.longPartyId, collateral[0]);
    if (collateral[1] > 0) await h.deposit(`k${i}`, c.shortPartyId, collateral[1]);
  }
  const points: Record<string, MarketPoint> = {};
  for (const [u, underlying] of UNDERLYINGS.entries()) {
    const price = (BASE[underlying] * (1 + markets[u].move)).toFixed(2);
    await h.mark(price, 1 + u, { underlying, volAnnual: markets[u].vol });
    points[underlying] = { mark: Number(price), volAnnual: Number(markets[u].vol), nowMs: T0 + (1 + u) * HOUR_MS };
  }
  return { h, points };
}

describe('anti-procyclicality floor from the accepted marks (EMIR art. 28(1)(c), issue 11)', () => {
  it('floors a quiet feed vol at the look-back vol of the daily closes, as the backtest does', async () => {
    const h = harness();
    await h.register({ contractId: 'c1' });
    await h.deposit('c1', 'desk1', 1_000_000);
    await h.deposit('c1', 'cp1', 1_000_000);
    // Ten daily marks alternating ±10% (log) with the feed quoting a calm 30% vol.
    const prices = Array.from({ length: 10 }, (_, i) => 60_000 * Math.exp(i % 2 === 0 ? 0 : 0.1));
    for (let day = 0; day < prices.length; day++) await h.mark(prices[day].toFixed(2), 1 + day * 24, { volAnnual: '0.3' });
    const last = Number(prices[prices.length - 1].toFixed(2));
    const point = (volAnnual: number): Record<string, MarketPoint> => ({ 'BTC-USD': { mark: last, volAnnual, nowMs: T0 + (1 + 9 * 24) * HOUR_MS } });
    const terms = positionTerms({ ...PERP, side: 'LONG' });
    // every completed day's squared log-return is 0.01: the look-back vol is √(0.01 × 365) ≈ 191%
    const floored = requirementToMinor(modelInitial([{ terms, side: 'LONG' }], point(Math.sqrt(0.01 * 365))), 6);
    const feedOnly = requirementToMinor(modelInitial([{ terms, side: 'LONG' }], point(0.3)), 6);
    const assessed = h.monitor.assess('desk1', 'USDC') as Assessment;
    expect(feedOnly).toBeLessThan(floored);
    // to the marks' 2-decimal rounding (it moves the squared returns by ~1e-6 relative)
    expect(Math.abs(Number(assessed.initialMinor) / Number(floored) - 1)).toBeLessThan(1e-5);
  });
});

describe('margin monitor properties', () => {
  it('equity and requirements agree with the model\'s object path (markToMarket, portfolioInitialMargin) for any portfolio', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(contractArb, { minLength: 1, maxLength: 12 }), fc.tuple(marketArb, marketArb), async (contracts, markets) => {
        const { h, points } = await build(contracts, markets);
        for (const party of PARTIES) {
          const figures = h.monitor.accountFigures(party);
          const mine = contracts.flatMap((c, i) =>
            [c.longPartyId === party ? { c, i, side: 'LONG' as const } : undefined, c.shortPartyId === party ? { c, i, side: 'SHORT' as const } : undefined].filter((x) => x !== undefined),
          );
          if (mine.length === 0) {
            expect(figures).toEqual([]);
            continue;
          }
          const positions = mine.map((m) => ({ terms: positionTerms({ ...m.c, contractId: `k${m.i}`, side: m.side }), side: m.side }));
          const collateral = mine.reduce((sum, m) => sum + BigInt(m.c.collateral[m.side === 'LONG' ? 0 : 1]) * 1_000_000n, 0n);
          const pnl = positions.reduce((sum, p) => sum + markToMarket(p.terms, p.side, points[p.terms.underlying]), 0);
          const initial = modelInitial(positions, points);
          const [f] = figures;
          const tolerance = 2 + Math.abs(initial) * 1e-9 * 1e6;
          expect(Math.abs(usdc(f.equityMinor - collateral - pnlToMinor(pnl, 6)))).toBeLessThanOrEqual(tolerance / 1e6);
          expect(Math.abs(Number(f.initialMinor - requirementToMinor(initial, 6)))).toBeLessThanOrEqual(tolerance);
          expect(f.maintenanceMinor).toBeLessThanOrEqual(f.initialMinor);
          expect(Math.abs(Number(f.maintenanceMinor) - Number(f.initialMinor) * OTC_MARGIN_PARAMS.maintenanceFraction)).toBeLessThanOrEqual(tolerance);
          expect(f.equityMinor).toBe(f.collateralMinor + f.flowsMinor + f.coverMinor + f.unrealizedPnlMinor);
          // Calls were issued exactly to the accounts below maintenance.
          const called = h.port.eventsOf('MarginCallIssued').some((e) => e.data.partyId === party);
          const defaulted = h.port.eventsOf('DefaultTriggered').some((e) => e.data.partyId === party);
          if (!defaulted) expect(called).toBe(f.equityMinor < f.maintenanceMinor);
        }
      }),
      { numRuns: runs(60) },
    );
  });

  it('a flagged mark defaults nobody and never lowers a requirement; only a candidate level (JUMP) may raise one', async () => {
    const markStep = fc.record({
      kind: fc.constantFrom('move', 'jump', 'stale', 'zero', 'late'),
      move: fc.double({ min: -0.5, max: 0.5, noNaN: true }),
      underlying: fc.constantFrom(...UNDERLYINGS),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(contractArb, { minLength: 1, maxLength: 8 }), fc.array(markStep, { minLength: 1, maxLength: 25 }), async (contracts, steps) => {
        const { h } = await build(contracts, [{ move: 0, vol: '0.6' }, { move: 0, vol: '0.6' }]);
        let hours = 3;
        for (const step of steps) {
          hours += 0.5;
          const last = Number(h.monitor.marketState(step.underlying).lastSane?.price ?? BASE[step.underlying]);
          const price =
            step.kind === 'zero' ? '0' : (last * (step.kind === 'jump' ? 1 + Math.sign(step.move || 1) * (0.2 + Math.abs(step.move)) : 1 + step.move * 0.2)).toFixed(2);
          const receivedAt = step.kind === 'stale' ? at(hours + 1) : undefined;
          const markHours = step.kind === 'late' ? 0.5 : hours;
          const before = h.port.log.length;
          const required = PARTIES.map((p) => h.monitor.accountFigures(p).map((f) => f.initialMinor));
          const equity = PARTIES.map((p) => h.monitor.accountFigures(p).map((f) => f.equityMinor));
          const outcome = await h.mark(price, markHours, { underlying: step.underlying, ...(receivedAt ? { receivedAt } : {}) });
          if (outcome.mark.sane) continue;
          const written = h.port.log.slice(before).map((e) => e.type);
          if (outcome.mark.flag === 'JUMP') expect(written.filter((t) => t !== 'MarginCallIssued')).toEqual(['MarkRecorded']);
          else expect(written).toEqual(['MarkRecorded']);
          // Equity stays on the accepted mark; requirements only go up.
          expect(PARTIES.map((p) => h.monitor.accountFigures(p).map((f) => f.equityMinor))).toEqual(equity);
          PARTIES.forEach((p, i) => h.monitor.accountFigures(p).forEach((f, j) => expect(f.initialMinor).toBeGreaterThanOrEqual(required[i][j] ?? 0n)));
        }
        const sane = new Set(h.port.eventsOf('MarkRecorded').filter((e) => e.data.sane).map((e) => e.causation.causationId));
        for (const e of h.port.eventsOf('DefaultTriggered')) {
          const markId = e.causation.causationId.split(':')[0];
          expect(sane.has(markId)).toBe(true);
        }
      }),
      { numRuns: runs(60) },
    );
  });

  it('replay equals live: a monitor rebuilt from the recorded events has the same figures, calls and marks', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(contractArb, { minLength: 1, maxLength: 10 }), fc.tuple(marketArb, marketArb), fc.integer({ min: 0, max: 60 }), async (contracts, markets, tickHours) => {
        const { h } = await build(contracts, markets);
        await h.workflow.onTick(at(3 + tickHours));
        await h.mark((BASE['BTC-USD'] * (1 + markets[0].move) * 0.97).toFixed(2), 4 + tickHours);
        const rebuilt = new MarginMonitor(POLICY);
        for (const e of h.port.log) expect(rebuilt.applyReplayed({ stream: e.stream, revision: e.revision, type: e.type, data: e.data })).toBe('applied');
        rebuilt.completeReplay();
        for (const party of PARTIES) {
          expect(rebuilt.accountFigures(party)).toEqual(h.monitor.accountFigures(party));
          expect(rebuilt.openCallsOf(party)).toEqual(h.monitor.openCallsOf(party));
        }
        for (const u of UNDERLYINGS) expect(rebuilt.marketState(u)).toEqual(h.monitor.marketState(u));
        // Applying the same events again changes nothing (redelivery).
        for (const e of h.port.log) expect(rebuilt.apply({ stream: e.stream, revision: e.revision, type: e.type, data: e.data })).toBe('duplicate');
      }),
      { numRuns: runs(40) },
    );
  });
});

describe('monitor bookkeeping', () => {
  it('a rebuild after option closes has the same figures as the live monitor', async () => {
    const h = harness();
    const parties = ['a', 'b', 'c', 'd'];
    for (let i = 0; i < 12; i++) {
      await h.register({
        contractId: `o${i}`,
        kind: 'OPTION',
        optionType: i % 2 === 0 ? 'CALL' : 'PUT',
        strike: String(55_000 + 1_000 * i),
        expiry: at(24 * (10 + i)),
        entryPrice: String(1_000 + 37 * i),
        size: (0.37 + i / 7).toFixed(4),
        longPartyId: parties[i % 4],
        shortPartyId: parties[(i + 1 + (i % 3)) % 4],
      });
    }
    await h.mark('60000', 1);
    for (const i of [0, 3, 4, 9]) await h.workflow.onContractClosed(h.source(), { contractId: `o${i}`, closePrice: '60000', at: at(1.5) });
    const { monitor } = h.port.restarted(POLICY);
    for (const p of parties) expect(monitor.accountFigures(p)).toEqual(h.monitor.accountFigures(p));
    await h.mark('60500', 2);
    const again = h.port.restarted(POLICY).monitor;
    for (const p of parties) expect(again.accountFigures(p)).toEqual(h.monitor.accountFigures(p));
  });

  it('answers queries without changing state: asking twice gives the same answer, and only events move figures', async () => {
    const h = harness();
    await h.register({ contractId: 'c1' });
    await h.register({ contractId: 'f1', kind: 'FUTURE', expiry: at(10) });
    await h.deposit('c1', 'desk1', 20_000);
    await h.mark('60000', 1);
    // Past a funding instant and the future's expiry, with no mark acting on them yet.
    const nowMs = T0 + 30 * HOUR_MS;
    const ask = () => ({
      funding: h.monitor.fundingDue('BTC-USD', nowMs),
      expiries: h.monitor.expiriesDue('BTC-USD', nowMs),
      decisions: h.monitor.accountsNeedingDecision('BTC-USD'),
      figures: PARTIES.concat(['desk1', 'cp1']).map((p) => h.monitor.accountFigures(p)),
      positions: h.monitor.positions('desk1'),
      deadlines: h.monitor.dueDeadlines(nowMs),
      assessed: h.monitor.assessWithBalance('desk1', 'USDC', 'c1', 1n),
    });
    const first = ask();
    expect(first.funding.length).toBeGreaterThan(0);
    expect(first.expiries.map((e) => e.contractId)).toEqual(['f1']);
    expect(ask()).toEqual(first);
    // The scheduler's own memory moves only by its commands.
    h.monitor.fundingLooked('BTC-USD', nowMs);
    expect(h.monitor.fundingDue('BTC-USD', nowMs)).toEqual([]);
    expect(h.monitor.expiriesDue('BTC-USD', nowMs)).toEqual(first.expiries);
  });

  it('reports a gap in a stream instead of applying past it', () => {
    const monitor = new MarginMonitor(POLICY);
    expect(monitor.apply({ stream: 'market-BTC-USD', revision: 1, type: 'MarkRecorded', data: {} })).toBe('gap');
    expect(monitor.apply({ stream: 'party-x', revision: 0, type: 'PartyRegistered', data: {} })).toBe('ignored');
    expect(monitor.revisionOf('market-BTC-USD')).toBe(-1);
    expect(ms(at(1)) - T0).toBe(HOUR_MS);
  });
});
