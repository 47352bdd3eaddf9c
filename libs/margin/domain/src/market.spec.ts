import { specFor } from '@backstop/kernel';
import { MarketEvent, marketDecider, RecordMark } from './market';

const policy = { bandFraction: 0.1, maxStaleMs: 60_000, jumpConfirmations: 3 };
const spec = specFor(marketDecider(policy));
const T0 = '2026-01-01T00:00:00.000Z';
const at = (minutes: number) => new Date(Date.parse(T0) + minutes * 60_000).toISOString();
const mark = (price: string, minutes: number, extra: Partial<RecordMark> = {}): RecordMark => ({
  type: 'RecordMark',
  underlying: 'BTC-USD',
  price,
  at: at(minutes),
  receivedAt: at(minutes),
  ...extra,
});
const sane = (price: string, minutes: number, extra: Record<string, unknown> = {}): MarketEvent => ({
  type: 'MarkRecorded',
  data: { underlying: 'BTC-USD', price, sane: true, at: at(minutes), ...extra },
});

describe('market decider (mark sanity)', () => {
  it('records a first mark as sane, with its vol and funding rate', () => {
    expect(spec.given([]).when(mark('60000', 0, { volAnnual: '0.6', fundingRate: '0.0001' })).events()).toEqual([sane('60000', 0, { volAnnual: '0.6', fundingRate: '0.0001' })]);
  });

  it('accepts a move within the band of the last sane mark', () => {
    expect(spec.given([sane('60000', 0)]).when(mark('65999', 1)).events()[0].data).toMatchObject({ sane: true, price: '65999' });
  });

  it('flags a non-positive price first, whatever else is wrong', () => {
    const [event] = spec.given([sane('60000', 0)]).when(mark('0', -10)).events();
    expect(event.data).toMatchObject({ sane: false, flag: 'NON_POSITIVE' });
    expect(spec.given([]).when(mark('-5', 0)).events()[0].data.flag).toBe('NON_POSITIVE');
  });

  it('flags a mark older than maxStaleMs when it reached us', () => {
    const [event] = spec.given([]).when(mark('60000', 0, { receivedAt: at(2) })).events();
    expect(event.data).toMatchObject({ sane: false, flag: 'STALE', detail: 'mark is 120000 ms old, limit 60000 ms' });
  });

  it('flags a mark no newer than the last sane one (a replayed or out-of-order print) as stale', () => {
    const [event] = spec.given([sane('60000', 5)]).when(mark('60100', 4, { receivedAt: at(5) })).events();
    expect(event.data).toMatchObject({ sane: false, flag: 'STALE' });
    expect(event.data.detail).toMatch(/not newer than the last sane mark/);
  });

  it('flags a jump beyond the band and counts the run of marks agreeing on the new level', () => {
    const first = spec.given([sane('60000', 0)]).when(mark('70000', 1)).events()[0];
    expect(first.data).toMatchObject({ sane: false, flag: 'JUMP', jumpRun: 1 });
    const second = spec.given([sane('60000', 0), first]).when(mark('70500', 2)).events()[0];
    expect(second.data).toMatchObject({ sane: false, flag: 'JUMP', jumpRun: 2 });
    const third = spec.given([sane('60000', 0), first, second]).when(mark('70200', 3)).events()[0];
    expect(third.data).toMatchObject({ sane: true, price: '70200' });
    expect(third.data.detail).toMatch(/confirms a move from 60000 after 3 consistent marks/);
  });

  it('restarts the run when the next jump print disagrees with the pending level', () => {
    const first: MarketEvent = { type: 'MarkRecorded', data: { underlying: 'BTC-USD', price: '70000', sane: false, flag: 'JUMP', jumpRun: 2, at: at(1) } };
    expect(spec.given([sane('60000', 0), first]).when(mark('45000', 2)).events()[0].data).toMatchObject({ flag: 'JUMP', jumpRun: 1 });
  });

  it('never confirms a jump when jumpConfirmations is 0', () => {
    const strict = specFor(marketDecider({ ...policy, jumpConfirmations: 0 }));
    const pending: MarketEvent = { type: 'MarkRecorded', data: { underlying: 'BTC-USD', price: '70000', sane: false, flag: 'JUMP', jumpRun: 50, at: at(1) } };
    expect(strict.given([sane('60000', 0), pending]).when(mark('70000', 2)).events()[0].data).toMatchObject({ sane: false, flag: 'JUMP', jumpRun: 51 });
  });

  it('keeps the last sane mark and vol through flagged marks', () => {
    const given = spec.given([sane('60000', 0, { volAnnual: '0.6' }), { type: 'MarkRecorded', data: { underlying: 'BTC-USD', price: '1', sane: false, flag: 'JUMP', jumpRun: 1, at: at(1) } }, sane('60100', 2, { volAnnual: '0' })]);
    expect(given.state.lastSane).toMatchObject({ price: '60100', at: at(2) });
    expect(given.state.lastVolAnnual).toBe('0.6');
    expect(given.state.pendingJump).toBeUndefined();
    expect(given.state.recorded).toBe(3);
  });
});
