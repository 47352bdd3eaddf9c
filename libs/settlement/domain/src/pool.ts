/**
 * The backstop pool (stream `pool-<poolId>`, SPEC §6): provider capital in two tranches, premium
 * income, withdrawals after a cooldown, capital advanced for missed margin calls, and the pool's
 * side of a default settlement (the tranche takes, computed here against the pool's own balances
 * so a concurrent writer makes the caller re-decide on fresh state, never on stale numbers).
 *
 * Share accounting is the settlement model's (pool.ts): losses and income move capital, not
 * shares. Money that is owed back to the particular providers who lost it (a margin advance the
 * defaulter's leftover collateral repays) is paid to them in cash, never pooled into a tranche,
 * because pooling would hand it to whoever holds shares now.
 */
import {
  allocateProRata,
  amountProblem,
  assertNever,
  currencyOf,
  Decider,
  DomainEvent,
  fromMinor,
  invariant,
  iso,
  maxBig,
  minBig,
  ms,
  reject,
  toMinor,
  Violations,
} from '@backstop/kernel';
import type { PartyRole } from '@backstop/contracts';
import {
  applyDeposit,
  applyTrancheIncome,
  applyTrancheLoss,
  applyWithdrawal,
  EMPTY_TRANCHE,
  isTranche,
  LayerKind,
  ProviderBalance,
  runWaterfall,
  splitByShares,
  splitPremium,
  TrancheState,
  valueOfShares,
  WaterfallLayer,
  withdrawalAmount,
  withdrawalWindow,
} from '@backstop/settlement-model';
import { WithdrawalCapacity, withdrawalCapacityProblem } from './capacity';
import { DEFAULT_POOL_POLICY, layerOfTranche, PoolPolicy, poolPolicyProblems, Tranche, trancheOfLayer, trancheOrder, TRANCHES } from './policy';

export type PerTranche = Record<Tranche, string>;
export type PerProvider = Record<Tranche, Record<string, string>>;

export interface CapitalDepositedData {
  poolId: string;
  providerId: string;
  tranche: Tranche;
  amount: string;
  shares: string;
  currency: string;
  /** Shares of a wiped-out tranche (capital 0) cancelled before this deposit: they were worth nothing. */
  cancelledShares: string;
  trancheCapital: string;
  trancheShares: string;
  at: string;
}
export interface WithdrawalRequestedData {
  poolId: string;
  providerId: string;
  tranche: Tranche;
  shares: string;
  valueAtRequest: string;
  opensAt: string;
  closesAt: string;
  at: string;
}
export interface CapitalWithdrawnData {
  poolId: string;
  providerId: string;
  tranche: Tranche;
  shares: string;
  /** min(valueAtRequest, valueNow), SPEC §6. */
  amount: string;
  valueAtRequest: string;
  valueNow: string;
  currency: string;
  at: string;
}
export interface PremiumIncomeDistributedData {
  poolId: string;
  coverageId: string;
  payerPartyId: string;
  amount: string;
  currency: string;
  /** Income held earlier (no capital to earn it) and distributed now with this premium. */
  fromReserve: string;
  perTranche: PerTranche;
  perProvider: PerProvider;
  /** Held for the next distribution: no tranche had capital with shares to earn it. */
  undistributed: string;
  at: string;
}
export interface MarginCoveredByBackstopData {
  poolId: string;
  callId: string;
  partyId: string;
  /** What the pool advanced (≤ requested: never more than its capital). */
  amount: string;
  requested: string;
  uncovered: string;
  currency: string;
  perTranche: PerTranche;
  perProvider: PerProvider;
  /**
   * Who the advance is for (SPEC §3.8): the parties protected against `partyId`, each within its
   * remaining coverage limit. Absent on events written before advances were earmarked.
   */
  perProtectedParty?: Record<string, string>;
  /** Why less than requested was advanced, when it was (no protection, limits used, no capital). */
  capReason?: string;
  at: string;
}
export interface MarginAdvanceRepaidData {
  poolId: string;
  /** The party the pool had advanced margin for; its own deposit replaces the pool's margin. */
  partyId: string;
  amount: string;
  currency: string;
  /** The deposit that repays it (intake's CollateralDeposited event id). */
  reference: string;
  /** Back to the providers who funded the advance, in cash (their claim on the party shrinks). */
  perTranche: PerTranche;
  perProvider: PerProvider;
  /** The earmarks released: those parties' coverage limits are free again. */
  perProtectedParty: Record<string, string>;
  outstandingAfter: string;
  at: string;
}
export interface WithdrawalsFrozenData {
  poolId: string;
  defaultId: string;
  partyId: string;
  at: string;
}
export interface ChargedLayer {
  layer: LayerKind;
  available: string;
  taken: string;
  remaining: string;
  perParty: Record<string, string>;
  /** Tranches only: what each provider's balance gave. */
  perProvider?: Record<string, string>;
}
export interface ChargedParty {
  partyId: string;
  loss: string;
  coverageLimit: string;
  fromDefaulter: string;
  fromPool: string;
  unpaidClaim: string;
  unpaidWithinLimit: string;
}
export interface DefaultLossChargedData {
  poolId: string;
  defaultId: string;
  partyId: string;
  currency: string;
  order: LayerKind[];
  layers: ChargedLayer[];
  parties: ChargedParty[];
  perTranche: PerTranche;
  /** The pool's margin advances to the defaulter: repaid in cash from its unused collateral, the rest a claim. */
  advance: { outstanding: string; returned: string; unreturned: string; returnedPerProvider: PerProvider; unreturnedPerProvider: PerProvider };
  /** The defaulter's collateral left after every loss and advance: back to its estate. */
  surplusToDefaulter: string;
  at: string;
}
export interface WithdrawalsUnfrozenData {
  poolId: string;
  defaultId: string;
  /** Windows that overlapped the freeze, extended to a full window after it. */
  extendedWindows: { providerId: string; tranche: Tranche; closesAt: string }[];
  at: string;
}

export type PoolEvent =
  | DomainEvent<'CapitalDeposited', CapitalDepositedData>
  | DomainEvent<'WithdrawalRequested', WithdrawalRequestedData>
  | DomainEvent<'CapitalWithdrawn', CapitalWithdrawnData>
  | DomainEvent<'PremiumIncomeDistributed', PremiumIncomeDistributedData>
  | DomainEvent<'MarginCoveredByBackstop', MarginCoveredByBackstopData>
  | DomainEvent<'MarginAdvanceRepaid', MarginAdvanceRepaidData>
  | DomainEvent<'WithdrawalsFrozen', WithdrawalsFrozenData>
  | DomainEvent<'DefaultLossCharged', DefaultLossChargedData>
  | DomainEvent<'WithdrawalsUnfrozen', WithdrawalsUnfrozenData>;

/** A party protected against the one whose call is covered: its coverage limit left on that party's contracts. */
export interface Protection {
  readonly partyId: string;
  readonly coverageLimit: string;
}

/** One protected party's loss as the default case assessed it (decimal strings). */
export interface LossToCharge {
  readonly partyId: string;
  readonly loss: string;
  readonly coverageLimit: string;
}

export type PoolCommand =
  | { type: 'DepositCapital'; providerId: string; tranche: Tranche; amount: string; currency?: string; provider?: { partyId: string; role: PartyRole }; at: string }
  | {
      type: 'RequestWithdrawal';
      providerId: string;
      tranche: Tranche;
      shares?: string;
      /** The pool's Cover-2 position (capacity.ts); a request that would break it is refused. */
      capacity?: WithdrawalCapacity;
      at: string;
    }
  | { type: 'WithdrawCapital'; providerId: string; tranche: Tranche; at: string }
  | { type: 'DistributePremium'; coverageId: string; payerPartyId: string; amount: string; currency: string; at: string }
  | { type: 'CoverMarginCall'; callId: string; partyId: string; amount: string; currency: string; protections: readonly Protection[]; at: string }
  | { type: 'RepayMarginAdvance'; partyId: string; amount: string; currency: string; reference: string; at: string }
  | { type: 'FreezeWithdrawals'; defaultId: string; partyId: string; at: string }
  | { type: 'ChargeDefaultLoss'; defaultId: string; partyId: string; losses: readonly LossToCharge[]; contractCollateral: string; at: string }
  | { type: 'UnfreezeWithdrawals'; defaultId: string; at: string };

export interface PendingWithdrawal {
  readonly shares: bigint;
  readonly valueAtRequestMinor: bigint;
  readonly requestedAtMs: number;
  readonly cooldownMs: number;
  /** May grow when a freeze overlapped the window. */
  readonly windowMs: number;
}

export interface ProviderPosition {
  readonly shares: bigint;
  readonly pending?: PendingWithdrawal;
  readonly depositedMinor: bigint;
  readonly withdrawnMinor: bigint;
  readonly incomeMinor: bigint;
  /** Default losses borne (tranche takes and margin advances not repaid). */
  readonly lossMinor: bigint;
  /** Margin advances this position funded that are still outstanding (a claim on the defaulter). */
  readonly advancedMinor: bigint;
  /** Advances repaid to this provider in cash. */
  readonly restitutionMinor: bigint;
}

type Advances = Readonly<Record<Tranche, ReadonlyMap<string, bigint>>>;

export interface PoolState {
  readonly tranches: Readonly<Record<Tranche, TrancheState>>;
  readonly positions: Readonly<Record<Tranche, ReadonlyMap<string, ProviderPosition>>>;
  /** Premium income held while no tranche could earn it. */
  readonly reserveMinor: bigint;
  /** Defaults being settled (withdrawals frozen), by default id. */
  readonly frozen: ReadonlyMap<string, { readonly partyId: string; readonly frozenAt: string }>;
  readonly frozenSinceMs?: number;
  readonly charges: ReadonlyMap<string, DefaultLossChargedData>;
  /** Outstanding margin advances, by defaulter party id. */
  readonly advances: ReadonlyMap<string, Advances>;
  /** Who each outstanding advance is for: defaulter → protected party → amount (SPEC §3.8). */
  readonly earmarks: ReadonlyMap<string, ReadonlyMap<string, bigint>>;
  readonly coveredCalls: ReadonlySet<string>;
}

const EMPTY_POSITION: ProviderPosition = {
  shares: 0n,
  depositedMinor: 0n,
  withdrawnMinor: 0n,
  incomeMinor: 0n,
  lossMinor: 0n,
  advancedMinor: 0n,
  restitutionMinor: 0n,
};

export const EMPTY_POOL: PoolState = {
  tranches: { JUNIOR: EMPTY_TRANCHE, SENIOR: EMPTY_TRANCHE },
  positions: { JUNIOR: new Map(), SENIOR: new Map() },
  reserveMinor: 0n,
  frozen: new Map(),
  charges: new Map(),
  advances: new Map(),
  earmarks: new Map(),
  coveredCalls: new Set(),
};

export function createPoolDecider(policy: PoolPolicy = DEFAULT_POOL_POLICY): Decider<PoolCommand, PoolState, PoolEvent> {
  const problems = poolPolicyProblems(policy);
  if (problems.length > 0) throw new RangeError(`pool policy: ${problems.join('; ')}`);
  const scale = currencyOf(policy.currency).scale;
  const ctx: PoolContext = { policy, scale };
  return {
    initialState: EMPTY_POOL,
    decide(command, state) {
      switch (command.type) {
        case 'DepositCapital':
          return deposit(command, state, ctx);
        case 'RequestWithdrawal':
          return requestWithdrawal(command, state, ctx);
        case 'WithdrawCapital':
          return withdraw(command, state, ctx);
        case 'DistributePremium':
          return distributePremium(command, state, ctx);
        case 'CoverMarginCall':
          return coverMarginCall(command, state, ctx);
        case 'RepayMarginAdvance':
          return repayMarginAdvance(command, state, ctx);
        case 'FreezeWithdrawals':
          return freeze(command, state, ctx);
        case 'ChargeDefaultLoss':
          return chargeDefaultLoss(command, state, ctx);
        case 'UnfreezeWithdrawals':
          return unfreeze(command, state, ctx);
        default:
          return assertNever(command, 'pool command');
      }
    },
    evolve: (state, event) => evolvePool(state, event, scale),
  };
}

/** The pool with the default policy (USDC, junior 3 : senior 1, SPEC §5 order, 20 + 2 days). */
export const poolDecider = createPoolDecider();

interface PoolContext {
  readonly policy: PoolPolicy;
  readonly scale: number;
}

// ---------------------------------------------------------------------------------------------
// Reads over the state (also used by the service's read endpoints and the capacity assessment)

/** Each holder's balance in a tranche: capital split pro rata by shares, exact (sums to the capital). */
export function trancheBalances(state: PoolState, tranche: Tranche): ProviderBalance[] {
  const holdings = [...state.positions[tranche]]
    .filter(([, p]) => p.shares > 0n)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([providerId, p]) => ({ providerId, shares: p.shares }));
  if (holdings.length === 0) return [];
  return splitByShares(state.tranches[tranche].capitalMinor, holdings).map((a) => ({ providerId: a.providerId, balanceMinor: a.amountMinor }));
}

/** Capital that can absorb a loss: a tranche's capital when it has holders (dust without holders is not at risk). */
export function trancheAvailable(state: PoolState, tranche: Tranche): bigint {
  return trancheBalances(state, tranche).reduce((s, b) => s + b.balanceMinor, 0n);
}

export function poolCapital(state: PoolState): bigint {
  return TRANCHES.reduce((s, t) => s + state.tranches[t].capitalMinor, 0n);
}

export function advanceOutstanding(state: PoolState, partyId: string): bigint {
  const advances = state.advances.get(partyId);
  if (!advances) return 0n;
  return TRANCHES.reduce((s, t) => s + [...advances[t].values()].reduce((a, b) => a + b, 0n), 0n);
}

export type WithdrawalPhaseNow = 'COOLDOWN' | 'OPEN' | 'EXPIRED';

export function pendingPhase(pending: PendingWithdrawal, nowMs: number): WithdrawalPhaseNow {
  return withdrawalWindow(pending.requestedAtMs, pending.cooldownMs, pending.windowMs, nowMs);
}

export function pendingOpensAtMs(pending: PendingWithdrawal): number {
  return pending.requestedAtMs + pending.cooldownMs;
}

export function pendingClosesAtMs(pending: PendingWithdrawal): number {
  return pending.requestedAtMs + pending.cooldownMs + pending.windowMs;
}

// ---------------------------------------------------------------------------------------------
// decide

function deposit(c: Extract<PoolCommand, { type: 'DepositCapital' }>, state: PoolState, { policy, scale }: PoolContext): PoolEvent[] {
  const v = new Violations();
  if (!c.provider) v.add('providerId', 'knownParty', `party ${c.providerId} is not registered`);
  else if (c.provider.role !== 'PROVIDER') {
    v.add('providerId', 'providerRole', `party ${c.providerId} is registered as ${c.provider.role}; only a PROVIDER can deposit capital`);
  }
  checkCurrency(v, c.currency, policy);
  const amount = parseAmount(v, 'amount', c.amount, scale, policy.currency);
  v.throwIfAny();
  let tranche = state.tranches[c.tranche];
  let cancelledShares = 0n;
  if (tranche.capitalMinor === 0n && tranche.sharesTotal > 0n) {
    // A wiped-out tranche: its shares are worth nothing; cancel them so new capital is not shared with them.
    cancelledShares = tranche.sharesTotal;
    tranche = EMPTY_TRANCHE;
  }
  const outcome = modelCall('amount', 'minimumShare', () => applyDeposit(tranche, amount));
  return [
    {
      type: 'CapitalDeposited',
      data: {
        poolId: policy.poolId,
        providerId: c.providerId,
        tranche: c.tranche,
        amount: fromMinor(amount, scale),
        shares: outcome.sharesMinted.toString(),
        currency: policy.currency,
        cancelledShares: cancelledShares.toString(),
        trancheCapital: fromMinor(outcome.tranche.capitalMinor, scale),
        trancheShares: outcome.tranche.sharesTotal.toString(),
        at: c.at,
      },
    },
  ];
}

function requestWithdrawal(c: Extract<PoolCommand, { type: 'RequestWithdrawal' }>, state: PoolState, { policy, scale }: PoolContext): PoolEvent[] {
  const position = state.positions[c.tranche].get(c.providerId);
  if (!position || position.shares === 0n) reject('providerId', 'holdsShares', `provider ${c.providerId} holds no ${c.tranche} shares`);
  const nowMs = ms(c.at);
  if (position.pending && pendingPhase(position.pending, nowMs) !== 'EXPIRED') {
    reject(
      'tranche',
      'onePendingWithdrawal',
      `provider ${c.providerId} already asked to withdraw ${c.tranche} shares; that window opens ${iso(pendingOpensAtMs(position.pending))} and closes ${iso(pendingClosesAtMs(position.pending))}`,
    );
  }
  const shares = c.shares === undefined ? position.shares : parseShares(c.shares);
  if (shares <= 0n || shares > position.shares) {
    reject('shares', 'heldShares', `shares must be from 1 to the ${position.shares} ${c.tranche} shares provider ${c.providerId} holds`);
  }
  const value = valueOfShares(state.tranches[c.tranche], shares);
  const capacityProblem = c.capacity ? withdrawalCapacityProblem(c.capacity, value, policy.currency) : undefined;
  if (capacityProblem) reject('shares', 'cover2', capacityProblem);
  const opensAtMs = nowMs + policy.cooldownMs;
  return [
    {
      type: 'WithdrawalRequested',
      data: {
        poolId: policy.poolId,
        providerId: c.providerId,
        tranche: c.tranche,
        shares: shares.toString(),
        valueAtRequest: fromMinor(value, scale),
        opensAt: iso(opensAtMs),
        closesAt: iso(opensAtMs + policy.windowMs),
        at: c.at,
      },
    },
  ];
}

function withdraw(c: Extract<PoolCommand, { type: 'WithdrawCapital' }>, state: PoolState, { policy, scale }: PoolContext): PoolEvent[] {
  const position = state.positions[c.tranche].get(c.providerId);
  const pending = position?.pending;
  if (!position || !pending) reject('tranche', 'withdrawalRequested', `provider ${c.providerId} has no ${c.tranche} withdrawal request; request one first`);
  if (state.frozen.size > 0) {
    reject(
      'providerId',
      'withdrawalsFrozen',
      `withdrawals are frozen while default ${[...state.frozen.keys()].join(', ')} is being settled; a window that overlaps the freeze is extended after it`,
    );
  }
  const phase = pendingPhase(pending, ms(c.at));
  if (phase === 'COOLDOWN') reject('tranche', 'cooldown', `the withdrawal window opens at ${iso(pendingOpensAtMs(pending))}`);
  if (phase === 'EXPIRED') reject('tranche', 'windowClosed', `the withdrawal window closed at ${iso(pendingClosesAtMs(pending))}; request again`);
  const tranche = state.tranches[c.tranche];
  invariant(pending.shares <= position.shares, 'a pending withdrawal never asks for more shares than the position holds');
  const valueNow = valueOfShares(tranche, pending.shares);
  const amount = withdrawalAmount({ shares: pending.shares, valueAtRequestMinor: pending.valueAtRequestMinor, tranche });
  return [
    {
      type: 'CapitalWithdrawn',
      data: {
        poolId: policy.poolId,
        providerId: c.providerId,
        tranche: c.tranche,
        shares: pending.shares.toString(),
        amount: fromMinor(amount, scale),
        valueAtRequest: fromMinor(pending.valueAtRequestMinor, scale),
        valueNow: fromMinor(valueNow, scale),
        currency: policy.currency,
        at: c.at,
      },
    },
  ];
}

function distributePremium(c: Extract<PoolCommand, { type: 'DistributePremium' }>, state: PoolState, { policy, scale }: PoolContext): PoolEvent[] {
  const v = new Violations();
  checkCurrency(v, c.currency, policy);
  const amount = parseAmount(v, 'amount', c.amount, scale, policy.currency);
  v.throwIfAny();
  const total = amount + state.reserveMinor;
  const tranches = TRANCHES.map((t) => {
    const balances = trancheBalances(state, t);
    return {
      kind: layerOfTranche(t),
      // Only capital with holders earns; dust without shares is not at risk.
      capitalMinor: balances.reduce((s, b) => s + b.balanceMinor, 0n),
      weight: policy.trancheWeights[t],
      holdings: [...state.positions[t]].filter(([, p]) => p.shares > 0n).sort(([a], [b]) => (a < b ? -1 : 1)).map(([providerId, p]) => ({ providerId, shares: p.shares })),
    };
  });
  const earning = tranches.some((t) => t.capitalMinor * t.weight > 0n);
  const perTranche = zeroPerTranche(scale);
  const perProvider = emptyPerProvider();
  if (earning) {
    for (const income of splitPremium(total, tranches)) {
      const t = trancheOfLayer(income.kind);
      perTranche[t] = fromMinor(income.incomeMinor, scale);
      for (const p of income.providers) if (p.amountMinor > 0n) perProvider[t][p.providerId] = fromMinor(p.amountMinor, scale);
    }
  }
  return [
    {
      type: 'PremiumIncomeDistributed',
      data: {
        poolId: policy.poolId,
        coverageId: c.coverageId,
        payerPartyId: c.payerPartyId,
        amount: fromMinor(amount, scale),
        currency: policy.currency,
        fromReserve: fromMinor(earning ? state.reserveMinor : 0n, scale),
        perTranche,
        perProvider,
        undistributed: fromMinor(earning ? 0n : total, scale),
        at: c.at,
      },
    },
  ];
}

function partyInDefault(state: PoolState, partyId: string): boolean {
  return [...state.frozen.values()].some((f) => f.partyId === partyId) || [...state.charges.values()].some((ch) => ch.partyId === partyId);
}

function coverMarginCall(c: Extract<PoolCommand, { type: 'CoverMarginCall' }>, state: PoolState, { policy, scale }: PoolContext): PoolEvent[] {
  if (state.coveredCalls.has(c.callId)) return [];
  const v = new Violations();
  checkCurrency(v, c.currency, policy);
  const requested = parseAmount(v, 'amount', c.amount, scale, policy.currency);
  v.throwIfAny();
  if (partyInDefault(state, c.partyId)) {
    reject('partyId', 'notInDefault', `party ${c.partyId} is in default; its losses are settled by the waterfall, not by a margin advance`);
  }
  // SPEC §3.8: only protected exposure is advanced, within the limits not yet earmarked.
  const headroom = protectionHeadroom(state, c.partyId, c.protections, scale);
  const headroomTotal = headroom.reduce((s, h) => s + h.headroomMinor, 0n);
  const capped = minBig(requested, headroomTotal);
  // Waterfall order across tranches (junior first by default), pro rata by balance within one.
  let left = capped;
  const perTranche = zeroPerTranche(scale);
  const perProvider = emptyPerProvider();
  for (const t of trancheOrder(policy)) {
    const balances = trancheBalances(state, t);
    const available = balances.reduce((s, b) => s + b.balanceMinor, 0n);
    const take = minBig(left, available);
    const parts = allocateProRata(take, balances.map((b) => b.balanceMinor));
    balances.forEach((b, i) => {
      invariant(parts[i] <= b.balanceMinor, `advance takes more than ${b.providerId}'s ${t} balance`);
      if (parts[i] > 0n) perProvider[t][b.providerId] = fromMinor(parts[i], scale);
    });
    perTranche[t] = fromMinor(take, scale);
    left -= take;
  }
  const advanced = capped - left;
  const earmarked = allocateProRata(advanced, headroom.map((h) => h.headroomMinor));
  const perProtectedParty: Record<string, string> = {};
  headroom.forEach((h, i) => {
    invariant(earmarked[i] <= h.headroomMinor, `advance earmarked for ${h.partyId} beyond its coverage limit`);
    if (earmarked[i] > 0n) perProtectedParty[h.partyId] = fromMinor(earmarked[i], scale);
  });
  const capReason =
    headroomTotal === 0n
      ? `no coverage limit left against ${c.partyId}: the pool advances margin for protected exposure only`
      : capped < requested
        ? `capped at the ${fromMinor(headroomTotal, scale)} ${policy.currency} of coverage limits left against ${c.partyId}`
        : left > 0n
          ? 'the pool has no more capital'
          : undefined;
  return [
    {
      type: 'MarginCoveredByBackstop',
      data: {
        poolId: policy.poolId,
        callId: c.callId,
        partyId: c.partyId,
        amount: fromMinor(advanced, scale),
        requested: fromMinor(requested, scale),
        uncovered: fromMinor(requested - advanced, scale),
        currency: policy.currency,
        perTranche,
        perProvider,
        perProtectedParty,
        ...(capReason !== undefined ? { capReason } : {}),
        at: c.at,
      },
    },
  ];
}

/** Each protected party's limit against `partyId` not yet earmarked by an outstanding advance, by party id. */
function protectionHeadroom(state: PoolState, partyId: string, protections: readonly Protection[], scale: number): { partyId: string; headroomMinor: bigint }[] {
  const limits = new Map<string, bigint>();
  for (const p of protections) {
    if (p.partyId === partyId) continue;
    const problem = amountProblem(p.coverageLimit, scale);
    if (problem) reject('protections.coverageLimit', 'currencyScale', `coverage limit of ${p.partyId} ${problem}`);
    limits.set(p.partyId, (limits.get(p.partyId) ?? 0n) + toMinor(p.coverageLimit, scale));
  }
  const earmarks = state.earmarks.get(partyId);
  return [...limits]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([id, limit]) => ({ partyId: id, headroomMinor: maxBig(0n, limit - (earmarks?.get(id) ?? 0n)) }));
}

/**
 * The party's own deposit replaces the pool's margin (SPEC §3.8): the pool takes its advance back
 * first, up to the deposit, in cash to the providers who funded it, and the earmarks are released.
 * The party's margin falls by as much (margin records BackstopCoverReturned): its own deposit now stands there.
 */
function repayMarginAdvance(c: Extract<PoolCommand, { type: 'RepayMarginAdvance' }>, state: PoolState, { policy, scale }: PoolContext): PoolEvent[] {
  const v = new Violations();
  checkCurrency(v, c.currency, policy);
  const deposit = parseAmount(v, 'amount', c.amount, scale, policy.currency);
  v.throwIfAny();
  if (partyInDefault(state, c.partyId)) return [];
  const outstanding = advanceOutstanding(state, c.partyId);
  const repaid = minBig(deposit, outstanding);
  if (repaid === 0n) return [];
  const advances = state.advances.get(c.partyId)!;
  const rows = TRANCHES.flatMap((t) => [...advances[t]].sort(([a], [b]) => (a < b ? -1 : 1)).map(([providerId, amount]) => ({ t, providerId, amount })));
  const parts = allocateProRata(repaid, rows.map((r) => r.amount));
  const perTranche = zeroPerTranche(scale);
  const perProvider = emptyPerProvider();
  const trancheTotals: Record<Tranche, bigint> = { JUNIOR: 0n, SENIOR: 0n };
  rows.forEach((r, i) => {
    if (parts[i] === 0n) return;
    perProvider[r.t][r.providerId] = fromMinor(parts[i], scale);
    trancheTotals[r.t] += parts[i];
  });
  for (const t of TRANCHES) perTranche[t] = fromMinor(trancheTotals[t], scale);
  const earmarks = [...(state.earmarks.get(c.partyId) ?? new Map<string, bigint>())].sort(([a], [b]) => (a < b ? -1 : 1));
  const earmarkedTotal = earmarks.reduce((s, [, a]) => s + a, 0n);
  // An advance recorded before earmarks existed has none: release at most what is earmarked.
  const released = allocateProRata(minBig(repaid, earmarkedTotal), earmarks.map(([, a]) => a));
  const perProtectedParty = Object.fromEntries(earmarks.map(([id], i) => [id, fromMinor(released[i], scale)]).filter((_, i) => released[i] > 0n));
  return [
    {
      type: 'MarginAdvanceRepaid',
      data: {
        poolId: policy.poolId,
        partyId: c.partyId,
        amount: fromMinor(repaid, scale),
        currency: policy.currency,
        reference: c.reference,
        perTranche,
        perProvider,
        perProtectedParty,
        outstandingAfter: fromMinor(outstanding - repaid, scale),
        at: c.at,
      },
    },
  ];
}

function freeze(c: Extract<PoolCommand, { type: 'FreezeWithdrawals' }>, state: PoolState, { policy }: PoolContext): PoolEvent[] {
  // Already frozen, or already charged (a late replica must not freeze again after the unfreeze).
  if (state.frozen.has(c.defaultId) || state.charges.has(c.defaultId)) return [];
  return [{ type: 'WithdrawalsFrozen', data: { poolId: policy.poolId, defaultId: c.defaultId, partyId: c.partyId, at: c.at } }];
}

function unfreeze(c: Extract<PoolCommand, { type: 'UnfreezeWithdrawals' }>, state: PoolState, { policy }: PoolContext): PoolEvent[] {
  if (!state.frozen.has(c.defaultId)) return [];
  const nowMs = ms(c.at);
  const extendedWindows: WithdrawalsUnfrozenData['extendedWindows'] = [];
  const lastFreeze = state.frozen.size === 1;
  if (lastFreeze && state.frozenSinceMs !== undefined) {
    for (const t of TRANCHES) {
      for (const [providerId, position] of [...state.positions[t]].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const pending = position.pending;
        if (!pending) continue;
        const overlapped = pendingOpensAtMs(pending) < nowMs && pendingClosesAtMs(pending) > state.frozenSinceMs;
        const closesAtMs = nowMs + policy.windowMs;
        if (overlapped && closesAtMs > pendingClosesAtMs(pending)) extendedWindows.push({ providerId, tranche: t, closesAt: iso(closesAtMs) });
      }
    }
  }
  return [{ type: 'WithdrawalsUnfrozen', data: { poolId: policy.poolId, defaultId: c.defaultId, extendedWindows, at: c.at } }];
}

function chargeDefaultLoss(c: Extract<PoolCommand, { type: 'ChargeDefaultLoss' }>, state: PoolState, { policy, scale }: PoolContext): PoolEvent[] {
  if (state.charges.has(c.defaultId)) return [];
  const losses = [...c.losses]
    .sort((a, b) => (a.partyId < b.partyId ? -1 : a.partyId > b.partyId ? 1 : 0))
    .map((l) => ({ partyId: l.partyId, lossMinor: toMinor(l.loss, scale), coverageLimitMinor: toMinor(l.coverageLimit, scale) }));
  const contractCollateral = toMinor(c.contractCollateral, scale);
  const advanceTotal = advanceOutstanding(state, c.partyId);
  const layers: WaterfallLayer[] = policy.waterfallOrder.map((kind): WaterfallLayer => {
    switch (kind) {
      case 'DEFAULTER_CONTRACT_COLLATERAL':
        return { kind, availableMinor: contractCollateral };
      case 'POOL_MARGIN_ADVANCE':
        // The pool's margin posted for the defaulter: it pays only the parties it was earmarked for.
        return { kind, availableMinor: advanceTotal, earmarks: advanceEarmarks(state, c.partyId, advanceTotal) };
      case 'JUNIOR_TRANCHE':
      case 'SENIOR_TRANCHE': {
        const providers = trancheBalances(state, trancheOfLayer(kind));
        return { kind, availableMinor: providers.reduce((s, p) => s + p.balanceMinor, 0n), providers };
      }
      default:
        return assertNever(kind, 'layer kind');
    }
  });
  const result = runWaterfall({ losses, layers });
  const perTranche = zeroPerTranche(scale);
  const chargedLayers: ChargedLayer[] = result.layers.map((layer) => {
    const perParty = Object.fromEntries(layer.paidToParties.map((p) => [p.partyId, fromMinor(p.amountMinor, scale)]));
    const line: ChargedLayer = {
      layer: layer.kind,
      available: fromMinor(layer.availableMinor, scale),
      taken: fromMinor(layer.takenMinor, scale),
      remaining: fromMinor(layer.remainingMinor, scale),
      perParty,
    };
    if (!isTranche(layer.kind)) return line;
    perTranche[trancheOfLayer(layer.kind)] = fromMinor(layer.takenMinor, scale);
    return { ...line, perProvider: Object.fromEntries(layer.providers.filter((p) => p.takenMinor > 0n).map((p) => [p.providerId, fromMinor(p.takenMinor, scale)])) };
  });
  const unusedDefaulterMinor = result.layers.filter((l) => !isTranche(l.kind)).reduce((s, l) => s + l.remainingMinor, 0n);
  const advance = repayAdvance(state, c.partyId, minBig(unusedDefaulterMinor, advanceTotal), scale);
  return [
    {
      type: 'DefaultLossCharged',
      data: {
        poolId: policy.poolId,
        defaultId: c.defaultId,
        partyId: c.partyId,
        currency: policy.currency,
        order: [...policy.waterfallOrder],
        layers: chargedLayers,
        parties: result.parties.map((p) => ({
          partyId: p.partyId,
          loss: fromMinor(p.lossMinor, scale),
          coverageLimit: fromMinor(p.coverageLimitMinor, scale),
          fromDefaulter: fromMinor(p.fromDefaulterMinor, scale),
          fromPool: fromMinor(p.fromPoolMinor, scale),
          unpaidClaim: fromMinor(p.unpaidClaimMinor, scale),
          unpaidWithinLimit: fromMinor(p.unpaidWithinLimitMinor, scale),
        })),
        perTranche,
        advance: { outstanding: fromMinor(advanceTotal, scale), ...advance },
        surplusToDefaulter: fromMinor(unusedDefaulterMinor - toMinor(advance.returned, scale), scale),
        at: c.at,
      },
    },
  ];
}

/**
 * The advance as earmarked. An advance from before earmarks (legacy events) has no earmark for its
 * rest: earmarked to no one, it pays nobody and goes back to the providers who funded it.
 */
function advanceEarmarks(state: PoolState, partyId: string, advanceTotal: bigint): { partyId: string; amountMinor: bigint }[] {
  const earmarks = [...(state.earmarks.get(partyId) ?? new Map<string, bigint>())].filter(([, a]) => a > 0n).sort(([a], [b]) => (a < b ? -1 : 1));
  const total = earmarks.reduce((s, [, a]) => s + a, 0n);
  invariant(total <= advanceTotal, `earmarks against ${partyId} exceed its outstanding advance`);
  const rows = earmarks.map(([id, amountMinor]) => ({ partyId: id, amountMinor }));
  // The unearmarked rest (legacy) sits under a key no loss carries, so validation sums hold.
  return total < advanceTotal ? [...rows, { partyId: '\u0000unearmarked', amountMinor: advanceTotal - total }] : rows;
}

/** The defaulter's unused collateral repays the pool's advances, pro rata to who funded them. */
function repayAdvance(state: PoolState, partyId: string, returnedMinor: bigint, scale: number): Omit<DefaultLossChargedData['advance'], 'outstanding'> {
  const advances = state.advances.get(partyId);
  const rows = TRANCHES.flatMap((t) => [...(advances?.[t] ?? new Map<string, bigint>())].sort(([a], [b]) => (a < b ? -1 : 1)).map(([providerId, amount]) => ({ t, providerId, amount })));
  const parts = allocateProRata(returnedMinor, rows.map((r) => r.amount));
  const returnedPerProvider = emptyPerProvider();
  const unreturnedPerProvider = emptyPerProvider();
  rows.forEach((r, i) => {
    if (parts[i] > 0n) returnedPerProvider[r.t][r.providerId] = fromMinor(parts[i], scale);
    if (r.amount - parts[i] > 0n) unreturnedPerProvider[r.t][r.providerId] = fromMinor(r.amount - parts[i], scale);
  });
  const total = rows.reduce((s, r) => s + r.amount, 0n);
  return { returned: fromMinor(returnedMinor, scale), unreturned: fromMinor(total - returnedMinor, scale), returnedPerProvider, unreturnedPerProvider };
}

// ---------------------------------------------------------------------------------------------
// evolve

function evolvePool(state: PoolState, event: PoolEvent, scale: number): PoolState {
  switch (event.type) {
    case 'CapitalDeposited': {
      const d = event.data;
      let s = state;
      if (toBig(d.cancelledShares) > 0n) s = cancelTranche(s, d.tranche);
      const amount = toMinor(d.amount, scale);
      const shares = toBig(d.shares);
      const t = s.tranches[d.tranche];
      s = withTranche(s, d.tranche, { capitalMinor: t.capitalMinor + amount, sharesTotal: t.sharesTotal + shares });
      return withPosition(s, d.tranche, d.providerId, (p) => ({ ...p, shares: p.shares + shares, depositedMinor: p.depositedMinor + amount }));
    }
    case 'WithdrawalRequested': {
      const d = event.data;
      const requestedAtMs = ms(d.at);
      const pending: PendingWithdrawal = {
        shares: toBig(d.shares),
        valueAtRequestMinor: toMinor(d.valueAtRequest, scale),
        requestedAtMs,
        cooldownMs: ms(d.opensAt) - requestedAtMs,
        windowMs: ms(d.closesAt) - ms(d.opensAt),
      };
      return withPosition(state, d.tranche, d.providerId, (p) => ({ ...p, pending }));
    }
    case 'CapitalWithdrawn': {
      const d = event.data;
      const shares = toBig(d.shares);
      const amount = toMinor(d.amount, scale);
      const s = withTranche(state, d.tranche, applyWithdrawal(state.tranches[d.tranche], shares, amount));
      return withPosition(s, d.tranche, d.providerId, (p) => ({ ...p, shares: p.shares - shares, pending: undefined, withdrawnMinor: p.withdrawnMinor + amount }));
    }
    case 'PremiumIncomeDistributed': {
      const d = event.data;
      let s: PoolState = { ...state, reserveMinor: toMinor(d.undistributed, scale) };
      for (const t of TRANCHES) {
        s = withTranche(s, t, applyTrancheIncome(s.tranches[t], toMinor(d.perTranche[t], scale)));
        for (const [providerId, amount] of Object.entries(d.perProvider[t])) {
          s = withPosition(s, t, providerId, (p) => ({ ...p, incomeMinor: p.incomeMinor + toMinor(amount, scale) }));
        }
      }
      return s;
    }
    case 'MarginCoveredByBackstop': {
      const d = event.data;
      let s: PoolState = { ...state, coveredCalls: new Set([...state.coveredCalls, d.callId]) };
      const existing = s.advances.get(d.partyId) ?? { JUNIOR: new Map<string, bigint>(), SENIOR: new Map<string, bigint>() };
      const advances: Record<Tranche, Map<string, bigint>> = { JUNIOR: new Map(existing.JUNIOR), SENIOR: new Map(existing.SENIOR) };
      for (const t of TRANCHES) {
        s = withTranche(s, t, applyTrancheLoss(s.tranches[t], toMinor(d.perTranche[t], scale)));
        for (const [providerId, text] of Object.entries(d.perProvider[t])) {
          const amount = toMinor(text, scale);
          advances[t].set(providerId, (advances[t].get(providerId) ?? 0n) + amount);
          s = withPosition(s, t, providerId, (p) => ({ ...p, advancedMinor: p.advancedMinor + amount }));
        }
      }
      const all = new Map(s.advances);
      all.set(d.partyId, advances);
      const earmarks = new Map(s.earmarks.get(d.partyId) ?? []);
      for (const [protectedId, text] of Object.entries(d.perProtectedParty ?? {})) earmarks.set(protectedId, (earmarks.get(protectedId) ?? 0n) + toMinor(text, scale));
      const allEarmarks = new Map(s.earmarks);
      allEarmarks.set(d.partyId, earmarks);
      return { ...s, advances: all, earmarks: allEarmarks };
    }
    case 'MarginAdvanceRepaid':
      return evolveRepaid(state, event.data, scale);
    case 'WithdrawalsFrozen': {
      const frozen = new Map(state.frozen);
      frozen.set(event.data.defaultId, { partyId: event.data.partyId, frozenAt: event.data.at });
      return { ...state, frozen, frozenSinceMs: state.frozen.size === 0 ? ms(event.data.at) : state.frozenSinceMs };
    }
    case 'DefaultLossCharged':
      return evolveCharge(state, event.data, scale);
    case 'WithdrawalsUnfrozen': {
      const frozen = new Map(state.frozen);
      frozen.delete(event.data.defaultId);
      let s: PoolState = { ...state, frozen, frozenSinceMs: frozen.size === 0 ? undefined : state.frozenSinceMs };
      for (const w of event.data.extendedWindows) {
        s = withPosition(s, w.tranche, w.providerId, (p) =>
          p.pending ? { ...p, pending: { ...p.pending, windowMs: ms(w.closesAt) - pendingOpensAtMs(p.pending) } } : p,
        );
      }
      return s;
    }
    default:
      return assertNever(event, 'pool event');
  }
}

function evolveCharge(state: PoolState, d: DefaultLossChargedData, scale: number): PoolState {
  let s = state;
  for (const layer of d.layers) {
    if (!isTranche(layer.layer)) continue;
    const t = trancheOfLayer(layer.layer);
    s = withTranche(s, t, applyTrancheLoss(s.tranches[t], toMinor(layer.taken, scale)));
    for (const [providerId, taken] of Object.entries(layer.perProvider ?? {})) {
      s = withPosition(s, t, providerId, (p) => ({ ...p, lossMinor: p.lossMinor + toMinor(taken, scale) }));
    }
  }
  for (const t of TRANCHES) {
    const returned = d.advance.returnedPerProvider[t];
    const unreturned = d.advance.unreturnedPerProvider[t];
    for (const providerId of new Set([...Object.keys(returned), ...Object.keys(unreturned)])) {
      const back = toMinor(returned[providerId] ?? '0', scale);
      const lost = toMinor(unreturned[providerId] ?? '0', scale);
      s = withPosition(s, t, providerId, (p) => ({
        ...p,
        advancedMinor: p.advancedMinor - back - lost,
        restitutionMinor: p.restitutionMinor + back,
        lossMinor: p.lossMinor + lost,
      }));
    }
  }
  const advances = new Map(s.advances);
  advances.delete(d.partyId);
  const earmarks = new Map(s.earmarks);
  earmarks.delete(d.partyId);
  const charges = new Map(s.charges);
  charges.set(d.defaultId, d);
  return { ...s, advances, earmarks, charges };
}

function evolveRepaid(state: PoolState, d: MarginAdvanceRepaidData, scale: number): PoolState {
  let s = state;
  const existing = s.advances.get(d.partyId) ?? { JUNIOR: new Map<string, bigint>(), SENIOR: new Map<string, bigint>() };
  const advances: Record<Tranche, Map<string, bigint>> = { JUNIOR: new Map(existing.JUNIOR), SENIOR: new Map(existing.SENIOR) };
  for (const t of TRANCHES) {
    // In cash to the providers who funded it, as a default's returned advance is: the tranche's
    // current holders are not the ones whose capital went out.
    for (const [providerId, text] of Object.entries(d.perProvider[t])) {
      const amount = toMinor(text, scale);
      const left = (advances[t].get(providerId) ?? 0n) - amount;
      invariant(left >= 0n, `repaid ${providerId} more than its ${t} advance`);
      if (left === 0n) advances[t].delete(providerId);
      else advances[t].set(providerId, left);
      s = withPosition(s, t, providerId, (p) => ({ ...p, advancedMinor: p.advancedMinor - amount, restitutionMinor: p.restitutionMinor + amount }));
    }
  }
  const all = new Map(s.advances);
  if (TRANCHES.every((t) => advances[t].size === 0)) all.delete(d.partyId);
  else all.set(d.partyId, advances);
  const earmarks = new Map(s.earmarks.get(d.partyId) ?? []);
  for (const [protectedId, text] of Object.entries(d.perProtectedParty)) {
    const left = (earmarks.get(protectedId) ?? 0n) - toMinor(text, scale);
    invariant(left >= 0n, `released more of the earmark for ${protectedId} than it held`);
    earmarks.set(protectedId, left);
  }
  const allEarmarks = new Map(s.earmarks);
  allEarmarks.set(d.partyId, earmarks);
  return { ...s, advances: all, earmarks: allEarmarks };
}

function cancelTranche(state: PoolState, tranche: Tranche): PoolState {
  const positions = new Map([...state.positions[tranche]].map(([id, p]) => [id, { ...p, shares: 0n, pending: undefined }]));
  return { ...withTranche(state, tranche, EMPTY_TRANCHE), positions: { ...state.positions, [tranche]: positions } };
}

function withTranche(state: PoolState, tranche: Tranche, next: TrancheState): PoolState {
  invariant(next.capitalMinor >= 0n, `${tranche} capital must never go negative`);
  invariant(next.sharesTotal >= 0n, `${tranche} shares must never go negative`);
  return { ...state, tranches: { ...state.tranches, [tranche]: next } };
}

function withPosition(state: PoolState, tranche: Tranche, providerId: string, update: (p: ProviderPosition) => ProviderPosition): PoolState {
  const positions = new Map(state.positions[tranche]);
  const next = update(positions.get(providerId) ?? EMPTY_POSITION);
  invariant(next.shares >= 0n, `${providerId}'s ${tranche} shares must never go negative`);
  invariant(next.advancedMinor >= 0n, `${providerId}'s ${tranche} advances must never go negative`);
  positions.set(providerId, next);
  return { ...state, positions: { ...state.positions, [tranche]: positions } };
}

// ---------------------------------------------------------------------------------------------
// small helpers

function checkCurrency(v: Violations, currency: string | undefined, policy: PoolPolicy): void {
  if (currency !== undefined && currency !== policy.currency) v.add('currency', 'poolCurrency', `the pool holds ${policy.currency} only, not ${currency}`);
}

/** A positive amount at the currency's scale, or a violation (and 0n). */
function parseAmount(v: Violations, field: string, text: string, scale: number, currency: string): bigint {
  const problem = amountProblem(text, scale);
  if (problem) {
    v.add(field, 'currencyScale', `${field} ${problem} (${currency})`);
    return 0n;
  }
  const amount = toMinor(text, scale);
  if (amount <= 0n) v.add(field, 'positive', `${field} must be greater than 0`);
  return amount;
}

function parseShares(text: string): bigint {
  if (!/^[0-9]{1,30}$/.test(text)) reject('shares', 'wholeShares', 'shares must be a whole number such as "1000000"');
  return BigInt(text);
}

function toBig(text: string): bigint {
  return BigInt(text);
}

/** The settlement model signals a bad input with a RangeError: that is a rejection of this command. */
function modelCall<T>(field: string, rule: string, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof RangeError) reject(field, rule, err.message);
    throw err;
  }
}

function zeroPerTranche(scale: number): PerTranche {
  return { JUNIOR: fromMinor(0n, scale), SENIOR: fromMinor(0n, scale) };
}

function emptyPerProvider(): PerProvider {
  return { JUNIOR: {}, SENIOR: {} };
}
