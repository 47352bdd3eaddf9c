import { specFor } from '@backstop/kernel';
import { contractDecider, ContractEvent, ContractSpec } from './contract';

const spec = specFor(contractDecider);
const at = '2026-01-01T00:00:00.000Z';
const perp: ContractSpec = {
  kind: 'PERPETUAL',
  underlying: 'BTC-USD',
  size: '2',
  entryPrice: '60000',
  currency: 'USDC',
  longPartyId: 'desk1',
  shortPartyId: 'cp1',
  longInitialMargin: '12000',
  shortInitialMargin: '12000',
};
const parties = { longParty: { partyId: 'desk1', role: 'DESK' as const }, shortParty: { partyId: 'cp1', role: 'COUNTERPARTY' as const } };
const registered: ContractEvent = { type: 'ContractRegistered', data: { ...perp, contractId: 'c1', at } };
const deposited = (partyId: string, side: 'LONG' | 'SHORT', amount: string, balance: string): ContractEvent => ({
  type: 'CollateralDeposited',
  data: { contractId: 'c1', partyId, side, amount, currency: 'USDC', balance, at },
});

describe('contract decider', () => {
  describe('RegisterContract', () => {
    it('registers a perpetual between two known parties', () => {
      expect(spec.given([]).when({ type: 'RegisterContract', contractId: 'c1', spec: perp, ...parties, at }).events()).toEqual([registered]);
    });

    it('rejects a contract with itself, unknown parties, and a provider as a side, all at once', () => {
      const r = spec
        .given([])
        .when({ type: 'RegisterContract', contractId: 'c1', spec: { ...perp, shortPartyId: 'desk1' }, longParty: { partyId: 'desk1', role: 'PROVIDER' }, at })
        .rejection();
      expect(r.violations.map((v) => `${v.field}:${v.rule}`)).toEqual(['shortPartyId:distinctParties', 'shortPartyId:knownParty', 'longPartyId:tradingRole']);
    });

    it('needs an expiry in the future for futures and options, and a strike and type for options', () => {
      const r = spec
        .given([])
        .when({ type: 'RegisterContract', contractId: 'c1', spec: { ...perp, kind: 'OPTION', expiry: '2025-01-01T00:00:00Z' }, ...parties, at })
        .rejection();
      expect(r.violations.map((v) => `${v.field}:${v.rule}`)).toEqual(['expiry:inFuture', 'optionType:required', 'strike:required']);
      const future = spec.given([]).when({ type: 'RegisterContract', contractId: 'c1', spec: { ...perp, kind: 'FUTURE' }, ...parties, at }).rejection();
      expect(future.violations[0]).toMatchObject({ field: 'expiry', rule: 'required' });
    });

    it('rejects a perpetual with an expiry or strike, and non-positive size or price', () => {
      const r = spec
        .given([])
        .when({ type: 'RegisterContract', contractId: 'c1', spec: { ...perp, expiry: '2027-01-01T00:00:00Z', strike: '1', size: '0', entryPrice: '-1' }, ...parties, at })
        .rejection();
      expect(r.violations.map((v) => `${v.field}:${v.rule}`)).toEqual(['expiry:notAllowed', 'strike:notAllowed', 'size:positive', 'entryPrice:positive']);
    });

    it('rejects registering the same contract id twice', () => {
      expect(spec.given([registered]).when({ type: 'RegisterContract', contractId: 'c1', spec: perp, ...parties, at }).rejection().violations[0].rule).toBe('unique');
    });
  });

  describe('collateral', () => {
    it('deposits to the depositing side and tracks the balance', () => {
      expect(spec.given([registered]).when({ type: 'DepositCollateral', contractId: 'c1', partyId: 'cp1', amount: '15000', at }).events()).toEqual([
        deposited('cp1', 'SHORT', '15000.000000', '15000.000000'),
      ]);
    });

    it('rejects a deposit by a party that is not a side, or with more digits than the currency has', () => {
      expect(spec.given([registered]).when({ type: 'DepositCollateral', contractId: 'c1', partyId: 'x', amount: '1', at }).rejection().violations[0].rule).toBe('contractParty');
      expect(spec.given([registered]).when({ type: 'DepositCollateral', contractId: 'c1', partyId: 'cp1', amount: '1.0000001', at }).rejection().violations[0].rule).toBe('currencyScale');
    });

    it('allows a withdrawal down to the requirement, not below it', () => {
      const given = spec.given([registered, deposited('cp1', 'SHORT', '15000.000000', '15000.000000')]);
      expect(given.when({ type: 'WithdrawCollateral', contractId: 'c1', partyId: 'cp1', amount: '3000', at }).events()[0]).toMatchObject({
        type: 'CollateralWithdrawn',
        data: { balance: '12000.000000' },
      });
      const r = given.when({ type: 'WithdrawCollateral', contractId: 'c1', partyId: 'cp1', amount: '3000.000001', at }).rejection();
      expect(r.violations[0]).toMatchObject({ field: 'amount', rule: 'aboveRequirement' });
      expect(r.violations[0].message).toMatch(/at most 3000.000000 USDC is available to withdraw: .* the short side's requirement 12000.000000/);
    });

    it('refuses a withdrawal while the party has an open margin call or is in default, naming the call', () => {
      const given = spec.given([registered, deposited('cp1', 'SHORT', '15000.000000', '15000.000000')]);
      const inCall = { defaulted: false, openCalls: [{ callId: 'cp1-call-1', status: 'MISSED', amount: '2500.000000', currency: 'USDC' }] };
      const r = given.when({ type: 'WithdrawCollateral', contractId: 'c1', partyId: 'cp1', amount: '1', at, margin: inCall }).rejection();
      expect(r.violations[0]).toMatchObject({ field: 'amount', rule: 'noOpenMarginCall' });
      expect(r.violations[0].message).toMatch(/cp1-call-1 \(missed, 2500.000000 USDC\); deposit to cure it/);
      const inDefault = given.when({ type: 'WithdrawCollateral', contractId: 'c1', partyId: 'cp1', amount: '1', at, margin: { defaulted: true, openCalls: [] } }).rejection();
      expect(inDefault.violations[0]).toMatchObject({ field: 'partyId', rule: 'notInDefault' });
      // In good standing, only the requirement limits it; a deposit is never held back by a call.
      expect(given.when({ type: 'WithdrawCollateral', contractId: 'c1', partyId: 'cp1', amount: '1', at, margin: { defaulted: false, openCalls: [] } }).events()[0].type).toBe('CollateralWithdrawn');
      expect(given.when({ type: 'DepositCollateral', contractId: 'c1', partyId: 'cp1', amount: '1', at }).events()[0].type).toBe('CollateralDeposited');
    });

    it('rejects any change to an unknown or closed contract', () => {
      expect(spec.given([]).when({ type: 'DepositCollateral', contractId: 'c1', partyId: 'cp1', amount: '1', at }).rejection().violations[0].rule).toBe('knownContract');
      const closed: ContractEvent = { type: 'ContractClosed', data: { contractId: 'c1', closePrice: '61000', at } };
      expect(spec.given([registered, closed]).when({ type: 'DepositCollateral', contractId: 'c1', partyId: 'cp1', amount: '1', at }).rejection().violations[0].rule).toBe('openContract');
    });
  });

  describe('CloseContract', () => {
    const requested: ContractEvent = { type: 'ContractCloseRequested', data: { contractId: 'c1', partyId: 'desk1', side: 'LONG', closePrice: '61000', at } };

    it('closes only when both sides asked at the same price', () => {
      expect(spec.given([registered]).when({ type: 'CloseContract', contractId: 'c1', partyId: 'desk1', closePrice: '61000', at }).events()).toEqual([requested]);
      expect(spec.given([registered, requested]).when({ type: 'CloseContract', contractId: 'c1', partyId: 'cp1', closePrice: '61000.0', at }).events()).toEqual([
        { type: 'ContractClosed', data: { contractId: 'c1', closePrice: '61000', at } },
      ]);
    });

    it('rejects a close at another price than the other side asked', () => {
      const r = spec.given([registered, requested]).when({ type: 'CloseContract', contractId: 'c1', partyId: 'cp1', closePrice: '60000', at }).rejection();
      expect(r.violations[0]).toMatchObject({ field: 'closePrice', rule: 'matchesRequest' });
    });
  });
});
