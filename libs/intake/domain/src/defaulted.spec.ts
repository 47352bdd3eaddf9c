/**
 * Issue 8 defect 4 (SPEC §3.9): from the default on, a defaulter's contract is held for its
 * close-out; settlement's close-out marks it DEFAULTED (an event), the defaulter's collateral shown
 * as taken, and it refuses WithdrawCollateral and CloseContract — the survivor takes its own back.
 */
import { specFor } from '@backstop/kernel';
import { contractDecider, ContractEvent, ContractSpec } from './contract';

const spec = specFor(contractDecider);
const at = '2026-01-01T00:00:00.000Z';
const perp: ContractSpec = {
  kind: 'PERPETUAL', underlying: 'BTC-USD', size: '2', entryPrice: '60000', currency: 'USDC',
  longPartyId: 'desk1', shortPartyId: 'cp1', longInitialMargin: '1000', shortInitialMargin: '1000',
};
const open: ContractEvent[] = [
  { type: 'ContractRegistered', data: { ...perp, contractId: 'c1', at } },
  { type: 'CollateralDeposited', data: { contractId: 'c1', partyId: 'desk1', side: 'LONG', amount: '5000', currency: 'USDC', balance: '5000.000000', at } },
  { type: 'CollateralDeposited', data: { contractId: 'c1', partyId: 'cp1', side: 'SHORT', amount: '7000', currency: 'USDC', balance: '7000.000000', at } },
];
const markDefaulted = { type: 'MarkDefaulted' as const, contractId: 'c1', defaultId: 'cp1', defaulterPartyId: 'cp1', closeOutPrice: '75375', at };
const rules = (r: { violations: readonly { field: string; rule: string }[] }) => r.violations.map((v) => `${v.field}:${v.rule}`);

describe('a contract in default (intake)', () => {
  const [defaulted] = spec.given(open).when(markDefaulted).events();

  it("is marked DEFAULTED by settlement's close-out, the defaulter's collateral taken by it, once", () => {
    expect(defaulted).toEqual({
      type: 'ContractDefaulted',
      data: { contractId: 'c1', defaultId: 'cp1', defaulterPartyId: 'cp1', defaulterSide: 'SHORT', collateralTaken: '7000.000000', closeOutPrice: '75375', at },
    });
    const state = [...open, defaulted].reduce(contractDecider.evolve, contractDecider.initialState);
    expect(state.status).toBe('DEFAULTED');
    expect(state.collateral).toEqual({ LONG: 5_000_000_000n, SHORT: 0n });
    expect(spec.given([...open, defaulted]).when(markDefaulted).events()).toEqual([]);
  });

  it('refuses the defaulter\'s withdrawal and a close, naming the rule', () => {
    const given = [...open, defaulted];
    const withdraw = spec.given(given).when({ type: 'WithdrawCollateral', contractId: 'c1', partyId: 'cp1', amount: '1', at }).rejection();
    expect(rules(withdraw)).toEqual(['contractId:notDefaulted']);
    expect(withdraw.violations[0].message).toMatch(/closed out in default cp1 of cp1/);
    expect(rules(spec.given(given).when({ type: 'CloseContract', contractId: 'c1', partyId: 'desk1', closePrice: '70000', at }).rejection())).toEqual(['contractId:notDefaulted']);
    expect(rules(spec.given(given).when({ type: 'DepositCollateral', contractId: 'c1', partyId: 'cp1', amount: '1', at }).rejection())).toEqual(['contractId:notDefaulted']);
  });

  it('lets the surviving side take all of its own collateral back after the close-out', () => {
    expect(spec.given([...open, defaulted]).when({ type: 'WithdrawCollateral', contractId: 'c1', partyId: 'desk1', amount: '5000', at }).events()).toEqual([
      { type: 'CollateralWithdrawn', data: { contractId: 'c1', partyId: 'desk1', side: 'LONG', amount: '5000.000000', currency: 'USDC', balance: '0.000000', at } },
    ]);
  });

  it('holds the contract from the default instant, before the close-out arrives', () => {
    const inDefault = { sidesInDefault: ['cp1'] };
    expect(rules(spec.given(open).when({ type: 'WithdrawCollateral', contractId: 'c1', partyId: 'desk1', amount: '1', at, ...inDefault }).rejection())).toEqual(['contractId:notDefaulted']);
    expect(rules(spec.given(open).when({ type: 'CloseContract', contractId: 'c1', partyId: 'desk1', closePrice: '70000', at, ...inDefault }).rejection())).toEqual(['contractId:notDefaulted']);
    expect(rules(spec.given(open).when({ type: 'DepositCollateral', contractId: 'c1', partyId: 'cp1', amount: '1', at, ...inDefault }).rejection())).toEqual(['contractId:notDefaulted']);
  });
});

describe('withdrawals after mark-to-market (issue 8 defect 8)', () => {
  const withIm: ContractEvent[] = [
    { type: 'ContractRegistered', data: { ...perp, longInitialMargin: '1000', contractId: 'c1', at } },
    { type: 'CollateralDeposited', data: { contractId: 'c1', partyId: 'desk1', side: 'LONG', amount: '5000', currency: 'USDC', balance: '5000.000000', at } },
  ];
  const withdraw = (amount: string, markToMarket?: string) => ({
    type: 'WithdrawCollateral' as const, contractId: 'c1', partyId: 'desk1', amount, at,
    margin: { defaulted: false, openCalls: [], ...(markToMarket !== undefined ? { markToMarket } : {}) },
  });

  it('collateral 5,000, MTM −3,000, agreed IM 1,000: 4,000 is refused naming the 1,000 available; 1,000 is paid', () => {
    const r = spec.given(withIm).when(withdraw('4000', '-3000.000000')).rejection();
    expect(rules(r)).toEqual(['amount:aboveRequirement']);
    expect(r.violations[0].message).toMatch(/at most 1000.000000 USDC is available to withdraw: collateral 5000.000000, mark-to-market -3000.000000, the long side's requirement 1000.000000/);
    expect(spec.given(withIm).when(withdraw('1000', '-3000.000000')).events()[0].data).toMatchObject({ balance: '4000.000000' });
  });

  it('an unrealised gain frees nothing beyond the agreed initial margin', () => {
    expect(rules(spec.given(withIm).when(withdraw('4000.000001', '9000')).rejection())).toEqual(['amount:aboveRequirement']);
    expect(spec.given(withIm).when(withdraw('4000', '9000')).events()[0].data).toMatchObject({ balance: '1000.000000' });
  });
});
