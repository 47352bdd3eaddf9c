/**
 * Recovery (SPEC §3 step 10): money later recovered from the defaulter's estate flows back up the
 * waterfall in reverse order of loss absorption, as CCPs reimburse:
 *   1. the protected parties' unpaid claims (SPEC §5 step 5, the last to bear loss),
 *   2. the tranches in reverse waterfall order (by default senior, then junior),
 * pro rata within a layer by what each creditor is still owed, never more than a layer lost.
 * The defaulter's own layers are not creditors (that money was the defaulter's); whatever is left
 * after every creditor is whole is `surplus` and goes back to the defaulter's estate.
 * Recoveries can arrive in installments: feed each result's outstanding amounts into the next.
 */
import { allocateProRata, invariant, minBig } from '@backstop/kernel';
import { requireNonNegative, requireUnique, sumMinor } from './amounts';
import { isTranche, TrancheKind } from './layers';
import type { WaterfallResult } from './waterfall';

export type RecoveryLayerKind = 'UNPAID_CLAIMS' | TrancheKind;

/** A party (unpaid claims) or a provider (tranches) still owed part of what it lost. */
export interface Creditor {
  readonly creditorId: string;
  readonly outstandingMinor: bigint;
}

export interface RecoveryLayer {
  readonly kind: RecoveryLayerKind;
  readonly creditors: readonly Creditor[];
}

export interface RecoveryInput {
  readonly recoveredMinor: bigint;
  /** In repayment order (see recoveryLayersFromWaterfall); each kind at most once. */
  readonly layers: readonly RecoveryLayer[];
}

export interface CreditorRepayment {
  readonly creditorId: string;
  readonly outstandingBeforeMinor: bigint;
  readonly repaidMinor: bigint;
  readonly outstandingAfterMinor: bigint;
}

export interface RecoveryLayerOutcome {
  readonly kind: RecoveryLayerKind;
  readonly outstandingBeforeMinor: bigint;
  readonly repaidMinor: bigint;
  readonly outstandingAfterMinor: bigint;
  readonly creditors: readonly CreditorRepayment[];
}

export interface RecoveryResult {
  readonly recoveredMinor: bigint;
  readonly layers: readonly RecoveryLayerOutcome[];
  readonly repaidMinor: bigint;
  /** Back to the defaulter's estate: every creditor is whole. */
  readonly surplusMinor: bigint;
}

export function allocateRecovery(input: RecoveryInput): RecoveryResult {
  validateRecoveryInput(input);
  let leftMinor = input.recoveredMinor;
  const layers: RecoveryLayerOutcome[] = [];
  for (const layer of input.layers) {
    const outcome = repayLayer(layer, leftMinor);
    leftMinor -= outcome.repaidMinor;
    layers.push(outcome);
  }
  const result: RecoveryResult = {
    recoveredMinor: input.recoveredMinor,
    layers,
    repaidMinor: sumMinor(layers.map((l) => l.repaidMinor)),
    surplusMinor: leftMinor,
  };
  checkRecoveryInvariants(result);
  return result;
}

/** Exactly what the layer is owed, capped by what is left; pro rata by outstanding. */
function repayLayer(layer: RecoveryLayer, availableMinor: bigint): RecoveryLayerOutcome {
  const outstanding = layer.creditors.map((c) => c.outstandingMinor);
  const outstandingBeforeMinor = sumMinor(outstanding);
  const repaidMinor = minBig(availableMinor, outstandingBeforeMinor);
  const repaid = allocateProRata(repaidMinor, outstanding);
  const creditors = layer.creditors.map((creditor, i): CreditorRepayment => ({
    creditorId: creditor.creditorId,
    outstandingBeforeMinor: creditor.outstandingMinor,
    repaidMinor: repaid[i],
    outstandingAfterMinor: creditor.outstandingMinor - repaid[i],
  }));
  return { kind: layer.kind, outstandingBeforeMinor, repaidMinor, outstandingAfterMinor: outstandingBeforeMinor - repaidMinor, creditors };
}

/**
 * The creditors a waterfall leaves, in repayment order: unpaid claims first, then the tranches
 * in reverse of the order they paid. Creditors owed nothing are left out.
 */
export function recoveryLayersFromWaterfall(result: WaterfallResult): RecoveryLayer[] {
  const unpaid: RecoveryLayer = {
    kind: 'UNPAID_CLAIMS',
    creditors: result.parties.map((p) => ({ creditorId: p.partyId, outstandingMinor: p.unpaidClaimMinor })),
  };
  const tranches = [...result.layers].reverse().flatMap((layer): RecoveryLayer[] => {
    if (!isTranche(layer.kind)) return [];
    const creditors = layer.providers.map((p) => ({ creditorId: p.providerId, outstandingMinor: p.takenMinor }));
    return [{ kind: layer.kind, creditors }];
  });
  return [unpaid, ...tranches].map((layer) => ({ ...layer, creditors: layer.creditors.filter((c) => c.outstandingMinor > 0n) }));
}

/** The outstanding amounts after a recovery, ready for the next installment. */
export function outstandingAfter(result: RecoveryResult): RecoveryLayer[] {
  return result.layers.map((layer) => ({
    kind: layer.kind,
    creditors: layer.creditors.map((c) => ({ creditorId: c.creditorId, outstandingMinor: c.outstandingAfterMinor })),
  }));
}

function checkRecoveryInvariants(result: RecoveryResult): void {
  invariant(result.repaidMinor + result.surplusMinor === result.recoveredMinor, 'repaid + surplus must equal the recovery');
  invariant(result.surplusMinor >= 0n, 'surplus must not be negative');
  const owedAfterMinor = sumMinor(result.layers.map((l) => l.outstandingAfterMinor));
  invariant(result.surplusMinor === 0n || owedAfterMinor === 0n, 'no surplus while a creditor is still owed');
  for (const layer of result.layers) {
    const repaidMinor = sumMinor(layer.creditors.map((c) => c.repaidMinor));
    invariant(repaidMinor === layer.repaidMinor, `${layer.kind} repayments must sum to the layer's`);
    layer.creditors.forEach((c) => invariant(c.outstandingAfterMinor >= 0n, `${c.creditorId} repaid beyond what it lost`));
  }
}

function validateRecoveryInput(input: RecoveryInput): void {
  requireNonNegative(input.recoveredMinor, 'recovered amount');
  requireUnique(input.layers.map((l) => l.kind), 'recovery layer kind');
  for (const layer of input.layers) {
    requireUnique(layer.creditors.map((c) => c.creditorId), `${layer.kind} creditorId`);
    for (const creditor of layer.creditors) {
      requireNonNegative(creditor.outstandingMinor, `${layer.kind} outstanding of ${creditor.creditorId}`);
    }
  }
}
