/**
 * A party's margin account, stream `margin-<partyId>` (SPEC §3 steps 6-8).
 *
 * The account records what margin-monitor learned from other services (positions, collateral,
 * backstop cover) so it can be rebuilt from its own streams, and what it decided: margin calls and
 * their fate, defaults, and the contract cash flows. The decider is pure: equity and requirements
 * are computed by the monitor (flat arrays, the hot path) and arrive in the command as an
 * `Assessment` in minor units; the decider owns the rules:
 *
 * - equity < maintenance and no open call in that currency → MarginCallIssued for initial − equity
 *   (CME's rule: a call below maintenance is met back to initial), deadline = at + grace, a second
 *   deadline later;
 * - a deposit at or before the deadline that brings net deposits since the call to the call amount,
 *   or equity back to initial → MarginCallCured (DEPOSIT); a price recovery alone does not cure;
 * - deadline passed → MarginCallMissed (default-settlement then advances MarginCoveredByBackstop,
 *   which counts as collateral but not as the party's own equity);
 * - at the second deadline, own equity (equity − backstop cover) still below maintenance →
 *   DefaultTriggered (SECOND_DEADLINE), else the call is cured late (RESTORED_BY_SECOND_DEADLINE);
 * - a contract goes live (CallInitialMargin on ContractRegistered) with the side's equity below the
 *   larger of its agreed initial margin and its SPAN initial → MarginCallIssued at once (contractId
 *   set), normal grace; until that deadline negative own equity is no default (never called yet);
 * - own equity below zero on any assessment → DefaultTriggered (NEGATIVE_EQUITY);
 *   an operator's DeclareDefault → DefaultTriggered (OPERATOR). A defaulted account decides no more
 *   calls: default-settlement takes over.
 * - contract cash flows (funding, settlement) are recorded once per contract, in the LONG party's
 *   stream (deterministic owner; both accounts are moved by the monitor from that one event);
 *   every funding instant is recorded, a zero one included.
 * - default-settlement's ContractClosedOut → PositionClosedOut, recorded once in the LONG party's
 *   stream like a cash flow (no money: the ledger books the close-out from settlement's events):
 *   the contract leaves both accounts and takes no further funding or settlement.
 */
import { amountProblem, assertNever, ContractTerms, ContractWireTerms, currencyOf, Decider, DomainEvent, fromMinor, isIsoUtc, isSupportedCurrency, iso, ms, reject, Side, termsFromWire, toMinor, Violations } from '@backstop/kernel';
import { valuationProblems } from '@backstop/margin-model';
import type { SettlementPriceBasis } from './expiry';
import { fundingLongGainMinor, payerAndReceiver, SettlementReason, settlementLongGainMinor } from './cash-flows';

/** Equity and requirements of one (party, currency) account, in minor units, from the monitor. */
export interface Assessment {
  readonly currency: string;
  /** Collateral + flows + backstop cover + MTM (MTM rounded down). */
  readonly equityMinor: bigint;
  /** equity − backstop cover: what the party itself stands behind. */
  readonly ownEquityMinor: bigint;
  /** Requirements rounded up (the pool's favour). */
  readonly initialMinor: bigint;
  readonly maintenanceMinor: bigint;
}

export interface PositionSpec extends ContractWireTerms {
  readonly contractId: string;
  readonly side: Side;
}

export type CollateralChange = 'DEPOSIT' | 'WITHDRAWAL';
export type DefaultReason = 'SECOND_DEADLINE' | 'NEGATIVE_EQUITY' | 'OPERATOR';
export type CureCause = 'DEPOSIT' | 'RESTORED_BY_SECOND_DEADLINE';
export type LastSaneMarks = Readonly<Record<string, string>>;

export type AccountEvent =
  | DomainEvent<'PositionOpened', PositionSpec & { partyId: string; at: string }>
  | DomainEvent<'CollateralRecorded', { partyId: string; contractId: string; side: Side; change: CollateralChange; amount: string; balance: string; currency: string; at: string }>
  | DomainEvent<'BackstopCoverRecorded', { partyId: string; callId: string; amount: string; currency: string; at: string }>
  | DomainEvent<'BackstopCoverReturned', { partyId: string; amount: string; currency: string; reference: string; at: string }>
  | DomainEvent<
      'MarginCallIssued',
      {
        callId: string;
        partyId: string;
        amount: string;
        currency: string;
        equity: string;
        maintenanceRequirement: string;
        initialRequirement: string;
        deadline: string;
        secondDeadline: string;
        /** Set on the call issued when this contract became live: its agreed initial margin was not posted yet. */
        contractId?: string;
        at: string;
      }
    >
  | DomainEvent<'MarginCallCured', { callId: string; partyId: string; currency: string; equity: string; cause: CureCause; at: string }>
  | DomainEvent<'MarginCallMissed', { callId: string; partyId: string; amount: string; currency: string; at: string }>
  | DomainEvent<'DefaultTriggered', DefaultTriggeredData>
  | DomainEvent<'FundingExchanged', { contractId: string; payerPartyId: string; receiverPartyId: string; amount: string; currency: string; rate: string; mark: string; at: string }>
  | DomainEvent<
      'ContractSettled',
      {
        contractId: string;
        reason: SettlementReason;
        price: string;
        /** EXPIRY: how the price was found (the window's TWAP, or the last accepted mark when the window had none). */
        priceBasis?: SettlementPriceBasis;
        priceDetail?: string;
        payerPartyId: string;
        receiverPartyId: string;
        amount: string;
        currency: string;
        at: string;
      }
    >
  | DomainEvent<'PositionClosedOut', PositionCloseOut>;

export interface DefaultTriggeredData {
  partyId: string;
  reason: DefaultReason;
  detail: string;
  callId?: string;
  lastSaneMarks: LastSaneMarks;
  /** OPERATOR only: the close-out price per underlying the operator gave (SPEC §3.9), if any. */
  closeOutPrices?: Record<string, string>;
  /** OPERATOR only: who declared it (the HTTP caller, or the Kafka command topic). */
  declaredBy?: string;
  at: string;
}

/** What margin keeps of settlement's ContractClosedOut (the money is settlement's and the ledger's). */
export interface PositionCloseOut {
  contractId: string;
  defaultId: string;
  defaulterPartyId: string;
  protectedPartyId: string;
  closeOutPrice: string;
  currency: string;
  at: string;
}

export type AccountEventType = AccountEvent['type'];

export type AccountCommand =
  | { type: 'OpenPosition'; partyId: string; position: PositionSpec; at: string }
  | { type: 'RecordCollateral'; partyId: string; contractId: string; side: Side; change: CollateralChange; amount: string; balance: string; currency: string; at: string; after: Assessment }
  | { type: 'RecordBackstopCover'; partyId: string; callId: string; amount: string; currency: string; at: string }
  | { type: 'RecordBackstopCoverReturn'; partyId: string; amount: string; currency: string; reference: string; at: string }
  | { type: 'AssessMargin'; partyId: string; assessment: Assessment; lastSaneMarks: LastSaneMarks; at: string }
  | { type: 'CallInitialMargin'; partyId: string; contractId: string; agreedInitialMargin?: string; assessment: Assessment; at: string }
  | { type: 'MissCall'; partyId: string; callId: string; now: string }
  | { type: 'CheckSecondDeadline'; partyId: string; callId: string; now: string; assessment: Assessment; lastSaneMarks: LastSaneMarks }
  | { type: 'DeclareDefault'; partyId: string; reason: string; at: string; lastSaneMarks: LastSaneMarks; closeOutPrices?: Readonly<Record<string, string>>; declaredBy?: string }
  | {
      type: 'ExchangeFunding';
      partyId: string;
      contractId: string;
      fundingAt: string;
      rate: string;
      mark: string;
      /** Set when either side is in default (the monitor knows both accounts; this stream only its own). */
      sideInDefault?: { partyId: string; since: string };
    }
  | { type: 'SettleContract'; partyId: string; contractId: string; reason: SettlementReason; price: string; priceBasis?: SettlementPriceBasis; priceDetail?: string; at: string }
  | ({ type: 'CloseOutPosition'; partyId: string } & PositionCloseOut);

export type CallStatus = 'ISSUED' | 'CURED' | 'MISSED' | 'DEFAULTED';

export interface MarginCall {
  readonly callId: string;
  readonly currency: string;
  readonly amountMinor: bigint;
  readonly status: CallStatus;
  readonly issuedAt: string;
  readonly deadline: string;
  readonly secondDeadline: string;
  /** Deposits minus withdrawals in the call's currency since it was issued. */
  readonly netDepositsMinor: bigint;
  readonly coveredMinor: bigint;
  /** The contract whose registration issued this call (its initial margin), if that is why. */
  readonly onRegistrationOf?: string;
}

export interface AccountPosition extends PositionSpec {
  readonly openedAt: string;
  readonly settled: boolean;
  /** LONG side only (flows live in the long party's stream): last funding instant paid. */
  readonly fundedThrough?: string;
}

export interface AccountState {
  readonly partyId?: string;
  readonly positions: Readonly<Record<string, AccountPosition>>;
  readonly calls: Readonly<Record<string, MarginCall>>;
  readonly callCount: number;
  readonly defaulted?: { readonly reason: DefaultReason; readonly detail: string; readonly at: string };
}

export const EMPTY_ACCOUNT: AccountState = { positions: {}, calls: {}, callCount: 0 };

export interface CallPolicy {
  readonly callGraceMs: number;
  readonly secondGraceMs: number;
}

export function accountDecider(policy: CallPolicy): Decider<AccountCommand, AccountState, AccountEvent> {
  return {
    initialState: EMPTY_ACCOUNT,
    decide(command, state) {
      switch (command.type) {
        case 'OpenPosition':
          return openPosition(command, state);
        case 'RecordCollateral':
          return recordCollateral(command, state);
        case 'RecordBackstopCover':
          return recordBackstopCover(command, state);
        case 'RecordBackstopCoverReturn':
          return recordBackstopCoverReturn(command, state);
        case 'AssessMargin':
          return assessMargin(command, state, policy);
        case 'CallInitialMargin':
          return callInitialMargin(command, state, policy);
        case 'MissCall':
          return missCall(command, state);
        case 'CheckSecondDeadline':
          return checkSecondDeadline(command, state);
        case 'DeclareDefault':
          return declareDefault(command, state);
        case 'ExchangeFunding':
          return exchangeFunding(command, state);
        case 'SettleContract':
          return settleContract(command, state);
        case 'CloseOutPosition':
          return closeOutPosition(command, state);
        default:
          return assertNever(command, 'account command');
      }
    },
    evolve: evolveAccount,
  };
}

type Cmd<T extends AccountCommand['type']> = Extract<AccountCommand, { type: T }>;

const amountText = (minor: bigint, currency: string) => fromMinor(minor, currencyOf(currency).scale);

/** A call still to be cured: issued, or missed (and covered by the backstop). */
export function isOpenCall(call: { readonly status: string }): boolean {
  return call.status === 'ISSUED' || call.status === 'MISSED';
}

export function openCallIn(state: AccountState, currency: string): MarginCall | undefined {
  return Object.values(state.calls).find((c) => c.currency === currency && isOpenCall(c));
}

/** The model's view of a position's terms (prices as doubles, for valuation only; cash flows use the strings). */
export const positionTerms: (spec: PositionSpec) => ContractTerms = termsFromWire;

function openPosition(command: Cmd<'OpenPosition'>, state: AccountState): AccountEvent[] {
  const p = command.position;
  const sideParty = p.side === 'LONG' ? p.longPartyId : p.shortPartyId;
  if (sideParty !== command.partyId) reject('partyId', 'sideParty', `party ${command.partyId} is not the ${p.side} side of contract ${p.contractId}`);
  if (state.positions[p.contractId] !== undefined) return [];
  // What is written here is valued on every tick and on every rebuild: refuse what cannot be.
  const v = new Violations();
  v.check(isSupportedCurrency(p.currency), 'currency', 'supportedCurrency', `currency ${p.currency} is not supported`);
  const decimals: [string, string | undefined][] = [['size', p.size], ['entryPrice', p.entryPrice], ['strike', p.strike]];
  for (const [field, value] of decimals) {
    const problem = value === undefined ? undefined : amountProblem(value, 12);
    if (problem) v.add(field, 'decimal', `${field} ${problem}`);
  }
  v.check(p.expiry === undefined || isIsoUtc(p.expiry), 'expiry', 'isoUtc', 'expiry must be an ISO-8601 UTC instant');
  v.throwIfAny();
  for (const problem of valuationProblems(positionTerms(p))) v.add('position', 'valuable', problem);
  v.throwIfAny();
  return [{ type: 'PositionOpened', data: { ...p, partyId: command.partyId, at: command.at } }];
}

function checkAmount(field: string, text: string, currency: string): void {
  const problem = amountProblem(text, currencyOf(currency).scale);
  if (problem) reject(field, 'currencyScale', `${field} ${problem} (${currency})`);
  if (text.startsWith('-')) reject(field, 'nonNegative', `${field} must not be negative`);
}

function knownPosition(state: AccountState, contractId: string): AccountPosition {
  const position = state.positions[contractId];
  if (position === undefined) return reject('contractId', 'knownPosition', `contract ${contractId} is not a position of party ${state.partyId ?? '(none)'}`);
  return position;
}

function knownCall(state: AccountState, callId: string): MarginCall {
  const call = state.calls[callId];
  if (call === undefined) return reject('callId', 'knownCall', `margin call ${callId} was not issued to party ${state.partyId ?? '(none)'}`);
  return call;
}

function recordCollateral(command: Cmd<'RecordCollateral'>, state: AccountState): AccountEvent[] {
  const position = knownPosition(state, command.contractId);
  if (position.currency !== command.currency) reject('currency', 'contractCurrency', `contract ${command.contractId} settles in ${position.currency}, not ${command.currency}`);
  checkAmount('amount', command.amount, command.currency);
  checkAmount('balance', command.balance, command.currency);
  const { type: _type, after, ...data } = command;
  const events: AccountEvent[] = [{ type: 'CollateralRecorded', data }];
  const call = openCallIn(state, command.currency);
  if (command.change !== 'DEPOSIT' || state.defaulted || call === undefined || call.status !== 'ISSUED') return events;
  if (ms(command.at) > ms(call.deadline)) return events;
  const netDeposits = call.netDepositsMinor + toMinor(command.amount, currencyOf(command.currency).scale);
  if (netDeposits >= call.amountMinor || after.equityMinor >= after.initialMinor) {
    events.push({
      type: 'MarginCallCured',
      data: { callId: call.callId, partyId: command.partyId, currency: call.currency, equity: amountText(after.equityMinor, call.currency), cause: 'DEPOSIT', at: command.at },
    });
  }
  return events;
}

function recordBackstopCover(command: Cmd<'RecordBackstopCover'>, state: AccountState): AccountEvent[] {
  const call = knownCall(state, command.callId);
  if (call.currency !== command.currency) reject('currency', 'callCurrency', `margin call ${call.callId} is in ${call.currency}, not ${command.currency}`);
  checkAmount('amount', command.amount, command.currency);
  const { type: _type, ...data } = command;
  return [{ type: 'BackstopCoverRecorded', data }];
}

/** settlement's MarginAdvanceRepaid: the party's own deposit replaced the pool's margin (SPEC §3.8). */
function recordBackstopCoverReturn(command: Cmd<'RecordBackstopCoverReturn'>, state: AccountState): AccountEvent[] {
  if (state.partyId === undefined) reject('partyId', 'knownParty', `party ${command.partyId} has no margin account`);
  checkAmount('amount', command.amount, command.currency);
  const { type: _type, ...data } = command;
  return [{ type: 'BackstopCoverReturned', data }];
}

function defaultTriggered(partyId: string, reason: DefaultReason, detail: string, lastSaneMarks: LastSaneMarks, at: string, callId?: string): AccountEvent {
  return { type: 'DefaultTriggered', data: { partyId, reason, detail, ...(callId ? { callId } : {}), lastSaneMarks, at } };
}

function assessMargin(command: Cmd<'AssessMargin'>, state: AccountState, policy: CallPolicy): AccountEvent[] {
  if (state.partyId === undefined || state.defaulted) return [];
  const a = command.assessment;
  const currency = a.currency;
  if (a.ownEquityMinor < 0n) {
    // A party called for the initial margin of a contract that just went live has its grace to post
    // it: a tick against it before the deadline is no default (nobody is defaulted before being
    // called). Missed, the call takes the normal path (cover, second deadline, default).
    const call = openCallIn(state, currency);
    if (call !== undefined && call.onRegistrationOf !== undefined && call.status === 'ISSUED' && ms(command.at) < ms(call.deadline)) return [];
    const detail = `own equity ${amountText(a.ownEquityMinor, currency)} ${currency} is below zero`;
    return [defaultTriggered(command.partyId, 'NEGATIVE_EQUITY', detail, command.lastSaneMarks, command.at)];
  }
  if (openCallIn(state, currency) !== undefined || a.equityMinor >= a.maintenanceMinor) return [];
  return [marginCallIssued({ partyId: command.partyId, at: command.at }, state, policy, a, a.initialMinor)];
}

/** A margin call for `requiredMinor` − equity, due after the normal grace (both ways a call is issued). */
function marginCallIssued(
  command: { partyId: string; at: string; contractId?: string },
  state: AccountState,
  policy: CallPolicy,
  a: { currency: string; equityMinor: bigint; maintenanceMinor: bigint },
  requiredMinor: bigint,
): AccountEvent {
  const currency = a.currency;
  const deadlineMs = ms(command.at) + policy.callGraceMs;
  return {
    type: 'MarginCallIssued',
    data: {
      callId: `mc-${command.partyId}-${state.callCount + 1}`,
      partyId: command.partyId,
      amount: amountText(requiredMinor - a.equityMinor, currency),
      currency,
      equity: amountText(a.equityMinor, currency),
      maintenanceRequirement: amountText(a.maintenanceMinor, currency),
      initialRequirement: amountText(requiredMinor, currency),
      deadline: iso(deadlineMs),
      secondDeadline: iso(deadlineMs + policy.secondGraceMs),
      ...(command.contractId === undefined ? {} : { contractId: command.contractId }),
      at: command.at,
    },
  };
}

/**
 * A contract just went live (ContractRegistered): the side's agreed initial margin is required at
 * once. Below it (the usual case: nothing is posted before a contract is live) → a margin call now,
 * for the requirement − equity, with the normal grace; the requirement is the larger of the agreed
 * figure and the account's SPAN initial margin (zero before any mark).
 */
function callInitialMargin(command: Cmd<'CallInitialMargin'>, state: AccountState, policy: CallPolicy): AccountEvent[] {
  if (state.partyId === undefined || state.defaulted) return [];
  const position = knownPosition(state, command.contractId);
  const a = command.assessment;
  const currency = a.currency;
  if (position.currency !== currency) reject('assessment.currency', 'contractCurrency', `contract ${command.contractId} settles in ${position.currency}, not ${currency}`);
  if (position.settled || openCallIn(state, currency) !== undefined) return [];
  const scale = currencyOf(currency).scale;
  const agreed = command.agreedInitialMargin;
  if (agreed !== undefined) checkAmount('agreedInitialMargin', agreed, currency);
  const agreedMinor = agreed === undefined ? 0n : toMinor(agreed, scale);
  const requiredMinor = agreedMinor > a.initialMinor ? agreedMinor : a.initialMinor;
  if (a.equityMinor >= requiredMinor) return [];
  return [marginCallIssued({ partyId: command.partyId, at: command.at, contractId: command.contractId }, state, policy, a, requiredMinor)];
}

function missCall(command: Cmd<'MissCall'>, state: AccountState): AccountEvent[] {
  const call = knownCall(state, command.callId);
  if (call.status !== 'ISSUED' || state.defaulted || ms(command.now) < ms(call.deadline)) return [];
  // Stamped with the deadline, not with whenever a tick noticed it: a replay gives the same instant.
  return [{ type: 'MarginCallMissed', data: { callId: call.callId, partyId: command.partyId, amount: amountText(call.amountMinor, call.currency), currency: call.currency, at: call.deadline } }];
}

function checkSecondDeadline(command: Cmd<'CheckSecondDeadline'>, state: AccountState): AccountEvent[] {
  const call = knownCall(state, command.callId);
  if (call.status !== 'MISSED' || state.defaulted || ms(command.now) < ms(call.secondDeadline)) return [];
  const a = command.assessment;
  if (a.currency !== call.currency) reject('assessment.currency', 'callCurrency', `margin call ${call.callId} is in ${call.currency}`);
  if (a.ownEquityMinor < a.maintenanceMinor) {
    const detail = `margin call ${call.callId} unmet at its second deadline: own equity ${amountText(a.ownEquityMinor, a.currency)} below maintenance ${amountText(a.maintenanceMinor, a.currency)} ${a.currency}`;
    return [defaultTriggered(command.partyId, 'SECOND_DEADLINE', detail, command.lastSaneMarks, call.secondDeadline, call.callId)];
  }
  return [
    {
      type: 'MarginCallCured',
      data: { callId: call.callId, partyId: command.partyId, currency: call.currency, equity: amountText(a.equityMinor, a.currency), cause: 'RESTORED_BY_SECOND_DEADLINE', at: call.secondDeadline },
    },
  ];
}

function declareDefault(command: Cmd<'DeclareDefault'>, state: AccountState): AccountEvent[] {
  if (state.partyId === undefined) reject('partyId', 'knownParty', `party ${command.partyId} has no margin account (no position was ever opened)`);
  if (state.defaulted) reject('partyId', 'notInDefault', `party ${command.partyId} is already in default since ${state.defaulted.at} (${state.defaulted.reason})`);
  const closeOutPrices = closeOutPricesOf(command, state);
  const event = defaultTriggered(command.partyId, 'OPERATOR', command.reason, command.lastSaneMarks, command.at);
  if (event.type !== 'DefaultTriggered') return [event];
  return [{ ...event, data: { ...event.data, ...(closeOutPrices ? { closeOutPrices } : {}), declaredBy: command.declaredBy ?? 'backstop.margin.commands' } }];
}

/** An operator's close-out prices: one per underlying the party holds an open position on, each a positive decimal. */
function closeOutPricesOf(command: Cmd<'DeclareDefault'>, state: AccountState): Record<string, string> | undefined {
  if (command.closeOutPrices === undefined) return undefined;
  const held = new Set(Object.values(state.positions).filter((p) => !p.settled).map((p) => p.underlying));
  const v = new Violations();
  const entries = Object.entries(command.closeOutPrices).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [underlying, price] of entries) {
    const field = `closeOutPrices.${underlying}`;
    if (!held.has(underlying)) v.add(field, 'heldUnderlying', `party ${command.partyId} holds no open position on ${underlying}`);
    const problem = typeof price === 'string' ? amountProblem(price, 12) : 'must be a decimal string';
    if (problem) v.add(field, 'decimal', `${field} ${problem}`);
    else if (!(Number(price) > 0)) v.add(field, 'positive', `${field} must be greater than 0`);
  }
  v.throwIfAny();
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

function longPosition(state: AccountState, contractId: string): AccountPosition {
  const position = knownPosition(state, contractId);
  if (position.side !== 'LONG') reject('partyId', 'longSide', `cash flows of ${contractId} are recorded in the long party's account, not ${state.partyId}'s`);
  return position;
}

function exchangeFunding(command: Cmd<'ExchangeFunding'>, state: AccountState): AccountEvent[] {
  const position = longPosition(state, command.contractId);
  if (position.kind !== 'PERPETUAL') reject('contractId', 'perpetual', `contract ${command.contractId} is a ${position.kind}; only perpetuals pay funding`);
  const atMs = ms(command.fundingAt);
  if (position.settled || atMs <= ms(position.openedAt)) return [];
  // SPEC §3.9: nothing accrues on a defaulter's contracts from the default on. Its book was read for
  // the close-out at the trigger; a flow booked after it would move collateral the waterfall already
  // counted (the ledger then cannot book the waterfall). So none is decided once a side is in default.
  if (state.defaulted !== undefined || command.sideInDefault !== undefined) return [];
  if (position.fundedThrough !== undefined && atMs <= ms(position.fundedThrough)) return [];
  const scale = currencyOf(position.currency).scale;
  // A zero flow is recorded too: every funding instant is decided once, on the record, so a
  // replay or a restart never decides it again with a later rate.
  const flow = payerAndReceiver(fundingLongGainMinor(position, command.rate, command.mark, scale), position.longPartyId, position.shortPartyId);
  return [
    {
      type: 'FundingExchanged',
      data: {
        contractId: command.contractId,
        payerPartyId: flow.payer,
        receiverPartyId: flow.receiver,
        amount: fromMinor(flow.amountMinor, scale),
        currency: position.currency,
        rate: command.rate,
        mark: command.mark,
        at: command.fundingAt,
      },
    },
  ];
}

function settleContract(command: Cmd<'SettleContract'>, state: AccountState): AccountEvent[] {
  const position = longPosition(state, command.contractId);
  if (position.settled) return [];
  if (command.reason === 'EXPIRY') {
    if (position.expiry === undefined) reject('contractId', 'hasExpiry', `contract ${command.contractId} is a ${position.kind} with no expiry`);
    if (ms(command.at) < ms(position.expiry)) reject('at', 'afterExpiry', `contract ${command.contractId} expires at ${position.expiry}, not before`);
  }
  const scale = currencyOf(position.currency).scale;
  const flow = payerAndReceiver(settlementLongGainMinor(position, command.reason, command.price, scale), position.longPartyId, position.shortPartyId);
  return [
    {
      type: 'ContractSettled',
      data: {
        contractId: command.contractId,
        reason: command.reason,
        price: command.price,
        ...(command.priceBasis !== undefined ? { priceBasis: command.priceBasis } : {}),
        ...(command.priceDetail !== undefined ? { priceDetail: command.priceDetail } : {}),
        payerPartyId: flow.payer,
        receiverPartyId: flow.receiver,
        amount: fromMinor(flow.amountMinor, scale),
        currency: position.currency,
        at: command.at,
      },
    },
  ];
}

function closeOutPosition(command: Cmd<'CloseOutPosition'>, state: AccountState): AccountEvent[] {
  const position = longPosition(state, command.contractId);
  const v = new Violations();
  const sides = [position.longPartyId, position.shortPartyId];
  v.check(
    command.defaulterPartyId !== command.protectedPartyId && sides.includes(command.defaulterPartyId) && sides.includes(command.protectedPartyId),
    'defaulterPartyId',
    'contractParties',
    `contract ${command.contractId} is between ${position.longPartyId} and ${position.shortPartyId}, not ${command.defaulterPartyId} and ${command.protectedPartyId}`,
  );
  v.check(position.currency === command.currency, 'currency', 'contractCurrency', `contract ${command.contractId} settles in ${position.currency}, not ${command.currency}`);
  v.check(isIsoUtc(command.at), 'at', 'isoUtc', 'at must be an ISO-8601 UTC instant');
  v.throwIfAny();
  // Settled (expired, closed) before the close-out reached us, or closed out already: nothing left.
  if (position.settled) return [];
  const { type: _type, partyId: _partyId, ...data } = command;
  return [{ type: 'PositionClosedOut', data }];
}

function updateCall(state: AccountState, callId: string, change: Partial<MarginCall>): AccountState {
  const call = state.calls[callId];
  if (call === undefined) return state;
  return { ...state, calls: { ...state.calls, [callId]: { ...call, ...change } } };
}

function updatePosition(state: AccountState, contractId: string, change: Partial<AccountPosition>): AccountState {
  const position = state.positions[contractId];
  if (position === undefined) return state;
  return { ...state, positions: { ...state.positions, [contractId]: { ...position, ...change } } };
}

export function evolveAccount(state: AccountState, event: AccountEvent): AccountState {
  switch (event.type) {
    case 'PositionOpened': {
      const { partyId, at, ...spec } = event.data;
      return { ...state, partyId, positions: { ...state.positions, [spec.contractId]: { ...spec, openedAt: at, settled: false } } };
    }
    case 'CollateralRecorded': {
      const d = event.data;
      const call = openCallIn(state, d.currency);
      if (call === undefined || call.status !== 'ISSUED') return state;
      const amount = toMinor(d.amount, currencyOf(d.currency).scale);
      return updateCall(state, call.callId, { netDepositsMinor: call.netDepositsMinor + (d.change === 'DEPOSIT' ? amount : -amount) });
    }
    case 'BackstopCoverReturned':
      return state;
    case 'BackstopCoverRecorded': {
      const call = state.calls[event.data.callId];
      if (call === undefined) return state;
      return updateCall(state, call.callId, { coveredMinor: call.coveredMinor + toMinor(event.data.amount, currencyOf(call.currency).scale) });
    }
    case 'MarginCallIssued': {
      const d = event.data;
      const call: MarginCall = {
        callId: d.callId,
        currency: d.currency,
        amountMinor: toMinor(d.amount, currencyOf(d.currency).scale),
        status: 'ISSUED',
        issuedAt: d.at,
        deadline: d.deadline,
        secondDeadline: d.secondDeadline,
        netDepositsMinor: 0n,
        coveredMinor: 0n,
        ...(d.contractId !== undefined ? { onRegistrationOf: d.contractId } : {}),
      };
      return { ...state, calls: { ...state.calls, [d.callId]: call }, callCount: state.callCount + 1 };
    }
    case 'MarginCallCured':
      return updateCall(state, event.data.callId, { status: 'CURED' });
    case 'MarginCallMissed':
      return updateCall(state, event.data.callId, { status: 'MISSED' });
    case 'DefaultTriggered': {
      const d = event.data;
      const defaulted = { ...state, defaulted: { reason: d.reason, detail: d.detail, at: d.at } };
      return d.callId ? updateCall(defaulted, d.callId, { status: 'DEFAULTED' }) : defaulted;
    }
    case 'FundingExchanged':
      return updatePosition(state, event.data.contractId, { fundedThrough: event.data.at });
    case 'ContractSettled':
    case 'PositionClosedOut':
      return updatePosition(state, event.data.contractId, { settled: true });
    default:
      return assertNever(event, 'account event');
  }
}
