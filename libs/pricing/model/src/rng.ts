import { inverseNormalCdfFast } from './normal';

/**
 * A seeded, reproducible pseudo-random generator: xoshiro128** (D. Blackman & S. Vigna,
 * "Scrambled linear pseudorandom number generators", ACM TOMS 2021; reference C at
 * https://prng.di.unimi.it/xoshiro128starstar.c), period 2^128 − 1, seeded through splitmix32.
 *
 * The state is an explicit value the caller holds (four 32-bit words), never hidden in a closure:
 * a draw advances the state it is given. Copy it (`state.slice()`) to replay a stream.
 */
export type RngState = Uint32Array;

/** The generator's state for a seed (any integer; only its low 32 bits count). */
export function rngState(seed: number): RngState {
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  // splitmix32 (a 32-bit SplitMix, Steele, Lea & Flood, OOPSLA 2014) spreads one seed over four
  // words, so that nearby seeds give unrelated streams and the state is never all zero in practice.
  const state = new Uint32Array(4);
  let x = seed | 0;
  for (let i = 0; i < 4; i++) {
    x = (x + 0x9e3779b9) | 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    state[i] = z ^ (z >>> 15);
  }
  if (state[0] === 0 && state[1] === 0 && state[2] === 0 && state[3] === 0) state[0] = 1;
  return state;
}

/** A state from four explicit words (reference vectors, checkpoints). */
export function rngStateFromWords(a: number, b: number, c: number, d: number): RngState {
  const state = Uint32Array.of(a, b, c, d);
  if (state[0] === 0 && state[1] === 0 && state[2] === 0 && state[3] === 0) throw new RangeError('xoshiro128** state must not be all zero');
  return state;
}

/** Next 32-bit output in [0, 2^32); advances `state`. */
export function nextUint32(state: RngState): number {
  const s0 = state[0];
  const s1 = state[1];
  const s2 = state[2];
  const s3 = state[3];
  const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
  const t = s1 << 9;
  const n2 = s2 ^ s0;
  const n3 = s3 ^ s1;
  state[0] = s0 ^ n3;
  state[1] = s1 ^ n2;
  state[2] = n2 ^ t;
  state[3] = rotl(n3, 11);
  return result;
}

/** Uniform on the open interval (0, 1): (k + ½)/2^32, so Φ⁻¹ of it is always finite. */
export function nextUniform(state: RngState): number {
  return (nextUint32(state) + 0.5) / 4294967296;
}

/**
 * Standard normal by inversion, z = Φ⁻¹(u): exactly one uniform per draw, so two runs with the same
 * seed and the same number of draws see the same numbers (common random numbers), and z ↦ −z gives
 * antithetic draws. Acklam's inverse (relative error < 1.15e-9) is ample for simulation.
 */
export function nextStandardNormal(state: RngState): number {
  return inverseNormalCdfFast(nextUniform(state));
}

/** Fills `out` with standard normal draws; returns it. */
export function fillStandardNormals(state: RngState, out: Float64Array): Float64Array {
  for (let i = 0; i < out.length; i++) out[i] = inverseNormalCdfFast(nextUniform(state));
  return out;
}

/** `count` standard normal draws from a fresh stream for `seed`. */
export function standardNormals(seed: number, count: number): Float64Array {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  return fillStandardNormals(rngState(seed), new Float64Array(count));
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
