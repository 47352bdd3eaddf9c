import { Controller, Get, Inject, NotFoundException, Param } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { assertMayRead, CurrentPrincipal, Principal, Roles } from '@backstop/platform';
import { currencyOf, fromMinor } from '@backstop/kernel';
import { isOpenCall, MarginMonitor, marginStream, marketStream } from '@backstop/margin';
import { pnlToMinor } from '@backstop/margin-model';
import { MarginCallView, MarginView, MarkView } from './dto';
import { MarginEngine } from './margin.engine';

@ApiTags('margin')
@Controller('v1')
export class MarginController {
  constructor(@Inject(MarginEngine) private readonly engine: MarginEngine) {}

  @Get('margin/:partyId')
  @Roles('desk', 'operator', 'compliance')
  @ApiOperation({
    summary: "A party's margin: equity and requirements per settlement currency, open calls, positions at the last sane marks",
    description: 'A desk token sees only the party it is bound to; operator and compliance see every party.',
  })
  @ApiParam({ name: 'partyId', example: 'desk1' })
  @ApiOkResponse({ type: MarginView })
  @ApiNotFoundResponse({ description: 'the party has no margin account (no position was ever opened)' })
  async margin(@Param('partyId') partyId: string, @CurrentPrincipal() principal: Principal): Promise<MarginView> {
    assertMayRead(principal, [partyId], `the margin of ${partyId}`);
    const view = await this.engine.read((monitor) => marginView(monitor, partyId));
    if (view === undefined) throw new NotFoundException(`party ${partyId} has no margin account`);
    return view;
  }

  @Get('marks/:underlying')
  @Roles('desk', 'provider', 'operator', 'compliance')
  @ApiOperation({ summary: 'The last sane mark of an underlying (the one margin uses) and the last mark recorded, sane or flagged' })
  @ApiParam({ name: 'underlying', example: 'BTC-USD' })
  @ApiOkResponse({ type: MarkView })
  @ApiNotFoundResponse({ description: 'no mark of that underlying was ever recorded' })
  async marks(@Param('underlying') underlying: string): Promise<MarkView> {
    const view = await this.engine.read((monitor) => markView(monitor, underlying));
    if (view === undefined) throw new NotFoundException(`no mark of ${underlying} was recorded`);
    return view;
  }
}

function marginView(monitor: MarginMonitor, partyId: string): MarginView | undefined {
  const state = monitor.accountState(partyId);
  if (state === undefined || state.partyId === undefined) return undefined;
  const amount = (minor: bigint, currency: string) => fromMinor(minor, currencyOf(currency).scale);
  const calls: MarginCallView[] = Object.values(state.calls).map((c) => ({
    callId: c.callId,
    status: c.status,
    amount: amount(c.amountMinor, c.currency),
    currency: c.currency,
    issuedAt: c.issuedAt,
    deadline: c.deadline,
    secondDeadline: c.secondDeadline,
    netDeposits: amount(c.netDepositsMinor, c.currency),
    covered: amount(c.coveredMinor, c.currency),
  }));
  const openCalls = calls.filter((c) => !state.defaulted && isOpenCall(c));
  return {
    partyId,
    status: state.defaulted ? 'DEFAULTED' : openCalls.length > 0 ? 'IN_CALL' : 'OK',
    revision: monitor.revisionOf(marginStream(partyId)),
    accounts: monitor.accountFigures(partyId).map((f) => ({
      currency: f.currency,
      equity: amount(f.equityMinor, f.currency),
      ownEquity: amount(f.ownEquityMinor, f.currency),
      collateral: amount(f.collateralMinor, f.currency),
      cashFlows: amount(f.flowsMinor, f.currency),
      backstopCover: amount(f.coverMinor, f.currency),
      unrealizedPnl: amount(f.unrealizedPnlMinor, f.currency),
      initialRequirement: amount(f.initialMinor, f.currency),
      maintenanceRequirement: amount(f.maintenanceMinor, f.currency),
      excessOverMaintenance: amount(f.equityMinor - f.maintenanceMinor, f.currency),
    })),
    openCalls,
    calls,
    positions: monitor.positions(partyId).map((p) => ({
      contractId: p.contractId,
      side: p.side,
      kind: p.kind,
      underlying: p.underlying,
      currency: p.currency,
      size: p.size,
      entryPrice: p.entryPrice,
      markToMarket: amount(pnlToMinor(p.markToMarket, currencyOf(p.currency).scale), p.currency),
    })),
    lastSaneMarks: { ...monitor.lastSaneMarks(partyId) },
    ...(state.defaulted ? { default: { ...state.defaulted } } : {}),
  };
}

function markView(monitor: MarginMonitor, underlying: string): MarkView | undefined {
  const state = monitor.marketState(underlying);
  if (state.recorded === 0) return undefined;
  const sane = state.lastSane;
  const last = state.last;
  return {
    underlying,
    revision: monitor.revisionOf(marketStream(underlying)),
    marksRecorded: state.recorded,
    lastSane: sane ? { price: sane.price, at: sane.at, ...(sane.volAnnual ? { volAnnual: sane.volAnnual } : {}), ...(sane.fundingRate ? { fundingRate: sane.fundingRate } : {}) } : null,
    ...(state.lastVolAnnual ? { volAnnual: state.lastVolAnnual } : {}),
    last: last ? { price: last.price, sane: last.sane, at: last.at, ...(last.flag ? { flag: last.flag } : {}), ...(last.detail ? { detail: last.detail } : {}), ...(last.receivedAt ? { receivedAt: last.receivedAt } : {}) } : null,
    ...(state.pending && state.flaggedRange
      ? { pending: { price: state.pending.last.price, run: state.pending.run, since: new Date(state.pending.first.atMs).toISOString(), low: state.flaggedRange.low, high: state.flaggedRange.high } }
      : {}),
    ...(state.staleAlarmFor !== undefined && state.staleAlarmFor === sane?.at ? { staleSince: state.staleAlarmFor } : {}),
  };
}
