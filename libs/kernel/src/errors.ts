/** One broken rule: which field, which rule, and a sentence a desk can act on. */
export interface Violation {
  readonly field: string;
  readonly rule: string;
  readonly message: string;
}

/** A command that breaks a business rule. Carries every violation, not just the first. */
export class DomainRejection extends Error {
  readonly violations: readonly Violation[];

  constructor(violations: readonly Violation[]) {
    super(violations.map((v) => `${v.field}: ${v.message}`).join('; '));
    this.name = 'DomainRejection';
    this.violations = violations;
  }
}

export function reject(field: string, rule: string, message: string): never {
  throw new DomainRejection([{ field, rule, message }]);
}

/** Collects violations and throws once with all of them. */
export class Violations {
  private readonly list: Violation[] = [];

  add(field: string, rule: string, message: string): this {
    this.list.push({ field, rule, message });
    return this;
  }

  check(condition: boolean, field: string, rule: string, message: string): this {
    if (!condition) this.add(field, rule, message);
    return this;
  }

  throwIfAny(): void {
    if (this.list.length > 0) throw new DomainRejection(this.list);
  }
}

/** An invariant of the system itself (not of the input) broke: a bug, never a rejection. */
export class InvariantViolation extends Error {
  constructor(message: string) {
    super(`invariant violated: ${message}`);
    this.name = 'InvariantViolation';
  }
}

export function invariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InvariantViolation(message);
}
