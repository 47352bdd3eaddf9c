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

  it('never rounds against the pool above 2^53 minor units, where the float product is itself rounded', () => {
    // 2^51 + 0.5 is an exact double; × 10 is 22 517 998 136 852 485 exactly, which no double holds.
    expect(floatToMinor(2 ** 51 + 0.5, 1, 'up')).toBe(22_517_998_136_852_485n);
    expect(floatToMinor(2 ** 51 + 0.5, 1, 'down')).toBe(22_517_998_136_852_485n);
    expect(floatToMinor(2 ** 60 + 2 ** 8, 2, 'up')).toBe((2n ** 60n + 2n ** 8n) * 100n);
    // a fraction left after scaling rounds each way, and by at most one minor unit
    // 2^50 + 0.25 is exact; × 10 = 11 258 999 068 426 242.5
    expect(floatToMinor(2 ** 50 + 0.25, 1, 'up')).toBe(11_258_999_068_426_243n);
    expect(floatToMinor(2 ** 50 + 0.25, 1, 'down')).toBe(11_258_999_068_426_242n);
    expect(floatToMinor(-(2 ** 50 + 0.25), 1, 'up')).toBe(-11_258_999_068_426_242n);
    expect(floatToMinor(-(2 ** 50 + 0.25), 1, 'down')).toBe(-11_258_999_068_426_243n);
    fc.assert(fc.property(fc.double({ min: 2 ** 47, max: 2 ** 70, noNaN: true }), fc.integer({ min: 0, max: 8 }), (value, scale) => {
      const up = floatToMinor(value, scale, 'up');
      const down = floatToMinor(value, scale, 'down');
      // exact value × 10^scale as a fraction n / 2^k: up·2^k ≥ n ≥ down·2^k
      let m = value;
      let k = 0n;
      while (!Number.isInteger(m)) { m *= 2; k++; }
      const n = BigInt(m) * 10n ** BigInt(scale);
      if (value * 10 ** scale >= Number.MAX_SAFE_INTEGER) {
        expect(up * 2n ** k >= n).toBe(true);
        expect(down * 2n ** k <= n).toBe(true);
        expect(up - down <= 1n).toBe(true);
      }
    }), { seed: 53, numRuns: 300 });
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
