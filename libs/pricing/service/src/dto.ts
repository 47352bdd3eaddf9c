import { IsInt, Max, Min } from 'class-validator';
import { IsAmountOf, IsCurrency, IsDecimalString, IsEntityId } from '@backstop/platform';

export class RequestQuoteDto {
  @IsEntityId() quoteId!: string;
  @IsEntityId() contractId!: string;
  /** The side of the contract that buys protection against the other side's default. */
  @IsEntityId() protectedPartyId!: string;
  /** The most the pool pays, in the contract's currency (at most its scale's digits; checked against it by the decider). */
  @IsDecimalString(6) coverageLimit!: string;
  @IsInt({ message: 'termDays must be a whole number of days' }) @Min(1) @Max(365) termDays!: number;
}

export class BindCoverageDto {
  @IsEntityId() coverageId!: string;
  @IsEntityId() quoteId!: string;
}

export class PremiumAccountDto {
  @IsEntityId() partyId!: string;
  @IsAmountOf('currency') amount!: string;
  @IsCurrency() currency!: string;
}
