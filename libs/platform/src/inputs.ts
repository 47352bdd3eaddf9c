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
