import {
  amountProblem,
  assertNever,
  currencyOf,
  Decider,
  DomainEvent,
  fromMinor,
  ms,
  reject,
  Side,
  toMinor,
  Violations,
} from '@backstop/kernel';
import type { ContractSpec, PartyRole } from '@backstop/contracts';

/** What intake knows of a party when it decides on a contract (looked up by the service). */
export interface PartyFacts {
  readonly partyId: string;
  readonly role: PartyRole;
}

// The published contract terms are defined in @backstop/contracts (what other services depend on).
export { contractTerms } from '@backstop/contracts';
export type { ContractSpec } from '@backstop/contracts';

/**
 * PROPOSED: one side asked, the other has not accepted (not live: no margin, no funding, no cover).
 * DECLINED: the other side declined, or the proposer withdrew, before it went live (final).
 */
export type ContractStatus = 'PROPOSED' | 'DECLINED' | 'OPEN' | 'CLOSED' | 'DEFAULTED';

export type ContractEvent =
  /** One side's proposal (SPEC 3.2 needs both sides): only ContractRegistered makes a contract live. */
  | DomainEvent<'ContractProposed', ContractSpec & { contractId: string; proposedBy?: string; at: string }>
  | DomainEvent<'ContractProposalDeclined', { contractId: string; partyId: string; withdrawn: boolean; at: string }>
  /** The contract is live: the other side accepted the proposal, or an operator registered it. */
  | DomainEvent<'ContractRegistered', ContractSpec & { contractId: string; at: string }>
  | DomainEvent<'CollateralDeposited', { contractId: string; partyId: string; side: Side; amount: string; currency: string; balance: string; at: string }>
  | DomainEvent<'CollateralWithdrawn', { contractId: string; partyId: string; side: Side; amount: string; currency: string; balance: string; at: string }>
  | DomainEvent<'ContractCloseRequested', { contractId: string; partyId: string; side: Side; closePrice: string; at: string }>
  | DomainEvent<'ContractClosed', { contractId: string; closePrice: string; at: string }>
  | DomainEvent<'ContractDefaulted', ContractDefaultedData>;

/**
 * default-settlement closed the contract out in a default (SPEC §3.9): the defaulter's collateral on
 * it was taken by the close-out (the ledger books it from settlement's waterfall); the contract
 * changes no more. The surviving side's collateral stays its own, withdrawable in full.
 */
export interface ContractDefaultedData {
  contractId: string;
  defaultId: string;
  defaulterPartyId: string;
  defaulterSide: Side;
  /** The defaulter's balance here when it was closed out: now the close-out's. */
  collateralTaken: string;
  closeOutPrice: string;
  at: string;
}

/**
 * Who registers: an operator makes the contract live at once; anyone else only proposes it, and
 * `proposedBy` (the sender's bound party, when known) may then not accept its own proposal.
 */
export type Consent = { readonly kind: 'OPERATOR' } | { readonly kind: 'PROPOSAL'; readonly proposedBy?: string };

export type ContractCommand =
  | { type: 'RegisterContract'; contractId: string; spec: ContractSpec; longParty?: PartyFacts; shortParty?: PartyFacts; consent: Consent; at: string }
  | { type: 'AcceptContract'; contractId: string; partyId: string; at: string }
  | { type: 'DeclineContract'; contractId: string; partyId: string; at: string }
  | { type: 'DepositCollateral'; contractId: string; partyId: string; amount: string; at: string; sidesInDefault?: readonly string[] }
  | { type: 'WithdrawCollateral'; contractId: string; partyId: string; amount: string; at: string; margin?: MarginStanding; sidesInDefault?: readonly string[] }
  | { type: 'CloseContract'; contractId: string; partyId: string; closePrice: string; at: string; sidesInDefault?: readonly string[] }
  | { type: 'MarkDefaulted'; contractId: string; defaultId: string; defaulterPartyId: string; closeOutPrice: string; at: string };

/**
 * The withdrawing party's standing at margin-monitor (its `margin-<party>` stream), looked up by the
 * service: no collateral leaves while a margin call is open (issued, or missed and covered by the
 * backstop, whose advance is a claim on this party) or once the party is in default.
 */
export interface MarginStanding {
  readonly defaulted: boolean;
  /**
   * The withdrawing side's mark-to-market on this contract at margin's accepted mark (decimal,
   * rounded down): a loss is money the side owes, so collateral covers it before any withdrawal.
   * Absent when no mark was accepted yet.
   */
  readonly markToMarket?: string;
  readonly openCalls: readonly { readonly callId: string; readonly status: string; readonly amount: string; readonly currency: string }[];
}

export interface ContractState {
  readonly status: 'NONE' | ContractStatus;
  readonly contractId?: string;
  readonly spec?: ContractSpec;
  readonly scale: number;
  /** Minor units per side. */
  readonly collateral: Readonly<Record<Side, bigint>>;
  /** The agreed initial margin per side: collateral may not be withdrawn below it. */
  readonly required: Readonly<Record<Side, bigint>>;
  readonly pendingClose?: { readonly partyId: string; readonly closePrice: string };
  /** PROPOSED: the party that proposed it, when known. */
  readonly proposedBy?: string;
  readonly defaulted?: ContractDefaultedData;
}

const EMPTY: ContractState = { status: 'NONE', scale: 0, collateral: { LONG: 0n, SHORT: 0n }, required: { LONG: 0n, SHORT: 0n } };
const PRICE_SCALE = 12;

export const contractDecider: Decider<ContractCommand, ContractState, ContractEvent> = {
  initialState: EMPTY,

  decide(command, state) {
    switch (command.type) {
      case 'RegisterContract':
        return registerContract(command, state);
      case 'AcceptContract':
        return acceptContract(command, state);
      case 'DeclineContract':
        return declineContract(command, state);
      case 'DepositCollateral':
        return moveCollateral(command, state, 'deposit');
      case 'WithdrawCollateral':
        return moveCollateral(command, state, 'withdraw');
      case 'CloseContract':
        return closeContract(command, state);
      case 'MarkDefaulted':
        return markDefaulted(command, state);
      default:
        return assertNever(command, 'contract command');
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'ContractProposed': {
        const { contractId, at: _at, proposedBy, ...spec } = event.data;
        return { ...EMPTY, status: 'PROPOSED', contractId, spec, scale: currencyOf(spec.currency).scale, ...(proposedBy ? { proposedBy } : {}) };
      }
      case 'ContractProposalDeclined':
        return { ...state, status: 'DECLINED' };
      case 'ContractRegistered': {
        const scale = currencyOf(event.data.currency).scale;
        const { contractId, at: _at, ...spec } = event.data;
        return {
          status: 'OPEN',
          contractId,
          spec,
          scale,
          collateral: { LONG: 0n, SHORT: 0n },
          required: { LONG: toMinor(spec.longInitialMargin, scale), SHORT: toMinor(spec.shortInitialMargin, scale) },
        };
      }
      case 'CollateralDeposited':
      case 'CollateralWithdrawn':
        return { ...state, collateral: { ...state.collateral, [event.data.side]: toMinor(event.data.balance, state.scale) } };
      case 'ContractCloseRequested':
        return { ...state, pendingClose: { partyId: event.data.partyId, closePrice: event.data.closePrice } };
      case 'ContractClosed':
        return { ...state, status: 'CLOSED', pendingClose: undefined };
      case 'ContractDefaulted': {
        const d = event.data;
        // The defaulter's collateral went to the close-out; nothing is required of the survivor any more.
        return { ...state, status: 'DEFAULTED', pendingClose: undefined, defaulted: d, collateral: { ...state.collateral, [d.defaulterSide]: 0n }, required: { LONG: 0n, SHORT: 0n } };
      }
      default:
        return assertNever(event, 'contract event');
    }
  },
};

function registerContract(command: Extract<ContractCommand, { type: 'RegisterContract' }>, state: ContractState): ContractEvent[] {
  if (state.status !== 'NONE') reject('contractId', 'unique', `contract ${command.contractId} is already registered`);
  const spec = command.spec;
  const v = new Violations();
  v.check(spec.longPartyId !== spec.shortPartyId, 'shortPartyId', 'distinctParties', 'a party cannot contract with itself');
  v.check(command.longParty !== undefined, 'longPartyId', 'knownParty', `party ${spec.longPartyId} is not registered`);
  v.check(command.shortParty !== undefined, 'shortPartyId', 'knownParty', `party ${spec.shortPartyId} is not registered`);
  for (const [field, party] of [['longPartyId', command.longParty], ['shortPartyId', command.shortParty]] as const) {
    if (party && party.role === 'PROVIDER') v.add(field, 'tradingRole', `party ${party.partyId} is a backstop provider and cannot hold a contract`);
  }
  const needsExpiry = spec.kind !== 'PERPETUAL';
  if (needsExpiry) {
    v.check(spec.expiry !== undefined, 'expiry', 'required', `${spec.kind} contracts need an expiry`);
    if (spec.expiry !== undefined) v.check(ms(spec.expiry) > ms(command.at), 'expiry', 'inFuture', `expiry ${spec.expiry} must be after ${command.at}`);
  } else {
    v.check(spec.expiry === undefined, 'expiry', 'notAllowed', 'PERPETUAL contracts have no expiry');
  }
  if (spec.kind === 'OPTION') {
    v.check(spec.optionType !== undefined, 'optionType', 'required', 'OPTION contracts need optionType CALL or PUT');
    v.check(spec.strike !== undefined, 'strike', 'required', 'OPTION contracts need a strike');
  } else {
    v.check(spec.optionType === undefined, 'optionType', 'notAllowed', `${spec.kind} contracts have no optionType`);
    v.check(spec.strike === undefined, 'strike', 'notAllowed', `${spec.kind} contracts have no strike`);
  }
  positive(v, 'size', spec.size);
  positive(v, 'entryPrice', spec.entryPrice);
  if (spec.strike !== undefined) positive(v, 'strike', spec.strike);
  v.throwIfAny();
  const consent = command.consent;
  switch (consent.kind) {
    case 'OPERATOR':
      return [{ type: 'ContractRegistered', data: { ...spec, contractId: command.contractId, at: command.at } }];
    case 'PROPOSAL':
      return [
        { type: 'ContractProposed', data: { ...spec, contractId: command.contractId, ...(consent.proposedBy ? { proposedBy: consent.proposedBy } : {}), at: command.at } },
      ];
    default:
      return assertNever(consent, 'consent');
  }
}

function requireProposal(state: ContractState, contractId: string): void {
  if (state.status === 'NONE') reject('contractId', 'knownContract', `contract ${contractId} is not registered`);
  if (state.status !== 'PROPOSED') reject('contractId', 'proposedContract', `contract ${contractId} is ${state.status}; only a proposal can be accepted or declined`);
}

/** The other side's consent makes the proposal live, as proposed (terms cannot change on the way). */
function acceptContract(command: Extract<ContractCommand, { type: 'AcceptContract' }>, state: ContractState): ContractEvent[] {
  requireProposal(state, command.contractId);
  sideOf(state, command.partyId);
  if (state.proposedBy === command.partyId) {
    reject('partyId', 'otherSide', `party ${command.partyId} proposed contract ${command.contractId}; the other side must accept it`);
  }
  const spec = state.spec!;
  if (spec.expiry !== undefined && ms(spec.expiry) <= ms(command.at)) {
    reject('contractId', 'notExpired', `contract ${command.contractId} expires at ${spec.expiry}, before its acceptance at ${command.at}`);
  }
  return [{ type: 'ContractRegistered', data: { ...spec, contractId: command.contractId, at: command.at } }];
}

/** The other side declines, or the proposer withdraws: the proposal never goes live. */
function declineContract(command: Extract<ContractCommand, { type: 'DeclineContract' }>, state: ContractState): ContractEvent[] {
  requireProposal(state, command.contractId);
  sideOf(state, command.partyId);
  const withdrawn = state.proposedBy === command.partyId;
  return [{ type: 'ContractProposalDeclined', data: { contractId: command.contractId, partyId: command.partyId, withdrawn, at: command.at } }];
}

function positive(v: Violations, field: string, value: string): void {
  v.check(toMinor(value, PRICE_SCALE) > 0n, field, 'positive', `${field} must be greater than 0`);
}

function sideOf(state: ContractState, partyId: string): Side {
  if (state.spec?.longPartyId === partyId) return 'LONG';
  if (state.spec?.shortPartyId === partyId) return 'SHORT';
  return reject('partyId', 'contractParty', `party ${partyId} is not a side of contract ${state.contractId}`);
}

function requireOpen(state: ContractState, contractId: string): void {
  if (state.status === 'NONE') reject('contractId', 'knownContract', `contract ${contractId} is not registered`);
  if (state.status === 'PROPOSED') reject('contractId', 'liveContract', `contract ${contractId} is a proposal the other side has not accepted yet`);
  if (state.status !== 'OPEN') reject('contractId', 'openContract', `contract ${contractId} is ${state.status}; it cannot change`);
}

/** SPEC §3.9: from the default on, a defaulter's contract changes only by its close-out. */
function refuseInDefault(state: ContractState, contractId: string, sidesInDefault: readonly string[] = []): void {
  const d = state.defaulted;
  if (d) reject('contractId', 'notDefaulted', `contract ${contractId} was closed out in default ${d.defaultId} of ${d.defaulterPartyId} at ${d.closeOutPrice}; it changes no more`);
  const parties = [state.spec?.longPartyId, state.spec?.shortPartyId].filter((p) => p !== undefined && sidesInDefault.includes(p));
  if (parties.length > 0) reject('contractId', 'notDefaulted', `${parties.join(' and ')} ${parties.length > 1 ? 'are' : 'is'} in default: contract ${contractId} is held for the close-out`);
}

/** The survivor of a closed-out contract takes its own collateral back; nothing else moves. */
function withdrawAfterDefault(command: Extract<ContractCommand, { type: 'WithdrawCollateral' }>, state: ContractState): ContractEvent[] | undefined {
  const d = state.defaulted;
  if (!d || command.partyId === d.defaulterPartyId) return undefined;
  const side = sideOf(state, command.partyId);
  const problem = amountProblem(command.amount, state.scale);
  if (problem) reject('amount', 'currencyScale', `amount ${problem} (${state.spec!.currency})`);
  const amount = toMinor(command.amount, state.scale);
  if (amount <= 0n) reject('amount', 'positive', 'amount must be greater than 0');
  const balance = state.collateral[side] - amount;
  if (balance < 0n) reject('amount', 'heldCollateral', `withdrawing ${command.amount} is more than the ${fromMinor(state.collateral[side], state.scale)} ${state.spec!.currency} held`);
  const data = { contractId: command.contractId, partyId: command.partyId, side, amount: fromMinor(amount, state.scale), currency: state.spec!.currency, balance: fromMinor(balance, state.scale), at: command.at };
  return [{ type: 'CollateralWithdrawn', data }];
}

function markDefaulted(command: Extract<ContractCommand, { type: 'MarkDefaulted' }>, state: ContractState): ContractEvent[] {
  if (state.status === 'NONE') reject('contractId', 'knownContract', `contract ${command.contractId} is not registered`);
  // Closed out once (a redelivered close-out adds nothing); closed by both sides before: nothing to mark.
  if (state.status !== 'OPEN') return [];
  const defaulterSide = sideOf(state, command.defaulterPartyId);
  return [
    {
      type: 'ContractDefaulted',
      data: {
        contractId: command.contractId,
        defaultId: command.defaultId,
        defaulterPartyId: command.defaulterPartyId,
        defaulterSide,
        collateralTaken: fromMinor(state.collateral[defaulterSide], state.scale),
        closeOutPrice: command.closeOutPrice,
        at: command.at,
      },
    },
  ];
}

function moveCollateral(
  command: Extract<ContractCommand, { type: 'DepositCollateral' | 'WithdrawCollateral' }>,
  state: ContractState,
  direction: 'deposit' | 'withdraw',
): ContractEvent[] {
  if (command.type === 'WithdrawCollateral') {
    const survivor = withdrawAfterDefault(command, state);
    if (survivor) return survivor;
  }
  // A deposit too: the close-out reads the book at the default; money arriving after it would be outside the waterfall.
  refuseInDefault(state, command.contractId, command.sidesInDefault);
  requireOpen(state, command.contractId);
  const side = sideOf(state, command.partyId);
  const problem = amountProblem(command.amount, state.scale);
  if (problem) reject('amount', 'currencyScale', `amount ${problem} (${state.spec!.currency})`);
  const amount = toMinor(command.amount, state.scale);
  if (amount <= 0n) reject('amount', 'positive', 'amount must be greater than 0');
  const current = state.collateral[side];
  const balance = direction === 'deposit' ? current + amount : current - amount;
  if (command.type === 'WithdrawCollateral' && command.margin) {
    const { defaulted, openCalls } = command.margin;
    if (defaulted) reject('partyId', 'notInDefault', `party ${command.partyId} is in default: its collateral is held for the settlement`);
    if (openCalls.length > 0) {
      const calls = openCalls.map((c) => `${c.callId} (${c.status.toLowerCase()}, ${c.amount} ${c.currency})`).join(', ');
      reject('amount', 'noOpenMarginCall', `party ${command.partyId} has an open margin call: ${calls}; deposit to cure it before withdrawing`);
    }
  }
  if (direction === 'withdraw') refuseBelowRequirement(command as Extract<ContractCommand, { type: 'WithdrawCollateral' }>, state, side, amount);
  const data = {
    contractId: command.contractId,
    partyId: command.partyId,
    side,
    amount: fromMinor(amount, state.scale),
    currency: state.spec!.currency,
    balance: fromMinor(balance, state.scale),
    at: command.at,
  };
  return [direction === 'deposit' ? { type: 'CollateralDeposited', data } : { type: 'CollateralWithdrawn', data }];
}

/**
 * SPEC §3 (issue 8 defect 8): collateral leaves only down to the current requirement after
 * mark-to-market — an unrealised loss is owed, so it is covered first; an unrealised gain is not
 * cash and frees nothing (the pool's side). available = collateral + min(0, MTM) − agreed IM.
 */
function refuseBelowRequirement(command: Extract<ContractCommand, { type: 'WithdrawCollateral' }>, state: ContractState, side: Side, amountMinor: bigint): void {
  const mtmText = command.margin?.markToMarket;
  const mtmMinor = mtmText !== undefined && amountProblem(mtmText.replace(/^-/, ''), state.scale) === undefined ? toMinor(mtmText, state.scale) : 0n;
  const lossMinor = mtmMinor < 0n ? mtmMinor : 0n;
  const current = state.collateral[side];
  const availableMinor = current + lossMinor - state.required[side];
  if (amountMinor <= availableMinor) return;
  const currency = state.spec!.currency;
  const f = (minor: bigint) => fromMinor(minor, state.scale);
  reject(
    'amount',
    'aboveRequirement',
    `at most ${f(availableMinor > 0n ? availableMinor : 0n)} ${currency} is available to withdraw: collateral ${f(current)}, mark-to-market ${f(lossMinor)}, the ${side.toLowerCase()} side's requirement ${f(state.required[side])}`,
  );
}

function closeContract(command: Extract<ContractCommand, { type: 'CloseContract' }>, state: ContractState): ContractEvent[] {
  refuseInDefault(state, command.contractId, command.sidesInDefault);
  requireOpen(state, command.contractId);
  const side = sideOf(state, command.partyId);
  positiveOrReject('closePrice', command.closePrice);
  const pending = state.pendingClose;
  if (!pending || pending.partyId === command.partyId) {
    return [{ type: 'ContractCloseRequested', data: { contractId: command.contractId, partyId: command.partyId, side, closePrice: command.closePrice, at: command.at } }];
  }
  if (toMinor(pending.closePrice, PRICE_SCALE) !== toMinor(command.closePrice, PRICE_SCALE)) {
    reject('closePrice', 'matchesRequest', `the other side asked to close at ${pending.closePrice}; both sides must agree on the close price`);
  }
  return [{ type: 'ContractClosed', data: { contractId: command.contractId, closePrice: pending.closePrice, at: command.at } }];
}

function positiveOrReject(field: string, value: string): void {
  const v = new Violations();
  positive(v, field, value);
  v.throwIfAny();
}

/** The model's view of a registered contract (prices as doubles, for valuation and pricing). */
