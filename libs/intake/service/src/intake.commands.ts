import { contractDecider, ContractSpec, contractTerms, MarginStanding, partyDecider } from '@backstop/intake';
import { floatToMinor, fromMinor, Side } from '@backstop/kernel';
import { MARGIN_FALLBACK_VOL_ANNUAL } from '@backstop/contracts';
import { markToMarket } from '@backstop/margin-model';
import { CommandDefinition, decideCommand, foldStream, OPERATOR_ONLY, ReadModel, Runtime, streamName } from '@backstop/platform';
import { CloseContractDto, CollateralDto, ContractPartyDto, RegisterContractDto, RegisterPartyDto, UpdateCreditProfileDto } from './dto';
import { evolveMark, evolveStanding, NO_STANDING, standingOf } from './facts-view';
import { readPartyFacts } from './party-facts';

const SERVICE = 'contract-intake' as const;

/** The contract-intake commands (SPEC section 3 steps 1-2, section 8). */
export function intakeCommands(runtime: Runtime, facts: ReadModel): CommandDefinition<any>[] {
  const store = runtime.store;

  const registerParty: CommandDefinition<RegisterPartyDto> = {
    type: 'RegisterParty',
    service: SERVICE,
    schemaVersion: 1,
    summary: 'Register a desk, counterparty or provider with its credit profile (rating or annual PD).',
    dto: RegisterPartyDto,
    example: { partyId: 'desk1', name: 'Desk One', role: 'DESK', credit: { rating: 'A' } },
    key: (p) => p.partyId,
    auth: OPERATOR_ONLY,
    handle: async (p, ctx) => {
      const command = { type: 'RegisterParty' as const, partyId: p.partyId, name: p.name, role: p.role, credit: { ...p.credit }, at: ctx.receivedAt };
      return decideCommand(store, streamName('party', p.partyId), partyDecider, command, ctx, { partyId: p.partyId });
    },
  };

  const updateCredit: CommandDefinition<UpdateCreditProfileDto> = {
    type: 'UpdateCreditProfile',
    service: SERVICE,
    schemaVersion: 1,
    summary: "Replace a party's credit profile (a credit feed or an analyst); pricing reprices its coverages.",
    dto: UpdateCreditProfileDto,
    example: { partyId: 'desk1', credit: { rating: 'BBB' }, reason: 'agency downgrade 2026-02-01' },
    key: (p) => p.partyId,
    auth: OPERATOR_ONLY,
    handle: async (p, ctx) => {
      const command = { type: 'UpdateCreditProfile' as const, partyId: p.partyId, credit: { ...p.credit }, reason: p.reason, at: ctx.receivedAt };
      return decideCommand(store, streamName('party', p.partyId), partyDecider, command, ctx, { partyId: p.partyId });
    },
  };

  const registerContract: CommandDefinition<RegisterContractDto> = {
    type: 'RegisterContract',
    service: SERVICE,
    schemaVersion: 1,
    summary:
      'Propose a bilateral PERPETUAL, FUTURE or OPTION contract between two registered parties (live once the other side sends AcceptContract); an operator registers it live at once.',
    dto: RegisterContractDto,
    example: { contractId: 'btc-perp-1', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '2', entryPrice: '60000', currency: 'USDC', longPartyId: 'desk1', shortPartyId: 'cp1', longInitialMargin: '12000.000000', shortInitialMargin: '12000.000000' },
    key: (p) => p.contractId,
    auth: { roles: ['desk'], actsFor: (p) => [p.longPartyId, p.shortPartyId] },
    handle: async (p, ctx) => {
      const { contractId, ...rest } = p;
      const spec: ContractSpec = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as unknown as ContractSpec;
      const command = {
        type: 'RegisterContract' as const,
        contractId,
        spec,
        longParty: await readPartyFacts(store, p.longPartyId),
        shortParty: await readPartyFacts(store, p.shortPartyId),
        // Only an operator may put two parties into a live contract in one step; a desk (or a
        // sender on the Kafka topic, which carries no identity) proposes, and the other side accepts.
        consent: ctx.sender?.role === 'operator' ? ({ kind: 'OPERATOR' } as const) : ({ kind: 'PROPOSAL', proposedBy: ctx.sender?.partyId } as const),
        at: ctx.receivedAt,
      };
      return decideCommand(store, streamName('contract', contractId), contractDecider, command, ctx, { contractId });
    },
  };

  const consent = (type: 'AcceptContract' | 'DeclineContract', summary: string): CommandDefinition<ContractPartyDto> => ({
    type,
    service: SERVICE,
    schemaVersion: 1,
    summary,
    dto: ContractPartyDto,
    example: { contractId: 'btc-perp-1', partyId: 'desk1' },
    key: (p) => p.contractId,
    auth: { roles: ['desk'], actsFor: (p) => [p.partyId] },
    handle: async (p, ctx) => {
      const command = { type, contractId: p.contractId, partyId: p.partyId, at: ctx.receivedAt };
      return decideCommand(store, streamName('contract', p.contractId), contractDecider, command, ctx, { contractId: p.contractId });
    },
  });

  /** The party's standing at margin-monitor, as this service's read model of margin's events has it. */
  const marginStanding = async (partyId: string): Promise<MarginStanding> =>
    standingOf((await facts.fold(streamName('margin', partyId), evolveStanding, NO_STANDING)).state);

  /**
   * The side's mark-to-market on the contract at margin-monitor's accepted mark (its MarkRecorded,
   * kept in this service's read model), rounded down: what a withdrawal must leave covered.
   */
  const markToMarketOf = async (contractId: string, partyId: string): Promise<string | undefined> => {
    const { state: contract } = await foldStream(store, streamName('contract', contractId), contractDecider.evolve, contractDecider.initialState);
    const spec = contract.spec;
    if (!spec) return undefined;
    const side: Side | undefined = spec.longPartyId === partyId ? 'LONG' : spec.shortPartyId === partyId ? 'SHORT' : undefined;
    if (!side) return undefined;
    const { state: mark } = await facts.fold(streamName('market', spec.underlying), evolveMark, {});
    if (mark.price === undefined || mark.atMs === undefined) return undefined;
    const vol = Number(mark.volAnnual);
    // margin's own fallback for an underlying without a real vol (its policy's default vol).
    const volAnnual = vol > 0 && Number.isFinite(vol) ? vol : MARGIN_FALLBACK_VOL_ANNUAL;
    const value = markToMarket(contractTerms(spec), side, { mark: Number(mark.price), volAnnual, nowMs: mark.atMs });
    return fromMinor(floatToMinor(value, contract.scale, 'down'), contract.scale);
  };

  /** The contract's parties that are in default at margin-monitor (SPEC §3.9: the contract is held for the close-out). */
  const sidesInDefault = async (contractId: string): Promise<string[]> => {
    const { state } = await foldStream(store, streamName('contract', contractId), contractDecider.evolve, contractDecider.initialState);
    const parties = state.spec ? [state.spec.longPartyId, state.spec.shortPartyId] : [];
    const defaulted: string[] = [];
    for (const partyId of parties) if ((await marginStanding(partyId)).defaulted) defaulted.push(partyId);
    return defaulted;
  };

  const collateral = (type: 'DepositCollateral' | 'WithdrawCollateral', summary: string): CommandDefinition<CollateralDto> => ({
    type,
    service: SERVICE,
    schemaVersion: 1,
    summary,
    dto: CollateralDto,
    example: { contractId: 'btc-perp-1', partyId: 'desk1', amount: '5000.000000' },
    key: (p) => p.contractId,
    auth: { roles: ['desk'], actsFor: (p) => [p.partyId] },
    handle: async (p, ctx) => {
      const standing = type === 'WithdrawCollateral' ? await marginStanding(p.partyId) : undefined;
      const mtm = type === 'WithdrawCollateral' ? await markToMarketOf(p.contractId, p.partyId) : undefined;
      const margin = standing ? { ...standing, ...(mtm !== undefined ? { markToMarket: mtm } : {}) } : undefined;
      const inDefault = await sidesInDefault(p.contractId);
      const command = { type, contractId: p.contractId, partyId: p.partyId, amount: p.amount, at: ctx.receivedAt, ...(margin ? { margin } : {}), ...(inDefault.length > 0 ? { sidesInDefault: inDefault } : {}) };
      return decideCommand(store, streamName('contract', p.contractId), contractDecider, command, ctx, { contractId: p.contractId });
    },
  });

  const closeContract: CommandDefinition<CloseContractDto> = {
    type: 'CloseContract',
    service: SERVICE,
    schemaVersion: 1,
    summary: 'Ask to close a contract at a price; it closes when the other side asks at the same price.',
    dto: CloseContractDto,
    example: { contractId: 'btc-perp-1', partyId: 'desk1', closePrice: '61250.5' },
    key: (p) => p.contractId,
    auth: { roles: ['desk'], actsFor: (p) => [p.partyId] },
    handle: async (p, ctx) => {
      const inDefault = await sidesInDefault(p.contractId);
      const command = { type: 'CloseContract' as const, contractId: p.contractId, partyId: p.partyId, closePrice: p.closePrice, at: ctx.receivedAt, ...(inDefault.length > 0 ? { sidesInDefault: inDefault } : {}) };
      return decideCommand(store, streamName('contract', p.contractId), contractDecider, command, ctx, { contractId: p.contractId });
    },
  };

  return [
    registerParty,
    updateCredit,
    registerContract,
    consent('AcceptContract', "The other side's consent to a proposed contract: it goes live (margined, priced, coverable) with the proposed terms."),
    consent('DeclineContract', 'The other side declines a proposed contract, or its proposer withdraws it; it never goes live.'),
    collateral('DepositCollateral', 'Post collateral to one side of a contract (cures a margin call before its deadline).'),
    collateral(
      'WithdrawCollateral',
      "Take collateral back, never below the side's requirement, and not while the party has an open margin call or either side is in default; after a close-out the surviving side takes all of its own back.",
    ),
    closeContract,
  ];
}
