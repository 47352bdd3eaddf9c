/**
 * Issue 8, defect 6 (SPEC §3.8): the pool advances margin for protected exposure only — capped by
 * the remaining coverage limits of the parties protected against the defaulter, counted against
 * those limits, earmarked for them in the waterfall, and repaid first from the party's next deposit.
 */
import { specFor, toMinor } from '@backstop/kernel';
import { PoolCommand, PoolEvent, poolDecider, advanceOutstanding } from './pool';
import { asProvider, history, stateOf, T0 } from './testing/fixtures';

const spec = specFor(poolDecider);
const junior1000 = history(poolDecider, [{ type: 'DepositCapital', providerId: 'p1', tranche: 'JUNIOR', amount: '1000', provider: asProvider('p1'), at: T0 }]);
const cover = (amount: string, protections: { partyId: string; coverageLimit: string }[], callId = 'm1'): PoolCommand => ({
  type: 'CoverMarginCall',
  callId,
  partyId: 'cp1',
  amount,
  currency: 'USDC',
  protections,
  at: T0,
});
const charged = (events: readonly PoolEvent[]) => (events.find((e) => e.type === 'DefaultLossCharged') as Extract<PoolEvent, { type: 'DefaultLossCharged' }>).data;
const usdc = (text: string) => toMinor(text, 6);

describe('pool margin advance (SPEC §3.8)', () => {
  it("the issue's example: junior 1,000, advance 100; unprotected X loses 100, protected Y 150 with limit 100", () => {
    // Y is the only party protected against cp1 (limit 100): the whole call of 100 is advanced for Y.
    const advanced = history(poolDecider, [cover('100', [{ partyId: 'Y', coverageLimit: '100' }])], junior1000);
    expect(advanced.at(-1)!.data).toMatchObject({ amount: '100.000000', perProtectedParty: { Y: '100.000000' } });
    const events = spec
      .given(advanced)
      .when({
        type: 'ChargeDefaultLoss',
        defaultId: 'cp1',
        partyId: 'cp1',
        losses: [
          { partyId: 'X', loss: '100', coverageLimit: '0' },
          { partyId: 'Y', loss: '150', coverageLimit: '100' },
        ],
        contractCollateral: '0',
        at: T0,
      })
      .events();
    const d = charged(events);
    const x = d.parties.find((p) => p.partyId === 'X')!;
    const y = d.parties.find((p) => p.partyId === 'Y')!;
    // X bought no protection: no pool money at all, the advance included.
    expect(x.fromPool).toBe('0.000000');
    expect(x.fromDefaulter).toBe('0.000000');
    expect(d.layers.find((l) => l.layer === 'POOL_MARGIN_ADVANCE')!.perParty).toEqual({ X: '0.000000', Y: '100.000000' });
    // Y: the advance counts against its limit; the junior tranche adds nothing beyond it.
    expect(y.fromPool).toBe('100.000000');
    const state = stateOf(poolDecider, [...advanced, ...events]);
    const poolOut = usdc('1000') - state.tranches.JUNIOR.capitalMinor;
    expect(poolOut).toBeLessThanOrEqual(usdc('100'));
    expect(state.tranches.JUNIOR.capitalMinor).toBe(usdc('900'));
  });

  it('advances nothing when no one is protected against the party, and says why', () => {
    const [event] = spec.given(junior1000).when(cover('100', [])).events();
    expect(event.data).toMatchObject({ amount: '0.000000', requested: '100.000000', uncovered: '100.000000', perProtectedParty: {} });
    expect((event.data as { capReason?: string }).capReason).toMatch(/protected exposure only/);
    expect(stateOf(poolDecider, [...junior1000, event]).tranches.JUNIOR.capitalMinor).toBe(usdc('1000'));
  });

  it('caps the advance by the limits left, counting earlier advances against them', () => {
    const first = history(poolDecider, [cover('70', [{ partyId: 'Y', coverageLimit: '100' }, { partyId: 'Z', coverageLimit: '40' }])], junior1000);
    // 70 over headroom Y 100 : Z 40, pro rata.
    expect(first.at(-1)!.data).toMatchObject({ amount: '70.000000', perProtectedParty: { Y: '50.000000', Z: '20.000000' } });
    const [second] = spec.given(first).when(cover('500', [{ partyId: 'Y', coverageLimit: '100' }, { partyId: 'Z', coverageLimit: '40' }], 'm2')).events();
    // Left: Y 50, Z 20 → 70 more at most, never the 500 asked.
    expect(second.data).toMatchObject({ amount: '70.000000', requested: '500.000000', uncovered: '430.000000', perProtectedParty: { Y: '50.000000', Z: '20.000000' } });
  });

  it('is repaid to the pool first from the party’s next deposit, with an event, releasing the earmark', () => {
    const advanced = history(poolDecider, [cover('100', [{ partyId: 'Y', coverageLimit: '100' }])], junior1000);
    const deposit: PoolCommand = { type: 'RepayMarginAdvance', partyId: 'cp1', amount: '60', currency: 'USDC', reference: 'dep-1', at: T0 };
    const [repaid] = spec.given(advanced).when(deposit).events();
    expect(repaid).toMatchObject({
      type: 'MarginAdvanceRepaid',
      data: { partyId: 'cp1', amount: '60.000000', perProvider: { JUNIOR: { p1: '60.000000' }, SENIOR: {} }, perProtectedParty: { Y: '60.000000' }, outstandingAfter: '40.000000' },
    });
    const state = stateOf(poolDecider, [...advanced, repaid]);
    expect(advanceOutstanding(state, 'cp1')).toBe(usdc('40'));
    expect(state.positions.JUNIOR.get('p1')).toMatchObject({ advancedMinor: usdc('40'), restitutionMinor: usdc('60') });
    // Y's limit is free again for 60: a new call can be advanced up to it.
    const [again] = spec.given([...advanced, repaid]).when(cover('500', [{ partyId: 'Y', coverageLimit: '100' }], 'm2')).events();
    expect(again.data).toMatchObject({ amount: '60.000000' });
    // A deposit when nothing is outstanding repays nothing.
    expect(spec.given(junior1000).when(deposit).events()).toEqual([]);
  });
});
