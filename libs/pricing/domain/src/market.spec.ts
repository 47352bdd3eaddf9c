import { specFor } from '@backstop/kernel';
import { creditDecider, latestCredit, marketDecider } from './market';
import { AT } from './testing/fixtures';

const rules = (r: { violations: readonly { field: string; rule: string }[] }) => r.violations.map((v) => `${v.field}:${v.rule}`);

describe('market observations', () => {
  const spec = specFor(marketDecider);
  const observed = { type: 'MarketObserved' as const, data: { underlying: 'BTC-USD', price: '60000', volAnnual: '0.6', at: AT } };

  it('records a mark, keeping the last vol when a mark comes without one', () => {
    expect(spec.given([]).when({ type: 'ObserveMark', underlying: 'BTC-USD', price: '60000', volAnnual: '0.6', at: AT }).events()).toEqual([observed]);
    const next = { type: 'MarketObserved' as const, data: { underlying: 'BTC-USD', price: '61000', at: '2026-01-01T01:00:00.000Z' } };
    expect(spec.given([observed, next]).state).toEqual({ underlying: 'BTC-USD', price: '61000', priceAt: '2026-01-01T01:00:00.000Z', volAnnual: '0.6', volAt: AT });
  });

  it('ignores a mark older than the one it holds, and rejects a non-positive price or an absurd vol', () => {
    expect(spec.given([observed]).when({ type: 'ObserveMark', underlying: 'BTC-USD', price: '1', at: '2025-12-31T00:00:00.000Z' }).events()).toEqual([]);
    expect(rules(spec.given([]).when({ type: 'ObserveMark', underlying: 'BTC-USD', price: '0', volAnnual: '11', at: AT }).rejection())).toEqual(['price:positive', 'volAnnual:range']);
  });
});

describe('credit observations', () => {
  const spec = specFor(creditDecider);

  it('records a score with a rating or a PD, not both, and a known rating', () => {
    expect(spec.given([]).when({ type: 'ObserveCredit', partyId: 'cp1', rating: 'BB+', source: 'feed', at: AT }).events()[0].data).toEqual({ partyId: 'cp1', rating: 'BB+', source: 'feed', at: AT });
    expect(rules(spec.given([]).when({ type: 'ObserveCredit', partyId: 'cp1', rating: 'A', pdAnnual: '0.1', source: 'feed', at: AT }).rejection())).toEqual(['rating:exactlyOne']);
    expect(rules(spec.given([]).when({ type: 'ObserveCredit', partyId: 'cp1', rating: 'ZZ', source: 'feed', at: AT }).rejection())).toEqual(['rating:knownRating']);
    expect(rules(spec.given([]).when({ type: 'ObserveCredit', partyId: 'cp1', pdAnnual: '1.2', source: 'feed', at: AT }).rejection())).toEqual(['pdAnnual:range']);
  });

  it('prices on the later of intake\'s profile and the feed', () => {
    const profile = { partyId: 'cp1', rating: 'A', source: 'intake profile', at: AT };
    const feed = { partyId: 'cp1', pdAnnual: '0.05', source: 'feed', at: '2026-01-02T00:00:00.000Z' };
    expect(latestCredit(profile, feed)).toBe(feed);
    expect(latestCredit({ ...profile, at: '2026-01-03T00:00:00.000Z' }, feed)?.source).toBe('intake profile');
    expect(latestCredit(undefined, feed)).toBe(feed);
  });
});
