/**
 * Close-out of a defaulter's contracts (SPEC §3 step 9): every open contract is closed at the
 * close-out price — the last sane mark moved against the defaulter by a configurable liquidation
 * cost per instrument (margin model's closeOutPrice) — and what the defaulter then owes each
 * protected party is the loss that runs down the waterfall.
 *
 * - Linear contracts close at closeOutPrice(mark); an option at closeOutPrice(its Black-76 value at
 *   the mark and the last known vol), as the margin model prescribes for options.
 * - Close-out netting (ISDA 2002 §6(e) style): a party's contracts with the defaulter are netted
 *   before the waterfall; a party that nets to owing the defaulter has no loss (what it owes is the
 *   estate's business, not the pool's).
 * - Amounts: the float close-out value becomes minor units here, rounded DOWN (floor), so a loss
 *   owed never rounds up against the pool (SPEC §2) — after shedding binary noise below 1/1000 of
 *   a minor unit ((70000·1.005 − 60000)·2 is 20699.99999999997 in doubles, and is owed as 20700).
 * - Only contracts in the pool's currency are settled here; others are listed as excluded.
 */
import { ContractSpec, contractTerms } from '@backstop/contracts';
import { currencyOf, floatToMinor, fromMinor, InstrumentKind, maxBig, ms, otherSide, Side, toMinor } from '@backstop/kernel';
import { closeOutPrice, markToMarket, optionValue, sideSign } from '@backstop/margin-model';

/** Liquidation cost as a fraction of the price, by instrument kind, with optional `UNDERLYING:KIND` overrides. */
export interface LiquidationCosts {
  readonly byKind: Readonly<Record<InstrumentKind, number>>;
  readonly overrides?: Readonly<Record<string, number>>;
}

export const DEFAULT_LIQUIDATION_COSTS: LiquidationCosts = {
  byKind: { PERPETUAL: 0.005, FUTURE: 0.0075, OPTION: 0.02 },
};

export function liquidationCostFor(costs: LiquidationCosts, kind: InstrumentKind, underlying: string): number {
  const override = costs.overrides?.[`${underlying}:${kind}`];
  return override ?? costs.byKind[kind];
}

/** OPERATOR: the price an operator's DeclareDefault gave; TRIGGER: the accepted mark at the default instant. */
export type MarkSource = 'OPERATOR' | 'TRIGGER' | 'LAST_SANE_MARK' | 'CONTRACT_FALLBACK';

export interface CloseOutMark {
  /** Decimal string. */
  readonly price: string;
  readonly source: MarkSource;
  /** Decimal string; options need it. */
  readonly volAnnual?: string;
}

export interface CoverageOnContract {
  readonly coverageId: string;
  /** The pool's remaining limit for this coverage (decimal string, pool currency). */
  readonly limit: string;
}

/** One open contract of the defaulter, as the book knew it when the default was triggered. */
export interface DefaultedContract {
  readonly contractId: string;
  readonly spec: ContractSpec;
  readonly defaulterSide: Side;
  readonly protectedPartyId: string;
  /** The defaulter's collateral on this contract (decimal string, contract currency). */
  readonly defaulterCollateral: string;
  readonly coverages: readonly CoverageOnContract[];
}

export interface ContractClosedOutData {
  defaultId: string;
  contractId: string;
  kind: InstrumentKind;
  underlying: string;
  defaulterPartyId: string;
  defaulterSide: Side;
  protectedPartyId: string;
  size: string;
  entryPrice: string;
  mark: string;
  markSource: MarkSource;
  volAnnual?: string;
  liquidationCostFraction: string;
  /** The close-out price per unit (the option's value per unit for an OPTION). */
  closeOutPrice: string;
  /** Signed value to the protected party at the close-out price (> 0: the defaulter owes it). */
  closeOutValue: string;
  lossOwed: string;
  defaulterCollateral: string;
  coverageIds: string[];
  currency: string;
  at: string;
}

export interface AssessedParty {
  partyId: string;
  contractIds: string[];
  /** Σ close-out values of its contracts with the defaulter (close-out netting). */
  netValue: string;
  lossOwed: string;
  /** Σ remaining limits of its coverages against the defaulter on these contracts. */
  coverageLimit: string;
  coverages: { coverageId: string; limit: string }[];
}

export interface LossesAssessedData {
  defaultId: string;
  partyId: string;
  currency: string;
  /** Layer 1 of the waterfall: the defaulter's collateral on the closed-out contracts. */
  contractCollateral: string;
  parties: AssessedParty[];
  excludedContracts: { contractId: string; reason: string }[];
  at: string;
}

export interface CloseOutInput {
  readonly defaultId: string;
  readonly partyId: string;
  readonly currency: string;
  readonly contracts: readonly DefaultedContract[];
  readonly marks: Readonly<Record<string, CloseOutMark>>;
  readonly costs: LiquidationCosts;
  /** The instant of valuation (the default declaration) and of the events. */
  readonly valuedAt: string;
  readonly at: string;
}

export interface CloseOutResult {
  readonly closeOuts: ContractClosedOutData[];
  readonly assessment: LossesAssessedData;
}

const PRICE_DIGITS = 8;

/** A double as a plain decimal string (no exponent), at most 8 fraction digits. */
export function formatPrice(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`price ${value} is not finite`);
  const text = value.toFixed(PRICE_DIGITS);
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

export function closeOutContracts(input: CloseOutInput): CloseOutResult {
  const scale = currencyOf(input.currency).scale;
  const nowMs = ms(input.valuedAt);
  const closeOuts: ContractClosedOutData[] = [];
  const excluded: LossesAssessedData['excludedContracts'] = [];
  const sorted = [...input.contracts].sort((a, b) => (a.contractId < b.contractId ? -1 : a.contractId > b.contractId ? 1 : 0));
  for (const contract of sorted) {
    if (contract.spec.currency !== input.currency) {
      excluded.push({ contractId: contract.contractId, reason: `settles in ${contract.spec.currency}, the pool in ${input.currency}` });
      continue;
    }
    const mark = input.marks[contract.spec.underlying];
    if (!mark) {
      excluded.push({ contractId: contract.contractId, reason: `no mark for ${contract.spec.underlying}` });
      continue;
    }
    closeOuts.push(closeOutOne(input, contract, mark, nowMs, scale));
  }
  return { closeOuts, assessment: assess(input, sorted, closeOuts, excluded, scale) };
}

function closeOutOne(input: CloseOutInput, contract: DefaultedContract, mark: CloseOutMark, nowMs: number, scale: number): ContractClosedOutData {
  const terms = contractTerms(contract.spec);
  const cost = liquidationCostFor(input.costs, terms.kind, terms.underlying);
  const markPrice = Number(mark.price);
  const vol = mark.volAnnual !== undefined ? Number(mark.volAnnual) : 0;
  const protectedSide = otherSide(contract.defaulterSide);
  let closePrice: number;
  let value: number;
  if (terms.kind === 'OPTION') {
    const perUnit = optionValue(terms.optionType!, terms.strike!, terms.expiryMs!, markPrice, vol, nowMs);
    closePrice = closeOutPrice(perUnit, contract.defaulterSide, cost);
    value = sideSign(protectedSide) * (closePrice - terms.entryPrice) * terms.size;
  } else {
    closePrice = closeOutPrice(markPrice, contract.defaulterSide, cost);
    value = markToMarket(terms, protectedSide, { mark: closePrice, volAnnual: vol, nowMs });
  }
  const valueMinor = floatToMinor(shedNoise(value, scale), scale, 'down');
  return {
    defaultId: input.defaultId,
    contractId: contract.contractId,
    kind: terms.kind,
    underlying: terms.underlying,
    defaulterPartyId: input.partyId,
    defaulterSide: contract.defaulterSide,
    protectedPartyId: contract.protectedPartyId,
    size: contract.spec.size,
    entryPrice: contract.spec.entryPrice,
    mark: mark.price,
    markSource: mark.source,
    ...(terms.kind === 'OPTION' ? { volAnnual: mark.volAnnual ?? '0' } : {}),
    liquidationCostFraction: String(cost),
    closeOutPrice: formatPrice(closePrice),
    closeOutValue: fromMinor(valueMinor, scale),
    lossOwed: fromMinor(maxBig(0n, valueMinor), scale),
    defaulterCollateral: fromMinor(toMinor(contract.defaulterCollateral, scale), scale),
    coverageIds: contract.coverages.map((c) => c.coverageId),
    currency: input.currency,
    at: input.at,
  };
}

/** Rounds to 1/1000 of a minor unit first, so binary noise does not cost a whole minor unit. */
function shedNoise(value: number, scale: number): number {
  return Number(value.toFixed(scale + 3));
}

function assess(
  input: CloseOutInput,
  contracts: readonly DefaultedContract[],
  closeOuts: readonly ContractClosedOutData[],
  excluded: LossesAssessedData['excludedContracts'],
  scale: number,
): LossesAssessedData {
  const byParty = new Map<string, { contractIds: string[]; netMinor: bigint; coverages: Map<string, bigint> }>();
  let collateralMinor = 0n;
  const contractById = new Map(contracts.map((c) => [c.contractId, c]));
  for (const closeOut of closeOuts) {
    const contract = contractById.get(closeOut.contractId)!;
    collateralMinor += toMinor(closeOut.defaulterCollateral, scale);
    const entry = byParty.get(closeOut.protectedPartyId) ?? { contractIds: [], netMinor: 0n, coverages: new Map<string, bigint>() };
    entry.contractIds.push(closeOut.contractId);
    entry.netMinor += toMinor(closeOut.closeOutValue, scale);
    for (const coverage of contract.coverages) entry.coverages.set(coverage.coverageId, toMinor(coverage.limit, scale));
    byParty.set(closeOut.protectedPartyId, entry);
  }
  const parties = [...byParty]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([partyId, entry]): AssessedParty => {
      const coverages = [...entry.coverages].sort(([a], [b]) => (a < b ? -1 : 1));
      return {
        partyId,
        contractIds: entry.contractIds,
        netValue: fromMinor(entry.netMinor, scale),
        lossOwed: fromMinor(maxBig(0n, entry.netMinor), scale),
        coverageLimit: fromMinor(coverages.reduce((s, [, limit]) => s + limit, 0n), scale),
        coverages: coverages.map(([coverageId, limit]) => ({ coverageId, limit: fromMinor(limit, scale) })),
      };
    });
  return {
    defaultId: input.defaultId,
    partyId: input.partyId,
    currency: input.currency,
    contractCollateral: fromMinor(collateralMinor, scale),
    parties,
    excludedContracts: excluded,
    at: input.at,
  };
}
