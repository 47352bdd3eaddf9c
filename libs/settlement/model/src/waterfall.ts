/**
 * Default waterfall (SPEC §5; SPEC §3 step 9): who pays a defaulter's losses, in which order, how much.
 *
 * Interpretation:
 * - The defaulter's own layers pay toward each protected party's WHOLE remaining loss; coverage
 *   limits do not apply to them, because that money is owed by the defaulter regardless of any
 *   protection bought.
 * - A tranche pays a party only min(remaining loss, remaining coverage limit): the limit caps what
 *   the POOL pays (across all tranches together), not what the party recovers in total. So a party
 *   with loss 150, limit 100 and 60 from the defaulter gets 90 from the pool.
 * - The pool's margin advance (POOL_MARGIN_ADVANCE, SPEC §3.8) is pool money too: it pays only the
 *   parties it is earmarked for, each at most its earmark, within its coverage limit, and what it
 *   pays counts against that limit. An unprotected claimant never receives any of it.
 * - Each layer takes exactly min(available, what it may pay), never more; it is split across the
 *   parties pro rata by what each is still owed within that layer's reach, and within a tranche
 *   pro rata by provider balance (allocateProRata: exact, no provider beyond its balance).
 * - Layers are pooled resources: contract-specific attribution of collateral, if wanted, is done
 *   by the caller before (e.g. by netting it into the loss).
 * - Whatever stays unpaid is each party's claim on the defaulter's estate (SPEC §5 step 5); the part
 *   of it the coverage would have paid, had the pool had funds, is the loss allocation
 *   (`unpaidWithinLimitMinor`), the rest lies beyond the party's limit.
 */
import { allocateProRata, invariant, minBig } from '@backstop/kernel';
import { requireNonNegative, requireUnique, sumMinor } from './amounts';
import { isPoolMoney, isTranche, LayerKind } from './layers';

export interface ProtectedLoss {
  readonly partyId: string;
  /** What the defaulter owes this party after close-out. */
  readonly lossMinor: bigint;
  /** What the pool may still pay this party under its coverage (the remaining limit). */
  readonly coverageLimitMinor: bigint;
}

export interface ProviderBalance {
  readonly providerId: string;
  readonly balanceMinor: bigint;
}

export interface WaterfallLayer {
  readonly kind: LayerKind;
  readonly availableMinor: bigint;
  /** Tranches only (required there): each provider's balance; they sum to `availableMinor`. */
  readonly providers?: readonly ProviderBalance[];
  /** POOL_MARGIN_ADVANCE only: who the advance was made for; they sum to `availableMinor`. */
  readonly earmarks?: readonly PartyAmount[];
}

export interface WaterfallInput {
  readonly losses: readonly ProtectedLoss[];
  /** In the order they pay (configurable; DEFAULT_WATERFALL_ORDER is SPEC §5's). Each kind at most once. */
  readonly layers: readonly WaterfallLayer[];
}

export interface PartyAmount {
  readonly partyId: string;
  readonly amountMinor: bigint;
}

export interface ProviderTake {
  readonly providerId: string;
  readonly balanceBeforeMinor: bigint;
  readonly takenMinor: bigint;
  readonly balanceAfterMinor: bigint;
}

export interface LayerOutcome {
  readonly kind: LayerKind;
  readonly availableMinor: bigint;
  readonly takenMinor: bigint;
  readonly remainingMinor: bigint;
  /** Where this layer's take went, in the order of the input losses. */
  readonly paidToParties: readonly PartyAmount[];
  /** Tranches only; empty for the defaulter's layers. */
  readonly providers: readonly ProviderTake[];
}

export interface PartyOutcome {
  readonly partyId: string;
  readonly lossMinor: bigint;
  readonly coverageLimitMinor: bigint;
  readonly fromDefaulterMinor: bigint;
  readonly fromPoolMinor: bigint;
  /** Claim left on the defaulter's estate. */
  readonly unpaidClaimMinor: bigint;
  /** Part of the unpaid claim within the coverage limit: the pool ran out (loss allocation). */
  readonly unpaidWithinLimitMinor: bigint;
}

export interface WaterfallResult {
  readonly layers: readonly LayerOutcome[];
  readonly parties: readonly PartyOutcome[];
  readonly totalLossMinor: bigint;
  readonly defaulterPaidMinor: bigint;
  readonly poolPaidMinor: bigint;
  readonly unpaidMinor: bigint;
}

/** What is still owed to one party while the waterfall runs. */
interface PartyPosition {
  readonly remainingLossMinor: bigint;
  readonly poolCoverLeftMinor: bigint;
  readonly fromDefaulterMinor: bigint;
  readonly fromPoolMinor: bigint;
}

export function runWaterfall(input: WaterfallInput): WaterfallResult {
  validateWaterfallInput(input);
  let positions: readonly PartyPosition[] = input.losses.map((loss) => ({
    remainingLossMinor: loss.lossMinor,
    poolCoverLeftMinor: loss.coverageLimitMinor,
    fromDefaulterMinor: 0n,
    fromPoolMinor: 0n,
  }));
  const layers: LayerOutcome[] = [];
  for (const layer of input.layers) {
    const paid = payFromLayer(layer, positions, input.losses);
    positions = positions.map((position, i) => applyPayment(position, isPoolMoney(layer.kind), paid[i]));
    layers.push(layerOutcome(layer, input.losses, paid));
  }
  const result = summarize(input.losses, layers, positions);
  checkWaterfallInvariants(result);
  return result;
}

/** Pool money may pay only within the coverage (an advance only its earmark); the defaulter's money pays the whole loss. */
function reachOf(layer: WaterfallLayer, position: PartyPosition, partyId: string): bigint {
  if (!isPoolMoney(layer.kind)) return position.remainingLossMinor;
  const withinLimit = minBig(position.remainingLossMinor, position.poolCoverLeftMinor);
  if (isTranche(layer.kind)) return withinLimit;
  const earmark = (layer.earmarks ?? []).filter((e) => e.partyId === partyId).reduce((s, e) => s + e.amountMinor, 0n);
  return minBig(withinLimit, earmark);
}

/** Exactly the shortfall within reach, capped by what the layer has; split pro rata by reach. */
function payFromLayer(layer: WaterfallLayer, positions: readonly PartyPosition[], losses: readonly ProtectedLoss[]): bigint[] {
  const reach = positions.map((position, i) => reachOf(layer, position, losses[i].partyId));
  const takenMinor = minBig(layer.availableMinor, sumMinor(reach));
  const paid = allocateProRata(takenMinor, reach);
  paid.forEach((amount, i) => invariant(amount <= reach[i], `${layer.kind} paid a party beyond its shortfall`));
  return paid;
}

function applyPayment(position: PartyPosition, fromPool: boolean, amountMinor: bigint): PartyPosition {
  return {
    remainingLossMinor: position.remainingLossMinor - amountMinor,
    poolCoverLeftMinor: fromPool ? position.poolCoverLeftMinor - amountMinor : position.poolCoverLeftMinor,
    fromDefaulterMinor: fromPool ? position.fromDefaulterMinor : position.fromDefaulterMinor + amountMinor,
    fromPoolMinor: fromPool ? position.fromPoolMinor + amountMinor : position.fromPoolMinor,
  };
}

function layerOutcome(layer: WaterfallLayer, losses: readonly ProtectedLoss[], paid: readonly bigint[]): LayerOutcome {
  const takenMinor = sumMinor(paid);
  return {
    kind: layer.kind,
    availableMinor: layer.availableMinor,
    takenMinor,
    remainingMinor: layer.availableMinor - takenMinor,
    paidToParties: losses.map((loss, i) => ({ partyId: loss.partyId, amountMinor: paid[i] })),
    providers: isTranche(layer.kind) ? takeFromProviders(layer.providers ?? [], takenMinor) : [],
  };
}

/** Within a tranche, losses are shared pro rata by each provider's balance (SPEC §5). */
function takeFromProviders(providers: readonly ProviderBalance[], takenMinor: bigint): ProviderTake[] {
  const takes = allocateProRata(takenMinor, providers.map((p) => p.balanceMinor));
  return providers.map((provider, i) => {
    const balanceAfterMinor = provider.balanceMinor - takes[i];
    invariant(balanceAfterMinor >= 0n, `provider ${provider.providerId} would go negative`);
    return { providerId: provider.providerId, balanceBeforeMinor: provider.balanceMinor, takenMinor: takes[i], balanceAfterMinor };
  });
}

function summarize(
  losses: readonly ProtectedLoss[],
  layers: readonly LayerOutcome[],
  positions: readonly PartyPosition[],
): WaterfallResult {
  const parties = losses.map((loss, i): PartyOutcome => ({
    partyId: loss.partyId,
    lossMinor: loss.lossMinor,
    coverageLimitMinor: loss.coverageLimitMinor,
    fromDefaulterMinor: positions[i].fromDefaulterMinor,
    fromPoolMinor: positions[i].fromPoolMinor,
    unpaidClaimMinor: positions[i].remainingLossMinor,
    unpaidWithinLimitMinor: minBig(positions[i].remainingLossMinor, positions[i].poolCoverLeftMinor),
  }));
  return {
    layers,
    parties,
    totalLossMinor: sumMinor(losses.map((l) => l.lossMinor)),
    defaulterPaidMinor: sumMinor(parties.map((p) => p.fromDefaulterMinor)),
    poolPaidMinor: sumMinor(parties.map((p) => p.fromPoolMinor)),
    unpaidMinor: sumMinor(parties.map((p) => p.unpaidClaimMinor)),
  };
}

/** Asserted in code, not only in tests (STYLE: TigerBeetle's habits). */
function checkWaterfallInvariants(result: WaterfallResult): void {
  const takenMinor = sumMinor(result.layers.map((l) => l.takenMinor));
  invariant(takenMinor + result.unpaidMinor === result.totalLossMinor, 'layer takes + unpaid must equal the total loss');
  invariant(takenMinor === result.defaulterPaidMinor + result.poolPaidMinor, 'layer takes must equal what the parties received');
  for (const party of result.parties) {
    invariant(party.fromPoolMinor <= party.coverageLimitMinor, `pool paid ${party.partyId} beyond its coverage limit`);
    invariant(party.unpaidClaimMinor >= 0n, `${party.partyId} was paid more than its loss`);
  }
  for (const layer of result.layers) {
    invariant(layer.remainingMinor >= 0n, `${layer.kind} went negative`);
    if (isTranche(layer.kind)) {
      const providersTakenMinor = sumMinor(layer.providers.map((p) => p.takenMinor));
      invariant(providersTakenMinor === layer.takenMinor, `${layer.kind} provider takes must sum to the layer take`);
    }
  }
}

function validateWaterfallInput(input: WaterfallInput): void {
  requireUnique(input.losses.map((l) => l.partyId), 'partyId');
  requireUnique(input.layers.map((l) => l.kind), 'layer kind');
  for (const loss of input.losses) {
    requireNonNegative(loss.lossMinor, `loss of ${loss.partyId}`);
    requireNonNegative(loss.coverageLimitMinor, `coverage limit of ${loss.partyId}`);
  }
  input.layers.forEach(validateLayer);
}

function validateLayer(layer: WaterfallLayer): void {
  requireNonNegative(layer.availableMinor, `${layer.kind} available amount`);
  if (layer.earmarks !== undefined) {
    if (layer.kind !== 'POOL_MARGIN_ADVANCE') throw new RangeError(`${layer.kind} is not earmarked: only POOL_MARGIN_ADVANCE is`);
    requireUnique(layer.earmarks.map((e) => e.partyId), `${layer.kind} earmark partyId`);
    layer.earmarks.forEach((e) => requireNonNegative(e.amountMinor, `${layer.kind} earmark of ${e.partyId}`));
    const earmarkedMinor = sumMinor(layer.earmarks.map((e) => e.amountMinor));
    if (earmarkedMinor !== layer.availableMinor) throw new RangeError(`${layer.kind} earmarks sum to ${earmarkedMinor}, not its available ${layer.availableMinor}`);
  }
  if (!isTranche(layer.kind)) {
    if (layer.providers !== undefined) throw new RangeError(`${layer.kind} is the defaulter's: it has no providers`);
    return;
  }
  const providers = layer.providers ?? [];
  requireUnique(providers.map((p) => p.providerId), `${layer.kind} providerId`);
  providers.forEach((p) => requireNonNegative(p.balanceMinor, `${layer.kind} balance of ${p.providerId}`));
  const balancesMinor = sumMinor(providers.map((p) => p.balanceMinor));
  if (balancesMinor !== layer.availableMinor) {
    const message = `${layer.kind} provider balances sum to ${balancesMinor}, not its available ${layer.availableMinor}`;
    throw new RangeError(message);
  }
}
