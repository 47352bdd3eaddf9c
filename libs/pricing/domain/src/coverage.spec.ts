import fc from 'fast-check';
import { fold, HOUR_MS, iso, specFor, toMinor } from '@backstop/kernel';
import { coverageDecider, CoverageEvent, CoverageState, nextPremiumAction, PremiumAction } from './coverage';
import { QuoteIssuedData } from './quote';
import { AT, CREDIT, MARKET, PERP, quoteIssued, quoteStateOf, TEST_POLICY } from './testing/fixtures';

const spec = specFor(coverageDecider);
const AT_MS = Date.parse(AT);
const h = (hours: number) => iso(AT_MS + hours * HOUR_MS);
const rules = (r: { violations: readonly { field: string; rule: string }[] }) => r.violations.map((v) => `${v.field}:${v.rule}`);

const issued = quoteIssued();
const quote = issued.data as QuoteIssuedData;
const perInterval = quote.premiumPerInterval;
const bind = (overrides: Record<string, unknown> = {}) => ({
  type: 'BindCoverage' as const,
  coverageId: 'cov1',
  quote: quoteStateOf(issued),
  contractStatus: 'OPEN' as const,
  policy: TEST_POLICY,
  at: AT,
  ...overrides,
});
const [bound] = spec.given([]).when(bind()).events();
const charged = (start: number, end: number, amount = perInterval, rateAnnual = quote.premiumRateAnnual): CoverageEvent => ({
  type: 'PremiumCharged',
  data: { coverageId: 'cov1', payerPartyId: 'desk1', amount, currency: 'USDC', periodStart: h(start), periodEnd: h(end), rateAnnual, at: h(end) },
});
const missed = (start: number, end: number, at = h(end)): CoverageEvent => ({
  type: 'PremiumPaymentMissed',
  data: { coverageId: 'cov1', payerPartyId: 'desk1', amount: perInterval, currency: 'USDC', periodStart: h(start), periodEnd: h(end), graceUntil: h(end + 24), at },
});
const charge = (periodStartHours: number, paid: boolean, atHours: number) => ({ type: 'ChargePremium' as const, coverageId: 'cov1', periodStart: h(periodStartHours), paid, at: h(atHours) });

describe('coverage decider', () => {
  describe('BindCoverage', () => {
    it('binds nothing against a counterparty in default or on a defaulted contract (issue 8 defect 4)', () => {
      expect(rules(spec.given([]).when(bind({ partiesInDefault: ['cp1'] })).rejection())).toEqual(['quoteId:notInDefault']);
      expect(rules(spec.given([]).when(bind({ contractStatus: 'DEFAULTED' })).rejection())).toEqual(['quoteId:openContract']);
    });

    it('binds a valid quote for its term, with the quote\'s price and the policy\'s grace period', () => {
      expect(bound).toEqual({
        type: 'CoverageBound',
        data: {
          coverageId: 'cov1',
          quoteId: 'q1',
          contractId: 'c1',
          underlying: 'BTC-USD',
          protectedPartyId: 'desk1',
          protectedSide: 'LONG',
          counterpartyId: 'cp1',
          currency: 'USDC',
          coverageLimit: '50000.000000',
          premiumRateAnnual: quote.premiumRateAnnual,
          premiumPerInterval: perInterval,
          intervalHours: 8,
          graceHours: 24,
          stressContribution: quote.stressContribution,
          start: AT,
          end: '2026-01-31T00:00:00.000Z',
          basis: quote.basis,
          at: AT,
        },
      });
    });

    it('rejects an existing coverage id, an unknown quote, and a quote bound to another coverage', () => {
      expect(rules(spec.given([bound]).when(bind()).rejection())).toEqual(['coverageId:unique']);
      expect(rules(spec.given([]).when(bind({ quote: quoteStateOf() })).rejection())).toEqual(['quoteId:knownQuote']);
      const taken = quoteStateOf(issued, { type: 'QuoteBound', data: { quoteId: 'q1', coverageId: 'other', at: AT } });
      const r = spec.given([]).when(bind({ quote: taken })).rejection();
      expect(r.violations[0]).toMatchObject({ field: 'quoteId', rule: 'quoteBound', message: 'quote q1 is already bound to coverage other' });
    });

    it('rejects an expired quote and a contract that is no longer open, at once', () => {
      const r = spec.given([]).when(bind({ at: '2026-01-01T00:15:00.001Z', contractStatus: 'CLOSED' })).rejection();
      expect(rules(r)).toEqual(['quoteId:quoteExpired', 'quoteId:openContract']);
      expect(r.violations[0].message).toMatch(/expired at 2026-01-01T00:15:00.000Z; request a new quote/);
    });
  });

  describe('ChargePremium (in arrears, each interval)', () => {
    it('charges a due period from the protected party, at the bound rate', () => {
      expect(spec.given([bound]).when(charge(0, true, 8)).events()).toEqual([charged(0, 8)]);
    });

    it('rejects a period that has not ended yet, and one out of order', () => {
      expect(rules(spec.given([bound]).when(charge(0, true, 7)).rejection())).toEqual(['periodStart:notDue']);
      expect(rules(spec.given([bound]).when(charge(8, true, 16)).rejection())).toEqual(['periodStart:periodOrder']);
    });

    it('changes nothing when a period is charged twice (a redelivery or a race)', () => {
      expect(spec.given([bound, charged(0, 8)]).when(charge(0, true, 9)).events()).toEqual([]);
      expect(spec.given([bound, charged(0, 8)]).when(charge(0, false, 9)).events()).toEqual([]);
    });

    it('records a missed payment with its grace period, and takes a later payment of it', () => {
      expect(spec.given([bound]).when(charge(0, false, 8)).events()).toEqual([missed(0, 8)]);
      expect(spec.given([bound, missed(0, 8)]).when(charge(0, true, 20)).events()).toEqual([{ ...charged(0, 8), data: { ...charged(0, 8).data, at: h(20) } }]);
      expect(spec.given([bound, missed(0, 8)]).when(charge(0, false, 20)).events()).toEqual([]);
    });

    it('charges a short last period pro rata, rounded up', () => {
      const future = { ...PERP, kind: 'FUTURE' as const, expiry: h(20) };
      const q = quoteIssued({ contract: future });
      const [b] = spec.given([]).when(bind({ quote: quoteStateOf(q) })).events();
      const per = toMinor((q.data as QuoteIssuedData).premiumPerInterval, 6);
      const given = spec.given([b, charged(0, 8, '0'), charged(8, 16, '0')]);
      const [last] = given.when(charge(16, true, 20)).events();
      expect(last.data).toMatchObject({ periodStart: h(16), periodEnd: h(20) });
      expect(toMinor((last.data as { amount: string }).amount, 6)).toBe((per * 4n + 7n) / 8n);
    });
  });

  describe('LapseCoverage', () => {
    it('lapses, saying why, once a missed premium is still unpaid at the end of its grace period', () => {
      expect(rules(spec.given([bound, missed(0, 8)]).when({ type: 'LapseCoverage', coverageId: 'cov1', at: h(31) }).rejection())).toEqual(['coverageId:notOverdue']);
      const [lapsed] = spec.given([bound, missed(0, 8)]).when({ type: 'LapseCoverage', coverageId: 'cov1', at: h(32) }).events();
      expect(lapsed).toMatchObject({ type: 'CoverageLapsed', data: { coverageId: 'cov1', unpaidAmount: perInterval, currency: 'USDC', at: h(32) } });
      expect((lapsed.data as { reason: string }).reason).toMatch(/unpaid at the end of its grace period \(2026-01-02T08:00:00.000Z\)/);
    });

    it('takes no new premium after a lapse, but still takes the one that was owed', () => {
      const lapsed: CoverageEvent = { type: 'CoverageLapsed', data: { coverageId: 'cov1', reason: 'x', unpaidAmount: perInterval, currency: 'USDC', at: h(32) } };
      const given = spec.given([bound, missed(0, 8), missed(8, 16), lapsed]);
      expect(given.when(charge(0, true, 33)).events()[0].type).toBe('PremiumCharged');
      expect(rules(spec.given([bound, charged(0, 8), lapsed]).when(charge(8, true, 33)).rejection())).toEqual(['coverageId:lapsed']);
    });
  });

  describe('EndCoverage', () => {
    it('ends with its contract, once, whatever the number of sources', () => {
      const command = { type: 'EndCoverage' as const, coverageId: 'cov1', reason: 'CONTRACT_CLOSED' as const, detail: 'contract c1 closed at 61000', at: h(10) };
      const [ended] = spec.given([bound]).when(command).events();
      expect(ended).toEqual({ type: 'CoverageEnded', data: { coverageId: 'cov1', reason: 'CONTRACT_CLOSED', detail: 'contract c1 closed at 61000', end: h(10), at: h(10) } });
      expect(spec.given([bound, ended]).when({ ...command, reason: 'CONTRACT_SETTLED' }).events()).toEqual([]);
    });

    it('expires only at the end of its term', () => {
      const expire = (at: string) => ({ type: 'EndCoverage' as const, coverageId: 'cov1', reason: 'EXPIRED' as const, detail: 'term over', at });
      expect(rules(spec.given([bound]).when(expire(h(100))).rejection())).toEqual(['coverageId:notExpired']);
      expect(spec.given([bound]).when(expire(h(720 + 3))).events()[0].data).toMatchObject({ reason: 'EXPIRED', end: h(720) });
    });

    it('rejects ending a coverage that does not exist', () => {
      expect(rules(spec.given([]).when({ type: 'EndCoverage', coverageId: 'cov1', reason: 'EXPIRED', detail: '', at: AT }).rejection())).toEqual(['coverageId:knownCoverage']);
    });
  });

  describe('RepriceCoverage (for the next interval, when inputs move past a threshold)', () => {
    const reprice = (overrides: Record<string, unknown>) => ({
      type: 'RepriceCoverage' as const,
      coverageId: 'cov1',
      contract: PERP,
      market: { ...MARKET, priceAt: h(5) },
      credit: CREDIT,
      policy: TEST_POLICY,
      at: h(5),
      ...overrides,
    });

    it('re-prices from the next period boundary when the mark moves 10% or more, saying why', () => {
      const [e] = spec.given([bound]).when(reprice({ market: { ...MARKET, price: '66600', priceAt: h(5) } })).events();
      expect(e.type).toBe('CoverageRepriced');
      expect(e.data).toMatchObject({ coverageId: 'cov1', oldRateAnnual: quote.premiumRateAnnual, oldPremiumPerInterval: perInterval, effectiveFrom: h(8), at: h(5) });
      expect((e.data as { reason: string }).reason).toBe('BTC-USD mark moved +11% (60000 → 66600), threshold 10%');
      expect(toMinor((e.data as { newPremiumPerInterval: string }).newPremiumPerInterval, 6)).toBeGreaterThan(toMinor(perInterval, 6));
      // The period in progress keeps the old rate; the next one pays the new.
      const given = spec.given([bound, e]);
      expect(given.when(charge(0, true, 8)).events()[0].data).toMatchObject({ amount: perInterval });
      const [next] = spec.given([bound, e, charged(0, 8)]).when(charge(8, true, 16)).events();
      expect(next.data).toMatchObject({ amount: (e.data as { newPremiumPerInterval: string }).newPremiumPerInterval });
    });

    it('re-prices on a vol move of 0.10 or more, or a PD move of 25% or more', () => {
      const [vol] = spec.given([bound]).when(reprice({ market: { ...MARKET, volAnnual: '0.75', priceAt: h(5) } })).events();
      expect((vol.data as { reason: string }).reason).toBe('BTC-USD vol moved +0.15 (0.6 → 0.75), threshold 0.1');
      const [pd] = spec.given([bound]).when(reprice({ credit: { ...CREDIT, pdAnnual: '0.03' } })).events();
      expect((pd.data as { reason: string }).reason).toBe('counterparty PD moved +50% (0.02 → 0.03), threshold 25%');
    });

    it('leaves the price alone on small moves, a closed contract, or less than one interval left', () => {
      expect(spec.given([bound]).when(reprice({ market: { ...MARKET, price: '63000', volAnnual: '0.65', priceAt: h(5) }, credit: { ...CREDIT, pdAnnual: '0.024' } })).events()).toEqual([]);
      expect(spec.given([bound]).when(reprice({ market: { ...MARKET, price: '90000', priceAt: h(5) }, contract: { ...PERP, status: 'CLOSED' } })).events()).toEqual([]);
      expect(spec.given([bound]).when(reprice({ market: { ...MARKET, price: '90000', priceAt: h(715) }, at: h(715) })).events()).toEqual([]);
    });

    it('rejects re-pricing without market data', () => {
      expect(rules(spec.given([bound]).when(reprice({ market: undefined })).rejection())).toEqual(['contractId:marketData']);
    });
  });

  describe('ReduceLimit', () => {
    it('cuts the limit now and the premium pro rata from the next interval, rounded up', () => {
      const [cut] = spec.given([bound]).when({ type: 'ReduceLimit', coverageId: 'cov1', newLimitMinor: 20_000_000_000n, reason: 'pool stressed', at: h(3) }).events();
      const per = toMinor(perInterval, 6);
      expect(cut).toEqual({
        type: 'CoverageLimitReduced',
        data: {
          coverageId: 'cov1',
          oldLimit: '50000.000000',
          newLimit: '20000.000000',
          oldStressContribution: quote.stressContribution,
          newStressContribution: '20000.000000',
          oldPremiumPerInterval: perInterval,
          newPremiumPerInterval: fmt((per * 2n + 4n) / 5n),
          effectiveFrom: h(8),
          reason: 'pool stressed',
          at: h(3),
        },
      });
    });

    it('never raises a limit', () => {
      expect(spec.given([bound]).when({ type: 'ReduceLimit', coverageId: 'cov1', newLimitMinor: 60_000_000_000n, reason: 'x', at: h(3) }).events()).toEqual([]);
    });
  });
});

describe('the premium schedule', () => {
  const stateOf = (...events: CoverageEvent[]) => fold(coverageDecider.evolve, coverageDecider.initialState, [bound, ...events]);
  const at = (state: CoverageState, hours: number, tried?: Set<number>) => nextPremiumAction(state, AT_MS + hours * HOUR_MS, tried);

  it('asks for each period once it has ended, then for the end of the term', () => {
    expect(at(stateOf(), 7.99)).toEqual({ kind: 'none' });
    expect(at(stateOf(), 8)).toMatchObject({ kind: 'charge', periodStartMs: AT_MS, periodEndMs: AT_MS + 8 * HOUR_MS, retry: false });
    expect(at(stateOf(charged(0, 8)), 9)).toEqual({ kind: 'none' });
    const allPaid = Array.from({ length: 90 }, (_, i) => charged(8 * i, 8 * i + 8));
    expect(at(stateOf(...allPaid), 720)).toEqual({ kind: 'expire' });
  });

  it('retries a missed period, lapses at the end of its grace, and skips what this pass already tried', () => {
    const state = stateOf(missed(0, 8));
    expect(at(state, 9)).toMatchObject({ kind: 'charge', periodStartMs: AT_MS, retry: true });
    expect(at(state, 9, new Set([AT_MS]))).toEqual({ kind: 'none' });
    expect(at(state, 16, new Set([AT_MS]))).toMatchObject({ kind: 'charge', periodStartMs: AT_MS + 8 * HOUR_MS, retry: false });
    expect(at(state, 31.9)).toMatchObject({ kind: 'charge', periodStartMs: AT_MS, retry: true });
  });

  it('past the grace deadline, bills the periods up to it (not after), retries nothing, then lapses', () => {
    const overdue = stateOf(missed(0, 8));
    expect(at(overdue, 50)).toMatchObject({ kind: 'charge', periodStartMs: AT_MS + 8 * HOUR_MS, retry: false });
    const billed = stateOf(missed(0, 8), missed(8, 16), charged(16, 24), missed(24, 32));
    expect(at(billed, 50)).toEqual({ kind: 'lapse' });
    expect(at(billed, 50, new Set())).toEqual({ kind: 'lapse' });
  });

  it('settles an ended coverage once its last premium is paid', () => {
    const ended: CoverageEvent = { type: 'CoverageEnded', data: { coverageId: 'cov1', reason: 'CONTRACT_CLOSED', detail: '', end: h(10), at: h(10) } };
    const state = stateOf(charged(0, 8), ended);
    expect(at(state, 10)).toMatchObject({ kind: 'charge', periodStartMs: AT_MS + 8 * HOUR_MS, periodEndMs: AT_MS + 10 * HOUR_MS });
    const stub = toMinor(perInterval, 6);
    expect((at(state, 10) as Extract<PremiumAction, { kind: 'charge' }>).amountMinor).toBe((stub * 2n + 7n) / 8n);
    expect(at(stateOf(charged(0, 8), ended, charged(8, 10)), 11)).toEqual({ kind: 'settled', unpaidMinor: 0n });
  });

  it('property: followed step by step with any payment outcomes, every charge is ≥ 0, periods are contiguous, and a fully paid term pays at least the quoted premium', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constant([true]), fc.array(fc.boolean(), { minLength: 1, maxLength: 120 })), fc.integer({ min: 1, max: 60 }), (payments, tickHours) => {
        let state = stateOf();
        let paid = 0n;
        let nowHours = 0;
        let step = 0;
        for (let guard = 0; guard < 2_000 && state.status === 'ACTIVE'; guard++) {
          nowHours += tickHours;
          const tried = new Set<number>();
          for (let action = at(state, nowHours, tried); action.kind !== 'none' && action.kind !== 'settled'; action = at(state, nowHours, tried)) {
            const command =
              action.kind === 'charge'
                ? { type: 'ChargePremium' as const, coverageId: 'cov1', periodStart: iso(action.periodStartMs), paid: payments[step++ % payments.length], at: h(nowHours) }
                : action.kind === 'lapse'
                  ? { type: 'LapseCoverage' as const, coverageId: 'cov1', at: h(nowHours) }
                  : { type: 'EndCoverage' as const, coverageId: 'cov1', reason: 'EXPIRED' as const, detail: '', at: h(nowHours) };
            if (action.kind === 'charge') tried.add(action.periodStartMs);
            for (const event of coverageDecider.decide(command, state)) {
              if (event.type === 'PremiumCharged') {
                const amount = toMinor(event.data.amount, 6);
                expect(amount >= 0n).toBe(true);
                paid += amount;
              }
              if (event.type === 'PremiumPaymentMissed') expect(Date.parse(event.data.periodStart)).toBe(state.billedThroughMs);
              state = coverageDecider.evolve(state, event);
            }
          }
        }
        expect(state.status === 'ENDED' || state.status === 'LAPSED').toBe(true);
        if (state.status === 'ENDED' && state.unpaid.length === 0) expect(paid).toBeGreaterThanOrEqual(toMinor(quote.premiumTotal, 6));
      }),
      { numRuns: 60 },
    );
  });
});

function fmt(minor: bigint): string {
  return `${minor / 1_000_000n}.${(minor % 1_000_000n).toString().padStart(6, '0')}`;
}
