import { IsNotEmpty, IsObject, IsOptional, IsString, MaxLength } from 'class-validator';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsEntityId } from '@backstop/platform';

/** DeclareDefault (backstop.margin.commands / POST /v1/commands): an operator flags a party (SPEC §3.8). */
export class DeclareDefaultDto {
  @IsEntityId() partyId!: string;
  /** Why, in words an auditor can follow (recorded as the DefaultTriggered detail). */
  @IsString() @IsNotEmpty() @MaxLength(500) reason!: string;
  /**
   * The close-out price per underlying (decimal strings), e.g. { "BTC-USD": "30000" }: the level the
   * operator can actually liquidate at when the accepted mark is behind the market (SPEC §3.9).
   * Each must be an underlying the party holds; absent, the close-out uses the accepted mark.
   */
  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, example: { 'BTC-USD': '30000' } })
  @IsOptional()
  @IsObject()
  closeOutPrices?: Record<string, string>;
}

export const MARGIN_STATUSES = ['OK', 'IN_CALL', 'DEFAULTED'] as const;

export class MarginAccountView {
  @ApiProperty({ example: 'USDC' }) currency!: string;
  @ApiProperty({ example: '9000.000000', description: 'collateral + cash flows + backstop cover + unrealised P&L (rounded down)' }) equity!: string;
  @ApiProperty({ description: 'equity − backstop cover: what the party itself stands behind' }) ownEquity!: string;
  @ApiProperty({ description: "intake's collateral balances of this party's sides, summed" }) collateral!: string;
  @ApiProperty({ description: 'funding and settlements received minus paid' }) cashFlows!: string;
  @ApiProperty({ description: 'MarginCoveredByBackstop advances (a claim of the pool)' }) backstopCover!: string;
  @ApiProperty() unrealizedPnl!: string;
  @ApiProperty({ description: 'SPAN-like scenario margin, rounded up' }) initialRequirement!: string;
  @ApiProperty() maintenanceRequirement!: string;
  @ApiProperty({ description: 'equity − maintenance (negative: in call territory)' }) excessOverMaintenance!: string;
}

export class MarginCallView {
  @ApiProperty() callId!: string;
  @ApiProperty({ enum: ['ISSUED', 'CURED', 'MISSED', 'DEFAULTED'] }) status!: string;
  @ApiProperty() amount!: string;
  @ApiProperty() currency!: string;
  @ApiProperty() issuedAt!: string;
  @ApiProperty() deadline!: string;
  @ApiProperty() secondDeadline!: string;
  @ApiProperty({ description: 'deposits − withdrawals since the call' }) netDeposits!: string;
  @ApiProperty() covered!: string;
}

export class MarginPositionView {
  @ApiProperty() contractId!: string;
  @ApiProperty({ enum: ['LONG', 'SHORT'] }) side!: string;
  @ApiProperty({ enum: ['PERPETUAL', 'FUTURE', 'OPTION'] }) kind!: string;
  @ApiProperty() underlying!: string;
  @ApiProperty() currency!: string;
  @ApiProperty() size!: string;
  @ApiProperty() entryPrice!: string;
  @ApiProperty({ description: 'at the last sane mark, rounded down' }) markToMarket!: string;
}

export class MarginDefaultView {
  @ApiProperty({ enum: ['SECOND_DEADLINE', 'NEGATIVE_EQUITY', 'OPERATOR'] }) reason!: string;
  @ApiProperty() detail!: string;
  @ApiProperty() at!: string;
}

export class MarginView {
  @ApiProperty() partyId!: string;
  @ApiProperty({ enum: MARGIN_STATUSES }) status!: (typeof MARGIN_STATUSES)[number];
  @ApiProperty({ description: 'revision of margin-<partyId>' }) revision!: number;
  @ApiProperty({ type: [MarginAccountView], description: 'one per settlement currency' }) accounts!: MarginAccountView[];
  @ApiProperty({ type: [MarginCallView] }) openCalls!: MarginCallView[];
  @ApiProperty({ type: [MarginCallView] }) calls!: MarginCallView[];
  @ApiProperty({ type: [MarginPositionView] }) positions!: MarginPositionView[];
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' }, example: { 'BTC-USD': '60000' } }) lastSaneMarks!: Record<string, string>;
  @ApiPropertyOptional({ type: MarginDefaultView }) default?: MarginDefaultView;
}

export class SaneMarkView {
  @ApiProperty() price!: string;
  @ApiPropertyOptional() volAnnual?: string;
  @ApiPropertyOptional() fundingRate?: string;
  @ApiProperty() at!: string;
}

export class RecordedMarkView {
  @ApiProperty() price!: string;
  @ApiProperty() sane!: boolean;
  @ApiPropertyOptional({ enum: ['JUMP', 'STALE', 'NON_POSITIVE', 'OUT_OF_RANGE', 'FUTURE', 'SOURCE'] }) flag?: string;
  @ApiPropertyOptional() detail?: string;
  @ApiProperty() at!: string;
  @ApiPropertyOptional({ description: 'when margin-monitor received it (its own clock)' }) receivedAt?: string;
}

export class PendingLevelView {
  @ApiProperty({ description: 'the last candidate price beyond the band' }) price!: number;
  @ApiProperty({ description: 'consecutive consistent candidate marks so far' }) run!: number;
  @ApiProperty() since!: string;
  @ApiProperty({ description: 'lowest and highest candidate levels since the last accepted mark: margin stresses both' }) low!: number;
  @ApiProperty() high!: number;
}

export class MarkView {
  @ApiProperty() underlying!: string;
  @ApiProperty({ description: 'revision of market-<underlying>' }) revision!: number;
  @ApiProperty() marksRecorded!: number;
  @ApiPropertyOptional({ type: SaneMarkView, nullable: true }) lastSane!: SaneMarkView | null;
  @ApiPropertyOptional({ description: 'the implied vol in use (last one any sane mark carried)' }) volAnnual?: string;
  @ApiPropertyOptional({ type: RecordedMarkView, nullable: true }) last!: RecordedMarkView | null;
  @ApiPropertyOptional({ type: PendingLevelView, description: 'a level beyond the band not accepted yet (it may raise requirements)' }) pending?: PendingLevelView;
  @ApiPropertyOptional({ description: 'set while a MarkStale alarm is open: the accepted mark it was raised for' }) staleSince?: string;
}

