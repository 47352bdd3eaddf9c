/**
 * Ledger amounts: integers in minor units (bigint), one fixed scale per currency.
 * On the wire an amount is a decimal string with at most `scale` fraction digits.
 */
export interface Currency {
  readonly code: string;
  readonly scale: number;
}

const CURRENCIES: Record<string, Currency> = {
  USDC: { code: 'USDC', scale: 6 },
  USDT: { code: 'USDT', scale: 6 },
  USD: { code: 'USD', scale: 2 },
};

export const SUPPORTED_CURRENCIES: readonly string[] = Object.keys(CURRENCIES);

export function currencyOf(code: string): Currency {
  const currency = CURRENCIES[code];
  if (!currency) {
    throw new RangeError(`unknown currency "${code}" (supported: ${SUPPORTED_CURRENCIES.join(', ')})`);
  }
  return currency;
}

export function isSupportedCurrency(code: unknown): code is string {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(CURRENCIES, code);
}

const DECIMAL = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;

/** Why a decimal string is not a valid amount, or undefined when it is. */
export function amountProblem(text: unknown, scale: number): string | undefined {
  if (typeof text !== 'string') return 'must be a decimal string such as "1250.50"';
  if (!DECIMAL.test(text)) return 'must be a decimal string such as "1250.50" (digits, optional "-", one optional ".")';
  const fraction = text.split('.')[1] ?? '';
  if (fraction.length > scale) return `must have at most ${scale} digits after the decimal point`;
  if (text.replace(/[-.]/g, '').length > 30) return 'must have at most 30 digits';
  return undefined;
}

/** Parses a wire decimal string into minor units; throws RangeError naming the rule. */
export function toMinor(text: string, scale: number): bigint {
  const problem = amountProblem(text, scale);
  if (problem) throw new RangeError(`amount "${text}" ${problem}`);
  const negative = text.startsWith('-');
  const [whole, fraction = ''] = (negative ? text.slice(1) : text).split('.');
  const minor = BigInt(whole + fraction.padEnd(scale, '0'));
  return negative ? -minor : minor;
}

/** Formats minor units as a wire decimal string with exactly `scale` fraction digits. */
export function fromMinor(amountMinor: bigint, scale: number): string {
  const negative = amountMinor < 0n;
  const digits = (negative ? -amountMinor : amountMinor).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale);
  const body = scale === 0 ? whole : `${whole}.${fraction}`;
  return negative ? `-${body}` : body;
}

/**
 * A float model result (a premium, a requirement) becomes an amount here and only here.
 * Rounding always favours the pool: what the pool receives rounds up, what it pays rounds down.
 */
export function floatToMinor(value: number, scale: number, rounding: 'up' | 'down'): bigint {
  if (!Number.isFinite(value)) throw new RangeError(`model result ${value} is not a finite number`);
  const product = value * 10 ** scale;
  // Beyond 2^53 the float product itself is rounded (to even, either way), which could round
  // against the pool: scale the double's exact binary value in bigint arithmetic instead.
  if (Math.abs(product) >= Number.MAX_SAFE_INTEGER) return exactScaled(value, scale, rounding);
  // toFixed(6) first removes binary noise such as 0.1+0.2 before rounding.
  const scaled = Number(product.toFixed(6));
  const rounded = rounding === 'up' ? Math.ceil(scaled) : Math.floor(scaled);
  return BigInt(rounded);
}

/** value × 10^scale rounded up or down, exactly: a double is m·2^e with an integer m. */
function exactScaled(value: number, scale: number, rounding: 'up' | 'down'): bigint {
  let mantissa = value;
  let exponent = 0;
  // Doubling a double is exact; at most 1074 steps reach an integer.
  while (!Number.isInteger(mantissa)) {
    mantissa *= 2;
    exponent--;
  }
  const numerator = BigInt(mantissa) * 10n ** BigInt(scale);
  if (exponent === 0) return numerator;
  const denominator = 1n << BigInt(-exponent);
  const quotient = numerator / denominator; // truncates toward zero
  const exact = quotient * denominator === numerator;
  if (exact) return quotient;
  if (rounding === 'up') return numerator > 0n ? quotient + 1n : quotient;
  return numerator < 0n ? quotient - 1n : quotient;
}

export function minorToFloat(amountMinor: bigint, scale: number): number {
  return Number(amountMinor) / 10 ** scale;
}

export function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

export function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/**
 * Splits `totalMinor` pro rata by `weights` so the parts sum exactly to the total
 * (largest-remainder method; ties go to the earlier weight, so the split is deterministic).
 */
export function allocateProRata(totalMinor: bigint, weights: readonly bigint[]): bigint[] {
  if (totalMinor < 0n) throw new RangeError('total to allocate must not be negative');
  const weightSum = weights.reduce((sum, w) => {
    if (w < 0n) throw new RangeError('weights must not be negative');
    return sum + w;
  }, 0n);
  if (weightSum === 0n) {
    if (totalMinor !== 0n) throw new RangeError('cannot allocate a positive total over zero weights');
    return weights.map(() => 0n);
  }
  const parts = weights.map((w) => (totalMinor * w) / weightSum);
  const remainders = weights.map((w, i) => ({ i, r: (totalMinor * w) % weightSum }));
  let left = totalMinor - parts.reduce((s, p) => s + p, 0n);
  remainders.sort((a, b) => (a.r === b.r ? a.i - b.i : a.r > b.r ? -1 : 1));
  for (const { i } of remainders) {
    if (left === 0n) break;
    parts[i] += 1n;
    left -= 1n;
  }
  return parts;
}
