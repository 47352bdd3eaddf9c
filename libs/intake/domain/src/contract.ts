import {
  amountProblem,
  assertNever,
  ContractTerms,
  ContractWireTerms,
  currencyOf,
  Decider,
  DomainEvent,
  fromMinor,
  ms,
  reject,
  Side,
  termsFromWire,
  toMinor,
  Violations,
} from '@backstop/kernel';
import { PartyRole } from './party';

/** What intake knows of a party when it decides on a contract (looked up by the service). */
export interface PartyFacts {
  readonly partyId: string;
  readonly role: PartyRole;
}

/** A contract's wire terms plus the initial margin each side agreed to post. */
export interface ContractSpec extends ContractWireTerms {
  readonly longInitialMargin: string;
  readonly shortInitialMargin: string;
}

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
  | DomainEvent<'ContractClosed', { contractId: string; closePrice: string; at: string }>;

/**
 * Who registers: an operator makes the contract live at once; anyone else only proposes it, and
 * `proposedBy` (the sender's bound party, when known) may then not accept its own proposal.
 */
export type Consent = { readonly kind: 'OPERATOR' } | { readonly kind: 'PROPOSAL'; readonly proposedBy?: string };

export type ContractCommand =
  | { type: 'RegisterContract'; contractId: string; spec: ContractSpec; longParty?: PartyFacts; shortParty?: PartyFacts; consent: Consent; at: string }
  | { type: 'AcceptContract'; contractId: string; partyId: string; at: string }
  | { type: 'DeclineContract'; contractId: string; partyId: string; at: string }
  | { type: 'DepositCollateral'; contractId: string; partyId: string; amount: string; at: string }
  | { type: 'WithdrawCollateral'; contractId: string; partyId: string; amount: string; at: string; margin?: MarginStanding }
  | { type: 'CloseContract'; contractId: string; partyId: string; closePrice: string; at: string };

/**
 * The withdrawing party's standing at margin-monitor (its `margin-<party>` stream), looked up by the
 * service: no collateral leaves while a margin call is open (issued, or missed and covered by the
 * backstop, whose advance is a claim on this party) or once the party is in default.
 */
export interface MarginStanding {
  readonly defaulted: boolean;
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

function moveCollateral(
  command: Extract<ContractCommand, { type: 'DepositCollateral' | 'WithdrawCollateral' }>,
  state: ContractState,
  direction: 'deposit' | 'withdraw',
): ContractEvent[] {
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
  if (direction === 'withdraw' && balance < state.required[side]) {
    reject(
      'amount',
      'aboveRequirement',
      `withdrawing ${command.amount} would leave ${fromMinor(balance, state.scale)} ${state.spec!.currency}, below the ${side.toLowerCase()} side's requirement of ${fromMinor(state.required[side], state.scale)}`,
    );
  }
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

function closeContract(command: Extract<ContractCommand, { type: 'CloseContract' }>, state: ContractState): ContractEvent[] {
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
export const contractTerms: (spec: ContractSpec) => ContractTerms = termsFromWire;
