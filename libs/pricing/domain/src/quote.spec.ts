import fc from 'fast-check';
import { DAY_MS, fold, iso, specFor, toMinor } from '@backstop/kernel';
import { priceCoverage } from '@backstop/pricing-model';
import { quoteDecider, QuoteEvent, RequestQuote } from './quote';
import { seedOf } from './numbers';
import { AT, CREDIT, MARKET, PERP, requestQuote, TEST_POLICY } from './testing/fixtures';

const spec = specFor(quoteDecider);
const rules = (r: { violations: readonly { field: string; rule: string }[] }) => r.violations.map((v) => `${v.field}:${v.rule}`);

describe('quote decider', () => {
  describe('RequestQuote', () => {
    const [issued] = spec.given([]).when(requestQuote()).events();

    it('quotes nothing on a defaulter\'s contract or against a counterparty in default (issue 8 defect 4)', () => {
      const against = spec.given([]).when(requestQuote({ partiesInDefault: ['cp1'] })).rejection();
      expect(rules(against)).toEqual(['contractId:notInDefault']);
      expect(against.violations[0].message).toMatch(/counterparty cp1 is in default: no coverage is quoted or bound against a party in default/);
      const own = spec.given([]).when(requestQuote({ partiesInDefault: ['desk1'] })).rejection();
      expect(own.violations[0].message).toMatch(/party desk1 is in default: no coverage is quoted or bound on its contracts/);
      expect(rules(spec.given([]).when(requestQuote({ contract: { ...PERP, status: 'DEFAULTED' } })).rejection())).toContain('contractId:openContract');
    });

    it('issues a quote showing every component, valid for the policy window', () => {
      expect(issued.type).toBe('QuoteIssued');
      const q = issued.data as Extract<QuoteEvent, { type: 'QuoteIssued' }>['data'];
      expect(q).toMatchObject({
        quoteId: 'q1',
        contractId: 'c1',
        protectedPartyId: 'desk1',
        protectedSide: 'LONG',
        counterpartyId: 'cp1',
        currency: 'USDC',
        coverageLimit: '50000.000000',
        termDays: 30,
        termEnd: '2026-01-31T00:00:00.000Z',
        validUntil: '2026-01-01T00:15:00.000Z',
        intervalHours: 8,
        basis: { spot: '60000', volAnnual: '0.6', pdAnnual: '0.02', collateralHeld: '12000.000000', seed: seedOf('q1') },
      });
      const c = q.components;
      expect(Object.keys(c)).toEqual(
        expect.arrayContaining(['market', 'collateralHeld', 'expectedExposure', 'credit', 'lgd', 'expectedLoss', 'stressContribution', 'capitalCharge', 'loading', 'premiumTotal', 'model']),
      );
      expect(c.credit).toMatchObject({ pdAnnual: '0.02', source: 'intake profile' });
      expect(c.expectedExposure.profile.length).toBeLessThanOrEqual(13);
      expect(c.model).toMatchObject({ paths: 200, steps: 12, seed: seedOf('q1') });
      // The components add up: premium = EL + wrong-way risk + capital + loading (to display rounding).
      expect(Number(c.premiumTotal)).toBeCloseTo(Number(c.expectedLoss) + Number(c.wrongWayRisk) + Number(c.capitalCharge) + Number(c.loading), 4);
      expect(q.stressContribution).toBe(c.stressContribution);
    });

    it('charges per interval the premium spread over the term, rounded UP to the minor unit', () => {
      const q = issued.data as Extract<QuoteEvent, { type: 'QuoteIssued' }>['data'];
      const price = priceCoverage({
        terms: { kind: 'PERPETUAL', underlying: 'BTC-USD', size: 2, entryPrice: 60_000 },
        protectedSide: 'LONG',
        spot: 60_000,
        volAnnual: 0.6,
        collateralHeld: 12_000,
        coverageLimit: 50_000,
        startMs: Date.parse(AT),
        termMs: 30 * DAY_MS,
        credit: { pdAnnual: 0.02 },
        seed: seedOf('q1'),
        paths: 200,
        steps: 12,
        stressContribution: Number(q.stressContribution),
      });
      const exact = (price.premiumTotal * 8) / (30 * 24);
      const perInterval = Number(toMinor(q.premiumPerInterval, 6)) / 1e6;
      expect(perInterval).toBeGreaterThanOrEqual(exact);
      expect(perInterval - exact).toBeLessThan(1e-6);
    });

    it('cuts the term at a dated contract expiry', () => {
      const future = { ...PERP, kind: 'FUTURE' as const, expiry: '2026-01-11T00:00:00.000Z' };
      const [e] = spec.given([]).when(requestQuote({ contract: future })).events();
      expect(e.data).toMatchObject({ termDays: 30, termEnd: '2026-01-11T00:00:00.000Z' });
    });

    it('rejects a second quote with the same id', () => {
      expect(rules(spec.given([issued]).when(requestQuote()).rejection())).toEqual(['quoteId:unique']);
    });

    it('rejects an unknown or closed contract', () => {
      expect(rules(spec.given([]).when(requestQuote({ contract: undefined })).rejection())).toEqual(['contractId:knownContract']);
      expect(rules(spec.given([]).when(requestQuote({ contract: { ...PERP, status: 'CLOSED' } })).rejection())).toEqual(['contractId:openContract']);
    });

    it('rejects a protected party that is not a side of the contract', () => {
      expect(rules(spec.given([]).when(requestQuote({ protectedPartyId: 'someone' })).rejection())).toEqual(['protectedPartyId:contractParty']);
    });

    it('rejects a limit that is not positive or has more digits than the currency, and a term out of range, all at once', () => {
      const r = spec.given([]).when(requestQuote({ coverageLimit: '1.0000001', termDays: 0 })).rejection();
      expect(rules(r)).toEqual(['coverageLimit:currencyScale', 'termDays:range']);
      expect(rules(spec.given([]).when(requestQuote({ coverageLimit: '0' })).rejection())).toEqual(['coverageLimit:positive']);
      expect(rules(spec.given([]).when(requestQuote({ termDays: 366 })).rejection())).toEqual(['termDays:range']);
    });

    it('rejects an expired contract and a covered term shorter than one premium interval', () => {
      const expired = { ...PERP, kind: 'FUTURE' as const, expiry: '2025-12-31T00:00:00.000Z' };
      expect(rules(spec.given([]).when(requestQuote({ contract: expired })).rejection())).toEqual(['contractId:expired']);
      const soon = { ...PERP, kind: 'FUTURE' as const, expiry: '2026-01-01T05:00:00.000Z' };
      const r = spec.given([]).when(requestQuote({ contract: soon })).rejection();
      expect(rules(r)).toEqual(['termDays:termTooShort']);
      expect(r.violations[0].message).toMatch(/shorter than one 8 h premium interval/);
    });

    it('rejects without a mark, without a vol, on a stale mark, or without the counterparty\'s credit', () => {
      expect(rules(spec.given([]).when(requestQuote({ market: undefined })).rejection())).toEqual(['contractId:marketData']);
      expect(rules(spec.given([]).when(requestQuote({ market: { ...MARKET, volAnnual: undefined } })).rejection())).toEqual(['contractId:volatility']);
      const stale = spec.given([]).when(requestQuote({ market: { ...MARKET, priceAt: '2025-12-30T00:00:00.000Z' } })).rejection();
      expect(rules(stale)).toEqual(['contractId:staleMark']);
      expect(stale.violations[0].message).toMatch(/older than 24 h/);
      const noCredit = spec.given([]).when(requestQuote({ credit: undefined })).rejection();
      expect(noCredit.violations[0]).toMatchObject({ field: 'contractId', rule: 'creditProfile', message: 'no credit profile for counterparty cp1' });
    });

    it('rejects protection against a counterparty already in default', () => {
      const r = spec.given([]).when(requestQuote({ credit: { ...CREDIT, pdAnnual: '1' } })).rejection();
      expect(rules(r)).toEqual(['contractId:inDefault']);
    });

    it('prices a rated counterparty from the rating table', () => {
      const [e] = spec.given([]).when(requestQuote({ credit: { partyId: 'cp1', rating: 'BB', source: 'feed', at: AT } })).events();
      expect((e.data as { components: { credit: unknown } }).components.credit).toMatchObject({ pdAnnual: '0.0072', rating: 'BB', source: 'feed' });
    });
  });

  describe('MarkQuoteBound', () => {
    const [issued] = spec.given([]).when(requestQuote()).events();
    const bound: QuoteEvent = { type: 'QuoteBound', data: { quoteId: 'q1', coverageId: 'cov1', at: AT } };

    it('records the coverage a quote was bound to, once', () => {
      expect(spec.given([issued]).when({ type: 'MarkQuoteBound', quoteId: 'q1', coverageId: 'cov1', at: AT }).events()).toEqual([bound]);
      expect(spec.given([issued, bound]).when({ type: 'MarkQuoteBound', quoteId: 'q1', coverageId: 'cov1', at: AT }).events()).toEqual([]);
    });

    it('rejects binding a quote to a second coverage, or an unknown quote', () => {
      expect(rules(spec.given([issued, bound]).when({ type: 'MarkQuoteBound', quoteId: 'q1', coverageId: 'cov2', at: AT }).rejection())).toEqual(['quoteId:quoteBound']);
      expect(rules(spec.given([]).when({ type: 'MarkQuoteBound', quoteId: 'q1', coverageId: 'cov1', at: AT }).rejection())).toEqual(['quoteId:knownQuote']);
    });
  });
});

describe('quote properties (few paths: they check rules, not accuracy)', () => {
  const fast = { ...TEST_POLICY, model: { ...TEST_POLICY.model, paths: 48, steps: 6 } };
  const perInterval = (events: QuoteEvent[]) => toMinor((events[0].data as { premiumPerInterval: string }).premiumPerInterval, 6);
  const quoteOf = (overrides: Partial<RequestQuote>) => quoteDecider.decide(requestQuote({ policy: fast, ...overrides }), quoteDecider.initialState);
  const side = fc.constantFrom('desk1', 'cp1');
  const contract = fc.record({
    kind: fc.constantFrom('PERPETUAL' as const, 'FUTURE' as const),
    entryPrice: fc.integer({ min: 20_000, max: 100_000 }),
    collateral: fc.integer({ min: 0, max: 30_000 }),
  }).map(({ kind, entryPrice, collateral }) => ({
    ...PERP,
    kind,
    entryPrice: String(entryPrice),
    collateral: { LONG: `${collateral}.000000`, SHORT: `${collateral}.000000` },
    ...(kind === 'FUTURE' ? { expiry: '2026-06-30T00:00:00.000Z' } : {}),
  }));

  it('a premium is never negative, and replaying a quote stream decides the identical quote', () => {
    fc.assert(
      fc.property(
        contract,
        side,
        fc.stringMatching(/^[a-z0-9]{1,12}$/),
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 1, max: 365 }),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        fc.double({ min: 0, max: 3, noNaN: true }),
        (c, protectedPartyId, quoteId, limit, termDays, pd, vol) => {
          const command = requestQuote({
            quoteId,
            contract: c,
            protectedPartyId,
            coverageLimit: String(limit),
            termDays,
            credit: { ...CREDIT, partyId: protectedPartyId === 'desk1' ? 'cp1' : 'desk1', pdAnnual: pd.toFixed(12) },
            market: { ...MARKET, volAnnual: vol.toFixed(6) },
            policy: fast,
          });
          const events = quoteDecider.decide(command, quoteDecider.initialState);
          const q = events[0].data as { premiumPerInterval: string; premiumTotal: string; premiumRateAnnual: string };
          expect(toMinor(q.premiumPerInterval, 6) >= 0n).toBe(true);
          expect(toMinor(q.premiumTotal, 6) >= 0n).toBe(true);
          expect(Number(q.premiumRateAnnual)).toBeGreaterThanOrEqual(0);
          // Replay: rebuilding the state from the events and deciding the same command afresh.
          const replayed = fold(quoteDecider.evolve, quoteDecider.initialState, events);
          expect(replayed.quote).toEqual(events[0].data);
          expect(quoteDecider.decide(command, quoteDecider.initialState)).toEqual(events);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('a higher PD never lowers the premium, within the model\'s documented domain (PD ≤ 60%, term ≤ 1 year)', () => {
    fc.assert(
      fc.property(contract, side, fc.double({ min: 0, max: 0.6, noNaN: true }), fc.double({ min: 0, max: 0.6, noNaN: true }), fc.integer({ min: 1, max: 365 }), (c, who, a, b, termDays) => {
        const credit = (pd: number) => ({ ...CREDIT, partyId: who === 'desk1' ? 'cp1' : 'desk1', pdAnnual: pd.toFixed(12) });
        const low = quoteOf({ contract: c, protectedPartyId: who, termDays, credit: credit(Math.min(a, b)) });
        const high = quoteOf({ contract: c, protectedPartyId: who, termDays, credit: credit(Math.max(a, b)) });
        expect(perInterval(high) >= perInterval(low)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it('a higher vol never lowers the premium while the limit does not bind (the model\'s documented domain)', () => {
    fc.assert(
      fc.property(contract, side, fc.double({ min: 0.05, max: 2, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (c, who, vol, extra) => {
        // A limit no simulated exposure reaches (see the model's vol property): 2 × size × (48 paths × spot + entry).
        const coverageLimit = String(2 * 2 * (48 * 60_000 + Number(c.entryPrice)));
        const at = (v: number) => quoteOf({ contract: c, protectedPartyId: who, coverageLimit, market: { ...MARKET, volAnnual: v.toFixed(6) } });
        const calm = at(vol);
        const wild = at(Number(vol.toFixed(6)) + Number(extra.toFixed(6)));
        expect(perInterval(wild) >= perInterval(calm)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it('quotes issued at different instants of the same inputs differ only in their dates', () => {
    const later = iso(Date.parse(AT) + 3_600_000);
    const a = quoteOf({});
    const b = quoteOf({ at: later, market: { ...MARKET, priceAt: later } });
    expect((a[0].data as { premiumPerInterval: string }).premiumPerInterval).toBe((b[0].data as { premiumPerInterval: string }).premiumPerInterval);
  });
});

describe('capital charge against the pool\'s open coverages (issue 11: marginal Cover-2, not an empty book)', () => {
  type Issued = Extract<QuoteEvent, { type: 'QuoteIssued' }>['data'];
  const quoteWith = (book?: RequestQuote['book']): Issued => {
    const [event] = spec.given([]).when(requestQuote({ coverageLimit: '1000000', book })).events();
    return event.data as Issued;
  };
  const open = (coverageId: string, contract: typeof PERP, counterpartyId: string, protectedPartyId: string, limit = '1000000') => ({
    coverageId,
    contract,
    protectedPartyId,
    counterpartyId,
    currency: 'USDC',
    coverageLimitMinor: toMinor(limit, 6),
  });
  // The worst up-move in the stress set for a BTC perpetual: the 5-day window of 2017-12-02 (+65.65%)
  // is larger than the +5σ·√(5/365) hypothetical at vol 0.6 (e^0.351 − 1 = +42%). The protected
  // long's gain there on 2 BTC at 60 000, plus the 1% close-out cost at the shocked mark:
  const up = 0.6565;
  const gain = 2 * 60_000 * up + 0.01 * 2 * 60_000 * (1 + up);
  const alone = quoteWith();

  it('against an empty book is the coverage\'s own stressed loss net of cp1\'s collateral', () => {
    expect(Number(alone.stressContribution)).toBeCloseTo(gain - 12_000, 0);
  });

  it('a second coverage on the same contract (its collateral already backs the first) costs more capital', () => {
    const second = quoteWith({ coverages: [open('cov0', PERP, 'cp1', 'desk1')], markets: { 'BTC-USD': MARKET } });
    // cp1 owes 2·gain − 12 000 with both, gain − 12 000 with the first: the second adds the whole gain.
    expect(Number(second.stressContribution)).toBeCloseTo(gain, 0);
    expect(Number(second.components.capitalCharge)).toBeGreaterThan(Number(alone.components.capitalCharge));
    expect(Number(second.premiumTotal)).toBeGreaterThan(Number(alone.premiumTotal));
    // capital = cost of capital × contribution × years, so the charges scale with the contributions
    expect(Number(second.components.capitalCharge) / Number(alone.components.capitalCharge)).toBeCloseTo(gain / (gain - 12_000), 3);
  });

  it('a coverage on a small third counterparty outside the two worst costs less capital', () => {
    // Two larger counterparties, short 10 BTC each with no collateral, lose 10·gain/2 each on the same up-move:
    // cp1's loss (gain − 12 000) stays third, so it adds nothing to Cover 2.
    const big = (id: string, party: string): typeof PERP => ({ ...PERP, contractId: id, size: '10', longPartyId: party, shortPartyId: `${party}-cp`, collateral: { LONG: '0', SHORT: '0' } });
    const book = {
      coverages: [open('covX', big('cx', 'dx'), 'dx-cp', 'dx'), open('covY', big('cy', 'dy'), 'dy-cp', 'dy')],
      markets: { 'BTC-USD': MARKET },
    };
    const diversified = quoteWith(book);
    expect(Number(diversified.stressContribution)).toBe(0);
    expect(Number(diversified.components.capitalCharge)).toBeLessThan(Number(alone.components.capitalCharge));
    // Protecting the other way (cp1 long, a down-move) is not outranked by the book's up-move losses either way:
    // only coverages in the quote's currency and open contracts count.
    expect(Number(quoteWith({ ...book, coverages: book.coverages.map((c) => ({ ...c, currency: 'USD' })) }).stressContribution)).toBeCloseTo(gain - 12_000, 0);
  });
});
