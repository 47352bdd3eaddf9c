import { registerDecorator, ValidationArguments, ValidationOptions } from 'class-validator';
import { amountProblem, currencyOf, isIsoUtc, isSupportedCurrency } from '@backstop/kernel';

/**
 * Boundary validators shared by every command DTO. Messages name the rule in words a desk can act
 * on; the rule name (the constraint key) is what the reply's `rule` field carries.
 */

const ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

export function IsEntityId(options?: ValidationOptions): PropertyDecorator {
  return rule('isEntityId', (v) => typeof v === 'string' && ID.test(v), '$property must be an id of 1-64 letters, digits, _ . : - (starting with a letter or digit)', options);
}

/** A decimal string (never a JSON number), optionally with at most `scaleMax` fraction digits. */
export function IsDecimalString(scaleMax = 12, options?: ValidationOptions): PropertyDecorator {
  return rule(
    'isDecimalString',
    (v) => amountProblem(v, scaleMax) === undefined,
    (args) => `$property ${amountProblem(args.value, scaleMax) ?? ''}`.trim(),
    options,
  );
}

/** An amount in the currency named by `currencyField` of the same object: its scale is the limit. */
export function IsAmountOf(currencyField: string, options?: ValidationOptions): PropertyDecorator {
  const scaleOf = (args: ValidationArguments) => {
    const code = (args.object as Record<string, unknown>)[currencyField];
    return isSupportedCurrency(code) ? currencyOf(code).scale : 6;
  };
  return rule(
    'isAmount',
    (v, args) => amountProblem(v, scaleOf(args)) === undefined && !(v as string).startsWith('-'),
    (args) => (typeof args.value === 'string' && args.value.startsWith('-') ? '$property must not be negative' : `$property ${amountProblem(args.value, scaleOf(args)) ?? ''}`.trim()),
    options,
  );
}

/** A decimal string strictly between bounds (e.g. a probability). */
export function IsDecimalInRange(min: number, max: number, options?: ValidationOptions): PropertyDecorator {
  return rule(
    'isDecimalInRange',
    (v) => amountProblem(v, 12) === undefined && Number(v) >= min && Number(v) <= max,
    `$property must be a decimal string from ${min} to ${max}`,
    options,
  );
}

export function IsIsoUtc(options?: ValidationOptions): PropertyDecorator {
  return rule('isIsoUtc', (v) => isIsoUtc(v), '$property must be an ISO-8601 UTC instant such as 2026-06-30T08:00:00Z', options);
}

export function IsCurrency(options?: ValidationOptions): PropertyDecorator {
  return rule('isCurrency', (v) => isSupportedCurrency(v), '$property must be a supported settlement currency (USDC, USDT, USD)', options);
}

function rule(
  name: string,
  check: (value: unknown, args: ValidationArguments) => boolean,
  message: string | ((args: ValidationArguments) => string),
  options?: ValidationOptions,
): PropertyDecorator {
  return (target: object, propertyName: string | symbol) =>
    registerDecorator({
      name,
      target: target.constructor,
      propertyName: String(propertyName),
      options: { message, ...options },
      validator: { validate: check },
    });
}
