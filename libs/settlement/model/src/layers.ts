/** The layers of the default waterfall (SPEC §5) and the tranches of the backstop pool (SPEC §6). */

/** The defaulter's own resources: they pay toward the whole loss, coverage limits do not apply. */
export type DefaulterLayerKind = 'DEFAULTER_CONTRACT_COLLATERAL' | 'DEFAULTER_OTHER_COLLATERAL';

/** The pool's tranches: they pay only what the protected parties' coverage allows. */
export type TrancheKind = 'JUNIOR_TRANCHE' | 'SENIOR_TRANCHE';

export type LayerKind = DefaulterLayerKind | TrancheKind;

/**
 * SPEC §5 default order: defaulter's collateral on the defaulted contracts, its other collateral
 * and default-fund contribution, then the junior (first-loss) tranche, then the senior tranche.
 */
export const DEFAULT_WATERFALL_ORDER: readonly LayerKind[] = [
  'DEFAULTER_CONTRACT_COLLATERAL',
  'DEFAULTER_OTHER_COLLATERAL',
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
    case 'DEFAULTER_OTHER_COLLATERAL':
      return false;
    default: {
      const _exhaustive: never = kind;
      return _exhaustive;
    }
  }
}
