/** The only way anything outside the domain learns the time; the domain gets instants in commands. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock a test or a replay moves by hand. */
export class ManualClock implements Clock {
  constructor(private current: Date) {}
  now(): Date {
    return new Date(this.current.getTime());
  }
  set(instant: Date): void {
    this.current = new Date(instant.getTime());
  }
  advanceMs(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

export function isIsoUtc(text: unknown): text is string {
  return typeof text === 'string' && ISO_UTC.test(text) && !Number.isNaN(Date.parse(text));
}

export function ms(iso: string): number {
  return Date.parse(iso);
}

export function iso(msSinceEpoch: number): string {
  return new Date(msSinceEpoch).toISOString();
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
export const YEAR_MS = 365 * DAY_MS;
