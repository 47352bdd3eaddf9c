import { IsIn, IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { TRANCHES, Tranche } from '@backstop/settlement';
import { IsCurrency, IsDecimalString, IsEntityId } from '@backstop/platform';

const TRANCHE_MESSAGE = `tranche must be one of ${TRANCHES.join(', ')}`;

export class DepositCapitalDto {
  /** A party registered with role PROVIDER. */
  @IsEntityId() providerId!: string;
  @IsIn(TRANCHES, { message: TRANCHE_MESSAGE }) tranche!: Tranche;
  /** In the pool's currency (USDC), at most its scale's digits. */
  @IsDecimalString(6) amount!: string;
  /** Optional: if given, must be the pool's currency. */
  @IsOptional() @IsCurrency() currency?: string;
}

export class RequestWithdrawalDto {
  @IsEntityId() providerId!: string;
  @IsIn(TRANCHES, { message: TRANCHE_MESSAGE }) tranche!: Tranche;
  /** Whole shares (a decimal integer string); all the provider's shares in the tranche when absent. */
  @IsOptional() @Matches(/^[1-9][0-9]{0,29}$/, { message: 'shares must be a whole number of shares such as "1000000"' }) shares?: string;
}

export class WithdrawCapitalDto {
  @IsEntityId() providerId!: string;
  @IsIn(TRANCHES, { message: TRANCHE_MESSAGE }) tranche!: Tranche;
}

export class RecordRecoveryDto {
  /** The default case: the defaulter's party id. */
  @IsEntityId() defaultId!: string;
  @IsDecimalString(6) amount!: string;
  @IsOptional() @IsCurrency() currency?: string;
  /** Where the money came from (estate distribution, court order, …): kept for audit. */
  @IsString() @IsNotEmpty() @MaxLength(500) reference!: string;
}
