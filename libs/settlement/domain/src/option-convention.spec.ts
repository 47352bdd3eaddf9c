/**
 * Issue 8 defect 7 (SPEC §4): one option-premium convention across pricing, margin and settlement.
 * Options are futures-style everywhere: the premium is settled with the option, so the long holds
 * (value − premium)·size and the short the negative. A coverage is priced on the exposure the
 * close-out will actually settle: the example prices a writer's protection above 0 and
 * settles its buyer's immediate default at the exposure the model allowed; the buyer's protection
 * is charged for no exposure that does not exist.
 */
import { ContractSpec, contractTerms } from '@backstop/contracts';
import { DAY_MS, iso, YEAR_MS } from '@backstop/kernel';
import { markToMarket } from '@backstop/margin-model';
import { black76Value, priceCoverage, simulateExposureProfile } from '@backstop/pricing-model';
import { closeOutContracts, DefaultedContract } from './close-out';

const START_MS = Date.parse('2026-01-01T00:00:00.000Z');
const START = iso(START_MS);
const EXPIRY = iso(START_MS + 90 * DAY_MS);
// Writer (SHORT) of a call, strike 70 000, premium 6 000, size 10; spot 60 000, vol 0.6, 90 days, limit 50 000.
const spec: ContractSpec = {
  kind: 'OPTION', underlying: 'BTC-USD', size: '10', entryPrice: '6000', optionType: 'CALL', strike: '70000', expiry: EXPIRY,
  currency: 'USDC', longPartyId: 'buyer', shortPartyId: 'writer', longInitialMargin: '0', shortInitialMargin: '0',
};
const terms = contractTerms(spec);
const market = { spot: 60_000, volAnnual: 0.6 };
// Independent of the code under test: Black-76 (checked against textbook values in pricing-model).
const callValue = black76Value({ optionType: 'CALL', forward: 60_000, strike: 70_000, volAnnual: 0.6, termYears: (90 * DAY_MS) / YEAR_MS, discountFactor: 1 });
const writerOwed = 10 * (6_000 - callValue);

const NO_COST = { byKind: { PERPETUAL: 0, FUTURE: 0, OPTION: 0 } };
function settle(defaulter: 'LONG' | 'SHORT'): string {
  const contract: DefaultedContract = {
    contractId: 'o1', spec, defaulterSide: defaulter, protectedPartyId: defaulter === 'LONG' ? 'writer' : 'buyer', defaulterCollateral: '0', coverages: [{ coverageId: 'cov1', limit: '50000' }],
  };
  const result = closeOutContracts({
    defaultId: 'd1', partyId: defaulter === 'LONG' ? 'buyer' : 'writer', currency: 'USDC', contracts: [contract],
    marks: { 'BTC-USD': { price: '60000', source: 'TRIGGER', volAnnual: '0.6' } }, costs: NO_COST, valuedAt: START, at: START,
  });
  return result.closeOuts[0].lossOwed;
}
const exposureToday = (protectedSide: 'LONG' | 'SHORT') =>
  simulateExposureProfile({ terms, protectedSide, ...market, collateralHeld: 0, startMs: START_MS, termMs: 90 * DAY_MS, steps: 6, paths: 200, seed: 1 }).expectedExposure[0];

describe('one option-premium convention (futures-style) across pricing, margin and settlement', () => {
  it("prices the writer's protection on the premium still owed, and its buyer's default pays exactly that", () => {
    expect(writerOwed).toBeGreaterThan(20_000);
    expect(exposureToday('SHORT')).toBeCloseTo(writerOwed, 6);
    const priced = priceCoverage({ terms, protectedSide: 'SHORT', ...market, collateralHeld: 0, coverageLimit: 50_000, startMs: START_MS, termMs: 90 * DAY_MS, credit: { pdAnnual: 0.05 }, stressContribution: 0, paths: 400, steps: 6, seed: 3 });
    expect(priced.premiumTotal).toBeGreaterThan(0);
    // Settlement pays what the exposure model allowed (rounded down to the minor unit, no liquidation cost here).
    expect(Number(settle('LONG'))).toBeCloseTo(writerOwed, 1);
    expect(Number(settle('LONG'))).toBeLessThanOrEqual(writerOwed);
    // And margin values the writer's side the same way.
    expect(markToMarket(terms, 'SHORT', { mark: 60_000, volAnnual: 0.6, nowMs: START_MS })).toBeCloseTo(writerOwed, 6);
  });

  it("charges the buyer's protection for no exposure that does not exist, and its writer's default pays nothing now", () => {
    expect(exposureToday('LONG')).toBe(0);
    expect(settle('SHORT')).toBe('0.000000');
  });
});
