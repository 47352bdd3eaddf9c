import fc from 'fast-check';
import { fillStandardNormals, nextUint32, nextUniform, rngState, rngStateFromWords, standardNormals } from './rng';

describe('seeded generator', () => {
  it('matches the xoshiro128** reference C implementation from state {1, 2, 3, 4}', () => {
    // Output of prng.di.unimi.it/xoshiro128starstar.c compiled with gcc, s = {1, 2, 3, 4}.
    const state = rngStateFromWords(1, 2, 3, 4);
    const outputs = Array.from({ length: 6 }, () => nextUint32(state));
    expect(outputs).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });

  it('is reproducible from a seed, and different seeds give different streams', () => {
    fc.assert(fc.property(fc.integer(), (seed) => {
      expect(standardNormals(seed, 32)).toEqual(standardNormals(seed, 32));
      expect(standardNormals(seed, 8)).not.toEqual(standardNormals(seed + 1, 8));
    }), { numRuns: 50 });
  });

  it('replays a stream from a copied state', () => {
    const state = rngState(7);
    nextUint32(state);
    const checkpoint = state.slice();
    const ahead = fillStandardNormals(state, new Float64Array(5));
    expect(fillStandardNormals(checkpoint, new Float64Array(5))).toEqual(ahead);
  });

  it('draws uniforms strictly inside (0, 1) with mean ½ and variance 1/12', () => {
    const state = rngState(2024);
    const n = 50_000;
    let sum = 0;
    let sumSq = 0;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const u = nextUniform(state);
      if (!(u > 0 && u < 1)) outside++;
      sum += u;
      sumSq += u * u;
    }
    expect(outside).toBe(0);
    expect(nextUniform(rngStateFromWords(1, 0, 0, 0))).toBeGreaterThan(0);
    const mean = sum / n;
    // Standard errors: 1/√(12n) ≈ 0.0013 for the mean; 5 of them as the bound.
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.0065);
    expect(Math.abs(sumSq / n - mean * mean - 1 / 12)).toBeLessThan(0.003);
  });

  it('draws normals with mean 0, variance 1 and the right tail mass', () => {
    const z = standardNormals(42, 100_000);
    let sum = 0;
    let sumSq = 0;
    let beyond196 = 0;
    for (const x of z) {
      sum += x;
      sumSq += x * x;
      if (Math.abs(x) > 1.959963984540054) beyond196++;
    }
    const n = z.length;
    // 5 standard errors: mean 5/√n ≈ 0.016; variance 5·√(2/n) ≈ 0.022; tail 5·√(0.05·0.95/n) ≈ 0.0034.
    expect(Math.abs(sum / n)).toBeLessThan(0.016);
    expect(Math.abs(sumSq / n - 1)).toBeLessThan(0.022);
    expect(Math.abs(beyond196 / n - 0.05)).toBeLessThan(0.0034);
  });

  it('rejects a non-integer seed and the all-zero state', () => {
    expect(() => rngState(1.5)).toThrow(/integer/);
    expect(() => rngStateFromWords(0, 0, 0, 0)).toThrow(/all zero/);
  });
});
