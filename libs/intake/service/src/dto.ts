import { Type } from 'class-transformer';
import { IsDefined, IsIn, IsNotEmpty, IsOptional, IsString, Matches, MaxLength, ValidateNested } from 'class-validator';
import { PARTY_ROLES, PartyRole } from '@backstop/intake';
import { IsAmountOf, IsCurrency, IsDecimalInRange, IsDecimalString, IsEntityId, IsIsoUtc } from '@backstop/platform';

export const RATINGS = ['AAA', 'AA', 'A', 'BBB', 'BB', 'B', 'CCC', 'CC', 'C', 'D'] as const;

export class CreditProfileDto {
  @IsOptional() @IsIn(RATINGS, { message: `rating must be one of ${RATINGS.join(', ')}` })
  rating?: string;

  @IsOptional() @IsDecimalInRange(0, 1)
  pdAnnual?: string;
}

export class RegisterPartyDto {
  @IsEntityId() partyId!: string;
  @IsString() @IsNotEmpty() @MaxLength(200) name!: string;
  @IsIn(PARTY_ROLES, { message: `role must be one of ${PARTY_ROLES.join(', ')}` }) role!: PartyRole;
  @IsDefined() @ValidateNested() @Type(() => CreditProfileDto) credit!: CreditProfileDto;
}

export class UpdateCreditProfileDto {
  @IsEntityId() partyId!: string;
  @IsDefined() @ValidateNested() @Type(() => CreditProfileDto) credit!: CreditProfileDto;
  @IsString() @IsNotEmpty() @MaxLength(500) reason!: string;
}

export class RegisterContractDto {
  @IsEntityId() contractId!: string;
  @IsIn(['PERPETUAL', 'FUTURE', 'OPTION'], { message: 'kind must be one of PERPETUAL, FUTURE, OPTION' }) kind!: 'PERPETUAL' | 'FUTURE' | 'OPTION';
  @Matches(/^[A-Z0-9]{2,10}-[A-Z]{3,5}$/, { message: 'underlying must look like BTC-USD (upper-case base, dash, quote)' })
  underlying!: string;
  @IsDecimalString(12) size!: string;
  /** Entry price (PERPETUAL, FUTURE) or the option premium per unit (OPTION). */
  @IsDecimalString(12) entryPrice!: string;
  @IsOptional() @IsIn(['CALL', 'PUT'], { message: 'optionType must be CALL or PUT' }) optionType?: 'CALL' | 'PUT';
  @IsOptional() @IsDecimalString(12) strike?: string;
  @IsOptional() @IsIsoUtc() expiry?: string;
  @IsCurrency() currency!: string;
  @IsEntityId() longPartyId!: string;
  @IsEntityId() shortPartyId!: string;
  @IsAmountOf('currency') longInitialMargin!: string;
  @IsAmountOf('currency') shortInitialMargin!: string;
}

export class CollateralDto {
  @IsEntityId() contractId!: string;
  @IsEntityId() partyId!: string;
  /** In the contract's settlement currency, at most its scale's digits. */
  @IsDecimalString(6) amount!: string;
}

export class CloseContractDto {
  @IsEntityId() contractId!: string;
  @IsEntityId() partyId!: string;
  @IsDecimalString(12) closePrice!: string;
}

/** AcceptContract / DeclineContract: the side that consents (or declines, or withdraws its proposal). */
export class ContractPartyDto {
  @IsEntityId() contractId!: string;
  @IsEntityId() partyId!: string;
}
