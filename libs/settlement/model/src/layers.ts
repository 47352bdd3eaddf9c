/** The layers of the default waterfall (SPEC §5) and the tranches of the backstop pool (SPEC §6). */

/** The defaulter's own resources: they pay toward the whole loss, coverage limits do not apply. */
export type DefaulterLayerKind = 'DEFAULTER_CONTRACT_COLLATERAL';

/**
 * The pool's margin advance for the defaulter (SPEC §3.8): pool money, earmarked for the protected
 * parties it was advanced for, within their coverage limits; never shared with unprotected claimants.
 * (Named DEFAULTER_OTHER_COLLATERAL before: it never was the defaulter's money.)
 */
export type AdvanceLayerKind = 'POOL_MARGIN_ADVANCE';

/** The pool's tranches: they pay only what the protected parties' coverage allows. */
export type TrancheKind = 'JUNIOR_TRANCHE' | 'SENIOR_TRANCHE';

export type LayerKind = DefaulterLayerKind | AdvanceLayerKind | TrancheKind;

/**
 * SPEC §5 default order: defaulter's collateral on the defaulted contracts, then the pool's margin
 * advance for it (its earmarked protected parties only; there is no default fund), then the junior
 * (first-loss) tranche, then the senior tranche.
 */
export const DEFAULT_WATERFALL_ORDER: readonly LayerKind[] = [
  'DEFAULTER_CONTRACT_COLLATERAL',
  'POOL_MARGIN_ADVANCE',
  'JUNIOR_TRANCHE',
  'SENIOR_TRANCHE',
];

export const TRANCHE_KINDS: readonly TrancheKind[] = ['JUNIOR_TRANCHE', 'SENIOR_TRANCHE'];

/** Junior takes first loss, so it earns more premium per unit of capital (SPEC §6). */
export const DEFAULT_TRANCHE_WEIGHTS: Readonly<Record<TrancheKind, bigint>> = {
  JUNIOR_TRANCHE: 3n,
  SENIOR_TRANCHE: 1n,
};

export function isTranche(kind: LayerKind): kind is TrancheKind {
  switch (kind) {
    case 'JUNIOR_TRANCHE':
    case 'SENIOR_TRANCHE':
      return true;
    case 'DEFAULTER_CONTRACT_COLLATERAL':
    case 'POOL_MARGIN_ADVANCE':
      return false;
    default: {
      const _exhaustive: never = kind;
      return _exhaustive;
    }
  }
}

/** Pool money (tranches and the margin advance): pays only within coverage limits, counts against them. */
export function isPoolMoney(kind: LayerKind): boolean {
  switch (kind) {
    case 'JUNIOR_TRANCHE':
    case 'SENIOR_TRANCHE':
    case 'POOL_MARGIN_ADVANCE':
      return true;
    case 'DEFAULTER_CONTRACT_COLLATERAL':
      return false;
    default: {
      const _exhaustive: never = kind;
      return _exhaustive;
    }
  }
}

/** Old stores and configs name the advance layer DEFAULTER_OTHER_COLLATERAL: read it as the new name. */
export const LEGACY_LAYER_NAMES: Readonly<Record<string, LayerKind>> = { DEFAULTER_OTHER_COLLATERAL: 'POOL_MARGIN_ADVANCE' };
