/**
 * Tranche share accounting (SPEC §6). A tranche holds capital (minor units) against shares; a
 * provider's value is its shares × capital / shares. Losses and income move capital, not shares,
 * so they reach every holder pro rata by construction. Every division rounds in the pool's
 * favour (SPEC §2): shares minted round down, values paid out round down.
 */
import { allocateProRata, invariant, minBig } from '@backstop/kernel';
import { requireNonNegative, requireUnique, sumMinor } from './amounts';
import { TrancheKind } from './layers';

export interface TrancheState {
  readonly capitalMinor: bigint;
  readonly sharesTotal: bigint;
}

export const EMPTY_TRANCHE: TrancheState = { capitalMinor: 0n, sharesTotal: 0n };

export interface Holding {
  readonly providerId: string;
  readonly shares: bigint;
}

export interface ProviderAmount {
  readonly providerId: string;
  readonly amountMinor: bigint;
}

/**
 * Shares for a deposit: 1:1 into a tranche with no shares, else at the current share price, rounded
 * down so existing holders are never diluted. A tranche wiped out to zero capital with shares still
 * outstanding has a share price of zero and takes no deposits until it is reset.
 * (Capital left in a tranche with no shares, e.g. a late recovery, goes to the first new depositor.)
 */
export function sharesForDeposit(tranche: TrancheState, amountMinor: bigint): bigint {
  validateTranche(tranche);
  if (amountMinor <= 0n) throw new RangeError(`deposit must be positive (got ${amountMinor})`);
  if (tranche.sharesTotal === 0n) return amountMinor;
  if (tranche.capitalMinor === 0n) {
    throw new RangeError('tranche capital is zero with shares outstanding: its shares are worthless, reset it before taking deposits');
  }
  const shares = (amountMinor * tranche.sharesTotal) / tranche.capitalMinor;
  if (shares === 0n) throw new RangeError(`deposit of ${amountMinor} is worth less than one share`);
  return shares;
}

export interface DepositOutcome {
  readonly sharesMinted: bigint;
  readonly tranche: TrancheState;
}

export function applyDeposit(tranche: TrancheState, amountMinor: bigint): DepositOutcome {
  const sharesMinted = sharesForDeposit(tranche, amountMinor);
  return {
    sharesMinted,
    tranche: { capitalMinor: tranche.capitalMinor + amountMinor, sharesTotal: tranche.sharesTotal + sharesMinted },
  };
}

/** Current value of `shares`, rounded down. */
export function valueOfShares(tranche: TrancheState, shares: bigint): bigint {
  validateTranche(tranche);
  requireNonNegative(shares, 'shares');
  if (shares > tranche.sharesTotal) throw new RangeError(`${shares} shares exceed the tranche's ${tranche.sharesTotal}`);
  if (shares === 0n) return 0n;
  return (shares * tranche.capitalMinor) / tranche.sharesTotal;
}

/** A waterfall take: the tranche never goes below zero (SPEC §9). */
export function applyTrancheLoss(tranche: TrancheState, lossMinor: bigint): TrancheState {
  requireNonNegative(lossMinor, 'loss');
  if (lossMinor > tranche.capitalMinor) throw new RangeError(`loss ${lossMinor} exceeds the tranche capital ${tranche.capitalMinor}`);
  return { ...tranche, capitalMinor: tranche.capitalMinor - lossMinor };
}

/** Premium income or a recovery credited to the tranche raises its share price. */
export function applyTrancheIncome(tranche: TrancheState, incomeMinor: bigint): TrancheState {
  requireNonNegative(incomeMinor, 'income');
  return { ...tranche, capitalMinor: tranche.capitalMinor + incomeMinor };
}

export interface TrancheForIncome {
  readonly kind: TrancheKind;
  readonly capitalMinor: bigint;
  /** Income per unit of capital relative to the other tranches (DEFAULT_TRANCHE_WEIGHTS: junior 3, senior 1). */
  readonly weight: bigint;
  readonly holdings: readonly Holding[];
}

export interface TrancheIncome {
  readonly kind: TrancheKind;
  readonly incomeMinor: bigint;
  readonly providers: readonly ProviderAmount[];
}

/**
 * Premium income: across tranches pro rata by capital × weight (junior earns more for taking first
 * loss), then within a tranche pro rata by shares. Exact: the parts sum to the premium.
 */
export function splitPremium(premiumMinor: bigint, tranches: readonly TrancheForIncome[]): TrancheIncome[] {
  requireNonNegative(premiumMinor, 'premium');
  requireUnique(tranches.map((t) => t.kind), 'tranche kind');
  tranches.forEach((t) => {
    requireNonNegative(t.capitalMinor, `${t.kind} capital`);
    requireNonNegative(t.weight, `${t.kind} weight`);
  });
  const weighted = tranches.map((t) => t.capitalMinor * t.weight);
  if (premiumMinor > 0n && sumMinor(weighted) === 0n) throw new RangeError('no weighted tranche capital to earn the premium');
  const incomes = allocateProRata(premiumMinor, weighted);
  const split = tranches.map((t, i) => ({ kind: t.kind, incomeMinor: incomes[i], providers: splitByShares(incomes[i], t.holdings) }));
  invariant(sumMinor(split.map((s) => s.incomeMinor)) === premiumMinor, 'premium split must sum to the premium');
  return split;
}

/** Pro rata by shares, exact (largest remainder). */
export function splitByShares(amountMinor: bigint, holdings: readonly Holding[]): ProviderAmount[] {
  requireUnique(holdings.map((h) => h.providerId), 'providerId');
  holdings.forEach((h) => requireNonNegative(h.shares, `shares of ${h.providerId}`));
  if (amountMinor > 0n && sumMinor(holdings.map((h) => h.shares)) === 0n) {
    throw new RangeError(`no shares to receive ${amountMinor}`);
  }
  const parts = allocateProRata(amountMinor, holdings.map((h) => h.shares));
  return holdings.map((h, i) => ({ providerId: h.providerId, amountMinor: parts[i] }));
}

/**
 * What a withdrawal pays: the lesser of the shares' value at request and now (SPEC §6), so
 * requesting early does not dodge a loss and a request does not lock in later income.
 */
export interface WithdrawalRequest {
  readonly shares: bigint;
  /** valueOfShares when the request was made, recorded with the request. */
  readonly valueAtRequestMinor: bigint;
  /** The tranche now. */
  readonly tranche: TrancheState;
}

export function withdrawalAmount(input: WithdrawalRequest): bigint {
  requireNonNegative(input.valueAtRequestMinor, 'value at request');
  return minBig(input.valueAtRequestMinor, valueOfShares(input.tranche, input.shares));
}

/** Burns the shares and pays `amountMinor`; anything below their value stays with the other holders. */
export function applyWithdrawal(tranche: TrancheState, shares: bigint, amountMinor: bigint): TrancheState {
  requireNonNegative(amountMinor, 'withdrawal amount');
  const valueMinor = valueOfShares(tranche, shares);
  if (amountMinor > valueMinor) throw new RangeError(`withdrawal ${amountMinor} exceeds the shares' value ${valueMinor}`);
  const next = { capitalMinor: tranche.capitalMinor - amountMinor, sharesTotal: tranche.sharesTotal - shares };
  invariant(next.capitalMinor >= 0n, 'tranche capital must not go negative');
  return next;
}

export type WithdrawalPhase = 'COOLDOWN' | 'OPEN' | 'EXPIRED';

/**
 * Request → cooldown → window (SPEC §6; Aave: 20 days + 2 days). The window is half-open:
 * [requestedAtMs + cooldownMs, requestedAtMs + cooldownMs + windowMs). A clock before the request
 * reads as cooldown. The freeze during a default settlement is the caller's state, not this phase.
 */
export function withdrawalWindow(requestedAtMs: number, cooldownMs: number, windowMs: number, nowMs: number): WithdrawalPhase {
  [requestedAtMs, cooldownMs, windowMs, nowMs].forEach(requireFiniteMs);
  if (cooldownMs < 0) throw new RangeError(`cooldownMs must not be negative (got ${cooldownMs})`);
  if (windowMs <= 0) throw new RangeError(`windowMs must be positive (got ${windowMs})`);
  const opensAtMs = requestedAtMs + cooldownMs;
  if (nowMs < opensAtMs) return 'COOLDOWN';
  if (nowMs < opensAtMs + windowMs) return 'OPEN';
  return 'EXPIRED';
}

function requireFiniteMs(ms: number): void {
  if (!Number.isFinite(ms)) throw new RangeError(`time ${ms} is not a finite number of milliseconds`);
}

function validateTranche(tranche: TrancheState): void {
  requireNonNegative(tranche.capitalMinor, 'tranche capital');
  requireNonNegative(tranche.sharesTotal, 'tranche shares');
}
