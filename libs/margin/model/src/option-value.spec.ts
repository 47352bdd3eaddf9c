import fc from 'fast-check';
import { black76, intrinsicValue, normCdf } from './option-value';

describe('normCdf', () => {
  it('matches reference values to 1e-12 (absolute)', () => {
    expect(normCdf(0)).toBeCloseTo(0.5, 15);
    expect(normCdf(1.96)).toBeCloseTo(0.9750021048517795, 12);
    expect(normCdf(-1)).toBeCloseTo(0.15865525393145707, 12);
    expect(normCdf(3)).toBeCloseTo(0.9986501019683699, 12);
    // Far tail: absolute error is tiny; relative error stays below 1e-7.
    expect(normCdf(-8) / 6.220960574271784e-16).toBeCloseTo(1, 7);
    expect(normCdf(40)).toBe(1);
    expect(normCdf(-40)).toBe(0);
  });

  it('is symmetric: N(x) + N(−x) = 1', () => {
    fc.assert(fc.property(fc.double({ min: -10, max: 10, noNaN: true }), (x) => {
      expect(normCdf(x) + normCdf(-x)).toBeCloseTo(1, 14);
    }));
  });
});

describe('black76', () => {
  it("values Hull's example: F=20, K=20, r=9%, σ=25%, T=4 months → put 1.12", () => {
    const put = black76('PUT', 20, 20, 0.25, 4 / 12, 0.09);
    expect(put).toBeCloseTo(1.12, 2);
    expect(put).toBeCloseTo(1.1166, 4);
    // At the money forward, put-call parity makes the call equal to the put.
    expect(black76('CALL', 20, 20, 0.25, 4 / 12, 0.09)).toBeCloseTo(put, 12);
  });

  it('obeys put-call parity: c − p = e^(−rT)(F − K)', () => {
    fc.assert(fc.property(
      fc.double({ min: 1, max: 200_000, noNaN: true }),
      fc.double({ min: 0.5, max: 2, noNaN: true }),
      fc.double({ min: 0.01, max: 3, noNaN: true }),
      fc.double({ min: 0.001, max: 3, noNaN: true }),
      fc.double({ min: 0, max: 0.2, noNaN: true }),
      (forward, moneyness, vol, timeYears, rate) => {
        const strike = forward * moneyness;
        const parity = Math.exp(-rate * timeYears) * (forward - strike);
        const diff = black76('CALL', forward, strike, vol, timeYears, rate) - black76('PUT', forward, strike, vol, timeYears, rate);
        expect(Math.abs(diff - parity)).toBeLessThan(1e-9 * forward);
      },
    ));
  });

  it('falls back to (discounted) intrinsic value when the formula degenerates', () => {
    expect(black76('CALL', 120, 100, 0.5, 0, 0.05)).toBe(20);
    expect(black76('PUT', 120, 100, 0.5, -1, 0)).toBe(0);
    expect(black76('CALL', 120, 100, 0, 1, 0)).toBe(20);
    expect(black76('PUT', 0, 100, 0.5, 1, 0)).toBe(100);
    expect(black76('CALL', -5, 100, 0.5, 1, 0)).toBe(0);
    expect(intrinsicValue('PUT', 80, 100)).toBe(20);
    expect(intrinsicValue('CALL', 80, 100)).toBe(0);
  });
});
