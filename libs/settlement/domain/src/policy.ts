/**
 * The pool's rules that an operator may configure (SPEC §5 order, §6 weights and cooldown), and
 * the mapping between the wire's tranche names (JUNIOR | SENIOR) and the model's layer kinds.
 */
import { DAY_MS, isSupportedCurrency } from '@backstop/kernel';
import { DEFAULT_TRANCHE_WEIGHTS, DEFAULT_WATERFALL_ORDER, isTranche, LayerKind, TrancheKind } from '@backstop/settlement-model';

export type Tranche = 'JUNIOR' | 'SENIOR';
export const TRANCHES: readonly Tranche[] = ['JUNIOR', 'SENIOR'];

export function layerOfTranche(tranche: Tranche): TrancheKind {
  return tranche === 'JUNIOR' ? 'JUNIOR_TRANCHE' : 'SENIOR_TRANCHE';
}

export function trancheOfLayer(kind: TrancheKind): Tranche {
  return kind === 'JUNIOR_TRANCHE' ? 'JUNIOR' : 'SENIOR';
}

export interface PoolPolicy {
  readonly poolId: string;
  /** The settlement currency of the pool: every amount it holds, earns and pays. */
  readonly currency: string;
  /** Premium income per unit of capital, relative (junior earns more: it takes first loss). */
  readonly trancheWeights: Readonly<Record<Tranche, bigint>>;
  /** The waterfall, in paying order: all four layer kinds, each once (SPEC §5: configurable). */
  readonly waterfallOrder: readonly LayerKind[];
  /** Withdrawal request → cooldown → window (SPEC §6; Aave: 20 days + 2 days). */
  readonly cooldownMs: number;
  readonly windowMs: number;
}

export const DEFAULT_POOL_POLICY: PoolPolicy = {
  poolId: 'main',
  currency: 'USDC',
  trancheWeights: { JUNIOR: DEFAULT_TRANCHE_WEIGHTS.JUNIOR_TRANCHE, SENIOR: DEFAULT_TRANCHE_WEIGHTS.SENIOR_TRANCHE },
  waterfallOrder: DEFAULT_WATERFALL_ORDER,
  cooldownMs: 20 * DAY_MS,
  windowMs: 2 * DAY_MS,
};

/** The tranches in the order the waterfall reaches them (junior first by default). */
export function trancheOrder(policy: PoolPolicy): Tranche[] {
  return policy.waterfallOrder.filter(isTranche).map(trancheOfLayer);
}

/** Why a policy cannot run, or an empty list. */
export function poolPolicyProblems(policy: PoolPolicy): string[] {
  const problems: string[] = [];
  if (!isSupportedCurrency(policy.currency)) problems.push(`currency "${policy.currency}" is not supported`);
  const kinds = new Set(policy.waterfallOrder);
  if (kinds.size !== policy.waterfallOrder.length || !DEFAULT_WATERFALL_ORDER.every((k) => kinds.has(k)) || kinds.size !== DEFAULT_WATERFALL_ORDER.length) {
    problems.push(`waterfall order must list each of ${DEFAULT_WATERFALL_ORDER.join(', ')} exactly once`);
  }
  for (const tranche of TRANCHES) {
    if (policy.trancheWeights[tranche] < 0n) problems.push(`${tranche} weight must not be negative`);
  }
  if (TRANCHES.every((t) => policy.trancheWeights[t] === 0n)) problems.push('at least one tranche weight must be positive');
  if (!(Number.isFinite(policy.cooldownMs) && policy.cooldownMs >= 0)) problems.push('cooldown must be ≥ 0');
  if (!(Number.isFinite(policy.windowMs) && policy.windowMs > 0)) problems.push('withdrawal window must be > 0');
  return problems;
}
