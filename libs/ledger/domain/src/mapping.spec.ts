import { InvariantViolation } from '@backstop/kernel';
import { LedgerInvariantViolation } from './postings';
import { Book, describePostings, usdc } from './testing/book';

const at = '2026-01-01T00:00:00.000Z';
const none = { JUNIOR: {}, SENIOR: {} };

/** Parties, a perpetual between desk1 (long) and cp1 (short), collateral on both sides. */
function withContract(): Book {
  const book = new Book();
  book.apply('PartyRegistered', { partyId: 'desk1', name: 'Desk', role: 'DESK', credit: { rating: 'A' }, at });
  book.apply('PartyRegistered', { partyId: 'cp1', name: 'CP', role: 'COUNTERPARTY', credit: { rating: 'BB' }, at });
  book.apply('ContractRegistered', {
    contractId: 'c1', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '2', entryPrice: '60000', currency: 'USDC',
    longPartyId: 'desk1', shortPartyId: 'cp1', longInitialMargin: '10000', shortInitialMargin: '10000', at,
  });
  book.apply('CollateralDeposited', { contractId: 'c1', partyId: 'desk1', side: 'LONG', amount: '12000.000000', currency: 'USDC', balance: '12000.000000', at });
  book.apply('CollateralDeposited', { contractId: 'c1', partyId: 'cp1', side: 'SHORT', amount: '15000.000000', currency: 'USDC', balance: '15000.000000', at });
  return book;
}

/** withContract + a pool with two junior providers and one senior, a bound coverage, a funded premium account. */
function withPool(): Book {
  const book = withContract();
  for (const [providerId, tranche, amount] of [['p1', 'JUNIOR', '30000'], ['p2', 'JUNIOR', '10000'], ['p3', 'SENIOR', '60000']] as const) {
    book.apply('PartyRegistered', { partyId: providerId, name: providerId, role: 'PROVIDER', credit: { rating: 'A' }, at });
    book.apply('CapitalDeposited', { poolId: 'main', providerId, tranche, amount, shares: amount, currency: 'USDC', cancelledShares: '0', at });
  }
  book.apply('CoverageBound', { coverageId: 'cov1', quoteId: 'q1', contractId: 'c1', protectedPartyId: 'desk1', counterpartyId: 'cp1', currency: 'USDC', coverageLimit: '50000', at });
  book.apply('PremiumAccountFunded', { partyId: 'desk1', amount: '100', currency: 'USDC', balance: '100', at });
  return book;
}

function expectViolation(book: Book, type: string, data: Record<string, unknown>, message: RegExp): void {
  const before = { digest: book.ledger.digest(), position: book.ledger.position, events: book.ledger.eventsApplied };
  let error: unknown;
  try {
    book.apply(type, data);
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(LedgerInvariantViolation);
  expect(error).toBeInstanceOf(InvariantViolation);
  expect((error as Error).message).toMatch(message);
  // all-or-nothing: the projection is exactly as before the refused event
  expect({ digest: book.ledger.digest(), position: book.ledger.position, events: book.ledger.eventsApplied }).toEqual(before);
}

describe('ledger mapping: money events → balanced postings', () => {
  describe('collateral (contract-intake)', () => {
    it('a deposit moves cash in from the party to its collateral on the contract, agreeing with intake\'s balance', () => {
      const book = withContract();
      const postings = book.apply('CollateralDeposited', { contractId: 'c1', partyId: 'cp1', side: 'SHORT', amount: '500.5', currency: 'USDC', balance: '15500.5', at });
      expect(describePostings(postings)).toEqual([`Dr cash:external:cp1 / Cr collateral:cp1:c1 ${usdc(500.5)}`]);
      expect(postings[0]).toMatchObject({ currency: 'USDC', eventId: 'e6', eventType: 'CollateralDeposited', position: 6n, stream: 'contract-c1' });
      expect(book.balance('collateral:cp1:c1')).toBe(usdc(15500.5));
      expect(book.balance('cash:external:cp1')).toBe(usdc(15500.5));
    });

    it('a withdrawal moves it back out, never below zero, and a balance that disagrees with intake\'s is refused', () => {
      const book = withContract();
      expect(describePostings(book.apply('CollateralWithdrawn', { contractId: 'c1', partyId: 'desk1', side: 'LONG', amount: '2000', currency: 'USDC', balance: '10000', at }))).toEqual([
        `Dr collateral:desk1:c1 / Cr cash:external:desk1 ${usdc(2000)}`,
      ]);
      expectViolation(book, 'CollateralWithdrawn', { contractId: 'c1', partyId: 'desk1', side: 'LONG', amount: '10000.000001', currency: 'USDC', balance: '0', at }, /collateral:desk1:c1 would go below zero: -0.000001 USDC/);
      expectViolation(book, 'CollateralDeposited', { contractId: 'c1', partyId: 'desk1', side: 'LONG', amount: '1', currency: 'USDC', balance: '10002', at }, /states balance 10002.000000 USDC for collateral:desk1:c1; the ledger has 10001.000000/);
    });
  });

  describe('cash flows (margin-monitor)', () => {
    it('funding and settlement move variation margin from the payer to the receiver on the contract', () => {
      const book = withContract();
      expect(describePostings(book.apply('FundingExchanged', { contractId: 'c1', payerPartyId: 'desk1', receiverPartyId: 'cp1', amount: '12.34', currency: 'USDC', rate: '0.0001', mark: '61700', at }))).toEqual([
        `Dr variation-margin:desk1:c1 / Cr variation-margin:cp1:c1 ${usdc(12.34)}`,
      ]);
      expect(describePostings(book.apply('ContractSettled', { contractId: 'c1', reason: 'CLOSE', price: '62000', payerPartyId: 'cp1', receiverPartyId: 'desk1', amount: '4000', currency: 'USDC', at }))).toEqual([
        `Dr variation-margin:cp1:c1 / Cr variation-margin:desk1:c1 ${usdc(4000)}`,
      ]);
      expect(book.balance('variation-margin:desk1:c1')).toBe(usdc(4000 - 12.34));
      expect(book.balance('collateral:desk1:c1')).toBe(usdc(12000)); // intake's balance, untouched by flows
      expect(book.trialBalance()).toBe(0n);
    });

    it('a zero flow posts nothing; a flow beyond the payer\'s collateral is owed in full (variation margin is not floored)', () => {
      const book = withContract();
      expect(book.apply('FundingExchanged', { contractId: 'c1', payerPartyId: 'desk1', receiverPartyId: 'cp1', amount: '0', currency: 'USDC', rate: '0', mark: '1', at })).toEqual([]);
      book.apply('ContractSettled', { contractId: 'c1', reason: 'EXPIRY', price: '1', payerPartyId: 'cp1', receiverPartyId: 'desk1', amount: '20000', currency: 'USDC', at });
      expect(book.balance('variation-margin:cp1:c1')).toBe(-usdc(20000));
    });
  });

  describe('premiums (premium-pricing) and premium income (default-settlement)', () => {
    it('the premium account is funded, debited into premium-collected of the coverage, and agrees with pricing\'s balance', () => {
      const book = withPool();
      expect(describePostings(book.apply('PremiumAccountDebited', { partyId: 'desk1', coverageId: 'cov1', amount: '10', currency: 'USDC', balance: '90', periodStart: at, periodEnd: at, at }))).toEqual([
        `Dr premium-account:desk1 / Cr premium-collected:cov1 ${usdc(10)}`,
      ]);
      // PremiumCharged restates the period paid on the coverage: booked once, at the debit
      expect(book.apply('PremiumCharged', { coverageId: 'cov1', payerPartyId: 'desk1', amount: '10', currency: 'USDC', periodStart: at, periodEnd: at, rateAnnual: '0.05', at })).toEqual([]);
      expect(book.apply('PremiumPaymentMissed', { coverageId: 'cov1', payerPartyId: 'desk1', amount: '10', currency: 'USDC', periodStart: at, periodEnd: at, graceUntil: at, at })).toEqual([]);
      expect(describePostings(book.apply('PremiumAccountWithdrawn', { partyId: 'desk1', amount: '40', currency: 'USDC', balance: '50', at }))).toEqual([`Dr premium-account:desk1 / Cr cash:external:desk1 ${usdc(40)}`]);
      expectViolation(book, 'PremiumAccountDebited', { partyId: 'desk1', coverageId: 'cov1', amount: '50.000001', currency: 'USDC', balance: '0', periodStart: at, periodEnd: at, at }, /premium-account:desk1 would go below zero/);
      expectViolation(book, 'PremiumAccountFunded', { partyId: 'desk1', amount: '1', currency: 'USDC', balance: '1', at }, /states balance 1.000000 USDC for premium-account:desk1; the ledger has 51.000000/);
    });

    it('distributes income to the providers per tranche (nested, flat or array perProvider)', () => {
      const book = withPool();
      book.apply('PremiumAccountDebited', { partyId: 'desk1', coverageId: 'cov1', amount: '30', currency: 'USDC', balance: '70', periodStart: at, periodEnd: at, at });
      const income = (amount: string, perTranche: unknown, perProvider: unknown) =>
        book.apply('PremiumIncomeDistributed', { poolId: 'main', coverageId: 'cov1', payerPartyId: 'desk1', amount, currency: 'USDC', fromReserve: '0', perTranche, perProvider, undistributed: '0', at });
      expect(describePostings(income('10', { JUNIOR: '10', SENIOR: '0' }, { JUNIOR: { p1: '7.5', p2: '2.5' }, SENIOR: {} }))).toEqual([
        `Dr premium-collected:cov1 / Cr pool-capital:junior:p1 ${usdc(7.5)}`,
        `Dr premium-collected:cov1 / Cr pool-capital:junior:p2 ${usdc(2.5)}`,
      ]);
      expect(describePostings(income('10', { JUNIOR: '6', SENIOR: '4' }, { p1: { tranche: 'JUNIOR', amount: '6' }, p3: '4' }))).toContain(`Dr premium-collected:cov1 / Cr pool-capital:senior:p3 ${usdc(4)}`);
      expect(describePostings(income('10', undefined, [{ providerId: 'p3', tranche: 'SENIOR_TRANCHE', amount: '10' }]))).toEqual([`Dr premium-collected:cov1 / Cr pool-capital:senior:p3 ${usdc(10)}`]);
      expect(book.balance('premium-collected:cov1')).toBe(0n);
      expect(book.balance('pool-capital:senior:p3')).toBe(usdc(60014));
    });

    it('holds income in the pool\'s reserve when no tranche can earn it, and releases it with the next premium', () => {
      const book = withPool();
      book.apply('PremiumAccountDebited', { partyId: 'desk1', coverageId: 'cov1', amount: '30', currency: 'USDC', balance: '70', periodStart: at, periodEnd: at, at });
      expect(describePostings(book.apply('PremiumIncomeDistributed', { poolId: 'main', coverageId: 'cov1', payerPartyId: 'desk1', amount: '10', currency: 'USDC', fromReserve: '0', perTranche: { JUNIOR: '0', SENIOR: '0' }, perProvider: none, undistributed: '10', at }))).toEqual([
        `Dr premium-collected:cov1 / Cr premium-reserve:main ${usdc(10)}`,
      ]);
      expect(describePostings(book.apply('PremiumIncomeDistributed', { poolId: 'main', coverageId: 'cov1', payerPartyId: 'desk1', amount: '20', currency: 'USDC', fromReserve: '10', perTranche: { JUNIOR: '30', SENIOR: '0' }, perProvider: { JUNIOR: { p1: '30' }, SENIOR: {} }, undistributed: '0', at }))).toEqual([
        `Dr premium-collected:cov1 / Cr pool-capital:junior:p1 ${usdc(20)}`,
        `Dr premium-reserve:main / Cr pool-capital:junior:p1 ${usdc(10)}`,
      ]);
      expect(book.balance('premium-reserve:main')).toBe(0n);
    });

    it('refuses parts that do not add up, and income never collected', () => {
      const book = withPool();
      book.apply('PremiumAccountDebited', { partyId: 'desk1', coverageId: 'cov1', amount: '10', currency: 'USDC', balance: '90', periodStart: at, periodEnd: at, at });
      const income = (amount: string, perTranche: unknown, perProvider: unknown) => ({ poolId: 'main', coverageId: 'cov1', payerPartyId: 'desk1', amount, currency: 'USDC', fromReserve: '0', perTranche, perProvider, undistributed: '0', at });
      expectViolation(book, 'PremiumIncomeDistributed', income('10', { JUNIOR: '10', SENIOR: '0' }, { JUNIOR: { p1: '9' }, SENIOR: {} }), /perProvider sums to 9000000 minor units, not the amount 10000000/);
      expectViolation(book, 'PremiumIncomeDistributed', income('10', { JUNIOR: '5', SENIOR: '5' }, { JUNIOR: { p1: '6' }, SENIOR: { p3: '4' } }), /junior tranche 6000000 minor units, perTranche says 5000000/);
      expectViolation(book, 'PremiumIncomeDistributed', income('11', { JUNIOR: '11', SENIOR: '0' }, { JUNIOR: { p1: '11' }, SENIOR: {} }), /premium-collected:cov1 would go below zero/);
    });
  });

  describe('pool capital (default-settlement)', () => {
    it('deposits move cash in from the provider to its capital in the tranche; withdrawals move it out', () => {
      const book = withPool();
      expect(book.balance('pool-capital:junior:p1')).toBe(usdc(30000));
      expect(book.balance('cash:external:p1')).toBe(usdc(30000));
      expect(describePostings(book.apply('CapitalWithdrawn', { poolId: 'main', providerId: 'p1', tranche: 'JUNIOR', shares: '1000', amount: '1000', valueAtRequest: '1000', valueNow: '1000', currency: 'USDC', at }))).toEqual([
        `Dr pool-capital:junior:p1 / Cr cash:external:p1 ${usdc(1000)}`,
      ]);
    });

    it('floors the tranche, not one provider: a withdrawal priced by shares may take value others left behind', () => {
      const book = withPool();
      // p2 withdraws more than its book capital (its shares gained value others left in the tranche)
      book.apply('CapitalWithdrawn', { poolId: 'main', providerId: 'p2', tranche: 'JUNIOR', shares: '10000', amount: '10500', valueAtRequest: '10500', valueNow: '10600', currency: 'USDC', at });
      expect(book.balance('pool-capital:junior:p2')).toBe(-usdc(500));
      expectViolation(book, 'CapitalWithdrawn', { poolId: 'main', providerId: 'p1', tranche: 'JUNIOR', shares: '1', amount: '29500.000001', currency: 'USDC', at }, /the junior tranche's capital \(pool-capital:junior:\*\) would go below zero: -0.000001 USDC/);
      expectViolation(book, 'CapitalWithdrawn', { poolId: 'other', providerId: 'p2', tranche: 'JUNIOR', shares: '1', amount: '1', at }, /no currency: the event has none and pool other is not known/);
      expectViolation(book, 'CapitalDeposited', { poolId: 'main', providerId: 'p2', tranche: 'MEZZANINE', shares: '1', amount: '1', currency: 'USDC', at }, /not a tranche/);
    });
  });

  describe('a missed margin call covered by the backstop', () => {
    it('turns the providers\' capital into margin held for the party and their recoverable claim on it', () => {
      const book = withPool();
      const postings = book.apply('MarginCoveredByBackstop', { poolId: 'main', callId: 'call1', partyId: 'cp1', amount: '4000', requested: '4000', uncovered: '0', currency: 'USDC', perTranche: { JUNIOR: '4000', SENIOR: '0' }, perProvider: { JUNIOR: { p1: '3000', p2: '1000' }, SENIOR: {} }, at });
      expect(describePostings(postings)).toEqual([
        `Dr pool-capital:junior:p1 / Cr backstop-cover-advanced:cp1 ${usdc(3000)}`,
        `Dr pool-capital:junior:p2 / Cr backstop-cover-advanced:cp1 ${usdc(1000)}`,
        `Dr claim-on-defaulter:cp1 / Cr pool-recoverable:junior:p1:cp1 ${usdc(3000)}`,
        `Dr claim-on-defaulter:cp1 / Cr pool-recoverable:junior:p2:cp1 ${usdc(1000)}`,
      ]);
      expect(book.balance('pool-capital:junior:p1')).toBe(usdc(27000));
      expect(book.balance('claim-on-defaulter:cp1')).toBe(usdc(4000));
      expect(book.trialBalance()).toBe(0n);
      // margin-monitor's record of the same cover moves nothing
      expect(book.apply('BackstopCoverRecorded', { partyId: 'cp1', callId: 'call1', amount: '4000', currency: 'USDC', at })).toEqual([]);
    });

    it('refuses a cover bigger than the tranche\'s capital', () => {
      const book = withPool();
      expectViolation(book, 'MarginCoveredByBackstop', { poolId: 'main', callId: 'call1', partyId: 'cp1', amount: '40001', currency: 'USDC', perTranche: { JUNIOR: '40001', SENIOR: '0' }, perProvider: { JUNIOR: { p1: '30001', p2: '10000' }, SENIOR: {} }, at }, /junior tranche's capital .* would go below zero/);
    });
  });

  describe('a default, as default-settlement records it', () => {
    /** cp1 defaults after the pool advanced 1000 for it; it owes desk1 40000 after close-out netting. */
    function defaulted(): Book {
      const book = withPool();
      book.apply('FundingExchanged', { contractId: 'c1', payerPartyId: 'desk1', receiverPartyId: 'cp1', amount: '500', currency: 'USDC', rate: '0.001', mark: '61000', at });
      book.apply('MarginCoveredByBackstop', { poolId: 'main', callId: 'call1', partyId: 'cp1', amount: '1000', requested: '1000', uncovered: '0', currency: 'USDC', perTranche: { JUNIOR: '1000', SENIOR: '0' }, perProvider: { JUNIOR: { p1: '750', p2: '250' }, SENIOR: {} }, at });
      book.apply('DefaultTriggered', { partyId: 'cp1', reason: 'NEGATIVE_EQUITY', detail: 'x', lastSaneMarks: {}, at });
      book.apply('DefaultDeclared', { defaultId: 'cp1', partyId: 'cp1', reason: 'NEGATIVE_EQUITY', detail: 'x', lastSaneMarks: {}, triggerEventId: 'e0', bookPosition: '1', currency: 'USDC', at });
      book.apply('ContractClosedOut', { defaultId: 'cp1', contractId: 'c1', defaulterPartyId: 'cp1', defaulterSide: 'SHORT', protectedPartyId: 'desk1', closeOutPrice: '80000', closeOutValue: '40000', lossOwed: '40000', defaulterCollateral: '15500', currency: 'USDC', at });
      book.apply('LossesAssessed', { defaultId: 'cp1', partyId: 'cp1', currency: 'USDC', contractCollateral: '15500', parties: [{ partyId: 'desk1', contractIds: ['c1'], netValue: '40000', lossOwed: '40000', coverageLimit: '50000', coverages: [] }], excludedContracts: [], at });
      return book;
    }

    it('books the loss owed after netting as a claim on the defaulter and a payable to the protected party', () => {
      const book = defaulted();
      expect(book.balance('payout-payable:desk1')).toBe(usdc(40000));
      expect(book.balance('claim-on-defaulter:cp1')).toBe(usdc(41000)); // the loss + the pool's advance
    });

    it('runs the layers: the defaulter\'s margin and the advance pay its debt, tranches turn capital into recoverable claims', () => {
      const book = defaulted();
      const layer = (layer: string, step: number, amountTaken: string, perProvider?: Record<string, string>) =>
        book.apply('LossAllocated', { defaultId: 'cp1', layer, step, available: '0', amount: amountTaken, remaining: '0', perParty: { desk1: amountTaken }, ...(perProvider ? { perProvider } : {}), at });
      expect(book.apply('WithdrawalsFrozen', { poolId: 'main', defaultId: 'cp1', partyId: 'cp1', at })).toEqual([]);
      expect(describePostings(layer('DEFAULTER_CONTRACT_COLLATERAL', 1, '15500'))).toEqual([
        `Dr variation-margin:cp1:c1 / Cr claim-on-defaulter:cp1 ${usdc(500)}`,
        `Dr collateral:cp1:c1 / Cr claim-on-defaulter:cp1 ${usdc(15000)}`,
      ]);
      expect(describePostings(layer('POOL_MARGIN_ADVANCE', 2, '1000'))).toEqual([`Dr backstop-cover-advanced:cp1 / Cr claim-on-defaulter:cp1 ${usdc(1000)}`]);
      expect(describePostings(layer('JUNIOR_TRANCHE', 3, '20000', { p1: '15000', p2: '5000' }))).toEqual([
        `Dr pool-capital:junior:p1 / Cr pool-recoverable:junior:p1:cp1 ${usdc(15000)}`,
        `Dr pool-capital:junior:p2 / Cr pool-recoverable:junior:p2:cp1 ${usdc(5000)}`,
      ]);
      expect(describePostings(layer('SENIOR_TRANCHE', 4, '3000', { p3: '3000' }))).toEqual([`Dr pool-capital:senior:p3 / Cr pool-recoverable:senior:p3:cp1 ${usdc(3000)}`]);
      expect(describePostings(book.apply('PayoutMade', { defaultId: 'cp1', partyId: 'desk1', amount: '39500', fromDefaulter: '16500', fromPool: '23000', coverageLimit: '50000', coverageIds: ['cov1'], perCoverage: { cov1: '23000' }, currency: 'USDC', at }))).toEqual([
        `Dr payout-payable:desk1 / Cr cash:external:desk1 ${usdc(39500)}`,
      ]);
      expect(describePostings(book.apply('ClaimRecorded', { defaultId: 'cp1', partyId: 'desk1', amount: '500', withinCoverage: '500', currency: 'USDC', at }))).toEqual([
        `Dr payout-payable:desk1 / Cr unpaid-claim:desk1:cp1 ${usdc(500)}`,
      ]);
      // the pool's claim (its advance) has been on pool-recoverable since the advance: DefaultSettled restates it
      expect(book.apply('DefaultSettled', { defaultId: 'cp1', partyId: 'cp1', currency: 'USDC', totals: { advanceUnreturned: '1000' }, creditors: [], at })).toEqual([]);
      expect(book.balance('payout-payable:desk1')).toBe(0n);
      // what cp1 still owes = desk1's unpaid claim + what the providers lost or advanced for it
      expect(book.balance('claim-on-defaulter:cp1')).toBe(usdc(500 + 1000 + 23000));
      expect(book.trialBalance()).toBe(0n);

      // recovery flows back in cash: unpaid claims first, then the tranches (senior before junior)
      expect(describePostings(book.apply('RecoveryReceived', { defaultId: 'cp1', amount: '30000', currency: 'USDC', reference: 'r1', repaid: '24500', surplusToDefaulter: '5500', at }))).toEqual([
        `Dr cash:external:cp1 / Cr recovery:cp1 ${usdc(30000)}`,
      ]);
      expect(describePostings(book.apply('RecoveryAllocated', { defaultId: 'cp1', layer: 'UNPAID_CLAIMS', amount: '500', perCreditor: { desk1: '500' }, outstandingAfter: '0', at }))).toEqual([
        `Dr recovery:cp1 / Cr cash:external:desk1 ${usdc(500)}`,
        `Dr unpaid-claim:desk1:cp1 / Cr claim-on-defaulter:cp1 ${usdc(500)}`,
      ]);
      book.apply('RecoveryAllocated', { defaultId: 'cp1', layer: 'SENIOR_TRANCHE', amount: '3000', perCreditor: { p3: '3000' }, outstandingAfter: '0', at });
      expect(describePostings(book.apply('RecoveryAllocated', { defaultId: 'cp1', layer: 'JUNIOR_TRANCHE', amount: '21000', perCreditor: { p1: '15750', p2: '5250' }, outstandingAfter: '0', at }))).toEqual([
        `Dr recovery:cp1 / Cr cash:external:p1 ${usdc(15750)}`,
        `Dr pool-recoverable:junior:p1:cp1 / Cr claim-on-defaulter:cp1 ${usdc(15750)}`,
        `Dr recovery:cp1 / Cr cash:external:p2 ${usdc(5250)}`,
        `Dr pool-recoverable:junior:p2:cp1 / Cr claim-on-defaulter:cp1 ${usdc(5250)}`,
      ]);
      expect(describePostings(book.apply('RecoveryAllocated', { defaultId: 'cp1', layer: 'SURPLUS', amount: '5500', perCreditor: { cp1: '5500' }, outstandingAfter: '0', at }))).toEqual([
        `Dr recovery:cp1 / Cr cash:external:cp1 ${usdc(5500)}`,
      ]);
      expect(book.balance('recovery:cp1')).toBe(0n);
      expect(book.balance('claim-on-defaulter:cp1')).toBe(0n);
      expect(book.trialBalance()).toBe(0n);
    });

    it('returns what the defaulter\'s layers left unused: advances repaid in cash to their providers, the rest to the estate', () => {
      const book = defaulted();
      const charged = {
        poolId: 'main', defaultId: 'cp1', partyId: 'cp1', currency: 'USDC', order: [],
        layers: [
          { layer: 'DEFAULTER_CONTRACT_COLLATERAL', available: '15500', taken: '14000', remaining: '1500', perParty: {} },
          { layer: 'POOL_MARGIN_ADVANCE', available: '1000', taken: '0', remaining: '1000', perParty: {} },
        ],
        parties: [], perTranche: { JUNIOR: '0', SENIOR: '0' },
        advance: { outstanding: '1000', returned: '1000', unreturned: '0', returnedPerProvider: { JUNIOR: { p1: '750', p2: '250' }, SENIOR: {} }, unreturnedPerProvider: none },
        surplusToDefaulter: '1500', at,
      };
      expect(describePostings(book.apply('DefaultLossCharged', charged))).toEqual([
        `Dr backstop-cover-advanced:cp1 / Cr cash:external:p1 ${usdc(750)}`,
        `Dr backstop-cover-advanced:cp1 / Cr cash:external:p2 ${usdc(250)}`,
        `Dr variation-margin:cp1:c1 / Cr cash:external:cp1 ${usdc(500)}`,
        `Dr collateral:cp1:c1 / Cr cash:external:cp1 ${usdc(1000)}`,
        `Dr pool-recoverable:junior:p1:cp1 / Cr claim-on-defaulter:cp1 ${usdc(750)}`,
        `Dr pool-recoverable:junior:p2:cp1 / Cr claim-on-defaulter:cp1 ${usdc(250)}`,
      ]);
      // the layer then takes the rest of the defaulter's margin
      book.apply('LossAllocated', { defaultId: 'cp1', layer: 'DEFAULTER_CONTRACT_COLLATERAL', step: 1, available: '15500', amount: '14000', remaining: '1500', perParty: {}, at });
      expect(book.balance('collateral:cp1:c1')).toBe(0n);
      expect(book.balance('pool-recoverable:junior:p1:cp1')).toBe(0n);
      expectViolation(book, 'LossAllocated', { defaultId: 'cp1', layer: 'POOL_MARGIN_ADVANCE', step: 2, amount: '0.000001', perParty: {}, at }, /POOL_MARGIN_ADVANCE needs 1 minor units but the defaulter's accounts for it hold 0/);
      expectViolation(book, 'DefaultLossCharged', { ...charged, surplusToDefaulter: '1499' }, /advance returned 1000000000 \+ surplus 1499000000 minor units ≠ what the defaulter's layers left unused \(2500000000\)/);
    });

    it('pays once: a second payout of the same default drives the payable below zero and is refused', () => {
      const book = defaulted();
      const payout = { defaultId: 'cp1', partyId: 'desk1', amount: '40000', fromDefaulter: '16500', fromPool: '23500', currency: 'USDC', at };
      book.apply('PayoutMade', payout);
      expectViolation(book, 'PayoutMade', payout, /payout-payable:desk1 would go below zero/);
    });

    it('refuses a layer that takes more than the defaulter holds, parts that do not add up, and unknown defaults', () => {
      const book = defaulted();
      expectViolation(book, 'LossAllocated', { defaultId: 'cp1', layer: 'DEFAULTER_CONTRACT_COLLATERAL', amount: '15500.000001', perParty: {}, at }, /needs 15500000001 minor units from the defaulter's margin on its closed-out contracts, which hold 15500000000/);
      expectViolation(book, 'LossAllocated', { defaultId: 'cp1', layer: 'JUNIOR_TRANCHE', amount: '100', perProvider: { p1: '99' }, perParty: {}, at }, /perProvider sums to/);
      expectViolation(book, 'LossAllocated', { defaultId: 'cp1', layer: 'MEZZANINE', amount: '1', perParty: {}, at }, /not a waterfall layer/);
      expectViolation(book, 'PayoutMade', { defaultId: 'cp1', partyId: 'desk1', amount: '100', fromDefaulter: '50', fromPool: '40', currency: 'USDC', at }, /fromDefaulter \+ fromPool = 90000000 minor units, not the amount 100000000/);
      expectViolation(book, 'ClaimRecorded', { defaultId: 'cp1', partyId: 'cp1', amount: '1', currency: 'USDC', at }, /names the defaulter cp1 as the creditor/);
      expectViolation(book, 'LossesAssessed', { defaultId: 'd9', partyId: 'x', currency: 'USDC', parties: [{ partyId: 'desk1', lossOwed: '1' }], at }, /default d9 was never declared/);
      expectViolation(book, 'RecoveryAllocated', { defaultId: 'cp1', layer: 'UNPAID_CLAIMS', amount: '1', perCreditor: { desk1: '1' }, at }, /recovery:cp1 would go below zero/);
      expectViolation(book, 'RecoveryReceived', { defaultId: 'cp1', amount: '10', currency: 'EUR', repaid: '10', surplusToDefaulter: '0', at }, /currency EUR differs from default cp1's USDC/);
    });
  });

  it('maps margin\'s and pricing\'s mirrors of money booked elsewhere to nothing', () => {
    const book = withContract();
    expect(book.apply('CollateralRecorded', { partyId: 'cp1', contractId: 'c1', side: 'SHORT', change: 'DEPOSIT', amount: '15000', balance: '15000', currency: 'USDC', at })).toEqual([]);
    expect(book.apply('PositionOpened', { partyId: 'cp1', contractId: 'c1', at })).toEqual([]);
  });

  it('counts an event type no service declares, without booking it', () => {
    const book = withContract();
    expect(book.apply('SomethingNew', { amount: '5' })).toEqual([]);
    expect(book.ledger.unmappedTypes).toEqual({ SomethingNew: 1 });
    expect(book.ledger.position).toBe(6n);
  });

  it('refuses events out of position order, and amounts that are not decimal strings', () => {
    const book = withContract();
    const first = book.log.events[0];
    expect(() => book.ledger.apply(first)).toThrow(/out of order: position 1 after 5/);
    expectViolation(book, 'CollateralDeposited', { contractId: 'c1', partyId: 'cp1', side: 'SHORT', amount: 12.5, currency: 'USDC', balance: '1', at }, /amount must be a decimal string, got 12.5/);
    expectViolation(book, 'CollateralDeposited', { contractId: 'c1', partyId: 'cp1', side: 'SHORT', amount: '1', currency: 'EUR', balance: '1', at }, /unknown currency "EUR"/);
    expectViolation(book, 'CollateralDeposited', { contractId: 'c1', partyId: 'cp1', side: 'SHORT', amount: '-1', currency: 'USDC', balance: '1', at }, /must not be negative/);
  });
});
