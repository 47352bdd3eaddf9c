/**
 * What this service knows of the other services' facts: contracts and collateral (intake),
 * coverages (pricing), marks, funding and settlements (margin). A pure projection: fed events in
 * store order, it answers "which contracts does a defaulter hold, who is protected, by how much"
 * (close-out) and "what would each counterparty's default cost the pool" (Cover 2).
 *
 * Events carry their stream and revision; an event at or below a stream's last applied revision
 * is ignored, so the same book can be fed from a store read and from a subscription without
 * counting anything twice.
 */
import { ContractSpec, contractTerms } from '@backstop/contracts';
import { currencyOf, fromMinor, maxBig, minorToFloat, ms, otherSide, Side, toMinor } from '@backstop/kernel';
import type { CounterpartyExposure, StressCoverage, StressMarket } from '@backstop/margin-model';
import type { CloseOutMark, DefaultedContract } from './close-out';
import type {
  CoverageBoundData,
  CoverageClosedData,
  CoverageLimitReducedData,
  FundingExchangedData,
  MarkRecordedData,
} from './upstream';

export interface BookEvent {
  readonly type: string;
  readonly data: Record<string, unknown>;
  readonly stream?: string;
  readonly revision?: number;
}

export interface BookContract {
  readonly contractId: string;
  readonly spec: ContractSpec;
  readonly status: 'OPEN' | 'CLOSED' | 'SETTLED';
  readonly scale: number;
  /** The side's collateral as intake last reported it (its `balance`). */
  readonly intakeCollateral: Record<Side, bigint>;
  /** Funding moved between the sides since (margin-monitor's FundingExchanged). */
  readonly fundingAdjust: Record<Side, bigint>;
}

export interface BookCoverage {
  readonly coverageId: string;
  readonly contractId: string;
  readonly protectedPartyId: string;
  readonly counterpartyId: string;
  readonly currency: string;
  readonly limitMinor: bigint;
  readonly startMs: number;
  readonly endMs: number;
  readonly status: 'ACTIVE' | 'ENDED' | 'LAPSED';
}

export interface BookMark {
  readonly price: string;
  readonly volAnnual?: string;
  readonly at: string;
}

/** Upper bound on what one book holds (TigerBeetle habit: a limit on everything). */
export const BOOK_ENTITIES_MAX = 1_000_000;

export class ExposureBook {
  private readonly contracts = new Map<string, BookContract>();
  private readonly coverages = new Map<string, BookCoverage>();
  private readonly marks = new Map<string, BookMark>();
  private readonly vols = new Map<string, string>();
  private readonly applied = new Map<string, number>();

  /** Applies one event; returns false when it was not for the book or already applied. */
  apply(event: BookEvent): boolean {
    if (event.stream !== undefined && event.revision !== undefined) {
      const last = this.applied.get(event.stream);
      if (last !== undefined && event.revision <= last) return false;
    }
    const used = this.applyData(event.type, event.data);
    if (used && event.stream !== undefined && event.revision !== undefined) this.applied.set(event.stream, event.revision);
    return used;
  }

  private applyData(type: string, data: Record<string, unknown>): boolean {
    switch (type) {
      case 'ContractRegistered': {
        const { contractId, at: _at, ...spec } = data as unknown as ContractSpec & { contractId: string; at: string };
        this.guardSize();
        this.contracts.set(contractId, {
          contractId,
          spec,
          status: 'OPEN',
          scale: currencyOf(spec.currency).scale,
          intakeCollateral: { LONG: 0n, SHORT: 0n },
          fundingAdjust: { LONG: 0n, SHORT: 0n },
        });
        return true;
      }
      case 'CollateralDeposited':
      case 'CollateralWithdrawn': {
        const d = data as { contractId: string; side: Side; balance: string };
        return this.updateContract(d.contractId, (c) => ({ ...c, intakeCollateral: { ...c.intakeCollateral, [d.side]: toMinor(d.balance, c.scale) } }));
      }
      case 'ContractClosed':
        return this.updateContract((data as { contractId: string }).contractId, (c) => ({ ...c, status: 'CLOSED' }));
      case 'ContractSettled':
        return this.updateContract((data as { contractId: string }).contractId, (c) => ({ ...c, status: 'SETTLED' }));
      case 'FundingExchanged': {
        const d = data as unknown as FundingExchangedData;
        return this.updateContract(d.contractId, (c) => {
          const payer = sideOf(c.spec, d.payerPartyId);
          if (!payer) return c;
          const amount = toMinor(d.amount, c.scale);
          const adjust = { ...c.fundingAdjust };
          adjust[payer] -= amount;
          adjust[otherSide(payer)] += amount;
          return { ...c, fundingAdjust: adjust };
        });
      }
      case 'CoverageBound': {
        const d = data as unknown as CoverageBoundData;
        this.guardSize();
        this.coverages.set(d.coverageId, {
          coverageId: d.coverageId,
          contractId: d.contractId,
          protectedPartyId: d.protectedPartyId,
          counterpartyId: d.counterpartyId,
          currency: d.currency,
          limitMinor: toMinor(d.coverageLimit, currencyOf(d.currency).scale),
          startMs: ms(d.start),
          endMs: ms(d.end),
          status: 'ACTIVE',
        });
        return true;
      }
      case 'CoverageLimitReduced': {
        // The cut limit caps the pool's loss from now on: in a close-out and in the Cover-2 stress.
        const d = data as unknown as CoverageLimitReducedData;
        return this.updateCoverage(d.coverageId, (c) => ({ ...c, limitMinor: toMinor(d.newLimit, currencyOf(c.currency).scale) }));
      }
      case 'CoverageEnded':
        return this.updateCoverage((data as unknown as CoverageClosedData).coverageId, (c) => ({ ...c, status: 'ENDED' }));
      case 'CoverageLapsed':
        return this.updateCoverage((data as unknown as CoverageClosedData).coverageId, (c) => ({ ...c, status: 'LAPSED' }));
      case 'MarkRecorded': {
        const d = data as unknown as MarkRecordedData;
        // An insane mark (jump, stale) is not a price to close out or stress at (SPEC §4 mark sanity).
        if (d.sane !== true) return true;
        // A zero (or absent) vol is "unknown" (one meaning in margin, pricing and settlement): the
        // last real one stays, else the configured default vol is used.
        const realVol = d.volAnnual !== undefined && Number(d.volAnnual) > 0 && Number.isFinite(Number(d.volAnnual));
        this.marks.set(d.underlying, { price: d.price, ...(realVol ? { volAnnual: d.volAnnual } : {}), at: d.at });
        if (realVol) this.vols.set(d.underlying, d.volAnnual as string);
        return true;
      }
      default:
        return false;
    }
  }

  private guardSize(): void {
    if (this.contracts.size + this.coverages.size >= BOOK_ENTITIES_MAX) throw new RangeError(`exposure book holds ${BOOK_ENTITIES_MAX} entities; raise the limit deliberately`);
  }

  private updateContract(contractId: string, update: (c: BookContract) => BookContract): boolean {
    const contract = this.contracts.get(contractId);
    if (!contract) return false;
    this.contracts.set(contractId, update(contract));
    return true;
  }

  private updateCoverage(coverageId: string, update: (c: BookCoverage) => BookCoverage): boolean {
    const coverage = this.coverages.get(coverageId);
    if (!coverage) return false;
    this.coverages.set(coverageId, update(coverage));
    return true;
  }

  contract(contractId: string): BookContract | undefined {
    return this.contracts.get(contractId);
  }

  /** The collateral a side holds now: intake's balance plus funding received, never below zero. */
  collateralOf(contract: BookContract, side: Side): bigint {
    return maxBig(0n, contract.intakeCollateral[side] + contract.fundingAdjust[side]);
  }

  /** Coverages in force at `atMs`: bound, not ended or lapsed, inside their term, with a limit left. */
  activeCoverages(atMs: number): BookCoverage[] {
    return [...this.coverages.values()]
      .filter((c) => c.status === 'ACTIVE' && c.startMs <= atMs && atMs < c.endMs && c.limitMinor > 0n)
      .sort((a, b) => (a.coverageId < b.coverageId ? -1 : 1));
  }

  /** Every open contract of the defaulter, with who is protected and by which coverages. */
  defaultedContracts(partyId: string, atIso: string): DefaultedContract[] {
    const atMs = ms(atIso);
    const coverages = this.activeCoverages(atMs).filter((c) => c.counterpartyId === partyId);
    return [...this.contracts.values()]
      .filter((c) => c.status === 'OPEN' && (c.spec.longPartyId === partyId || c.spec.shortPartyId === partyId))
      .sort((a, b) => (a.contractId < b.contractId ? -1 : 1))
      .map((c) => {
        const defaulterSide: Side = c.spec.longPartyId === partyId ? 'LONG' : 'SHORT';
        const protectedPartyId = defaulterSide === 'LONG' ? c.spec.shortPartyId : c.spec.longPartyId;
        return {
          contractId: c.contractId,
          spec: c.spec,
          defaulterSide,
          protectedPartyId,
          defaulterCollateral: fromMinor(this.collateralOf(c, defaulterSide), c.scale),
          coverages: coverages
            .filter((cv) => cv.contractId === c.contractId && cv.protectedPartyId === protectedPartyId && cv.currency === c.spec.currency)
            .map((cv) => ({ coverageId: cv.coverageId, limit: fromMinor(cv.limitMinor, c.scale) })),
        };
      });
  }

  /**
   * Who is protected against `partyId` now (SPEC §3.8), with the limit left on its open contracts
   * in `currency`, by protected party: the cap on what the pool may advance for `partyId`.
   */
  protectionsAgainst(partyId: string, atIso: string, currency: string): { partyId: string; coverageLimit: string }[] {
    const scale = currencyOf(currency).scale;
    const limits = new Map<string, bigint>();
    for (const coverage of this.activeCoverages(ms(atIso))) {
      if (coverage.counterpartyId !== partyId || coverage.currency !== currency) continue;
      const contract = this.contracts.get(coverage.contractId);
      if (!contract || contract.status !== 'OPEN' || contract.spec.currency !== currency) continue;
      const protectedSide = sideOf(contract.spec, coverage.protectedPartyId);
      if (!protectedSide || sideOf(contract.spec, partyId) !== otherSide(protectedSide)) continue;
      limits.set(coverage.protectedPartyId, (limits.get(coverage.protectedPartyId) ?? 0n) + coverage.limitMinor);
    }
    return [...limits].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, limit]) => ({ partyId: id, coverageLimit: fromMinor(limit, scale) }));
  }

  /**
   * The close-out marks: an operator's close-out price first (SPEC §3.9), then the trigger's
   * accepted marks at the default instant, then the last sane mark this book saw, then (no mark at
   * all) a contract's own price — entry price, or strike for an option — flagged as
   * CONTRACT_FALLBACK in the close-out event so an auditor sees it.
   */
  closeOutMarks(
    contracts: readonly DefaultedContract[],
    triggerMarks: Readonly<Record<string, string>>,
    defaultVolAnnual: number,
    operatorPrices: Readonly<Record<string, string>> = {},
  ): Record<string, CloseOutMark> {
    const marks: Record<string, CloseOutMark> = {};
    for (const contract of contracts) {
      const u = contract.spec.underlying;
      if (marks[u]) continue;
      const vol = this.vols.get(u) ?? String(defaultVolAnnual);
      const fromTrigger = Object.prototype.hasOwnProperty.call(triggerMarks, u) ? triggerMarks[u] : undefined;
      const known = this.marks.get(u);
      const fromOperator = Object.prototype.hasOwnProperty.call(operatorPrices, u) ? operatorPrices[u] : undefined;
      if (fromOperator !== undefined) marks[u] = { price: fromOperator, source: 'OPERATOR', volAnnual: vol };
      else if (fromTrigger !== undefined) marks[u] = { price: fromTrigger, source: 'TRIGGER', volAnnual: vol };
      else if (known) marks[u] = { price: known.price, source: 'LAST_SANE_MARK', volAnnual: vol };
      else marks[u] = { price: fallbackPrice(contract.spec), source: 'CONTRACT_FALLBACK', volAnnual: vol };
    }
    return marks;
  }

  /**
   * Cover-2 input: one exposure per counterparty with coverages in force in the pool's currency.
   * Its collateral is what it holds on the covered contracts plus what the pool advanced for it
   * (that advance pays before the tranches in the waterfall).
   */
  counterpartyExposures(atIso: string, currency: string, advances: ReadonlyMap<string, bigint>): CounterpartyExposure[] {
    const scale = currencyOf(currency).scale;
    const byCounterparty = new Map<string, { coverages: StressCoverage[]; contracts: Set<string> }>();
    for (const coverage of this.activeCoverages(ms(atIso))) {
      const contract = this.contracts.get(coverage.contractId);
      if (!contract || contract.status !== 'OPEN' || coverage.currency !== currency || contract.spec.currency !== currency) continue;
      const protectedSide = sideOf(contract.spec, coverage.protectedPartyId);
      if (!protectedSide || sideOf(contract.spec, coverage.counterpartyId) !== otherSide(protectedSide)) continue;
      const entry = byCounterparty.get(coverage.counterpartyId) ?? { coverages: [], contracts: new Set<string>() };
      entry.coverages.push({ terms: contractTerms(contract.spec), protectedSide, coverageLimit: minorToFloat(coverage.limitMinor, scale) });
      entry.contracts.add(contract.contractId);
      byCounterparty.set(coverage.counterpartyId, entry);
    }
    return [...byCounterparty]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([counterpartyId, entry]) => {
        let collateralMinor = advances.get(counterpartyId) ?? 0n;
        for (const contractId of entry.contracts) {
          const contract = this.contracts.get(contractId)!;
          collateralMinor += this.collateralOf(contract, sideOf(contract.spec, counterpartyId)!);
        }
        return { counterpartyId, collateral: minorToFloat(collateralMinor, scale), coverages: entry.coverages };
      });
  }

  /** Marks and vols for the stress: last sane mark, else a covered contract's own price; default vol when none seen. */
  stressMarket(atIso: string, exposures: readonly CounterpartyExposure[], defaultVolAnnual: number): StressMarket {
    const underlyings: Record<string, { mark: number; volAnnual: number }> = {};
    for (const exposure of exposures) {
      for (const coverage of exposure.coverages) {
        const u = coverage.terms.underlying;
        if (underlyings[u]) continue;
        const known = this.marks.get(u);
        const mark = known ? Number(known.price) : coverage.terms.kind === 'OPTION' ? coverage.terms.strike! : coverage.terms.entryPrice;
        const vol = this.vols.get(u);
        underlyings[u] = { mark, volAnnual: vol !== undefined ? Number(vol) : defaultVolAnnual };
      }
    }
    return { nowMs: ms(atIso), underlyings };
  }

  lastMarks(): Record<string, BookMark> {
    return Object.fromEntries([...this.marks].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  coverageCount(atIso: string): number {
    return this.activeCoverages(ms(atIso)).length;
  }
}

function sideOf(spec: ContractSpec, partyId: string): Side | undefined {
  if (spec.longPartyId === partyId) return 'LONG';
  if (spec.shortPartyId === partyId) return 'SHORT';
  return undefined;
}

function fallbackPrice(spec: ContractSpec): string {
  return spec.kind === 'OPTION' && spec.strike !== undefined ? spec.strike : spec.entryPrice;
}
