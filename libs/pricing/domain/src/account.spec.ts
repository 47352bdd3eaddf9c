import { specFor } from '@backstop/kernel';
import { accountDecider, AccountEvent } from './account';
import { AT } from './testing/fixtures';

const spec = specFor(accountDecider);
const rules = (r: { violations: readonly { field: string; rule: string }[] }) => r.violations.map((v) => `${v.field}:${v.rule}`);
const funded: AccountEvent = { type: 'PremiumAccountFunded', data: { partyId: 'desk1', amount: '100.000000', currency: 'USDC', balance: '100.000000', at: AT } };
const fund = (amount: string, partyKnown = true) => ({ type: 'FundPremiumAccount' as const, partyId: 'desk1', amount, currency: 'USDC', partyKnown, at: AT });
const debit = (amountMinor: bigint) => ({
  type: 'DebitPremium' as const,
  partyId: 'desk1',
  coverageId: 'cov1',
  amountMinor,
  currency: 'USDC',
  periodStart: '2026-01-01T00:00:00.000Z',
  periodEnd: '2026-01-01T08:00:00.000Z',
  at: AT,
});

describe('premium account decider', () => {
  it('funds a registered party\'s account, keeping a balance per currency', () => {
    expect(spec.given([]).when(fund('100')).events()).toEqual([funded]);
    expect(spec.given([funded]).when({ ...fund('1.5'), currency: 'USDT' }).events()[0].data).toMatchObject({ currency: 'USDT', balance: '1.500000' });
  });

  it('rejects funding an unknown party, a non-positive amount, or more digits than the currency has', () => {
    expect(rules(spec.given([]).when(fund('100', false)).rejection())).toEqual(['partyId:knownParty']);
    expect(rules(spec.given([]).when(fund('0')).rejection())).toEqual(['amount:positive']);
    expect(rules(spec.given([]).when(fund('1.0000001')).rejection())).toEqual(['amount:currencyScale']);
  });

  it('debits a premium it can pay, never below zero', () => {
    expect(spec.given([funded]).when(debit(40_000_000n)).events()[0].data).toMatchObject({ coverageId: 'cov1', amount: '40.000000', balance: '60.000000' });
    const r = spec.given([funded]).when(debit(100_000_001n)).rejection();
    expect(r.violations[0]).toMatchObject({ field: 'amount', rule: 'insufficientFunds', message: 'premium 100.000001 USDC due; the premium account holds 100.000000' });
  });

  it('withdraws what is there and no more', () => {
    expect(spec.given([funded]).when({ type: 'WithdrawPremiumAccount', partyId: 'desk1', amount: '100', currency: 'USDC', at: AT }).events()[0].data).toMatchObject({ balance: '0.000000' });
    expect(rules(spec.given([funded]).when({ type: 'WithdrawPremiumAccount', partyId: 'desk1', amount: '100.01', currency: 'USDC', at: AT }).rejection())).toEqual(['amount:insufficientFunds']);
  });
});
