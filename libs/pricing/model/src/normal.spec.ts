import fc from 'fast-check';
import { inverseNormalCdf, inverseNormalCdfFast, normalCdf, normalPdf } from './normal';

// Reference values: scipy.stats.norm (1.17), which evaluates Φ through erfc in double precision.
const CDF_REFERENCE: ReadonlyArray<readonly [number, number]> = [
  [-8, 6.22096057427174e-16],
  [-5, 2.866515718791933e-7],
  [-3, 0.0013498980316300933],
  [-1.96, 0.024997895148220435],
  [-1, 0.15865525393145707],
  [-0.5, 0.3085375387259869],
  [0, 0.5],
  [0.3, 0.6179114221889526],
  [1, 0.8413447460685429],
  [1.96, 0.9750021048517795],
  [2.5, 0.9937903346742238],
  [3, 0.9986501019683699],
  [5, 0.9999997133484281],
  [7.5, 0.9999999999999681],
];

const PPF_REFERENCE: ReadonlyArray<readonly [number, number]> = [
  [1e-10, -6.361340902404056],
  [1e-6, -4.753424308822899],
  [0.001, -3.090232306167813],
  [0.02, -2.053748910631823],
  [0.025, -1.9599639845400545],
  [0.3, -0.5244005127080409],
  [0.5, 0],
  [0.8, 0.8416212335729143],
  [0.975, 1.959963984540054],
  [0.99, 2.3263478740408408],
];

describe('normal distribution', () => {
  // West's Hart algorithm is ~1e-15 absolute; in the far left tail its relative error grows to ~1e-8.
  it.each(CDF_REFERENCE)('Φ(%p) matches the reference to 1e-14 absolute and 1e-8 relative', (x, expected) => {
    const actual = normalCdf(x);
    expect(Math.abs(actual - expected)).toBeLessThan(1e-14);
    expect(Math.abs(actual - expected) / expected).toBeLessThan(1e-8);
  });

  it('has the right limits and density', () => {
    expect(normalCdf(-40)).toBe(0);
    expect(normalCdf(40)).toBe(1);
    expect(normalCdf(Number.NaN)).toBeNaN();
    expect(normalPdf(0)).toBeCloseTo(0.3989422804014327, 15);
    expect(normalPdf(1.5)).toBeCloseTo(0.12951759566589174, 15);
  });

  it('is symmetric and increasing', () => {
    fc.assert(fc.property(fc.double({ min: -10, max: 10, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (x, step) => {
      expect(Math.abs(normalCdf(x) + normalCdf(-x) - 1)).toBeLessThan(1e-15);
      expect(normalCdf(x + step)).toBeGreaterThanOrEqual(normalCdf(x));
    }));
  });

  it('density is the derivative of the distribution (central difference)', () => {
    for (const x of [-3, -1, 0, 0.7, 2]) {
      const h = 1e-5;
      expect((normalCdf(x + h) - normalCdf(x - h)) / (2 * h)).toBeCloseTo(normalPdf(x), 9);
    }
  });

  // The refinement is as good as Φ itself: 1e-12 in the body, ~1e-10 for p below 1e-4 (Φ's tail).
  it.each(PPF_REFERENCE)('Φ⁻¹(%p) matches the reference (refined) and to 1e-8 (Acklam alone)', (p, expected) => {
    const tolerance = p > 1e-4 && p < 1 - 1e-4 ? 1e-12 : 1e-9;
    expect(Math.abs(inverseNormalCdf(p) - expected)).toBeLessThan(tolerance);
    expect(Math.abs(inverseNormalCdfFast(p) - expected)).toBeLessThan(1e-8);
  });

  it('inverts the cdf on (0, 1) and returns ±∞ / NaN outside', () => {
    fc.assert(fc.property(fc.double({ min: 1e-12, max: 1 - 1e-12, noNaN: true }), (p) => {
      expect(Math.abs(normalCdf(inverseNormalCdf(p)) - p)).toBeLessThan(1e-14 + 1e-10 * Math.min(p, 1 - p));
    }));
    expect(inverseNormalCdf(0)).toBe(Number.NEGATIVE_INFINITY);
    expect(inverseNormalCdf(1)).toBe(Number.POSITIVE_INFINITY);
    expect(inverseNormalCdf(1.5)).toBeNaN();
    expect(inverseNormalCdf(Number.NaN)).toBeNaN();
  });
});
