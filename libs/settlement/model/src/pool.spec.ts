import fc from 'fast-check';
import { DEFAULT_TRANCHE_WEIGHTS } from './layers';
import {
  applyDeposit,
  applyTrancheIncome,
  applyTrancheLoss,
  applyWithdrawal,
  EMPTY_TRANCHE,
  sharesForDeposit,
  splitByShares,
  splitPremium,
  TrancheState,
  valueOfShares,
  withdrawalAmount,
  withdrawalWindow,
} from './pool';

const sum = (xs: readonly bigint[]): bigint => xs.reduce((s, x) => s + x, 0n);
const DAY_MS = 86_400_000;

const trancheArb: fc.Arbitrary<TrancheState> = fc
  .record({ capitalMinor: fc.bigInt({ min: 1n, max: 10n ** 15n }), sharesTotal: fc.bigInt({ min: 1n, max: 10n ** 15n }) });

describe('tranche shares', () => {
  it('mints the first deposit 1:1 and later ones at the share price, rounding down', () => {
    const first = applyDeposit(EMPTY_TRANCHE, 1_000n);
    expect(first).toEqual({ sharesMinted: 1_000n, tranche: { capitalMinor: 1_000n, sharesTotal: 1_000n } });
    const afterIncome = applyTrancheIncome(first.tranche, 500n);
    expect(sharesForDeposit(afterIncome, 100n)).toBe(66n);
    expect(valueOfShares(afterIncome, 1_000n)).toBe(1_500n);
  });

  it('carries losses to every holder through the share price', () => {
    const tranche = applyTrancheLoss({ capitalMinor: 1_000n, sharesTotal: 1_000n }, 400n);
    expect(valueOfShares(tranche, 250n)).toBe(150n);
    expect(() => applyTrancheLoss(tranche, 601n)).toThrow(/exceeds the tranche capital/);
  });

  it('refuses deposits into a wiped-out tranche and deposits worth less than a share', () => {
    expect(() => sharesForDeposit({ capitalMinor: 0n, sharesTotal: 10n }, 5n)).toThrow(/worthless/);
    expect(() => sharesForDeposit({ capitalMinor: 10n, sharesTotal: 1n }, 5n)).toThrow(/less than one share/);
    expect(() => sharesForDeposit(EMPTY_TRANCHE, 0n)).toThrow(/positive/);
  });

  it('never dilutes existing holders with a deposit', () => {
    fc.assert(fc.property(trancheArb, fc.bigInt({ min: 1n, max: 10n ** 15n }), (tranche, amountMinor) => {
      fc.pre(amountMinor * tranche.sharesTotal >= tranche.capitalMinor); // at least one share
      const { sharesMinted, tranche: after } = applyDeposit(tranche, amountMinor);
      expect(valueOfShares(after, tranche.sharesTotal) >= tranche.capitalMinor).toBe(true);
      expect(valueOfShares(after, sharesMinted) <= amountMinor).toBe(true);
    }));
  });
});

describe('premium income', () => {
  it('weights junior capital 3:1 over senior and splits by shares within a tranche', () => {
    const split = splitPremium(700n, [
      {
        kind: 'JUNIOR_TRANCHE',
        capitalMinor: 1_000n,
        weight: DEFAULT_TRANCHE_WEIGHTS.JUNIOR_TRANCHE,
        holdings: [{ providerId: 'j1', shares: 1n }, { providerId: 'j2', shares: 2n }],
      },
      {
        kind: 'SENIOR_TRANCHE',
        capitalMinor: 4_000n,
        weight: DEFAULT_TRANCHE_WEIGHTS.SENIOR_TRANCHE,
        holdings: [{ providerId: 's1', shares: 9n }],
      },
    ]);
    expect(split.map((s) => s.incomeMinor)).toEqual([300n, 400n]);
    expect(split[0].providers).toEqual([{ providerId: 'j1', amountMinor: 100n }, { providerId: 'j2', amountMinor: 200n }]);
  });

  it('refuses a premium with no capital to earn it', () => {
    expect(() => splitPremium(1n, [{ kind: 'JUNIOR_TRANCHE', capitalMinor: 0n, weight: 3n, holdings: [] }])).toThrow(/no weighted/);
  });

  it('splits any premium exactly, across tranches and across providers', () => {
    const holdingsArb = fc
      .array(fc.bigInt({ min: 1n, max: 10n ** 12n }), { minLength: 1, maxLength: 6 })
      .map((shares) => shares.map((s, i) => ({ providerId: `p${i}`, shares: s })));
    const trancheArbs = fc.tuple(
      fc.record({ capitalMinor: fc.bigInt({ min: 1n, max: 10n ** 15n }), weight: fc.bigInt({ min: 1n, max: 10n }), holdings: holdingsArb }),
      fc.record({ capitalMinor: fc.bigInt({ min: 0n, max: 10n ** 15n }), weight: fc.bigInt({ min: 0n, max: 10n }), holdings: holdingsArb }),
    );
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: 10n ** 15n }), trancheArbs, (premiumMinor, [junior, senior]) => {
      const split = splitPremium(premiumMinor, [{ kind: 'JUNIOR_TRANCHE', ...junior }, { kind: 'SENIOR_TRANCHE', ...senior }]);
      expect(sum(split.map((s) => s.incomeMinor))).toBe(premiumMinor);
      split.forEach((s) => expect(sum(s.providers.map((p) => p.amountMinor))).toBe(s.incomeMinor));
    }));
  });

  it('splits by shares exactly', () => {
    expect(splitByShares(10n, [{ providerId: 'a', shares: 1n }, { providerId: 'b', shares: 2n }])).toEqual([
      { providerId: 'a', amountMinor: 3n },
      { providerId: 'b', amountMinor: 7n },
    ]);
    expect(() => splitByShares(1n, [])).toThrow(/no shares/);
  });
});

describe('withdrawals', () => {
  it('pays the lesser of the value at request and now', () => {
    const atRequest = { capitalMinor: 1_000n, sharesTotal: 1_000n };
    const valueAtRequestMinor = valueOfShares(atRequest, 100n);
    expect(withdrawalAmount({ shares: 100n, valueAtRequestMinor, tranche: applyTrancheLoss(atRequest, 500n) })).toBe(50n);
    expect(withdrawalAmount({ shares: 100n, valueAtRequestMinor, tranche: applyTrancheIncome(atRequest, 500n) })).toBe(100n);
  });

  it('leaves what a withdrawal does not pay with the other holders', () => {
    const tranche = { capitalMinor: 1_500n, sharesTotal: 1_000n };
    const after = applyWithdrawal(tranche, 100n, 100n);
    expect(after).toEqual({ capitalMinor: 1_400n, sharesTotal: 900n });
    expect(() => applyWithdrawal(tranche, 100n, 151n)).toThrow(/exceeds the shares' value/);
  });

  it('never pays more than the value at request, nor more than the value now', () => {
    const scenario = fc.record({
      tranche: trancheArb,
      sharesFraction: fc.integer({ min: 0, max: 1_000 }),
      lossPermille: fc.integer({ min: 0, max: 1_000 }),
      incomeMinor: fc.bigInt({ min: 0n, max: 10n ** 15n }),
    });
    fc.assert(fc.property(scenario, ({ tranche, sharesFraction, lossPermille, incomeMinor }) => {
      const shares = (tranche.sharesTotal * BigInt(sharesFraction)) / 1_000n;
      const valueAtRequestMinor = valueOfShares(tranche, shares);
      const lossMinor = (tranche.capitalMinor * BigInt(lossPermille)) / 1_000n;
      const later = applyTrancheIncome(applyTrancheLoss(tranche, lossMinor), incomeMinor);
      const paid = withdrawalAmount({ shares, valueAtRequestMinor, tranche: later });
      expect(paid <= valueAtRequestMinor).toBe(true);
      expect(paid <= valueOfShares(later, shares)).toBe(true);
      expect(applyWithdrawal(later, shares, paid).capitalMinor >= 0n).toBe(true);
    }));
  });

  it('moves from cooldown to an open window to expired', () => {
    const requestedAtMs = 1_700_000_000_000;
    const phase = (nowMs: number) => withdrawalWindow(requestedAtMs, 20 * DAY_MS, 2 * DAY_MS, nowMs);
    expect(phase(requestedAtMs - 1)).toBe('COOLDOWN');
    expect(phase(requestedAtMs + 20 * DAY_MS - 1)).toBe('COOLDOWN');
    expect(phase(requestedAtMs + 20 * DAY_MS)).toBe('OPEN');
    expect(phase(requestedAtMs + 22 * DAY_MS - 1)).toBe('OPEN');
    expect(phase(requestedAtMs + 22 * DAY_MS)).toBe('EXPIRED');
    expect(() => withdrawalWindow(0, -1, 1, 0)).toThrow(/cooldownMs/);
    expect(() => withdrawalWindow(0, 1, 0, 0)).toThrow(/windowMs/);
    expect(() => withdrawalWindow(0, 1, 1, Number.NaN)).toThrow(/finite/);
  });
});
