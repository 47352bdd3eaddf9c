import { Accepted, CommandContext, CommandDefinition, OPERATOR_ONLY } from '@backstop/platform';
import { DeclareDefaultDto } from './dto';
import { MarginEngine } from './margin.engine';

const SERVICE = 'margin-monitor' as const;

/** The margin-monitor commands (SPEC §3.8, §8): backstop.margin.commands and POST /v1/commands. */
export function marginCommands(engine: MarginEngine): CommandDefinition<DeclareDefaultDto>[] {
  const declareDefault: CommandDefinition<DeclareDefaultDto> = {
    type: 'DeclareDefault',
    service: SERVICE,
    schemaVersion: 1,
    summary:
      'An operator declares a party in default: DefaultTriggered (OPERATOR) with the accepted marks of its underlyings and, if given, the close-out price per underlying (recorded with the actor); default-settlement takes over.',
    dto: DeclareDefaultDto,
    example: { partyId: 'cp1', reason: 'missed the second margin-call deadline; operator review 2026-03-12', closeOutPrices: { 'BTC-USD': '30000' } },
    key: (p) => p.partyId,
    auth: OPERATOR_ONLY,
    handle: async (p, ctx: CommandContext): Promise<Accepted> => {
      const source = { id: ctx.commandId, correlationId: ctx.correlationId, ...(ctx.traceparent ? { traceparent: ctx.traceparent } : {}), ...(ctx.actor ? { actor: ctx.actor } : {}) };
      const outcome = await engine.declareDefault(source, p.partyId, p.reason, ctx.receivedAt, p.closeOutPrices);
      return { stream: outcome.stream, revision: outcome.lastRevision, ids: { partyId: p.partyId }, events: outcome.events.map((e) => e.type) };
    },
  };
  return [declareDefault];
}
