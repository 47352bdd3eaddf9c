import { allocateProRata, assertNever, currencyOf, isSupportedCurrency } from '@backstop/kernel';
import { AccountRef, Tranche, trancheOf, TRANCHES } from './accounts';
import { LedgerFacts } from './facts';
import { amount, Part, parseParts, sumParts } from './parts';
import { credit, debit, Leg } from './postings';
import { EventOf, LedgerSourceEvent } from './source-events';

/** What the mapping may read of the books (balances on the account's normal side). */
export interface BooksView {
  readonly facts: LedgerFacts;
  balance(ref: AccountRef, currency: string): bigint;
  /** Accounts with a non-zero balance in `currency` that match, sorted by name (deterministic). */
  accountsWhere(match: (ref: AccountRef) => boolean, currency: string): { ref: AccountRef; balanceMinor: bigint }[];
}

/** An event the ledger cannot book as it stands (a producer bug or a missing fact): never skipped. */
export class MappingProblem extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MappingProblem';
  }
}

function problem(message: string): never {
  throw new MappingProblem(message);
}

/**
 * Money events → balanced journal legs (docs/ledger.md has the table). Exhaustive: a new event type
 * in LedgerSourceEvent is a compile error here until it is booked or explicitly mapped to [].
 * Every money movement is booked once, at the event that decided it; events that restate it for
 * another stream (margin's CollateralRecorded, pricing's PremiumCharged, settlement's DefaultSettled)
 * map to [] with the reason.
 */
export function legsFor(event: LedgerSourceEvent, books: BooksView): Leg[] {
  switch (event.type) {
    // ---- no money moves (facts the ledger may remember, notices, mirrors of money booked elsewhere)
    case 'PartyRegistered':
    case 'CreditProfileUpdated':
    case 'ContractProposed': // not live: nothing moves until the other side accepts
    case 'ContractProposalDeclined':
    case 'ContractRegistered':
    case 'ContractCloseRequested':
    case 'ContractClosed': // its cash flow is margin's ContractSettled
    case 'QuoteIssued':
    case 'QuoteBound':
    case 'CoverageBound':
    case 'PremiumCharged': // the coverage's record of a period paid: the money moved in PremiumAccountDebited
    case 'PremiumPaymentMissed': // a notice: nothing was debited
    case 'CoverageLapsed':
    case 'CoverageRepriced':
    case 'CoverageLimitReduced':
    case 'CoverageEnded':
    case 'CapacityAssessmentNoted':
    case 'CapacityReserved': // capacity is a limit, not money
    case 'CapacityReleased':
    case 'MarketObserved':
    case 'CreditObserved':
    case 'PositionOpened': // margin's mirror of ContractRegistered
    case 'CollateralRecorded': // margin's mirror of intake's CollateralDeposited / CollateralWithdrawn
    case 'BackstopCoverRecorded': // margin's mirror of settlement's MarginCoveredByBackstop
    case 'BackstopCoverReturned': // margin's mirror of settlement's MarginAdvanceRepaid
    case 'ContractDefaulted': // intake's mirror of settlement's ContractClosedOut (the waterfall books the collateral)
    case 'PositionClosedOut': // margin's mirror of settlement's ContractClosedOut (booked from settlement's events)
    case 'MarkRecorded':
    case 'MarkStale': // an alarm, no money
    case 'MarginCallIssued':
    case 'MarginCallCured': // the deposit that cures it is a CollateralDeposited
    case 'MarginCallMissed': // the cover is a MarginCoveredByBackstop
    case 'DefaultTriggered':
    case 'WithdrawalRequested': // the amount is fixed at withdrawal (lesser of request and withdrawal value)
    case 'WithdrawalsFrozen':
    case 'WithdrawalsUnfrozen':
    case 'CapacityAssessed':
    case 'DefaultDeclared':
    case 'ContractClosedOut': // per contract; the loss is booked netted per party by LossesAssessed
    case 'DefaultSettled': // totals of lines booked one by one
      return [];

    // ---- contract-intake
    case 'CollateralDeposited': {
      const { currency, scale } = currencyFrom(event.data.currency);
      const a = amount(event.data.amount, scale, 'amount');
      const memo = `collateral deposited on ${event.data.contractId}`;
      return [debit(cash(event.data.partyId), a, currency, memo), credit(collateral(event.data.partyId, event.data.contractId), a, currency, memo)];
    }
    case 'CollateralWithdrawn': {
      const { currency, scale } = currencyFrom(event.data.currency);
      const a = amount(event.data.amount, scale, 'amount');
      const memo = `collateral withdrawn from ${event.data.contractId}`;
      return [debit(collateral(event.data.partyId, event.data.contractId), a, currency, memo), credit(cash(event.data.partyId), a, currency, memo)];
    }

    // ---- premium-pricing
    case 'PremiumAccountFunded': {
      const { currency, scale } = currencyFrom(event.data.currency);
      const a = amount(event.data.amount, scale, 'amount');
      const memo = 'premium account funded';
      return [debit(cash(event.data.partyId), a, currency, memo), credit(premiumAccount(event.data.partyId), a, currency, memo)];
    }
    case 'PremiumAccountWithdrawn': {
      const { currency, scale } = currencyFrom(event.data.currency);
      const a = amount(event.data.amount, scale, 'amount');
      const memo = 'premium account withdrawn';
      return [debit(premiumAccount(event.data.partyId), a, currency, memo), credit(cash(event.data.partyId), a, currency, memo)];
    }
    case 'PremiumAccountDebited': {
      const { currency, scale } = currencyFrom(event.data.currency);
      const a = amount(event.data.amount, scale, 'amount');
      const memo = `premium of ${event.data.coverageId} for ${event.data.periodStart}`;
      return [debit(premiumAccount(event.data.partyId), a, currency, memo), credit({ kind: 'premium-collected', coverage: event.data.coverageId }, a, currency, memo)];
    }

    // ---- margin-monitor
    case 'FundingExchanged':
    case 'ContractSettled': {
      const { currency, scale } = currencyFrom(event.data.currency);
      const a = amount(event.data.amount, scale, 'amount');
      const what = event.type === 'FundingExchanged' ? 'funding' : `settlement (${event.data.reason})`;
      const memo = `${what} on ${event.data.contractId}`;
      return [
        debit(variationMargin(event.data.payerPartyId, event.data.contractId), a, currency, memo),
        credit(variationMargin(event.data.receiverPartyId, event.data.contractId), a, currency, memo),
      ];
    }

    // ---- default-settlement: the pool
    case 'CapitalDeposited': {
      const { currency, scale } = currencyFrom(event.data.currency);
      const tranche = requireTranche(event.data.tranche, 'tranche');
      const a = amount(event.data.amount, scale, 'amount');
      const memo = `capital deposited in ${event.data.poolId} ${tranche}`;
      return [debit(cash(event.data.providerId), a, currency, memo), credit(capital(tranche, event.data.providerId), a, currency, memo)];
    }
    case 'CapitalWithdrawn': {
      const { currency, scale } = currencyFrom(event.data.currency ?? books.facts.pools.get(event.data.poolId)?.currency, `pool ${event.data.poolId}`);
      const tranche = requireTranche(event.data.tranche, 'tranche');
      const a = amount(event.data.amount, scale, 'amount');
      const memo = `capital withdrawn from ${event.data.poolId} ${tranche}`;
      return [debit(capital(tranche, event.data.providerId), a, currency, memo), credit(cash(event.data.providerId), a, currency, memo)];
    }
    case 'PremiumIncomeDistributed':
      return premiumIncome(event.data, books);
    case 'MarginCoveredByBackstop':
      return marginCover(event.data, books);
    case 'MarginAdvanceRepaid':
      return advanceRepaid(event.data, books);
    case 'DefaultLossCharged':
      return defaulterMoneyBack(event.data, books);

    // ---- default-settlement: a default case
    case 'LossesAssessed': {
      const { currency, scale } = defaultCurrency(event.data, books);
      const defaulter = defaulterOf(event.data.defaultId, books);
      const memo = `loss owed after close-out netting in ${event.data.defaultId}`;
      return event.data.parties.flatMap((p) => {
        const loss = amount(p.lossOwed, scale, `parties.${p.partyId}.lossOwed`);
        return [debit({ kind: 'claim-on-defaulter', party: defaulter }, loss, currency, memo), credit(payable(p.partyId), loss, currency, memo)];
      });
    }
    case 'LossAllocated':
      return lossAllocated(event.data, books);
    case 'PayoutMade': {
      const { currency, scale } = currencyFrom(event.data.currency);
      const a = amount(event.data.amount, scale, 'amount');
      const parts = amount(event.data.fromDefaulter, scale, 'fromDefaulter') + amount(event.data.fromPool, scale, 'fromPool');
      if (parts !== a) problem(`fromDefaulter + fromPool = ${parts} minor units, not the amount ${a}`);
      const memo = `payout for ${event.data.defaultId}`;
      return [debit(payable(event.data.partyId), a, currency, memo), credit(cash(event.data.partyId), a, currency, memo)];
    }
    case 'ClaimRecorded': {
      // A protected party left unpaid. (The pool's claim, advances not repaid, has been on its
      // pool-recoverable accounts since the advance; DefaultSettled restates it.)
      const { currency, scale } = currencyFrom(event.data.currency);
      const defaulter = defaulterOf(event.data.defaultId, books);
      if (event.data.partyId === defaulter) problem(`ClaimRecorded names the defaulter ${defaulter} as the creditor`);
      const a = amount(event.data.amount, scale, 'amount');
      const memo = `claim left unpaid in ${event.data.defaultId}`;
      return [debit(payable(event.data.partyId), a, currency, memo), credit({ kind: 'unpaid-claim', creditor: event.data.partyId, defaulter }, a, currency, memo)];
    }
    case 'RecoveryReceived': {
      const { currency, scale } = defaultCurrency(event.data, books);
      const defaulter = defaulterOf(event.data.defaultId, books);
      const a = amount(event.data.amount, scale, 'amount');
      const surplus = amount(event.data.surplusToDefaulter, scale, 'surplusToDefaulter');
      const repaid = amount(event.data.repaid, scale, 'repaid');
      if (repaid + surplus !== a) problem(`repaid + surplusToDefaulter = ${repaid + surplus} minor units, not the amount ${a}`);
      // The whole recovery enters the pot; RecoveryAllocated lines (SURPLUS included) take it out.
      const memo = `recovery received for ${event.data.defaultId}`;
      return [debit(cash(defaulter), a, currency, memo), credit({ kind: 'recovery', defaultId: event.data.defaultId }, a, currency, memo)];
    }
    case 'RecoveryAllocated':
      return recoveryAllocated(event.data, books);
    default:
      return assertNever(event, 'event type');
  }
}

/** A balance an event states (its `balance` field): the ledger must agree after booking it. */
export interface StatedBalance {
  readonly account: AccountRef;
  readonly currency: string;
  readonly balanceMinor: bigint;
  readonly field: string;
}

/**
 * Reconciliation with the services' own balances: intake's collateral balance per side (until a
 * default takes from it) and pricing's premium account balance. A difference means an event was
 * booked twice, missed, or mapped wrong.
 */
export function statedBalances(event: LedgerSourceEvent, facts: LedgerFacts): StatedBalance[] {
  switch (event.type) {
    case 'CollateralDeposited':
    case 'CollateralWithdrawn': {
      if (facts.closedOutContracts.has(event.data.contractId)) return [];
      const { currency, scale } = currencyFrom(event.data.currency);
      return [{ account: collateral(event.data.partyId, event.data.contractId), currency, balanceMinor: amount(event.data.balance, scale, 'balance'), field: 'balance' }];
    }
    case 'PremiumAccountFunded':
    case 'PremiumAccountWithdrawn':
    case 'PremiumAccountDebited': {
      const { currency, scale } = currencyFrom(event.data.currency);
      return [{ account: premiumAccount(event.data.partyId), currency, balanceMinor: amount(event.data.balance, scale, 'balance'), field: 'balance' }];
    }
    default:
      return [];
  }
}

const cash = (party: string): AccountRef => ({ kind: 'cash-external', party });
const collateral = (party: string, contract: string): AccountRef => ({ kind: 'collateral', party, contract });
const variationMargin = (party: string, contract: string): AccountRef => ({ kind: 'variation-margin', party, contract });
const premiumAccount = (party: string): AccountRef => ({ kind: 'premium-account', party });
const capital = (tranche: Tranche, provider: string): AccountRef => ({ kind: 'pool-capital', tranche, provider });
const payable = (party: string): AccountRef => ({ kind: 'payout-payable', party });
const recoverable = (tranche: Tranche, provider: string, defaulter: string): AccountRef => ({ kind: 'pool-recoverable', tranche, provider, defaulter });
const advanced = (party: string): AccountRef => ({ kind: 'backstop-cover-advanced', party });
const claimOn = (party: string): AccountRef => ({ kind: 'claim-on-defaulter', party });

function currencyFrom(code: unknown, from = 'the event'): { currency: string; scale: number } {
  if (code === undefined) problem(`no currency: the event has none and ${from} is not known to the ledger`);
  if (!isSupportedCurrency(code)) problem(`unknown currency ${JSON.stringify(code)}`);
  return { currency: code, scale: currencyOf(code).scale };
}

function requireTranche(value: unknown, field: string): Tranche {
  return trancheOf(value) ?? problem(`${field} ${JSON.stringify(value)} is not a tranche (JUNIOR or SENIOR)`);
}

function defaulterOf(defaultId: string, books: BooksView): string {
  return books.facts.defaulterOf(defaultId) ?? problem(`default ${defaultId} was never declared (no DefaultDeclared before this event)`);
}

/** A default's currency: DefaultDeclared's; an event that names another is refused. */
function defaultCurrency(data: { defaultId: string; currency?: string }, books: BooksView): { currency: string; scale: number } {
  const known = books.facts.defaults.get(data.defaultId)?.currency;
  if (data.currency !== undefined && known !== undefined && data.currency !== known) {
    problem(`currency ${data.currency} differs from default ${data.defaultId}'s ${known}`);
  }
  return currencyFrom(data.currency ?? known, `default ${data.defaultId}`);
}

/**
 * Who in the pool pays (or earns) `totalMinor`: the event's perProvider split when given (a part
 * without a tranche takes perTranche's only tranche, or the one tranche the provider holds capital
 * in); otherwise perTranche split pro rata by the providers' book capital in each tranche.
 */
function poolParts(total: bigint, perProvider: unknown, perTranche: unknown, currency: string, scale: number, books: BooksView): Required<Part>[] {
  const byTranche = perTranche === undefined ? undefined : trancheTotals(parseParts(perTranche, scale, 'perTranche'));
  let parts: Required<Part>[];
  if (perProvider !== undefined) {
    parts = parseParts(perProvider, scale, 'perProvider').map((p) => ({ ...p, tranche: p.tranche ?? trancheFor(p.id, byTranche, currency, books) }));
  } else if (byTranche !== undefined) {
    parts = TRANCHES.flatMap((t) => proRataByCapital(t, byTranche.get(t) ?? 0n, currency, books));
  } else {
    return problem('neither perProvider nor perTranche says which providers pay');
  }
  const sum = sumParts(parts);
  if (sum !== total) problem(`perProvider sums to ${sum} minor units, not the amount ${total}`);
  for (const [t, expected] of byTranche ?? []) {
    const got = sumParts(parts.filter((p) => p.tranche === t));
    if (got !== expected) problem(`perProvider gives the ${t} tranche ${got} minor units, perTranche says ${expected}`);
  }
  return parts;
}

function trancheTotals(parts: readonly Part[]): Map<Tranche, bigint> {
  const totals = new Map<Tranche, bigint>();
  for (const p of parts) {
    const t = trancheOf(p.id) ?? problem(`perTranche key "${p.id}" is not a tranche (JUNIOR or SENIOR)`);
    totals.set(t, (totals.get(t) ?? 0n) + p.amountMinor);
  }
  return totals;
}

function trancheFor(provider: string, byTranche: Map<Tranche, bigint> | undefined, currency: string, books: BooksView): Tranche {
  const named = [...(byTranche ?? [])].filter(([, a]) => a > 0n).map(([t]) => t);
  if (named.length === 1) return named[0];
  const held = TRANCHES.filter((t) => books.balance(capital(t, provider), currency) > 0n);
  if (held.length === 1) return held[0];
  return problem(`perProvider entry ${provider} names no tranche and the ledger cannot tell which (capital in ${held.join(' and ') || 'no tranche'})`);
}

/** Pro rata by each provider's book capital in the tranche, exact. */
function proRataByCapital(tranche: Tranche, total: bigint, currency: string, books: BooksView): Required<Part>[] {
  if (total === 0n) return [];
  const holders = books.accountsWhere((r) => r.kind === 'pool-capital' && r.tranche === tranche, currency);
  const weights = holders.map((h) => (h.balanceMinor > 0n ? h.balanceMinor : 0n));
  if (weights.every((w) => w === 0n)) problem(`the ${tranche} tranche has no capital in ${currency} to split ${total} minor units by`);
  const shares = allocateProRata(total, weights);
  return holders.map((h, i) => ({ id: (h.ref as { provider: string }).provider, tranche, amountMinor: shares[i] }));
}

/**
 * The premium leaves premium-collected; the pool's reserve (income held while no tranche could earn
 * it) moves by what the event leaves undistributed; the rest is the providers' income.
 */
function premiumIncome(data: EventOf<'PremiumIncomeDistributed'>['data'], books: BooksView): Leg[] {
  const { currency, scale } = currencyFrom(data.currency);
  const total = amount(data.amount, scale, 'amount');
  const reserve: AccountRef = { kind: 'premium-reserve', pool: data.poolId };
  const reserveChange = amount(data.undistributed, scale, 'undistributed') - books.balance(reserve, currency);
  const income = total - reserveChange;
  const parts = poolParts(income, data.perProvider, data.perTranche, currency, scale, books);
  const memo = `premium income of ${data.coverageId}`;
  return [
    debit({ kind: 'premium-collected', coverage: data.coverageId }, total, currency, memo),
    ...(reserveChange < 0n ? [debit(reserve, -reserveChange, currency, 'premium income released from the reserve')] : []),
    ...parts.map((p) => credit(capital(p.tranche, p.id), p.amountMinor, currency, memo)),
    ...(reserveChange > 0n ? [credit(reserve, reserveChange, currency, 'premium income held: no tranche can earn it')] : []),
  ];
}

/** The pool advances a missed call: its capital becomes margin held for the party and the providers' claim on it. */
function marginCover(data: EventOf<'MarginCoveredByBackstop'>['data'], books: BooksView): Leg[] {
  const { currency, scale } = currencyFrom(data.currency);
  const total = amount(data.amount, scale, 'amount');
  const parts = poolParts(total, data.perProvider, data.perTranche, currency, scale, books);
  const memo = `margin call ${data.callId} covered by the backstop`;
  return [
    ...parts.map((p) => debit(capital(p.tranche, p.id), p.amountMinor, currency, memo)),
    credit(advanced(data.partyId), total, currency, memo),
    debit(claimOn(data.partyId), total, currency, memo),
    ...parts.map((p) => credit(recoverable(p.tranche, p.id, data.partyId), p.amountMinor, currency, memo)),
  ];
}

/**
 * The party's own deposit replaced the pool's margin (SPEC §3.8): the advance leaves the margin the
 * pool posted for the party, in cash to the providers who funded it, whose claim on the party ends.
 */
function advanceRepaid(data: EventOf<'MarginAdvanceRepaid'>['data'], books: BooksView): Leg[] {
  const { currency, scale } = currencyFrom(data.currency);
  const total = amount(data.amount, scale, 'amount');
  const parts = parseParts(data.perProvider, scale, 'perProvider');
  const sum = sumParts(parts);
  if (sum !== total) problem(`perProvider sums to ${sum} minor units, not the amount ${total}`);
  const memo = `margin advance for ${data.partyId} repaid by its deposit ${data.reference}`;
  const sources = [{ ref: advanced(data.partyId), balanceMinor: books.balance(advanced(data.partyId), currency) }];
  return [
    ...takeFrom(sources, total, 'MarginAdvanceRepaid', currency, memo),
    ...parts.map((p) => credit(cash(p.id), p.amountMinor, currency, memo)),
    ...parts.map((p) => debit(recoverable(p.tranche ?? problem(`perProvider entry ${p.id} names no tranche`), p.id, data.partyId), p.amountMinor, currency, memo)),
    credit(claimOn(data.partyId), total, currency, memo),
  ];
}

type Source = { ref: AccountRef; balanceMinor: bigint };

/**
 * The defaulter's margin on the contracts closed out in this default, in close-out order: per
 * contract, what it holds net (collateral + variation margin, never below zero, as settlement's
 * book counts it), variation margin received taken first.
 */
function contractMarginSources(defaultId: string, defaulter: string, currency: string, books: BooksView): { contract: string; collateral: bigint; vm: bigint }[] {
  const closedOut = books.facts.defaults.get(defaultId)?.closedOut ?? [];
  return closedOut.map((contract) => ({
    contract,
    collateral: books.balance(collateral(defaulter, contract), currency),
    vm: books.balance(variationMargin(defaulter, contract), currency),
  }));
}

function takeContractMargin(defaultId: string, defaulter: string, total: bigint, what: string, currency: string, memo: string, books: BooksView): Leg[] {
  const legs: Leg[] = [];
  let left = total;
  let held = 0n;
  for (const s of contractMarginSources(defaultId, defaulter, currency, books)) {
    const available = s.collateral + s.vm > 0n ? s.collateral + s.vm : 0n;
    held += available;
    const take = available < left ? available : left;
    if (take <= 0n) continue;
    const fromVm = s.vm > 0n ? (s.vm < take ? s.vm : take) : 0n;
    if (fromVm > 0n) legs.push(debit(variationMargin(defaulter, s.contract), fromVm, currency, memo));
    if (take - fromVm > 0n) legs.push(debit(collateral(defaulter, s.contract), take - fromVm, currency, memo));
    left -= take;
  }
  if (left > 0n) problem(`${what} needs ${total} minor units from the defaulter's margin on its closed-out contracts, which hold ${held}`);
  return legs;
}

function takeFrom(sources: readonly Source[], total: bigint, what: string, currency: string, memo: string): Leg[] {
  let left = total;
  const legs: Leg[] = [];
  for (const source of sources) {
    if (left === 0n) break;
    const take = source.balanceMinor < left ? source.balanceMinor : left;
    if (take <= 0n) continue;
    legs.push(debit(source.ref, take, currency, memo));
    left -= take;
  }
  if (left > 0n) {
    const held = sources.reduce((s, x) => s + (x.balanceMinor > 0n ? x.balanceMinor : 0n), 0n);
    problem(`${what} needs ${total} minor units but the defaulter's accounts for it hold ${held}`);
  }
  return legs;
}

const CONTRACT_LAYER = 'DEFAULTER_CONTRACT_COLLATERAL';
const OTHER_LAYER = 'POOL_MARGIN_ADVANCE';
/** Stores written before the rename call the pool's margin advance layer by its old name. */
const OTHER_LAYER_LEGACY = 'DEFAULTER_OTHER_COLLATERAL';
const isAdvanceLayer = (layer: string): boolean => layer === OTHER_LAYER || layer === OTHER_LAYER_LEGACY;

/**
 * One waterfall layer's take (SPEC §5). The defaulter's layers pay down what it owes; a tranche's
 * take moves the providers' capital to their recoverable claim on the defaulter. The payable to the
 * protected parties was booked by LossesAssessed; PayoutMade pays it.
 */
function lossAllocated(data: EventOf<'LossAllocated'>['data'], books: BooksView): Leg[] {
  const { currency, scale } = defaultCurrency(data, books);
  const defaulter = defaulterOf(data.defaultId, books);
  const total = amount(data.amount, scale, 'amount');
  const memo = `${data.layer} pays into ${data.defaultId}`;
  if (data.layer === CONTRACT_LAYER) {
    return [...takeContractMargin(data.defaultId, defaulter, total, data.layer, currency, memo, books), credit(claimOn(defaulter), total, currency, memo)];
  }
  if (isAdvanceLayer(data.layer as string)) {
    // settlement: the pool's margin advance for the defaulter, paid to the parties it was earmarked for
    const sources = [{ ref: advanced(defaulter), balanceMinor: books.balance(advanced(defaulter), currency) }];
    return [...takeFrom(sources, total, data.layer, currency, memo), credit(claimOn(defaulter), total, currency, memo)];
  }
  const tranche = trancheOf(data.layer) ?? problem(`layer ${JSON.stringify(data.layer)} is not a waterfall layer (${CONTRACT_LAYER}, ${OTHER_LAYER}, JUNIOR_TRANCHE, SENIOR_TRANCHE)`);
  const parts = data.perProvider === undefined ? proRataByCapital(tranche, total, currency, books) : parseParts(data.perProvider, scale, 'perProvider');
  const sum = sumParts(parts);
  if (sum !== total) problem(`perProvider sums to ${sum} minor units, not the amount ${total}`);
  return parts.flatMap((p) => [debit(capital(tranche, p.id), p.amountMinor, currency, memo), credit(recoverable(tranche, p.id, defaulter), p.amountMinor, currency, memo)]);
}

/**
 * What the defaulter's layers did not use goes back (settlement's DefaultLossCharged): first to the
 * providers whose margin advances it repays, in cash (their recoverable claim shrinks by as much),
 * the rest to the defaulter's estate. It comes out of the same accounts the layers draw on.
 */
function defaulterMoneyBack(data: EventOf<'DefaultLossCharged'>['data'], books: BooksView): Leg[] {
  const { currency, scale } = defaultCurrency(data, books);
  const defaulter = data.partyId;
  const remainingOf = (layer: string) => {
    const line = data.layers.find((l) => (layer === OTHER_LAYER ? isAdvanceLayer(l.layer as string) : l.layer === layer));
    return line ? amount(line.remaining, scale, `layers.${layer}.remaining`) : 0n;
  };
  const unusedContract = remainingOf(CONTRACT_LAYER);
  const unusedOther = remainingOf(OTHER_LAYER);
  const surplus = amount(data.surplusToDefaulter, scale, 'surplusToDefaulter');
  const returned = parseParts(data.advance.returnedPerProvider, scale, 'advance.returnedPerProvider');
  const returnedTotal = sumParts(returned);
  if (returnedTotal !== amount(data.advance.returned, scale, 'advance.returned')) problem('advance.returnedPerProvider does not add up to advance.returned');
  if (returnedTotal + surplus !== unusedContract + unusedOther) {
    problem(`advance returned ${returnedTotal} + surplus ${surplus} minor units ≠ what the defaulter's layers left unused (${unusedContract + unusedOther})`);
  }
  const memo = `unused defaulter money of ${data.defaultId}`;
  const otherSources = [{ ref: advanced(defaulter), balanceMinor: books.balance(advanced(defaulter), currency) }];
  return [
    ...takeFrom(otherSources, unusedOther, `${OTHER_LAYER} (unused)`, currency, memo),
    ...takeContractMargin(data.defaultId, defaulter, unusedContract, `${CONTRACT_LAYER} (unused)`, currency, memo, books),
    ...returned.map((p) => credit(cash(p.id), p.amountMinor, currency, `margin advance repaid in cash (${data.defaultId})`)),
    credit(cash(defaulter), surplus, currency, `surplus back to the estate (${data.defaultId})`),
    ...returned.flatMap((p) => [
      debit(recoverable(p.tranche ?? problem(`advance.returnedPerProvider entry ${p.id} names no tranche`), p.id, defaulter), p.amountMinor, currency, `margin advance repaid (${data.defaultId})`),
      credit(claimOn(defaulter), p.amountMinor, currency, `margin advance repaid (${data.defaultId})`),
    ]),
  ];
}

/**
 * Recovered money back up the waterfall (SPEC §3 step 10), in cash to each creditor; what it repays
 * comes off the creditor's claim and the defaulter's debt. Tranches are repaid to their providers
 * in cash, as settlement's pool does (never pooled into the tranche, where today's holders would get it).
 */
function recoveryAllocated(data: EventOf<'RecoveryAllocated'>['data'], books: BooksView): Leg[] {
  const { currency, scale } = defaultCurrency(data, books);
  const defaulter = defaulterOf(data.defaultId, books);
  const total = amount(data.amount, scale, 'amount');
  const pot: AccountRef = { kind: 'recovery', defaultId: data.defaultId };
  const memo = `recovery of ${data.defaultId} to ${data.layer}`;
  const layer: string = data.layer;
  if (layer === 'SURPLUS') {
    // every creditor is whole: the rest goes back to the defaulter's estate
    const parts = parseParts(data.perCreditor, scale, 'perCreditor');
    if (sumParts(parts) !== total) problem(`perCreditor sums to ${sumParts(parts)} minor units, not the amount ${total}`);
    return parts.flatMap((p) => [debit(pot, p.amountMinor, currency, memo), credit(cash(p.id), p.amountMinor, currency, memo)]);
  }
  const tranche = layer === 'UNPAID_CLAIMS' ? undefined : (trancheOf(layer) ?? problem(`recovery layer ${JSON.stringify(layer)} is not UNPAID_CLAIMS, a tranche or SURPLUS`));
  const owedAccount = (creditor: string): AccountRef =>
    tranche === undefined ? { kind: 'unpaid-claim', creditor, defaulter } : recoverable(tranche, creditor, defaulter);
  const parts = parseParts(data.perCreditor, scale, 'perCreditor');
  const sum = sumParts(parts);
  if (sum !== total) problem(`perCreditor sums to ${sum} minor units, not the amount ${total}`);
  return parts.flatMap((p) => [
    debit(pot, p.amountMinor, currency, memo),
    credit(cash(p.id), p.amountMinor, currency, memo),
    debit(owedAccount(p.id), p.amountMinor, currency, memo),
    credit(claimOn(defaulter), p.amountMinor, currency, memo),
  ]);
}
