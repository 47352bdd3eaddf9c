import { CommandDefinition, decideCommand, notYetKnown, OPERATOR_ONLY, streamName } from '@backstop/platform';
import { evolveParty, KnownParty } from './facts-view';
import { defaultDecider } from '@backstop/settlement';
import { DepositCapitalDto, RecordRecoveryDto, RequestWithdrawalDto, WithdrawCapitalDto } from './dto';
import { SERVICE, Settlement } from './settlement';
import { defaultStream, poolStream } from './steps';

/** The default-settlement commands: provider capital (SPEC §6) and recoveries (SPEC §3 step 10). */
export type SettlementCommandDefinition =
  | CommandDefinition<DepositCapitalDto>
  | CommandDefinition<RequestWithdrawalDto>
  | CommandDefinition<WithdrawCapitalDto>
  | CommandDefinition<RecordRecoveryDto>;

export function settlementCommands(settlement: Settlement): SettlementCommandDefinition[] {
  const { runtime, config, pool } = settlement;
  const store = runtime.store;
  const poolId = config.pool.poolId;
  const stream = poolStream(poolId);
  /** The party as intake published it (this service's read model); not kept yet: a retryable rejection. */
  const knownParty = async (partyId: string): Promise<KnownParty> => {
    const { state } = await settlement.facts.fold<KnownParty | undefined>(streamName('party', partyId), evolveParty, undefined);
    return state ?? notYetKnown('providerId', `party ${partyId} is not known to default-settlement yet (intake's PartyRegistered has not reached it)`);
  };

  const depositCapital: CommandDefinition<DepositCapitalDto> = {
    type: 'DepositCapital',
    service: SERVICE,
    schemaVersion: 1,
    summary: `Deposit capital into the JUNIOR (first-loss) or SENIOR tranche of the pool for shares; the provider must be a registered PROVIDER. Amounts in ${config.pool.currency}.`,
    dto: DepositCapitalDto,
    example: { providerId: 'lp1', tranche: 'JUNIOR', amount: '1000000.000000', currency: 'USDC' },
    key: () => poolId,
    auth: { roles: ['provider'], actsFor: (p) => [p.providerId] },
    handle: async (p, ctx) => {
      const command = {
        type: 'DepositCapital' as const,
        providerId: p.providerId,
        tranche: p.tranche,
        amount: p.amount,
        ...(p.currency ? { currency: p.currency } : {}),
        provider: await knownParty(p.providerId),
        at: ctx.receivedAt,
      };
      return decideCommand(store, stream, pool, command, ctx, { poolId, providerId: p.providerId });
    },
  };

  const requestWithdrawal: CommandDefinition<RequestWithdrawalDto> = {
    type: 'RequestWithdrawal',
    service: SERVICE,
    schemaVersion: 1,
    summary: `Ask to withdraw tranche shares: the window opens after the cooldown (${config.pool.cooldownMs / 86_400_000} days) and lasts ${config.pool.windowMs / 86_400_000} days; it pays the lesser of the value now and at withdrawal. Refused, naming the headroom, if the pool's capital net of pending withdrawals would no longer cover its Cover-2 requirement.`,
    dto: RequestWithdrawalDto,
    example: { providerId: 'lp1', tranche: 'JUNIOR', shares: '250000000000' },
    key: () => poolId,
    auth: { roles: ['provider'], actsFor: (p) => [p.providerId] },
    handle: async (p, ctx) => {
      // Cover 2 on capital net of pending withdrawals, as of now: the decider refuses a request that would break it.
      const { result } = await settlement.capacity.compute();
      const capacity = { capitalNetMinor: result.capitalMinor, requirementMinor: result.requirementMinor };
      const command = { type: 'RequestWithdrawal' as const, providerId: p.providerId, tranche: p.tranche, ...(p.shares ? { shares: p.shares } : {}), capacity, at: ctx.receivedAt };
      return decideCommand(store, stream, pool, command, ctx, { poolId, providerId: p.providerId });
    },
  };

  const withdrawCapital: CommandDefinition<WithdrawCapitalDto> = {
    type: 'WithdrawCapital',
    service: SERVICE,
    schemaVersion: 1,
    summary: 'Withdraw the requested shares inside their window; refused while a default is being settled (the window is then extended).',
    dto: WithdrawCapitalDto,
    example: { providerId: 'lp1', tranche: 'JUNIOR' },
    key: () => poolId,
    auth: { roles: ['provider'], actsFor: (p) => [p.providerId] },
    handle: async (p, ctx) => {
      const command = { type: 'WithdrawCapital' as const, providerId: p.providerId, tranche: p.tranche, at: ctx.receivedAt };
      return decideCommand(store, stream, pool, command, ctx, { poolId, providerId: p.providerId });
    },
  };

  const recordRecovery: CommandDefinition<RecordRecoveryDto> = {
    type: 'RecordRecovery',
    service: SERVICE,
    schemaVersion: 1,
    summary: "Record money recovered from a defaulter's estate: it repays unpaid claims, then the tranches in reverse waterfall order; any surplus goes back to the estate.",
    dto: RecordRecoveryDto,
    example: { defaultId: 'default-cp1-1', amount: '15000.000000', currency: 'USDC', reference: 'bankruptcy estate distribution #1' },
    key: (p) => p.defaultId,
    auth: OPERATOR_ONLY,
    handle: async (p, ctx) => {
      const command = {
        type: 'RecordRecovery' as const,
        defaultId: p.defaultId,
        amount: p.amount,
        ...(p.currency ? { currency: p.currency } : {}),
        reference: p.reference,
        at: ctx.receivedAt,
      };
      return decideCommand(store, defaultStream(p.defaultId), defaultDecider, command, ctx, { defaultId: p.defaultId });
    },
  };

  return [depositCapital, requestWithdrawal, withdrawCapital, recordRecovery];
}
