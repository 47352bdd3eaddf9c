import { Controller, Get, Inject, NotFoundException, Param } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { contractDecider, partyDecider } from '@backstop/intake';
import { fromMinor } from '@backstop/kernel';
import { assertMayRead, CurrentPrincipal, loadState, Principal, Roles, Runtime, RUNTIME, streamName } from '@backstop/platform';

@ApiTags('intake')
@Controller('v1')
export class IntakeController {
  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  @Get('parties/:partyId')
  @Roles('desk', 'provider', 'operator', 'compliance')
  @ApiOperation({ summary: 'A party, its role and credit profile' })
  async party(@Param('partyId') partyId: string, @CurrentPrincipal() principal: Principal): Promise<unknown> {
    assertMayRead(principal, [partyId], `party ${partyId}`);
    const { state, revision } = await loadState(this.runtime.store, streamName('party', partyId), partyDecider);
    if (!state.exists) throw new NotFoundException(`party ${partyId} is not registered`);
    return { ...state, revision };
  }

  @Get('contracts/:contractId')
  @Roles('desk', 'operator', 'compliance')
  @ApiOperation({ summary: 'A contract, its status and the collateral each side holds' })
  async contract(@Param('contractId') contractId: string, @CurrentPrincipal() principal: Principal): Promise<unknown> {
    const { state, revision } = await loadState(this.runtime.store, streamName('contract', contractId), contractDecider);
    if (state.status === 'NONE') throw new NotFoundException(`contract ${contractId} is not registered`);
    assertMayRead(principal, [state.spec?.longPartyId, state.spec?.shortPartyId], `contract ${contractId}`);
    return {
      contractId,
      status: state.status,
      revision,
      ...state.spec,
      collateral: { LONG: fromMinor(state.collateral.LONG, state.scale), SHORT: fromMinor(state.collateral.SHORT, state.scale) },
      required: { LONG: fromMinor(state.required.LONG, state.scale), SHORT: fromMinor(state.required.SHORT, state.scale) },
      pendingClose: state.pendingClose ?? null,
    };
  }
}
