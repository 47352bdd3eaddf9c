/**
 * The standard normal distribution: density, cumulative distribution and its inverse.
 * Pure functions of doubles; no state.
 */

const SQRT_2PI = Math.sqrt(2 * Math.PI);

/** φ(x) = e^{−x²/2} / √(2π). */
export function normalPdf(x: number): number {
  return Math.exp(-0.5 * x * x) / SQRT_2PI;
}

/**
 * Φ(x), accurate to about 1e-14 absolute over the whole line (relative error up to ~1e-8 far in
 * the left tail, x < −6).
 * Source: Hart (1968) algorithm 5666 as given in double precision by G. West, "Better approximations
 * to cumulative normal functions", Wilmott Magazine (2005), figure 2: a rational function for
 * |x| < 7.07 (= 10/√2) and a continued fraction beyond it; Φ(x) = 1 − Φ(−x) for x > 0.
 */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const xAbs = Math.abs(x);
  let tail: number; // Φ(−|x|)
  if (xAbs > 37) {
    tail = 0;
  } else {
    const gauss = Math.exp(-0.5 * xAbs * xAbs);
    if (xAbs < 7.07106781186547) {
      let numerator = 3.52624965998911e-2 * xAbs + 0.700383064443688;
      numerator = numerator * xAbs + 6.37396220353165;
      numerator = numerator * xAbs + 33.912866078383;
      numerator = numerator * xAbs + 112.079291497871;
      numerator = numerator * xAbs + 221.213596169931;
      numerator = numerator * xAbs + 220.206867912376;
      let denominator = 8.83883476483184e-2 * xAbs + 1.75566716318264;
      denominator = denominator * xAbs + 16.064177579207;
      denominator = denominator * xAbs + 86.7807322029461;
      denominator = denominator * xAbs + 296.564248779674;
      denominator = denominator * xAbs + 637.333633378831;
      denominator = denominator * xAbs + 793.826512519948;
      denominator = denominator * xAbs + 440.413735824752;
      tail = (gauss * numerator) / denominator;
    } else {
      let fraction = xAbs + 0.65;
      fraction = xAbs + 4 / fraction;
      fraction = xAbs + 3 / fraction;
      fraction = xAbs + 2 / fraction;
      fraction = xAbs + 1 / fraction;
      tail = gauss / fraction / 2.506628274631;
    }
  }
  return x > 0 ? 1 - tail : tail;
}

// Acklam's rational approximation coefficients (P. J. Acklam, "An algorithm for computing the
// inverse normal cumulative distribution function", 2003; relative error < 1.15e-9).
const A = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
const B = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
const C = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
const D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
const P_LOW = 0.02425;

/** Acklam's approximation alone: cheap, relative error < 1.15e-9 (enough for random draws). */
export function inverseNormalCdfFast(p: number): number {
  if (!(p > 0 && p < 1)) return inverseAtBounds(p);
  if (p < P_LOW) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) /
      ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
  }
  if (p > 1 - P_LOW) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) /
      ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return ((((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q) /
    (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1);
}

/**
 * Φ⁻¹(p): Acklam's approximation refined by one Halley step against the accurate normalCdf
 * (Acklam, op. cit., "refinement"), which brings it to near machine precision.
 */
export function inverseNormalCdf(p: number): number {
  if (!(p > 0 && p < 1)) return inverseAtBounds(p);
  const x = inverseNormalCdfFast(p);
  // Halley: e = Φ(x) − p, u = e·√(2π)·e^{x²/2}, x ← x − u / (1 + x·u/2).
  const e = normalCdf(x) - p;
  const u = e * SQRT_2PI * Math.exp(0.5 * x * x);
  return x - u / (1 + 0.5 * x * u);
}

function inverseAtBounds(p: number): number {
  if (p === 0) return Number.NEGATIVE_INFINITY;
  if (p === 1) return Number.POSITIVE_INFINITY;
  return Number.NaN;
}
