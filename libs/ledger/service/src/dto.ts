import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ACCOUNT_KINDS } from '@backstop/ledger';

/** Response shapes of /v1/ledger for the OpenAPI document (the controller returns plain objects of these shapes). */
export class BalanceLineDto {
  @ApiProperty({ example: 'collateral:cp1:c1', description: 'Account name (docs/ledger.md: chart of accounts)' })
  account!: string;
  @ApiProperty({ enum: Object.keys(ACCOUNT_KINDS) })
  kind!: string;
  @ApiProperty({ enum: ['external', 'asset', 'liability', 'equity'] })
  class!: string;
  @ApiProperty({ enum: ['debit', 'credit'], description: 'The side a positive balance is on' })
  normal!: string;
  @ApiProperty({ example: 'USDC' })
  currency!: string;
  @ApiProperty({ example: '15000.000000', description: "On the account's normal side, decimal string in the currency's scale" })
  balance!: string;
  @ApiProperty({ example: '15000000000', description: 'The same in minor units (integer string)' })
  balanceMinor!: string;
}

export class ScopeDto {
  @ApiPropertyOptional() party?: string;
  @ApiPropertyOptional() contract?: string;
}

export class BalancesDto {
  @ApiProperty({ enum: ['live', 'replay'], description: 'live: the in-memory projection; replay: rebuilt from the store for asOf' })
  source!: string;
  @ApiProperty({ example: '1234', description: 'Global position of the last event included' })
  position!: string;
  @ApiPropertyOptional({ example: '2026-01-31T08:00:00.000Z', description: 'recordedAt of that event' })
  recordedAt?: string;
  @ApiPropertyOptional({ description: 'The asOf asked for' })
  asOf?: string;
  @ApiProperty() eventsApplied!: number;
  @ApiProperty({ type: ScopeDto }) scope!: ScopeDto;
  @ApiProperty({ type: [BalanceLineDto] }) balances!: BalanceLineDto[];
  @ApiProperty({ example: 'e3b0c442…', description: 'sha256 of the canonical balance sheet in scope' })
  digest!: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'number' }, description: 'Event types seen that the ledger does not know (should be empty)' })
  unmappedTypes!: Record<string, number>;
}

export class DigestDto {
  @ApiProperty({ enum: ['live', 'replay'] }) source!: string;
  @ApiProperty() position!: string;
  @ApiPropertyOptional() recordedAt?: string;
  @ApiProperty({ type: ScopeDto }) scope!: ScopeDto;
  @ApiProperty({ description: 'sha256 hex of the canonical balance sheet: lines "account|currency|balanceMinor", sorted, joined by \\n' })
  digest!: string;
}

export class AccountPostingDto {
  @ApiProperty() position!: string;
  @ApiProperty() eventId!: string;
  @ApiProperty() eventType!: string;
  @ApiProperty() stream!: string;
  @ApiProperty() at!: string;
  @ApiProperty({ enum: ['debit', 'credit'] }) side!: string;
  @ApiProperty() counterAccount!: string;
  @ApiProperty() amount!: string;
  @ApiProperty() currency!: string;
  @ApiProperty({ description: "The account's balance (normal side) after this posting" }) balanceAfter!: string;
  @ApiProperty() memo!: string;
}

export class AccountBalanceDto {
  @ApiProperty() currency!: string;
  @ApiProperty() balance!: string;
}

export class AccountHistoryDto {
  @ApiProperty() account!: string;
  @ApiProperty() position!: string;
  @ApiProperty({ type: [AccountBalanceDto] }) balances!: AccountBalanceDto[];
  @ApiProperty({ type: [AccountPostingDto] }) postings!: AccountPostingDto[];
  @ApiPropertyOptional({ description: 'Pass as ?after= for the next page' }) nextAfter?: string;
}

export class LedgerHaltDto {
  @ApiProperty() eventId!: string;
  @ApiProperty() eventType!: string;
  @ApiProperty() stream!: string;
  @ApiProperty() position!: string;
  @ApiProperty() reason!: string;
}

export class LedgerStatusDto {
  @ApiProperty() position!: string;
  @ApiPropertyOptional() recordedAt?: string;
  @ApiProperty() eventsApplied!: number;
  @ApiProperty() postingsMade!: number;
  @ApiProperty() digest!: string;
  @ApiPropertyOptional({ type: LedgerHaltDto, description: 'Present when the ledger refused an event and stopped' }) halted?: LedgerHaltDto;
  @ApiPropertyOptional({ description: 'The last store read error, while retrying' }) readError?: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'number' } }) unmappedTypes!: Record<string, number>;
}
