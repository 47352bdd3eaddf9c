import { checkMark, closeOutPrice } from './mark-sanity';

const NOW_MS = Date.UTC(2025, 0, 1);
const base = { bandFraction: 0.2, maxStaleMs: 60_000, nowMs: NOW_MS };
const prev = { price: 100_000, atMs: NOW_MS - 5_000 };

describe('checkMark', () => {
  it('accepts a fresh mark within the band, and a first mark with no previous one', () => {
    expect(checkMark({ ...base, prev, next: { price: 110_000, atMs: NOW_MS } })).toEqual({ ok: true });
    expect(checkMark({ ...base, prev: undefined, next: { price: 1, atMs: NOW_MS } })).toEqual({ ok: true });
  });

  it('flags a jump beyond the band in either direction', () => {
    const up = checkMark({ ...base, prev, next: { price: 125_000, atMs: NOW_MS } });
    expect(up).toEqual({ ok: false, flag: 'JUMP', detail: 'mark moved 25.00% from 100000 to 125000, band ±20.00%' });
    expect(checkMark({ ...base, prev, next: { price: 79_000, atMs: NOW_MS } })).toMatchObject({ ok: false, flag: 'JUMP' });
  });

  it('flags a stale mark', () => {
    expect(checkMark({ ...base, prev, next: { price: 100_000, atMs: NOW_MS - 60_001 } })).toMatchObject({ ok: false, flag: 'STALE' });
    expect(checkMark({ ...base, prev, next: { price: 100_000, atMs: NOW_MS - 60_000 } })).toEqual({ ok: true });
  });

  it('flags zero, negative and non-finite prices before anything else', () => {
    for (const price of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(checkMark({ ...base, prev, next: { price, atMs: 0 } })).toMatchObject({ ok: false, flag: 'NON_POSITIVE' });
    }
  });
});

describe('closeOutPrice', () => {
  it('moves the last sane mark against the defaulter by the liquidation cost', () => {
    expect(closeOutPrice(100_000, 'LONG', 0.02)).toBeCloseTo(98_000, 9);
    expect(closeOutPrice(100_000, 'SHORT', 0.02)).toBeCloseTo(102_000, 9);
    expect(closeOutPrice(100_000, 'SHORT', 0)).toBe(100_000);
    expect(() => closeOutPrice(100_000, 'LONG', 1)).toThrow(/liquidationCostFraction/);
    expect(() => closeOutPrice(-1, 'LONG', 0.01)).toThrow(/lastSaneMark/);
  });
});
