/**
 * Party equity against its requirements (SPEC §3.7): equity = collateral + Σ MTM of its positions.
 * A margin call is due when equity < maintenance, and its amount restores INITIAL margin
 * (call = initial − equity), the usual futures rule (CME: a call below maintenance must be met
 * back to the initial level).
 *
 * Where these doubles become ledger amounts (SPEC §2: rounding favours the pool):
 * - requirements (initial, maintenance) and call amounts round UP (the party owes at least that);
 * - MTM rounds DOWN (a gain counts a little less, a loss a little more), so equity is never
 *   overstated. The call decision is then taken on the integers, so it matches the ledger.
 */
import { floatToMinor } from '@backstop/kernel';

export interface MarginCheck {
  readonly equity: number;
  readonly initialRequirement: number;
  readonly maintenanceRequirement: number;
  /** max(0, maintenance − equity). */
  readonly shortfall: number;
  /** initial − equity when equity < maintenance, else 0. */
  readonly callAmount: number;
}

export interface MarginCheckMinor {
  readonly equityMinor: bigint;
  readonly initialMinor: bigint;
  readonly maintenanceMinor: bigint;
  readonly shortfallMinor: bigint;
  readonly callAmountMinor: bigint;
}

export function partyEquity(collateral: number, pnls: readonly number[]): number {
  let equity = collateral;
  for (const pnl of pnls) equity += pnl;
  return equity;
}

function assertRequirements(initial: number, maintenance: number): void {
  if (!(maintenance >= 0) || !Number.isFinite(initial)) throw new RangeError(`requirements must be finite and ≥ 0 (initial ${initial}, maintenance ${maintenance})`);
  if (maintenance > initial) throw new RangeError(`maintenance ${maintenance} exceeds initial ${initial}`);
}

export function checkMargin(equity: number, initialRequirement: number, maintenanceRequirement: number): MarginCheck {
  assertRequirements(initialRequirement, maintenanceRequirement);
  const inCall = equity < maintenanceRequirement;
  return {
    equity,
    initialRequirement,
    maintenanceRequirement,
    shortfall: Math.max(0, maintenanceRequirement - equity),
    callAmount: inCall ? initialRequirement - equity : 0,
  };
}

/** A requirement or call amount as minor units, rounded up (the pool's favour). */
export function requirementToMinor(requirement: number, scale: number): bigint {
  return floatToMinor(requirement, scale, 'up');
}

/** A mark-to-market as minor units, rounded down (equity never overstated). */
export function pnlToMinor(pnl: number, scale: number): bigint {
  return floatToMinor(pnl, scale, 'down');
}

/** The same check as checkMargin, decided on ledger integers. */
export function checkMarginMinor(input: {
  readonly collateralMinor: bigint;
  readonly pnl: number;
  readonly initialRequirement: number;
  readonly maintenanceRequirement: number;
  readonly scale: number;
}): MarginCheckMinor {
  assertRequirements(input.initialRequirement, input.maintenanceRequirement);
  const equityMinor = input.collateralMinor + pnlToMinor(input.pnl, input.scale);
  const initialMinor = requirementToMinor(input.initialRequirement, input.scale);
  const maintenanceMinor = requirementToMinor(input.maintenanceRequirement, input.scale);
  const inCall = equityMinor < maintenanceMinor;
  return {
    equityMinor,
    initialMinor,
    maintenanceMinor,
    shortfallMinor: inCall ? maintenanceMinor - equityMinor : 0n,
    callAmountMinor: inCall ? initialMinor - equityMinor : 0n,
  };
}
