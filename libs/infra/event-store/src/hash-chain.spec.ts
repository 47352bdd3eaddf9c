import fc from 'fast-check';
import { canonical, canonicalGeneral } from './hash-chain';

describe('canonical JSON (what event hashes and deterministic ids are taken over)', () => {
  it('the fast path for plain JSON is byte-identical to the definition (sorted-key copy, stringified)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonical(value)).toBe(canonicalGeneral(value));
      }),
      { numRuns: 2_000 },
    );
  });

  it('also for values outside plain JSON (bigints, undefined, dates, index-like keys, -0, NaN)', () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withDate: true, withNullPrototype: true, withSparseArray: true, withBoxedValues: true }), (value) => {
        let expected: string | Error;
        try {
          expected = canonicalGeneral(value);
        } catch (err) {
          expected = err as Error;
        }
        if (expected instanceof Error) expect(() => canonical(value)).toThrow();
        else expect(canonical(value)).toBe(expected);
      }),
      { numRuns: 2_000 },
    );
    const samples: unknown[] = [{ 10: 'a', 9: 'b', z: 1, a: [1, -0, NaN, undefined] }, { amount: 5n, at: new Date(0), gone: undefined }, [], {}, 'x', -0, 1e21];
    for (const sample of samples) expect(canonical(sample)).toBe(canonicalGeneral(sample));
  });
});
