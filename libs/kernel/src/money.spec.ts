import fc from 'fast-check';
import { allocateProRata, floatToMinor, fromMinor, toMinor, amountProblem } from './money';

describe('money', () => {
  it('parses and formats decimal strings at the currency scale', () => {
    expect(toMinor('1250.5', 6)).toBe(1_250_500_000n);
    expect(fromMinor(1_250_500_000n, 6)).toBe('1250.500000');
    expect(fromMinor(-5n, 6)).toBe('-0.000005');
    expect(toMinor('-0.000005', 6)).toBe(-5n);
  });

  it('rejects floats, junk and too many fraction digits with the rule', () => {
    expect(amountProblem(12.5, 6)).toMatch(/decimal string/);
    expect(amountProblem('1e5', 6)).toMatch(/decimal string/);
    expect(amountProblem('01.5', 6)).toMatch(/decimal string/);
    expect(amountProblem('1.1234567', 6)).toMatch(/at most 6 digits/);
    expect(() => toMinor('abc', 6)).toThrow(/amount "abc"/);
  });

  it('round-trips any amount', () => {
    fc.assert(fc.property(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), (minor) => {
      expect(toMinor(fromMinor(minor, 6), 6)).toBe(minor);
    }));
  });

  it('rounds model results in the pool\'s favour', () => {
    expect(floatToMinor(1.0000001, 6, 'up')).toBe(1_000_001n);
    expect(floatToMinor(1.0000009, 6, 'down')).toBe(1_000_000n);
    expect(floatToMinor(0.1 + 0.2, 6, 'up')).toBe(300_000n);
  });

  it('allocates pro rata with no lost minor unit', () => {
    expect(allocateProRata(100n, [1n, 1n, 1n])).toEqual([34n, 33n, 33n]);
    fc.assert(fc.property(
      fc.bigInt({ min: 0n, max: 10n ** 15n }),
      fc.array(fc.bigInt({ min: 1n, max: 10n ** 12n }), { minLength: 1, maxLength: 20 }),
      (total, weights) => {
        const parts = allocateProRata(total, weights);
        expect(parts.reduce((s, p) => s + p, 0n)).toBe(total);
        parts.forEach((p) => expect(p >= 0n).toBe(true));
      },
    ));
  });
});
