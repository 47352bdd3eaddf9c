import fc from 'fast-check';
import { defaultProbabilityBetween, hazardRateAnnual, pdAnnualOf, PD_ANNUAL_FLOOR, ratingGrade, survivalProbability } from './credit';

describe('credit', () => {
  it('maps ratings (with notches) to the table and floors the best grade at 0.03%', () => {
    expect(pdAnnualOf({ rating: 'BBB' })).toBe(0.0018);
    expect(pdAnnualOf({ rating: 'bbb-' })).toBe(0.0018);
    expect(pdAnnualOf({ rating: 'B+' })).toBe(0.0376);
    expect(pdAnnualOf({ rating: 'CC' })).toBe(0.2678);
    expect(pdAnnualOf({ rating: 'AAA' })).toBe(PD_ANNUAL_FLOOR);
    expect(pdAnnualOf({ rating: 'AA' })).toBe(PD_ANNUAL_FLOOR);
    expect(pdAnnualOf({ rating: 'D' })).toBe(1);
    expect(ratingGrade('SD')).toBe('D');
    expect(() => pdAnnualOf({ rating: 'Baa2' })).toThrow(/unknown rating "Baa2"/);
    expect(() => pdAnnualOf({} as { rating: string })).toThrow(/pdAnnual or a rating/);
  });

  it('takes an explicit PD as given, floored at 0.03% like a rating (a PD of 0 does not bypass the floor), and rejects one outside [0, 1]', () => {
    expect(pdAnnualOf({ pdAnnual: 0.015 })).toBe(0.015);
    expect(pdAnnualOf({ pdAnnual: 0 })).toBe(PD_ANNUAL_FLOOR);
    expect(pdAnnualOf({ pdAnnual: 0.0001 })).toBe(PD_ANNUAL_FLOOR);
    expect(pdAnnualOf({ pdAnnual: 1 })).toBe(1);
    expect(() => pdAnnualOf({ pdAnnual: 1.2 })).toThrow(/pdAnnual/);
    expect(() => pdAnnualOf({ pdAnnual: Number.NaN })).toThrow(/pdAnnual/);
  });

  it('hazard rate λ = −ln(1 − PD) reproduces the annual PD over one year', () => {
    expect(hazardRateAnnual(0.02)).toBeCloseTo(0.020202707317519466, 15);
    fc.assert(fc.property(fc.double({ min: 0, max: 0.999, noNaN: true }), (pd) => {
      expect(defaultProbabilityBetween(hazardRateAnnual(pd), 0, 1)).toBeCloseTo(pd, 12);
    }));
    expect(hazardRateAnnual(1)).toBe(Number.POSITIVE_INFINITY);
  });

  it('slices of the term add up to the whole term', () => {
    fc.assert(fc.property(
      fc.double({ min: 0, max: 0.99, noNaN: true }),
      fc.double({ min: 0.001, max: 3, noNaN: true }),
      fc.integer({ min: 1, max: 40 }),
      (pd, termYears, steps) => {
        const lambda = hazardRateAnnual(pd);
        let sum = 0;
        for (let i = 1; i <= steps; i++) sum += defaultProbabilityBetween(lambda, ((i - 1) * termYears) / steps, (i * termYears) / steps);
        expect(sum).toBeCloseTo(1 - survivalProbability(lambda, termYears), 12);
      },
    ));
  });

  it('a certain default falls entirely in the first slice', () => {
    const lambda = hazardRateAnnual(1);
    expect(defaultProbabilityBetween(lambda, 0, 0.1)).toBe(1);
    expect(defaultProbabilityBetween(lambda, 0.1, 0.2)).toBe(0);
  });
});
