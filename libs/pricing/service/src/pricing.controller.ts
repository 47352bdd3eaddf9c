import { Controller, Get, Inject, NotFoundException, Param } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { currencyOf, fromMinor, iso, ms } from '@backstop/kernel';
import { capacityAvailable, CoverageState, latestRate, nextPeriod } from '@backstop/pricing';
import { assertMayRead, CurrentPrincipal, Principal, Roles } from '@backstop/platform';
import { accountStream, CAPACITY_STREAM, coverageStream, marketStream, PricingService, quoteStream } from './pricing.service';

@ApiTags('pricing')
@Controller('v1')
export class PricingController {
  constructor(@Inject(PricingService) private readonly pricing: PricingService) {}

  @Get('quotes/:quoteId')
  @Roles('desk', 'operator', 'compliance')
  @ApiOperation({ summary: 'A quote with every price component, and whether it is still open, expired or bound' })
  @ApiParam({ name: 'quoteId', example: 'q-2026-0001' })
  @ApiOkResponse({ description: 'status OPEN | EXPIRED | BOUND, the QuoteIssued fields, coverageId once bound, the stream revision' })
  @ApiNotFoundResponse({ description: 'no such quote' })
  async quote(@Param('quoteId') quoteId: string, @CurrentPrincipal() principal: Principal): Promise<unknown> {
    const { state, revision } = await this.pricing.quotes.load(quoteStream(quoteId));
    if (state.status === 'NONE' || !state.quote) throw new NotFoundException(`quote ${quoteId} does not exist`);
    assertMayRead(principal, [state.quote.protectedPartyId], `quote ${quoteId}`);
    const expired = ms(this.pricing.now()) > ms(state.quote.validUntil);
    const status = state.status === 'BOUND' ? 'BOUND' : expired ? 'EXPIRED' : 'OPEN';
    return { ...state.quote, status, coverageId: state.coverageId ?? null, revision };
  }

  @Get('coverages/:coverageId')
  @Roles('desk', 'operator', 'compliance')
  @ApiOperation({ summary: 'A coverage: status, limit, current and next premium, what was charged and what is unpaid' })
  @ApiParam({ name: 'coverageId', example: 'cov-2026-0001' })
  @ApiOkResponse({ description: 'status ACTIVE | LAPSED | ENDED, terms, premium { rateAnnual, perInterval, next? }, billedThrough, unpaid[], the stream revision' })
  @ApiNotFoundResponse({ description: 'no such coverage' })
  async coverage(@Param('coverageId') coverageId: string, @CurrentPrincipal() principal: Principal): Promise<unknown> {
    const { state, revision } = await this.pricing.coverages.load(coverageStream(coverageId));
    if (state.status === 'NONE' || !state.bound) throw new NotFoundException(`coverage ${coverageId} does not exist`);
    assertMayRead(principal, [state.bound.protectedPartyId], `coverage ${coverageId}`);
    return coverageView(state, revision, ms(this.pricing.now()));
  }

  @Get('pricing/accounts/:partyId')
  @Roles('desk', 'operator', 'compliance')
  @ApiOperation({ summary: "A protected party's premium account: balance per currency" })
  @ApiParam({ name: 'partyId', example: 'desk1' })
  async account(@Param('partyId') partyId: string, @CurrentPrincipal() principal: Principal): Promise<unknown> {
    assertMayRead(principal, [partyId], `the premium account of ${partyId}`);
    const { state, revision } = await this.pricing.accounts.load(accountStream(partyId));
    const balances = Object.fromEntries(Object.entries(state.balances).map(([currency, minor]) => [currency, fromMinor(minor, scaleOf(currency))]));
    return { partyId, balances, revision };
  }

  @Get('pricing/capacity')
  @Roles('desk', 'provider', 'operator', 'compliance')
  @ApiOperation({ summary: 'The capacity book: the latest assessment per currency, what is reserved since, what a bind may still take' })
  async capacity(@CurrentPrincipal() principal: Principal): Promise<unknown> {
    const { state, revision } = await this.pricing.capacity.load(CAPACITY_STREAM);
    const currencies = Object.keys(state.assessments).map((currency) => {
      const view = capacityAvailable(state, currency, this.pricing.policy.capacityAssessmentLagMs)!;
      const scale = scaleOf(currency);
      return {
        currency,
        poolId: view.assessment.poolId,
        assessedAt: view.assessment.assessedAt,
        headroom: fromMinor(view.assessment.headroomMinor, scale),
        reservedSince: fromMinor(view.reservedSinceMinor, scale),
        available: fromMinor(view.availableMinor, scale),
      };
    });
    const open = Object.values(state.open).map((r) => ({ coverageId: r.coverageId, currency: r.currency, stressContribution: fromMinor(r.stressMinor, scaleOf(r.currency)), counterpartyId: r.counterpartyId }));
    // Other desks' coverages and counterparties are not a bound desk's or provider's business (SPEC 9):
    // it sees the pool-level headroom only.
    const bound = principal.role !== 'operator' && principal.role !== 'compliance' && principal.partyId !== undefined;
    return { currencies, openCoverages: bound ? [] : open, revision };
  }

  @Get('pricing/markets/:underlying')
  @Roles('desk', 'provider', 'operator', 'compliance')
  @ApiOperation({ summary: 'The latest mark and vol pricing has seen for an underlying' })
  @ApiParam({ name: 'underlying', example: 'BTC-USD' })
  @ApiNotFoundResponse({ description: 'no mark seen yet' })
  async market(@Param('underlying') underlying: string): Promise<unknown> {
    const { state, revision } = await this.pricing.markets.load(marketStream(underlying));
    if (!state) throw new NotFoundException(`no mark seen for ${underlying}`);
    return { ...state, revision };
  }
}

function coverageView(state: CoverageState, revision: number | 'no_stream', nowMs: number) {
  const b = state.bound!;
  const amount = (minor: bigint) => fromMinor(minor, state.scale);
  const next = state.status === 'LAPSED' ? undefined : nextPeriod(state);
  const current = [...state.rates].reverse().find((r) => r.effectiveFromMs <= Math.max(nowMs, state.startMs)) ?? state.rates[0];
  const last = latestRate(state);
  return {
    coverageId: b.coverageId,
    status: state.status,
    quoteId: b.quoteId,
    contractId: b.contractId,
    underlying: b.underlying,
    protectedPartyId: b.protectedPartyId,
    protectedSide: b.protectedSide,
    counterpartyId: b.counterpartyId,
    currency: b.currency,
    coverageLimit: amount(state.limitMinor),
    stressContribution: amount(state.stressMinor),
    start: b.start,
    end: iso(state.endMs),
    intervalHours: b.intervalHours,
    graceHours: b.graceHours,
    premium: {
      rateAnnual: current.rateAnnual,
      perInterval: amount(current.perIntervalMinor),
      next: last !== current ? { rateAnnual: last.rateAnnual, perInterval: amount(last.perIntervalMinor), effectiveFrom: iso(last.effectiveFromMs) } : null,
      /** When the next premium falls due (charged in arrears at the end of its period). */
      nextChargeAt: next ? iso(next.periodEndMs) : null,
    },
    billedThrough: iso(state.billedThroughMs),
    premiumCharged: amount(state.chargedTotalMinor),
    unpaid: state.unpaid.map((u) => ({ periodStart: iso(u.periodStartMs), periodEnd: iso(u.periodEndMs), amount: amount(u.amountMinor), graceUntil: iso(u.graceUntilMs) })),
    basis: state.basis,
    closing: state.closing ?? null,
    revision,
  };
}

function scaleOf(currency: string): number {
  return currencyOf(currency).scale;
}
