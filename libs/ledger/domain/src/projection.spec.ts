import { createHash } from 'node:crypto';
import { accountName } from './accounts';
import { DefaultExplainer } from './explain-default';
import { canonicalBalanceSheet, digestOf, LedgerProjection } from './projection';
import { parseAsOf, replay } from './replay';
import { Book } from './testing/book';

const at = '2026-01-01T00:00:00.000Z';

function scenario(): Book {
  const book = new Book();
  book.apply('PartyRegistered', { partyId: 'desk1', name: 'Desk', role: 'DESK', credit: { rating: 'A' }, at });
  book.apply('PartyRegistered', { partyId: 'cp1', name: 'CP', role: 'COUNTERPARTY', credit: { rating: 'BB' }, at });
  book.apply('PartyRegistered', { partyId: 'ghost', name: 'Nobody', role: 'DESK', credit: { rating: 'A' }, at });
  for (const contractId of ['c1', 'c2']) {
    book.apply('ContractRegistered', { contractId, kind: 'PERPETUAL', underlying: 'BTC-USD', size: '1', entryPrice: '1', currency: 'USDC', longPartyId: 'desk1', shortPartyId: 'cp1', longInitialMargin: '0', shortInitialMargin: '0', at });
    book.apply('CollateralDeposited', { contractId, partyId: 'desk1', side: 'LONG', amount: '100', currency: 'USDC', balance: '100', at });
    book.apply('CollateralDeposited', { contractId, partyId: 'cp1', side: 'SHORT', amount: '200', currency: 'USDC', balance: '200', at });
  }
  book.apply('CapitalDeposited', { poolId: 'main', providerId: 'p1', tranche: 'JUNIOR', amount: '1000', shares: '1000', currency: 'USDC', at });
  book.apply('PremiumAccountFunded', { partyId: 'desk1', amount: '3', currency: 'USDC', balance: '3', at });
  book.apply('CoverageBound', { coverageId: 'cov1', quoteId: 'q1', contractId: 'c1', protectedPartyId: 'desk1', counterpartyId: 'cp1', currency: 'USDC', coverageLimit: '500', at });
  book.apply('PremiumAccountDebited', { partyId: 'desk1', coverageId: 'cov1', amount: '3', currency: 'USDC', balance: '0', periodStart: at, periodEnd: at, at });
  book.apply('FundingExchanged', { contractId: 'c2', payerPartyId: 'desk1', receiverPartyId: 'cp1', amount: '7', currency: 'USDC', rate: '0.01', mark: '700', at });
  return book;
}

describe('ledger projection', () => {
  it('check() says whether apply() would take an event, with the same reason, and changes nothing', () => {
    const book = scenario();
    const before = book.ledger.digest();
    // A withdrawal read before the deposit it needs (from another topic, in the ledger service): refused now...
    const early = book.log.add('CollateralWithdrawn', { contractId: 'c1', partyId: 'desk1', side: 'LONG', amount: '150', currency: 'USDC', balance: '10', at });
    const reason = book.ledger.check(early);
    expect(reason).toMatch(/collateral:desk1:c1 would go below zero/);
    expect(() => book.ledger.apply(early)).toThrow(reason);
    expect(book.ledger.digest()).toBe(before);
    expect(book.ledger.position).toBe(14n);
    // ...and taken once the deposit it depends on is booked (as the ledger service admits them).
    book.apply('CollateralDeposited', { contractId: 'c1', partyId: 'desk1', side: 'LONG', amount: '60', currency: 'USDC', balance: '160', at });
    const later = { ...early, position: book.ledger.position + 1n };
    expect(book.ledger.check(later)).toBeUndefined();
    expect(book.ledger.check({ ...later, position: 3n })).toMatch(/out of order/);
    expect(book.ledger.apply(later)).toHaveLength(1);
    expect(book.balance('collateral:desk1:c1')).toBe(10_000_000n);
  });

  it('passes over inbox-* streams (a process\'s received messages): never booked, not counted as unknown types', () => {
    const book = scenario();
    const before = book.ledger.digest();
    const inboxed = book.log.add('CollateralDeposited', { contractId: 'c1', partyId: 'desk1', side: 'LONG', amount: '999', currency: 'USDC', balance: '1099', at }, 'inbox-ledger');
    expect(book.ledger.check(inboxed)).toBeUndefined();
    expect(book.ledger.apply(inboxed)).toEqual([]);
    expect(book.ledger.digest()).toBe(before);
    expect(book.ledger.unmappedTypes).toEqual({});
    expect(book.ledger.position).toBe(inboxed.position);
  });

  it('lists non-zero balances on their normal side, sorted by account then currency', () => {
    const book = scenario();
    expect(book.ledger.balances().map((l) => `${l.account} ${l.balance} ${l.normal}`)).toEqual([
      'cash:external:cp1 400.000000 debit',
      'cash:external:desk1 203.000000 debit',
      'cash:external:p1 1000.000000 debit',
      'collateral:cp1:c1 200.000000 credit',
      'collateral:cp1:c2 200.000000 credit',
      'collateral:desk1:c1 100.000000 credit',
      'collateral:desk1:c2 100.000000 credit',
      'pool-capital:junior:p1 1000.000000 credit',
      'premium-collected:cov1 3.000000 credit',
      'variation-margin:cp1:c2 7.000000 credit',
      'variation-margin:desk1:c2 -7.000000 credit',
    ]);
    expect(book.trialBalance()).toBe(0n);
    expect(book.ledger).toMatchObject({ position: 14n, eventsApplied: 14, postingsMade: 8 });
  });

  it('scopes to one party (its accounts, and the premiums of its coverages) or one contract', () => {
    const book = scenario();
    expect(book.ledger.balances({ party: 'desk1' }).map((l) => l.account)).toEqual([
      'cash:external:desk1', 'collateral:desk1:c1', 'collateral:desk1:c2', 'premium-collected:cov1', 'variation-margin:desk1:c2',
    ]);
    expect(book.ledger.balances({ contract: 'c1' }).map((l) => l.account)).toEqual(['collateral:cp1:c1', 'collateral:desk1:c1', 'premium-collected:cov1']);
    expect(book.ledger.balances({ party: 'cp1', contract: 'c2' }).map((l) => l.account)).toEqual(['collateral:cp1:c2', 'variation-margin:cp1:c2']);
    expect(book.ledger.hasPostingsFor('desk1')).toBe(true);
    expect(book.ledger.hasPostingsFor('ghost')).toBe(false);
    expect(book.ledger.facts.parties.has('ghost')).toBe(true);
  });

  it('digests the canonical balance sheet: sha256 of "account|currency|balanceMinor" lines', () => {
    const book = scenario();
    const lines = book.ledger.balances();
    const text = canonicalBalanceSheet(lines);
    expect(text.split('\n')[0]).toBe('cash:external:cp1|USDC|400000000');
    expect(book.ledger.digest()).toBe(createHash('sha256').update(text).digest('hex'));
    expect(digestOf([...lines].reverse())).toBe(book.ledger.digest()); // order-independent
    expect(digestOf([...lines, { account: 'x', currency: 'USDC', balanceMinor: 0n }])).toBe(book.ledger.digest()); // zeros do not count
    expect(new LedgerProjection().digest()).toBe(createHash('sha256').update('').digest('hex'));
    const before = book.ledger.digest();
    book.apply('CollateralDeposited', { contractId: 'c1', partyId: 'desk1', side: 'LONG', amount: '0.000001', currency: 'USDC', balance: '100.000001', at });
    expect(book.ledger.digest()).not.toBe(before);
  });

  it('escapes ":" in ids so two accounts never share a name', () => {
    expect(accountName({ kind: 'collateral', party: 'a:b', contract: 'c' })).toBe('collateral:a%3Ab:c');
    expect(accountName({ kind: 'collateral', party: 'a', contract: 'b:c' })).toBe('collateral:a:b%3Ac');
  });

  describe('replay', () => {
    it('to a position or an instant gives the state the live projection had there', async () => {
      const book = new Book();
      const live = new LedgerProjection();
      const digests: string[] = [];
      for (const e of scenario().log.events) {
        book.log.events.push(e);
        live.apply(e);
        digests.push(live.digest());
      }
      for (let k = 1; k <= digests.length; k += 1) {
        const replayed = await replay(book.log.reader(), { until: { kind: 'position', position: BigInt(k) }, pageSize: 4 });
        expect(replayed.digest()).toBe(digests[k - 1]);
        expect(replayed.position).toBe(BigInt(k));
      }
      // events are one minute apart from 00:01: as of 00:10:30 is after the 10th event
      const asOf = await replay(book.log.reader(), { until: { kind: 'instant', at: '2026-01-01T00:10:30Z' } });
      expect(asOf.position).toBe(10n);
      expect(asOf.digest()).toBe(digests[9]);
      expect((await replay(book.log.reader(), { until: { kind: 'instant', at: '2025-12-31T00:00:00Z' } })).position).toBe(0n);
      expect((await replay(book.log.reader())).digest()).toBe(live.digest());
    });

    it('reports progress per page and every event with its postings', async () => {
      const book = scenario();
      const progress: number[] = [];
      const seen: string[] = [];
      await replay(book.log.reader(), { pageSize: 5, onProgress: (n) => progress.push(n), onEvent: (e, p) => p.length > 0 && seen.push(e.type) });
      expect(progress).toEqual([5, 10, 14]);
      expect(seen).toEqual(['CollateralDeposited', 'CollateralDeposited', 'CollateralDeposited', 'CollateralDeposited', 'CapitalDeposited', 'PremiumAccountFunded', 'PremiumAccountDebited', 'FundingExchanged']);
    });

    it('parses --as-of / ?asOf= as a position or an ISO-8601 UTC instant, nothing else', () => {
      expect(parseAsOf('42')).toEqual({ kind: 'position', position: 42n });
      expect(parseAsOf('2026-01-31T08:00:00Z')).toEqual({ kind: 'instant', at: '2026-01-31T08:00:00Z' });
      for (const bad of ['yesterday', '2026-01-31', '2026-01-31T08:00:00+01:00', '-1', '1.5', '', '2026-13-01T00:00:00Z']) expect(parseAsOf(bad)).toBeUndefined();
    });
  });

  it('explains a default layer by layer with the events behind each line', () => {
    const book = scenario();
    const layer = (layerName: string, step: number, amount: string, extra: Record<string, unknown> = {}) =>
      book.apply('LossAllocated', { defaultId: 'cp1', layer: layerName, step, available: amount, amount, remaining: '0', perParty: { desk1: amount }, ...extra, at });
    book.apply('DefaultDeclared', { defaultId: 'cp1', partyId: 'cp1', reason: 'OPERATOR', detail: 'x', lastSaneMarks: {}, triggerEventId: 'x', bookPosition: '14', currency: 'USDC', at });
    book.apply('ContractClosedOut', { defaultId: 'cp1', contractId: 'c1', closeOutPrice: '9', protectedPartyId: 'desk1', lossOwed: '300', currency: 'USDC', at });
    book.apply('ContractClosedOut', { defaultId: 'cp1', contractId: 'c2', closeOutPrice: '9', protectedPartyId: 'desk1', lossOwed: '200', currency: 'USDC', at });
    book.apply('LossesAssessed', { defaultId: 'cp1', partyId: 'cp1', currency: 'USDC', contractCollateral: '407', parties: [{ partyId: 'desk1', lossOwed: '500' }], at });
    layer('DEFAULTER_CONTRACT_COLLATERAL', 1, '407');
    layer('POOL_MARGIN_ADVANCE', 2, '0');
    layer('JUNIOR_TRANCHE', 3, '93', { perProvider: { p1: '93' } });
    layer('SENIOR_TRANCHE', 4, '0', { perProvider: {} });
    book.apply('PayoutMade', { defaultId: 'cp1', partyId: 'desk1', amount: '500', fromDefaulter: '407', fromPool: '93', currency: 'USDC', at });
    book.apply('DefaultSettled', { defaultId: 'cp1', partyId: 'cp1', currency: 'USDC', totals: {}, creditors: [], at });
    const explainer = new DefaultExplainer('cp1');
    const other = new DefaultExplainer('d2');
    const fresh = new LedgerProjection();
    for (const e of book.log.events) {
      const postings = fresh.apply(e);
      explainer.observe(e, postings);
      other.observe(e, postings);
    }
    const report = explainer.report();
    expect(other.found).toBe(false);
    expect(report).toMatchObject({ defaultId: 'cp1', defaulter: 'cp1', currency: 'USDC' });
    expect(report.closeOuts.map((l) => `${l.label} ${l.amount}`)).toEqual(['c1 closed out at 9; desk1 is owed 300.000000', 'c2 closed out at 9; desk1 is owed 200.000000']);
    expect(report.layers.map((l) => `${l.step}. ${l.layer} ${l.amount} ${l.eventId} ${l.postings.length}`)).toEqual([
      '1. DEFAULTER_CONTRACT_COLLATERAL 407.000000 e19 3',
      '2. POOL_MARGIN_ADVANCE 0.000000 e20 0',
      '3. JUNIOR_TRANCHE 93.000000 e21 1',
      '4. SENIOR_TRANCHE 0.000000 e22 0',
    ]);
    expect(report.layers[0].postings).toEqual([
      { debit: 'collateral:cp1:c1', credit: 'claim-on-defaulter:cp1', amount: '200.000000' },
      { debit: 'variation-margin:cp1:c2', credit: 'claim-on-defaulter:cp1', amount: '7.000000' },
      { debit: 'collateral:cp1:c2', credit: 'claim-on-defaulter:cp1', amount: '200.000000' },
    ]);
    expect(report.totals).toEqual({
      lossOwed: '500.000000', paidByDefaulter: '407.000000', paidByPool: '93.000000', paidOut: '500.000000', unpaidClaims: '0.000000',
      poolClaim: '93.000000', recovered: '0.000000', recoveryAllocated: '0.000000', layersMatchPayouts: true, lossAccountedFor: true,
    });
    // Issue 8 defect 10: the pool's claim is what the ledger holds recoverable from the defaulter.
    const recoverable = fresh.balances().filter((l) => l.account.startsWith('pool-recoverable:') && l.account.endsWith(':cp1'));
    expect(recoverable.map((l) => `${l.account} ${l.balance}`)).toEqual(['pool-recoverable:junior:p1:cp1 93.000000']);
    expect(report.settled?.eventId).toBe('e24');
  });
});
