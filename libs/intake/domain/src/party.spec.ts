import { specFor } from '@backstop/kernel';
import { partyDecider, PartyEvent } from './party';

const spec = specFor(partyDecider);
const at = '2026-01-01T00:00:00.000Z';
const registered: PartyEvent = { type: 'PartyRegistered', data: { partyId: 'cp1', name: 'CP One', role: 'COUNTERPARTY', credit: { rating: 'BB' }, at } };

describe('party decider', () => {
  it('registers a party with its credit profile', () => {
    expect(spec.given([]).when({ type: 'RegisterParty', partyId: 'cp1', name: 'CP One', role: 'COUNTERPARTY', credit: { rating: 'BB' }, at }).events()).toEqual([registered]);
  });

  it('rejects registering the same party twice', () => {
    const r = spec.given([registered]).when({ type: 'RegisterParty', partyId: 'cp1', name: 'x', role: 'DESK', credit: { rating: 'A' }, at }).rejection();
    expect(r.violations).toEqual([expect.objectContaining({ field: 'partyId', rule: 'unique' })]);
  });

  it('rejects a credit profile with both or neither of rating and pdAnnual', () => {
    for (const credit of [{}, { rating: 'A', pdAnnual: '0.01' }]) {
      const r = spec.given([]).when({ type: 'RegisterParty', partyId: 'p', name: 'x', role: 'DESK', credit, at }).rejection();
      expect(r.violations[0]).toMatchObject({ field: 'credit', rule: 'exactlyOne' });
    }
  });

  it('updates a credit profile, keeping the previous one in the event', () => {
    const events = spec.given([registered]).when({ type: 'UpdateCreditProfile', partyId: 'cp1', credit: { pdAnnual: '0.05' }, reason: 'downgrade', at }).events();
    expect(events).toEqual([{ type: 'CreditProfileUpdated', data: { partyId: 'cp1', credit: { pdAnnual: '0.05' }, previous: { rating: 'BB' }, reason: 'downgrade', at } }]);
  });

  it('rejects a credit update for an unknown party', () => {
    const r = spec.given([]).when({ type: 'UpdateCreditProfile', partyId: 'nobody', credit: { rating: 'A' }, reason: 'x', at }).rejection();
    expect(r.violations[0]).toMatchObject({ field: 'partyId', rule: 'knownParty' });
  });
});
