import { DAY_MS, specFor } from '@backstop/kernel';
import { DEFAULT_POOL_POLICY } from './policy';
import { createPoolDecider, PoolCommand, PoolEvent, poolDecider, trancheBalances } from './pool';
import { after, asProvider, history, stateOf, T0 } from './testing/fixtures';

const spec = specFor(poolDecider);

const deposit = (providerId: string, tranche: 'JUNIOR' | 'SENIOR', amount: string, at = T0): PoolCommand => ({
  type: 'DepositCapital',
  providerId,
  tranche,
  amount,
  provider: asProvider(providerId),
  at,
});
/** Junior 100 (p1 60, p2 40), senior 300 (p3). */
const funded = history(poolDecider, [deposit('p1', 'JUNIOR', '60'), deposit('p2', 'JUNIOR', '40'), deposit('p3', 'SENIOR', '300')]);
const rules = (events: () => unknown) => {
  try {
    events();
  } catch (err) {
    return (err as { violations?: { field: string; rule: string }[] }).violations?.map((v) => `${v.field}:${v.rule}`);
  }
  return [];
};

describe('pool decider', () => {
  describe('DepositCapital', () => {
    it('mints shares 1:1 into an empty tranche, at the share price after income', () => {
      expect(spec.given([]).when(deposit('p1', 'JUNIOR', '100')).events()).toEqual([
        {
          type: 'CapitalDeposited',
          data: {
            poolId: 'main',
            providerId: 'p1',
            tranche: 'JUNIOR',
            amount: '100.000000',
            shares: '100000000',
            currency: 'USDC',
            cancelledShares: '0',
            trancheCapital: '100.000000',
            trancheShares: '100000000',
            at: T0,
          },
        },
      ]);
      const withIncome = history(poolDecider, [{ type: 'DistributePremium', coverageId: 'cov1', payerPartyId: 'desk1', amount: '10', currency: 'USDC', at: T0 }], funded);
      // Junior earned 5 on 100: a share is worth 1.05, so 21 buys 20 shares' worth.
      expect(spec.given(withIncome).when(deposit('p4', 'JUNIOR', '21')).events()[0].data).toMatchObject({ shares: '20000000' });
    });

    it('rejects a party that is not registered, is not a provider, the wrong currency and a bad amount, all at once', () => {
      const unknown = spec.given([]).when({ type: 'DepositCapital', providerId: 'x', tranche: 'JUNIOR', amount: '1.1234567', currency: 'USDT', at: T0 });
      expect(rules(unknown.events)).toEqual(['providerId:knownParty', 'currency:poolCurrency', 'amount:currencyScale']);
      const desk = spec.given([]).when({ type: 'DepositCapital', providerId: 'desk1', tranche: 'JUNIOR', amount: '0', provider: asProvider('desk1', 'DESK'), at: T0 });
      expect(rules(desk.events)).toEqual(['providerId:providerRole', 'amount:positive']);
    });

    it('rejects a deposit worth less than one share', () => {
      // 1 minor unit into a tranche whose share is worth 2 buys no share: refused, not rounded to nothing.
      const doubled = history(poolDecider, [deposit('p1', 'JUNIOR', '0.000001'), { type: 'DistributePremium', coverageId: 'c', payerPartyId: 'd', amount: '0.000001', currency: 'USDC', at: T0 }]);
      expect(rules(spec.given(doubled).when(deposit('p2', 'JUNIOR', '0.000001')).events)).toEqual(['amount:minimumShare']);
    });

    it('cancels the worthless shares of a wiped-out tranche before taking new capital', () => {
      const wiped = history(poolDecider, [{ type: 'CoverMarginCall', callId: 'c1', partyId: 'cp1', amount: '100', currency: 'USDC', protections: [{ partyId: 'desk1', coverageLimit: '100000' }], at: T0 }], funded);
      expect(stateOf(poolDecider, wiped).tranches.JUNIOR).toEqual({ capitalMinor: 0n, sharesTotal: 100_000_000n });
      const events = spec.given(wiped).when(deposit('p4', 'JUNIOR', '10')).events();
      expect(events[0].data).toMatchObject({ cancelledShares: '100000000', shares: '10000000', trancheCapital: '10.000000' });
      const state = stateOf(poolDecider, [...wiped, ...events]);
      expect(state.positions.JUNIOR.get('p1')?.shares).toBe(0n);
      expect(trancheBalances(state, 'JUNIOR')).toEqual([{ providerId: 'p4', balanceMinor: 10_000_000n }]);
    });
  });

  describe('withdrawals', () => {
    const request = (providerId: string, tranche: 'JUNIOR' | 'SENIOR', at = T0, shares?: string): PoolCommand => ({
      type: 'RequestWithdrawal',
      providerId,
      tranche,
      at,
      ...(shares ? { shares } : {}),
    });
    const withdraw = (providerId: string, tranche: 'JUNIOR' | 'SENIOR', at: string): PoolCommand => ({ type: 'WithdrawCapital', providerId, tranche, at });
    const requested = history(poolDecider, [request('p1', 'JUNIOR')], funded);

    it('records the value at request and a window after the 20-day cooldown', () => {
      expect(spec.given(funded).when(request('p1', 'JUNIOR', T0, '30000000')).events()).toEqual([
        {
          type: 'WithdrawalRequested',
          data: { poolId: 'main', providerId: 'p1', tranche: 'JUNIOR', shares: '30000000', valueAtRequest: '30.000000', opensAt: after(20), closesAt: after(22), at: T0 },
        },
      ]);
    });

    it('rejects a request without shares, a second pending one, and more shares than held', () => {
      expect(rules(spec.given(funded).when(request('p3', 'JUNIOR')).events)).toEqual(['providerId:holdsShares']);
      expect(rules(spec.given(requested).when(request('p1', 'JUNIOR', after(1))).events)).toEqual(['tranche:onePendingWithdrawal']);
      expect(rules(spec.given(funded).when(request('p1', 'JUNIOR', T0, '60000001')).events)).toEqual(['shares:heldShares']);
      expect(rules(spec.given(funded).when(request('p1', 'JUNIOR', T0, '1.5')).events)).toEqual(['shares:wholeShares']);
      // An expired request may be replaced.
      expect(spec.given(requested).when(request('p1', 'JUNIOR', after(23))).events()[0].type).toBe('WithdrawalRequested');
    });

    it('pays only inside the window, and the lesser of the value at request and now', () => {
      expect(rules(spec.given(funded).when(withdraw('p1', 'JUNIOR', after(21))).events)).toEqual(['tranche:withdrawalRequested']);
      expect(rules(spec.given(requested).when(withdraw('p1', 'JUNIOR', after(19))).events)).toEqual(['tranche:cooldown']);
      expect(rules(spec.given(requested).when(withdraw('p1', 'JUNIOR', after(22))).events)).toEqual(['tranche:windowClosed']);
      const paid = spec.given(requested).when(withdraw('p1', 'JUNIOR', after(21))).events();
      expect(paid[0]).toEqual({
        type: 'CapitalWithdrawn',
        data: { poolId: 'main', providerId: 'p1', tranche: 'JUNIOR', shares: '60000000', amount: '60.000000', valueAtRequest: '60.000000', valueNow: '60.000000', currency: 'USDC', at: after(21) },
      });
      // Income after the request does not raise the payment; a loss after it lowers it.
      const richer = history(poolDecider, [{ type: 'DistributePremium', coverageId: 'cov1', payerPartyId: 'd', amount: '10', currency: 'USDC', at: after(1) }], requested);
      expect(spec.given(richer).when(withdraw('p1', 'JUNIOR', after(21))).events()[0].data).toMatchObject({ amount: '60.000000', valueNow: '63.000000' });
      const poorer = history(poolDecider, [{ type: 'CoverMarginCall', callId: 'm1', partyId: 'cp1', amount: '50', currency: 'USDC', protections: [{ partyId: 'desk1', coverageLimit: '100000' }], at: after(1) }], requested);
      expect(spec.given(poorer).when(withdraw('p1', 'JUNIOR', after(21))).events()[0].data).toMatchObject({ amount: '30.000000', valueNow: '30.000000' });
    });

    it('freezes withdrawals while a default is settled, and extends a window the freeze overlapped', () => {
      const frozen = history(poolDecider, [{ type: 'FreezeWithdrawals', defaultId: 'cp1', partyId: 'cp1', at: after(20.5) }], requested);
      const r = spec.given(frozen).when(withdraw('p1', 'JUNIOR', after(21))).rejection();
      expect(r.violations[0]).toMatchObject({ field: 'providerId', rule: 'withdrawalsFrozen', message: expect.stringMatching(/default cp1 is being settled/) });
      const unfrozen = spec.given(frozen).when({ type: 'UnfreezeWithdrawals', defaultId: 'cp1', at: after(23) }).events();
      expect(unfrozen).toEqual([
        { type: 'WithdrawalsUnfrozen', data: { poolId: 'main', defaultId: 'cp1', extendedWindows: [{ providerId: 'p1', tranche: 'JUNIOR', closesAt: after(25) }], at: after(23) } },
      ]);
      expect(spec.given([...frozen, ...unfrozen]).when(withdraw('p1', 'JUNIOR', after(24))).events()[0].type).toBe('CapitalWithdrawn');
    });

    it('takes its cooldown and window from the policy', () => {
      const drift = createPoolDecider({ ...DEFAULT_POOL_POLICY, cooldownMs: 13 * DAY_MS, windowMs: DAY_MS });
      const events = specFor(drift).given(history(drift, [deposit('p1', 'SENIOR', '5')])).when(request('p1', 'SENIOR')).events();
      expect(events[0].data).toMatchObject({ opensAt: after(13), closesAt: after(14) });
    });
  });

  describe('premium income', () => {
    it('splits by tranche weight × capital (junior 3 : senior 1), then by shares', () => {
      const events = spec.given(funded).when({ type: 'DistributePremium', coverageId: 'cov1', payerPartyId: 'desk1', amount: '10', currency: 'USDC', at: T0 }).events();
      expect(events[0].data).toMatchObject({
        perTranche: { JUNIOR: '5.000000', SENIOR: '5.000000' },
        perProvider: { JUNIOR: { p1: '3.000000', p2: '2.000000' }, SENIOR: { p3: '5.000000' } },
        undistributed: '0.000000',
      });
    });

    it('holds a premium no capital can earn, and distributes it with the next one', () => {
      const held = spec.given([]).when({ type: 'DistributePremium', coverageId: 'cov1', payerPartyId: 'd', amount: '4', currency: 'USDC', at: T0 }).events();
      expect(held[0].data).toMatchObject({ perTranche: { JUNIOR: '0.000000', SENIOR: '0.000000' }, undistributed: '4.000000' });
      const next = spec.given([...held, ...history(poolDecider, [deposit('p1', 'SENIOR', '10')])]).when({ type: 'DistributePremium', coverageId: 'cov1', payerPartyId: 'd', amount: '1', currency: 'USDC', at: T0 }).events();
      expect(next[0].data).toMatchObject({ fromReserve: '4.000000', perTranche: { SENIOR: '5.000000' }, undistributed: '0.000000' });
    });

    it('rejects a premium in another currency, or not positive', () => {
      expect(rules(spec.given(funded).when({ type: 'DistributePremium', coverageId: 'c', payerPartyId: 'd', amount: '1', currency: 'USDT', at: T0 }).events)).toEqual(['currency:poolCurrency']);
      expect(rules(spec.given(funded).when({ type: 'DistributePremium', coverageId: 'c', payerPartyId: 'd', amount: '0', currency: 'USDC', at: T0 }).events)).toEqual(['amount:positive']);
    });
  });

  describe('CoverMarginCall', () => {
    const call = (callId: string, amount: string, partyId = 'cp1'): PoolCommand => ({ type: 'CoverMarginCall', callId, partyId, amount, currency: 'USDC', protections: [{ partyId: 'desk1', coverageLimit: '100000' }], at: T0 });

    it('advances junior capital first, pro rata within it, then senior', () => {
      const events = spec.given(funded).when(call('m1', '120')).events();
      expect(events[0].data).toMatchObject({
        amount: '120.000000',
        uncovered: '0.000000',
        perTranche: { JUNIOR: '100.000000', SENIOR: '20.000000' },
        perProvider: { JUNIOR: { p1: '60.000000', p2: '40.000000' }, SENIOR: { p3: '20.000000' } },
      });
    });

    it('never advances more than the pool has, and covers a call once', () => {
      const events = spec.given(funded).when(call('m1', '1000')).events();
      expect(events[0].data).toMatchObject({ amount: '400.000000', requested: '1000.000000', uncovered: '600.000000' });
      expect(spec.given([...funded, ...events]).when(call('m1', '1000')).events()).toEqual([]);
    });

    it('refuses to advance for a party already in default', () => {
      const frozen = history(poolDecider, [{ type: 'FreezeWithdrawals', defaultId: 'cp1', partyId: 'cp1', at: T0 }], funded);
      expect(rules(spec.given(frozen).when(call('m2', '10')).events)).toEqual(['partyId:notInDefault']);
    });
  });

  describe('default settlement on the pool', () => {
    const charge = (losses: { partyId: string; loss: string; coverageLimit: string }[], contractCollateral = '50'): PoolCommand => ({
      type: 'ChargeDefaultLoss',
      defaultId: 'cp1',
      partyId: 'cp1',
      losses,
      contractCollateral,
      at: T0,
    });

    it('runs the waterfall against its balances: collateral, the advance, junior, senior; the rest a claim', () => {
      const advanced = history(poolDecider, [{ type: 'CoverMarginCall', callId: 'm1', partyId: 'cp1', amount: '120', currency: 'USDC', protections: [{ partyId: 'desk1', coverageLimit: '100000' }], at: T0 }], funded);
      const [event] = spec.given(advanced).when(charge([
        { partyId: 'desk1', loss: '400', coverageLimit: '300' },
        { partyId: 'desk2', loss: '100', coverageLimit: '0' },
      ])).events();
      expect(event.type).toBe('DefaultLossCharged');
      const d = (event as Extract<PoolEvent, { type: 'DefaultLossCharged' }>).data;
      expect(d.layers.map((l) => [l.layer, l.available, l.taken, l.remaining])).toEqual([
        ['DEFAULTER_CONTRACT_COLLATERAL', '50.000000', '50.000000', '0.000000'],
        ['POOL_MARGIN_ADVANCE', '120.000000', '120.000000', '0.000000'],
        ['JUNIOR_TRANCHE', '0.000000', '0.000000', '0.000000'],
        ['SENIOR_TRANCHE', '280.000000', '180.000000', '100.000000'],
      ]);
      expect(d.layers[1].perParty).toEqual({ desk1: '120.000000', desk2: '0.000000' });
      expect(d.layers[3].perProvider).toEqual({ p3: '180.000000' });
      // The advance was earmarked for desk1 and counts against its limit; desk2 (unprotected) gets none of it.
      expect(d.parties).toEqual([
        { partyId: 'desk1', loss: '400.000000', coverageLimit: '300.000000', fromDefaulter: '40.000000', fromPool: '300.000000', unpaidClaim: '60.000000', unpaidWithinLimit: '0.000000' },
        { partyId: 'desk2', loss: '100.000000', coverageLimit: '0.000000', fromDefaulter: '10.000000', fromPool: '0.000000', unpaidClaim: '90.000000', unpaidWithinLimit: '0.000000' },
      ]);
      expect(d.advance).toMatchObject({ outstanding: '120.000000', returned: '0.000000', unreturned: '120.000000' });
      const state = stateOf(poolDecider, [...advanced, event]);
      expect(state.tranches.SENIOR.capitalMinor).toBe(100_000_000n);
      expect(state.advances.has('cp1')).toBe(false);
      expect(state.positions.JUNIOR.get('p1')).toMatchObject({ lossMinor: 60_000_000n, advancedMinor: 0n });
    });

    it('repays the advance in cash from collateral the loss did not need; the rest goes back to the defaulter', () => {
      const advanced = history(poolDecider, [{ type: 'CoverMarginCall', callId: 'm1', partyId: 'cp1', amount: '20', currency: 'USDC', protections: [{ partyId: 'desk1', coverageLimit: '100000' }], at: T0 }], funded);
      const [event] = spec.given(advanced).when(charge([{ partyId: 'desk1', loss: '40', coverageLimit: '100' }], '50')).events();
      const d = (event as Extract<PoolEvent, { type: 'DefaultLossCharged' }>).data;
      expect(d.advance).toMatchObject({ returned: '20.000000', unreturned: '0.000000', returnedPerProvider: { JUNIOR: { p1: '12.000000', p2: '8.000000' }, SENIOR: {} } });
      expect(d.surplusToDefaulter).toBe('10.000000');
      expect(stateOf(poolDecider, [...advanced, event]).positions.JUNIOR.get('p1')).toMatchObject({ restitutionMinor: 12_000_000n, lossMinor: 0n });
    });

    it('charges a default once, and never freezes again after the charge', () => {
      const charged = history(poolDecider, [{ type: 'FreezeWithdrawals', defaultId: 'cp1', partyId: 'cp1', at: T0 }, charge([{ partyId: 'desk1', loss: '10', coverageLimit: '10' }])], funded);
      expect(spec.given(charged).when(charge([{ partyId: 'desk1', loss: '999', coverageLimit: '999' }])).events()).toEqual([]);
      const unfrozen = history(poolDecider, [{ type: 'UnfreezeWithdrawals', defaultId: 'cp1', at: T0 }], charged);
      expect(spec.given(unfrozen).when({ type: 'FreezeWithdrawals', defaultId: 'cp1', partyId: 'cp1', at: T0 }).events()).toEqual([]);
      expect(spec.given(unfrozen).when({ type: 'UnfreezeWithdrawals', defaultId: 'cp1', at: T0 }).events()).toEqual([]);
    });

    it('follows a configured order', () => {
      const poolFirst = createPoolDecider({ ...DEFAULT_POOL_POLICY, waterfallOrder: ['JUNIOR_TRANCHE', 'DEFAULTER_CONTRACT_COLLATERAL', 'POOL_MARGIN_ADVANCE', 'SENIOR_TRANCHE'] });
      const given = history(poolFirst, [deposit('p1', 'JUNIOR', '60'), deposit('p3', 'SENIOR', '300')]);
      const [event] = specFor(poolFirst).given(given).when(charge([{ partyId: 'desk1', loss: '80', coverageLimit: '100' }], '50')).events();
      const d = (event as Extract<PoolEvent, { type: 'DefaultLossCharged' }>).data;
      expect(d.layers.map((l) => [l.layer, l.taken])).toEqual([
        ['JUNIOR_TRANCHE', '60.000000'],
        ['DEFAULTER_CONTRACT_COLLATERAL', '20.000000'],
        ['POOL_MARGIN_ADVANCE', '0.000000'],
        ['SENIOR_TRANCHE', '0.000000'],
      ]);
      expect(() => createPoolDecider({ ...DEFAULT_POOL_POLICY, waterfallOrder: ['JUNIOR_TRANCHE'] })).toThrow(/exactly once/);
    });
  });
});
