import { Controller, Get, Inject, NotFoundException, Param } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { assertMayRead, CurrentPrincipal, loadState, Principal, Roles } from '@backstop/platform';
import { defaultDecider, DefaultState } from '@backstop/settlement';
import { SETTLEMENT, Settlement } from './settlement';
import { defaultStream, poolStream } from './steps';
import { defaultView, poolView, providerView, stressView } from './views';

@ApiTags('settlement')
@Controller('v1')
export class SettlementController {
  constructor(@Inject(SETTLEMENT) private readonly settlement: Settlement) {}

  @Get('pool')
  @Roles('desk', 'provider', 'operator', 'compliance')
  @ApiOperation({
    summary: 'The backstop pool: capital and share price per tranche, withdrawal freeze, margin advances, the last Cover-2 assessment',
  })
  @ApiOkResponse({ description: 'Amounts are decimal strings in the pool currency' })
  async pool(): Promise<unknown> {
    const { runtime, config, pool, capacity } = this.settlement;
    const { state, revision } = await loadState(runtime.store, poolStream(config.pool.poolId), pool);
    return poolView(state, config.pool, revision, await capacity.lastPublished());
  }

  @Get('pool/providers/:providerId')
  @Roles('provider', 'operator', 'compliance')
  @ApiOperation({ summary: "A provider's shares, value, income, losses and pending withdrawal in each tranche" })
  @ApiParam({ name: 'providerId', description: 'The provider party id' })
  @ApiOkResponse({ description: 'The provider position' })
  @ApiNotFoundResponse({ description: 'The provider has never deposited' })
  async provider(@Param('providerId') providerId: string, @CurrentPrincipal() principal: Principal): Promise<unknown> {
    assertMayRead(principal, [providerId], `the pool position of ${providerId}`);
    const { runtime, config, pool } = this.settlement;
    const { state } = await loadState(runtime.store, poolStream(config.pool.poolId), pool);
    const view = providerView(state, config.pool, providerId, runtime.clock.now().getTime());
    if (!view) throw new NotFoundException(`provider ${providerId} has no position in pool ${config.pool.poolId}`);
    return view;
  }

  @Get('stress')
  @Roles('provider', 'operator', 'compliance')
  @ApiOperation({
    summary: 'Cover 2 now: capital against the two worst counterparty defaults over historical crash days and ±Nσ shocks, every scenario listed',
  })
  @ApiOkResponse({ description: 'The live stress result and the last published CapacityAssessed' })
  async stress(): Promise<unknown> {
    const { config, capacity } = this.settlement;
    return stressView(await capacity.compute(), config.pool.poolId, await capacity.lastPublished());
  }

  @Get('defaults/:defaultId')
  @Roles('desk', 'provider', 'operator', 'compliance')
  @ApiOperation({
    summary: 'A default case line by line: close-outs, losses per protected party, each waterfall layer with its per-provider takes, payouts, claims, recoveries',
  })
  @ApiParam({ name: 'defaultId', description: "The default case id: the defaulter's party id" })
  @ApiOkResponse({ description: 'The default case' })
  @ApiNotFoundResponse({ description: 'No default with this id' })
  async default(@Param('defaultId') defaultId: string, @CurrentPrincipal() principal: Principal): Promise<unknown> {
    const { state, revision } = await loadState(this.settlement.runtime.store, defaultStream(defaultId), defaultDecider);
    if (state.status === 'NONE') throw new NotFoundException(`there is no default ${defaultId}`);
    const party = principal.role === 'operator' || principal.role === 'compliance' ? undefined : principal.partyId;
    if (party === undefined) return { ...defaultView(state), revision };
    // SPEC 9: a bound desk or provider sees a default only if it concerns it, and then only its own figures.
    assertMayRead(principal, partiesOfDefault(state), `default ${defaultId}`);
    return { ...defaultViewFor(state, party), revision };
  }
}

/** Everyone a default concerns: the defaulter, the protected parties, the providers whose capital it took. */
function partiesOfDefault(state: DefaultState): string[] {
  return [
    state.declared!.partyId,
    ...state.closeOuts.map((c) => c.protectedPartyId),
    ...state.lines.flatMap((l) => Object.keys(l.perProvider ?? {})),
  ];
}

/**
 * A default as one party may see it: the case's identity and the lines that name that party, with
 * only its own share of each waterfall step; no other party's loss, payout, claim or share, and no
 * totals from which they could be worked out.
 */
export function defaultViewFor(state: DefaultState, partyId: string) {
  const declared = state.declared!;
  const mine = (shares: Readonly<Record<string, string>> | undefined) => shares?.[partyId];
  return {
    defaultId: declared.defaultId,
    partyId: declared.partyId,
    status: state.status,
    reason: declared.reason,
    declaredAt: declared.at,
    currency: declared.currency,
    scope: `only what concerns ${partyId}`,
    closeOuts: state.closeOuts.filter((c) => c.protectedPartyId === partyId || c.defaulterPartyId === partyId),
    losses: state.assessment ? { parties: state.assessment.parties.filter((p) => p.partyId === partyId) } : null,
    waterfall: state.lines
      .filter((l) => mine(l.perParty) !== undefined || mine(l.perProvider) !== undefined)
      .map((l) => ({ step: l.step, layer: l.layer, ...(mine(l.perParty) ? { yourLossCovered: mine(l.perParty) } : {}), ...(mine(l.perProvider) ? { yourCapitalTaken: mine(l.perProvider) } : {}) })),
    payouts: state.payouts.filter((p) => p.partyId === partyId),
    claims: state.claims.filter((c) => c.partyId === partyId),
    recoveryAllocations: state.allocations
      .filter((a) => mine(a.perCreditor) !== undefined)
      .map((a) => ({ layer: a.layer, yourShare: mine(a.perCreditor), at: a.at })),
  };
}
