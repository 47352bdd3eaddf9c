import { Controller, Get, Inject, NotFoundException, Param } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { contractDecider, partyDecider } from '@backstop/intake';
import { fromMinor } from '@backstop/kernel';
import { loadState, Runtime, RUNTIME, streamName } from '@backstop/platform';

@ApiTags('intake')
@Controller('v1')
export class IntakeController {
  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  @Get('parties/:partyId')
  @ApiOperation({ summary: 'A party, its role and credit profile' })
  async party(@Param('partyId') partyId: string): Promise<unknown> {
    const { state, revision } = await loadState(this.runtime.store, streamName('party', partyId), partyDecider);
    if (!state.exists) throw new NotFoundException(`party ${partyId} is not registered`);
    return { ...state, revision };
  }

  @Get('contracts/:contractId')
  @ApiOperation({ summary: 'A contract, its status and the collateral each side holds' })
  async contract(@Param('contractId') contractId: string): Promise<unknown> {
    const { state, revision } = await loadState(this.runtime.store, streamName('contract', contractId), contractDecider);
    if (state.status === 'NONE') throw new NotFoundException(`contract ${contractId} is not registered`);
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
