import { IsIn, IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { IsDecimalInRange, IsDecimalString, IsEntityId, IsIsoUtc } from './validation';

/** `MarkPrice` on backstop.market.marks (key: the underlying). */
export class MarkPriceDto {
  @Matches(/^[A-Z0-9]{2,10}-[A-Z]{3,5}$/, { message: 'underlying must look like BTC-USD' }) underlying!: string;
  @IsDecimalString(12) price!: string;
  /** Implied volatility, annualised (e.g. "0.65"). */
  @IsOptional() @IsDecimalInRange(0, 10) volAnnual?: string;
  /** Funding rate for the funding interval; longs pay shorts when positive. */
  @IsOptional() @IsDecimalString(12) fundingRate?: string;
  /** The feed that observed it, where several independent ones are configured (the view is their median). */
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,50}$/, { message: 'source must be 1-50 letters, digits or _.:-' }) source?: string;
  @IsIsoUtc() at!: string;
}

/** `CreditScore` on backstop.credit.scores (key: the party id). */
export class CreditScoreDto {
  @IsEntityId() partyId!: string;
  @IsOptional() @IsIn(['AAA', 'AA', 'A', 'BBB', 'BB', 'B', 'CCC', 'CC', 'C', 'D']) rating?: string;
  @IsOptional() @IsDecimalInRange(0, 1) pdAnnual?: string;
  @IsString() @IsNotEmpty() @MaxLength(100) source!: string;
  @IsIsoUtc() at!: string;
}

export const INPUT_SCHEMAS = { MarkPrice: MarkPriceDto, CreditScore: CreditScoreDto } as const;

/** How far ahead of the receiving clock a mark may be dated (clock skew): margin's own setting, one number for both checks. */
export const MARK_FUTURE_TOLERANCE_ENV = 'MARGIN_MARK_FUTURE_TOLERANCE_MS';
const MARK_FUTURE_TOLERANCE_MS_DEFAULT = 5_000;

export function markFutureToleranceMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env[MARK_FUTURE_TOLERANCE_ENV];
  if (text === undefined || text.trim() === '') return MARK_FUTURE_TOLERANCE_MS_DEFAULT;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`${MARK_FUTURE_TOLERANCE_ENV} must be a whole number of milliseconds ≥ 0, got "${text}"`);
  return value;
}

/**
 * A mark dated ahead of the receiving clock by more than the tolerance is refused at the HTTP
 * boundary (issue 9 defect 7): acknowledged, it would only be flagged FUTURE later, and the sender
 * would believe it delivered. (On the Kafka topic, where nobody waits for an answer, margin flags it.)
 */
export function futureDatedMark(at: string, nowMs: number, toleranceMs: number): { field: string; rule: string; message: string } | undefined {
  const atMs = Date.parse(at);
  if (!Number.isFinite(atMs) || atMs - nowMs <= toleranceMs) return undefined;
  return {
    field: 'payload.at',
    rule: 'notFutureDated',
    message: `the mark is dated ${at}, ${atMs - nowMs} ms ahead of the receiving clock (${new Date(nowMs).toISOString()}); at most ${toleranceMs} ms ahead is accepted (${MARK_FUTURE_TOLERANCE_ENV})`,
  };
}
