import fc from 'fast-check';
import { black76, black76Value, black76ValueUnchecked, blackScholes, blackScholesValue } from './black';

describe('Black–Scholes', () => {
  // Hull, Options, Futures and Other Derivatives, worked example in the Black–Scholes–Merton
  // chapter: S = 42, K = 40, r = 10%, σ = 20%, T = 0.5 → c = 4.76, p = 0.81.
  const hull = { spot: 42, strike: 40, rateAnnual: 0.1, volAnnual: 0.2, termYears: 0.5 } as const;

  it('reproduces Hull\'s textbook call and put (to the cent printed)', () => {
    expect(blackScholesValue({ ...hull, optionType: 'CALL' })).toBeCloseTo(4.76, 2);
    expect(blackScholesValue({ ...hull, optionType: 'PUT' })).toBeCloseTo(0.81, 2);
    // Full precision reference from scipy: 4.759422392871532, 0.8085993729000922.
    expect(blackScholesValue({ ...hull, optionType: 'CALL' })).toBeCloseTo(4.759422392871532, 10);
    expect(blackScholesValue({ ...hull, optionType: 'PUT' })).toBeCloseTo(0.8085993729000922, 10);
  });

  it('gives the delta N(d₁) and vega S·φ(d₁)·√T of the same example', () => {
    const call = blackScholes({ ...hull, optionType: 'CALL' });
    expect(call.delta).toBeCloseTo(0.779131290942669, 10);
    expect(call.vega).toBeCloseTo(8.813415059602853, 9);
    const put = blackScholes({ ...hull, optionType: 'PUT' });
    expect(put.delta).toBeCloseTo(0.779131290942669 - 1, 10);
    expect(put.vega).toBeCloseTo(call.vega, 12);
  });

  it('delta and vega agree with finite differences (with a dividend yield)', () => {
    const base = { optionType: 'PUT', spot: 100, strike: 95, rateAnnual: 0.03, dividendYieldAnnual: 0.05, volAnnual: 0.6, termYears: 0.75 } as const;
    const h = 1e-4;
    const greeks = blackScholes(base);
    const fdDelta = (blackScholesValue({ ...base, spot: base.spot + h }) - blackScholesValue({ ...base, spot: base.spot - h })) / (2 * h);
    const fdVega = (blackScholesValue({ ...base, volAnnual: base.volAnnual + h }) - blackScholesValue({ ...base, volAnnual: base.volAnnual - h })) / (2 * h);
    expect(greeks.delta).toBeCloseTo(fdDelta, 7);
    expect(greeks.vega).toBeCloseTo(fdVega, 6);
  });

  it('put–call parity: C − P = S·e^{−qT} − K·e^{−rT}', () => {
    fc.assert(fc.property(
      fc.double({ min: 1, max: 200_000, noNaN: true }),
      fc.double({ min: 0.2, max: 5, noNaN: true }),
      fc.double({ min: -0.05, max: 0.2, noNaN: true }),
      fc.double({ min: -0.1, max: 0.3, noNaN: true }),
      fc.double({ min: 0, max: 3, noNaN: true }),
      fc.double({ min: 0, max: 5, noNaN: true }),
      (spot, moneyness, rateAnnual, dividendYieldAnnual, volAnnual, termYears) => {
        const input = { spot, strike: spot * moneyness, rateAnnual, dividendYieldAnnual, volAnnual, termYears };
        const call = blackScholesValue({ ...input, optionType: 'CALL' });
        const put = blackScholesValue({ ...input, optionType: 'PUT' });
        const parity = spot * Math.exp(-dividendYieldAnnual * termYears) - input.strike * Math.exp(-rateAnnual * termYears);
        expect(Math.abs(call - put - parity)).toBeLessThanOrEqual(1e-9 * spot * (1 + moneyness));
      },
    ));
  });

  it('rejects inputs it cannot price', () => {
    expect(() => blackScholesValue({ ...hull, optionType: 'CALL', spot: 0 })).toThrow(RangeError);
    expect(() => blackScholesValue({ ...hull, optionType: 'CALL', volAnnual: -0.1 })).toThrow(/volAnnual/);
    expect(() => blackScholesValue({ ...hull, optionType: 'CALL', termYears: Number.NaN })).toThrow(/termYears/);
  });
});

describe('Black-76', () => {
  // Hull, futures options chapter: a European put on a futures with F = K = 20, r = 9%,
  // T = 4 months, σ = 25% is worth 1.12 (scipy reference: 1.1166414565589438).
  const hull = { forward: 20, strike: 20, volAnnual: 0.25, termYears: 4 / 12, discountFactor: Math.exp(-0.09 * (4 / 12)) } as const;

  it('reproduces Hull\'s futures-option put', () => {
    expect(black76Value({ ...hull, optionType: 'PUT' })).toBeCloseTo(1.12, 2);
    expect(black76Value({ ...hull, optionType: 'PUT' })).toBeCloseTo(1.1166414565589438, 10);
    // At the money forward: call = put.
    expect(black76Value({ ...hull, optionType: 'CALL' })).toBeCloseTo(1.1166414565589438, 10);
  });

  it('equals Black–Scholes on the forward S·e^{(r−q)T}', () => {
    const spot = 30_000;
    const rateAnnual = 0.04;
    const termYears = 0.25;
    const bs = blackScholes({ optionType: 'CALL', spot, strike: 32_000, rateAnnual, volAnnual: 0.7, termYears });
    const b76 = black76({ optionType: 'CALL', forward: spot * Math.exp(rateAnnual * termYears), strike: 32_000, volAnnual: 0.7, termYears, discountFactor: Math.exp(-rateAnnual * termYears) });
    expect(b76.value).toBeCloseTo(bs.value, 8);
    expect(b76.vega).toBeCloseTo(bs.vega, 8);
  });

  it('delta and vega agree with finite differences', () => {
    const base = { ...hull, optionType: 'CALL', strike: 22 } as const;
    const h = 1e-5;
    const greeks = black76(base);
    const fdDelta = (black76Value({ ...base, forward: base.forward + h }) - black76Value({ ...base, forward: base.forward - h })) / (2 * h);
    const fdVega = (black76Value({ ...base, volAnnual: base.volAnnual + h }) - black76Value({ ...base, volAnnual: base.volAnnual - h })) / (2 * h);
    expect(greeks.delta).toBeCloseTo(fdDelta, 7);
    expect(greeks.vega).toBeCloseTo(fdVega, 7);
  });

  it('at expiry or zero vol is the discounted intrinsic value', () => {
    expect(black76({ ...hull, optionType: 'CALL', forward: 25, termYears: 0 })).toEqual({ value: 5 * hull.discountFactor, delta: hull.discountFactor, vega: 0 });
    expect(black76({ ...hull, optionType: 'PUT', forward: 25, volAnnual: 0 }).value).toBe(0);
    expect(black76ValueUnchecked(false, 15, 20, 0, 1, 1)).toBe(5);
  });

  it('put–call parity: C − P = D·(F − K), and the hot-loop form agrees', () => {
    fc.assert(fc.property(
      fc.double({ min: 1, max: 200_000, noNaN: true }),
      fc.double({ min: 0.2, max: 5, noNaN: true }),
      fc.double({ min: 0, max: 3, noNaN: true }),
      fc.double({ min: 0, max: 5, noNaN: true }),
      fc.double({ min: 0.5, max: 1, noNaN: true }),
      (forward, moneyness, volAnnual, termYears, discountFactor) => {
        const input = { forward, strike: forward * moneyness, volAnnual, termYears, discountFactor };
        const call = black76Value({ ...input, optionType: 'CALL' });
        const put = black76Value({ ...input, optionType: 'PUT' });
        expect(Math.abs(call - put - discountFactor * (forward - input.strike))).toBeLessThanOrEqual(1e-9 * forward * (1 + moneyness));
        expect(call).toBeGreaterThanOrEqual(0);
        expect(put).toBeGreaterThanOrEqual(0);
        expect(black76ValueUnchecked(true, forward, input.strike, volAnnual, termYears, discountFactor)).toBe(call);
      },
    ));
  });
});
