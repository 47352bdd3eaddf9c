import { specFor } from '@backstop/kernel';
import { capacityAvailable, capacityDecider, CapacityEvent } from './capacity';
import { QuoteIssuedData } from './quote';
import { AT, quoteIssued } from './testing/fixtures';

const spec = specFor(capacityDecider);
const quote = quoteIssued().data as QuoteIssuedData;
const rules = (r: { violations: readonly { field: string; rule: string }[] }) => r.violations.map((v) => `${v.field}:${v.rule}`);
const LAG_MS = 60_000;

const noted = (headroom: string, assessedAt = AT): CapacityEvent => ({
  type: 'CapacityAssessmentNoted',
  data: { poolId: 'main', currency: 'USDC', headroom, capital: '1000000.000000', cover2Requirement: '0.000000', assessedAt, sourceEventId: `e-${headroom}`, at: assessedAt },
});
const reserve = (coverageId: string, q: QuoteIssuedData = quote, at = '2026-01-01T00:01:00.000Z') => ({ type: 'ReserveCapacity' as const, coverageId, quote: q, assessmentLagMs: LAG_MS, at });

describe('capacity book', () => {
  it('reserves a coverage\'s stress contribution out of the latest assessment\'s headroom', () => {
    const [reserved] = spec.given([noted('100000.000000')]).when(reserve('cov1')).events();
    expect(reserved).toEqual({
      type: 'CapacityReserved',
      data: {
        coverageId: 'cov1',
        quoteId: 'q1',
        quoteValidUntil: quote.validUntil,
        contractId: 'c1',
        underlying: 'BTC-USD',
        protectedPartyId: 'desk1',
        counterpartyId: 'cp1',
        currency: 'USDC',
        stressContribution: quote.stressContribution,
        availableBefore: '100000.000000',
        at: '2026-01-01T00:01:00.000Z',
      },
    });
  });

  it('rejects a bind before any capacity assessment, saying so', () => {
    const r = spec.given([]).when(reserve('cov1')).rejection();
    expect(r.violations[0]).toMatchObject({ field: 'quoteId', rule: 'noCapacityAssessment' });
    expect(r.violations[0].message).toMatch(/^no capacity assessment yet for USDC/);
  });

  it('rejects a bind the pool cannot carry, naming the capacity left', () => {
    const r = spec.given([noted('1000.000000')]).when(reserve('cov1')).rejection();
    expect(r.violations[0]).toMatchObject({ field: 'quoteId', rule: 'poolCapacity' });
    expect(r.violations[0].message).toMatch(new RegExp(`needs ${quote.stressContribution} USDC of stress capacity; the pool has 1000.000000 USDC left`));
  });

  it('counts reservations made since the assessment, so racing binds cannot both take the last capacity', () => {
    const q2 = quoteIssued({ quoteId: 'q2' }).data as QuoteIssuedData;
    const headroom = (Number(quote.stressContribution) * 1.5).toFixed(6);
    const [first] = spec.given([noted(headroom)]).when(reserve('cov1')).events();
    const r = spec.given([noted(headroom), first]).when(reserve('cov2', q2)).rejection();
    expect(r.violations[0].message).toMatch(new RegExp(`less ${quote.stressContribution} reserved since`));
    // A fresh assessment (which counts cov1) resets what is subtracted, apart from the lag window.
    const later = noted(headroom, '2026-01-01T00:05:00.000Z');
    expect(spec.given([noted(headroom), first, later]).when(reserve('cov2', q2, '2026-01-01T00:06:00.000Z')).events()[0].type).toBe('CapacityReserved');
    const withinLag = noted(headroom, '2026-01-01T00:01:30.000Z');
    expect(rules(spec.given([noted(headroom), first, withinLag]).when(reserve('cov2', q2)).rejection())).toEqual(['quoteId:poolCapacity']);
  });

  it('binds a quote once and a coverage id once; the same bind again changes nothing', () => {
    const [first] = spec.given([noted('1000000.000000')]).when(reserve('cov1')).events();
    const given = spec.given([noted('1000000.000000'), first]);
    expect(given.when(reserve('cov1')).events()).toEqual([]);
    expect(rules(given.when(reserve('cov2')).rejection())).toEqual(['quoteId:quoteBound']);
    expect(rules(given.when(reserve('cov1', quoteIssued({ quoteId: 'q2' }).data as QuoteIssuedData)).rejection())).toEqual(['coverageId:unique']);
  });

  it('releases a coverage\'s capacity once, and ignores an assessment older than the one it holds', () => {
    const [first] = spec.given([noted('1000000.000000')]).when(reserve('cov1')).events();
    const release = { type: 'ReleaseCapacity' as const, coverageId: 'cov1', reason: 'coverage ended', at: AT };
    const [released] = spec.given([noted('1000000.000000'), first]).when(release).events();
    expect(released.data).toMatchObject({ coverageId: 'cov1', stressContribution: quote.stressContribution, reason: 'coverage ended' });
    expect(spec.given([noted('1000000.000000'), first, released]).when(release).events()).toEqual([]);
    const newer = noted('5.000000', '2026-01-02T00:00:00.000Z');
    const older = { type: 'NoteCapacityAssessment' as const, poolId: 'main', currency: 'USDC', headroom: '9.000000', capital: '1', cover2Requirement: '0', assessedAt: AT, sourceEventId: 'old', at: AT };
    expect(spec.given([newer]).when(older).events()).toEqual([]);
    const state = spec.given([newer]).state;
    expect(capacityAvailable(state, 'USDC', LAG_MS)?.availableMinor).toBe(5_000_000n);
    expect(capacityAvailable(state, 'USDT', LAG_MS)).toBeUndefined();
  });

  it('rejects an assessment it could not read back: a headroom that is not an amount, an unknown currency', () => {
    const note = { type: 'NoteCapacityAssessment' as const, poolId: 'main', currency: 'USDC', headroom: '-12.5', capital: '', cover2Requirement: '', assessedAt: AT, sourceEventId: 'x', at: AT };
    expect(spec.given([]).when(note).events()[0].data).toMatchObject({ headroom: '-12.5' });
    expect(rules(spec.given([]).when({ ...note, headroom: 'lots' }).rejection())).toEqual(['headroom:currencyScale']);
    expect(rules(spec.given([]).when({ ...note, currency: 'EUR' }).rejection())).toEqual(['currency:isCurrency']);
  });
});

describe('capacity gate at bind: the marginal Cover-2 against the book at bind (issue 11)', () => {
  it('reserves the stress measured at bind, not the quote\'s, and refuses when that exceeds what is left', () => {
    const atBind = (Number(quote.stressContribution) + 1_000).toFixed(6);
    const [reserved] = spec.given([noted('1000000.000000')]).when({ ...reserve('cov1'), stressAtBind: atBind }).events();
    expect((reserved.data as { stressContribution: string }).stressContribution).toBe(atBind);
    const tight = (Number(quote.stressContribution) + 500).toFixed(6);
    const r = spec.given([noted(tight)]).when({ ...reserve('cov1'), stressAtBind: atBind }).rejection();
    expect(rules(r)).toEqual(['quoteId:poolCapacity']);
    expect(r.violations[0].message).toContain(`needs ${atBind} USDC`);
    // a book that diversifies it lets the bind through where the quote's figure would not
    const [fits] = spec.given([noted(tight)]).when({ ...reserve('cov1'), stressAtBind: '0.000000' }).events();
    expect(fits.type).toBe('CapacityReserved');
    expect(rules(spec.given([noted('1000000.000000')]).when({ ...reserve('cov1'), stressAtBind: '1.0000001' }).rejection())).toEqual(['stressAtBind:currencyScale']);
  });
});
