import { LedgerSourceEvent } from './source-events';

/**
 * What the ledger remembers from events that move no money, to book the ones that do: the currency
 * of a pool or a default (some settlement events carry none), who defaulted in a default, which
 * contracts it closed out, which contract a coverage protects (contract and party scopes).
 */
export interface ContractFacts {
  readonly currency: string;
  readonly longPartyId: string;
  readonly shortPartyId: string;
}

export interface CoverageFacts {
  readonly contractId: string;
  readonly protectedPartyId: string;
  readonly counterpartyId: string;
  readonly currency: string;
}

export interface DefaultFacts {
  readonly defaultId: string;
  readonly defaulter: string;
  readonly currency: string;
  /** Contracts closed out in this default, in close-out order (the first waterfall layer's collateral). */
  readonly closedOut: string[];
}

export class LedgerFacts {
  readonly parties = new Map<string, { readonly role: string }>();
  readonly contracts = new Map<string, ContractFacts>();
  readonly coverages = new Map<string, CoverageFacts>();
  readonly pools = new Map<string, { readonly currency: string }>();
  readonly defaults = new Map<string, DefaultFacts>();
  /** Contracts a default closed out: their collateral no longer matches intake's balance. */
  readonly closedOutContracts = new Set<string>();

  /** Called after an event's postings are booked (never throws: a fact it cannot read is skipped). */
  learn(event: LedgerSourceEvent): void {
    switch (event.type) {
      case 'PartyRegistered':
        this.parties.set(event.data.partyId, { role: event.data.role });
        return;
      case 'ContractRegistered':
        this.contracts.set(event.data.contractId, {
          currency: event.data.currency,
          longPartyId: event.data.longPartyId,
          shortPartyId: event.data.shortPartyId,
        });
        return;
      case 'CoverageBound':
        this.coverages.set(event.data.coverageId, {
          contractId: event.data.contractId,
          protectedPartyId: event.data.protectedPartyId,
          counterpartyId: event.data.counterpartyId,
          currency: event.data.currency,
        });
        return;
      case 'CapitalDeposited':
        if (!this.pools.has(event.data.poolId)) this.pools.set(event.data.poolId, { currency: event.data.currency });
        return;
      case 'DefaultDeclared':
        if (!this.defaults.has(event.data.defaultId)) {
          this.defaults.set(event.data.defaultId, { defaultId: event.data.defaultId, defaulter: event.data.partyId, currency: event.data.currency, closedOut: [] });
        }
        return;
      case 'ContractClosedOut': {
        const facts = this.defaults.get(event.data.defaultId);
        if (!facts) return;
        if (!facts.closedOut.includes(event.data.contractId)) facts.closedOut.push(event.data.contractId);
        this.closedOutContracts.add(event.data.contractId);
        return;
      }
      default:
        return;
    }
  }

  /** The parties a coverage-keyed or default-keyed account belongs to (party scope). */
  partiesOfCoverage(coverageId: string): readonly string[] {
    const c = this.coverages.get(coverageId);
    return c ? [c.protectedPartyId] : [];
  }

  defaulterOf(defaultId: string): string | undefined {
    return this.defaults.get(defaultId)?.defaulter;
  }
}
