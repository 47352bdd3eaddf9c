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
const parties = {
  longParty: { partyId: 'desk1', role: 'DESK' as const },
  shortParty: { partyId: 'cp1', role: 'COUNTERPARTY' as const },
  consent: { kind: 'OPERATOR' as const },
};
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
        .when({ type: 'RegisterContract', contractId: 'c1', spec: { ...perp, shortPartyId: 'desk1' }, longParty: { partyId: 'desk1', role: 'PROVIDER' }, consent: { kind: 'OPERATOR' }, at })
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

    it('registers an operator\'s contract live (only ContractRegistered makes it live); anyone else\'s is a proposal', () => {
      const proposal = spec.given([]).when({ type: 'RegisterContract', contractId: 'c1', spec: perp, ...parties, consent: { kind: 'PROPOSAL', proposedBy: 'desk1' }, at }).events();
      expect(proposal).toEqual([{ type: 'ContractProposed', data: { ...perp, contractId: 'c1', proposedBy: 'desk1', at } }]);
      expect(proposal.map((e) => e.type)).not.toContain('ContractRegistered');
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

  describe('consent (a bilateral contract needs both sides)', () => {
    const proposed: ContractEvent = { type: 'ContractProposed', data: { ...perp, contractId: 'c1', proposedBy: 'desk1', at } };
    const later = '2026-01-02T00:00:00.000Z';

    it('goes live when the other side accepts, with the proposed terms', () => {
      expect(spec.given([proposed]).when({ type: 'AcceptContract', contractId: 'c1', partyId: 'cp1', at: later }).events()).toEqual([
        { type: 'ContractRegistered', data: { ...perp, contractId: 'c1', at: later } },
      ]);
    });

    it('refuses the proposer accepting its own proposal, a party that is not a side, and a second acceptance', () => {
      expect(spec.given([proposed]).when({ type: 'AcceptContract', contractId: 'c1', partyId: 'desk1', at }).rejection().violations[0].rule).toBe('otherSide');
      expect(spec.given([proposed]).when({ type: 'AcceptContract', contractId: 'c1', partyId: 'x', at }).rejection().violations[0].rule).toBe('contractParty');
      expect(spec.given([registered]).when({ type: 'AcceptContract', contractId: 'c1', partyId: 'cp1', at }).rejection().violations[0].rule).toBe('proposedContract');
      expect(spec.given([]).when({ type: 'AcceptContract', contractId: 'c1', partyId: 'cp1', at }).rejection().violations[0].rule).toBe('knownContract');
    });

    it('refuses accepting a future that expired while it waited', () => {
      const future: ContractEvent = { type: 'ContractProposed', data: { ...perp, kind: 'FUTURE', expiry: '2026-01-01T12:00:00.000Z', contractId: 'c1', at } };
      expect(spec.given([future]).when({ type: 'AcceptContract', contractId: 'c1', partyId: 'cp1', at: later }).rejection().violations[0].rule).toBe('notExpired');
    });

    it('is declined by the other side or withdrawn by the proposer, and then can never go live', () => {
      const declined = spec.given([proposed]).when({ type: 'DeclineContract', contractId: 'c1', partyId: 'cp1', at }).events();
      expect(declined).toEqual([{ type: 'ContractProposalDeclined', data: { contractId: 'c1', partyId: 'cp1', withdrawn: false, at } }]);
      expect(spec.given([proposed]).when({ type: 'DeclineContract', contractId: 'c1', partyId: 'desk1', at }).events()[0].data).toMatchObject({ withdrawn: true });
      expect(spec.given([proposed, ...declined]).when({ type: 'AcceptContract', contractId: 'c1', partyId: 'cp1', at }).rejection().violations[0].rule).toBe('proposedContract');
    });

    it('moves no collateral and takes no close request on a proposal', () => {
      expect(spec.given([proposed]).when({ type: 'DepositCollateral', contractId: 'c1', partyId: 'cp1', amount: '1', at }).rejection().violations[0].rule).toBe('liveContract');
      expect(spec.given([proposed]).when({ type: 'CloseContract', contractId: 'c1', partyId: 'cp1', closePrice: '1', at }).rejection().violations[0].rule).toBe('liveContract');
    });
  });
});
