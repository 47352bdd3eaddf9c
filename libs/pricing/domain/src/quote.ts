import { amountProblem, assertNever, currencyOf, DAY_MS, Decider, DomainEvent, fromMinor, iso, isSupportedCurrency, ms, reject, Side, toMinor, Violations } from '@backstop/kernel';
import { ContractFacts, counterpartyOf, CreditFacts, MarketFacts, sideOf } from './facts';
import { seedOf } from './numbers';
import { PricingPolicy } from './policy';
import { PoolBookFacts, PriceComponents, PricingBasis, pricingInputViolations, priceProtection } from './price';

/** A quote: protection of one side of a contract against the other side's default (SPEC §3 step 3). */
export interface QuoteIssuedData {
  readonly quoteId: string;
  readonly contractId: string;
  readonly underlying: string;
  readonly protectedPartyId: string;
  readonly protectedSide: Side;
  readonly counterpartyId: string;
  readonly currency: string;
  readonly coverageLimit: string;
  /** As requested. */
  readonly termDays: number;
  /** End of the priced term as of the quote: `at` + termDays, cut at a dated contract's expiry. */
  readonly termEnd: string;
  readonly validUntil: string;
  readonly premiumRateAnnual: string;
  readonly premiumPerInterval: string;
  readonly premiumTotal: string;
  readonly intervalHours: number;
  /** Stress capacity the coverage takes from the pool (Cover 2): a bind needs this much headroom. */
  readonly stressContribution: string;
  readonly basis: PricingBasis;
  readonly components: PriceComponents;
  readonly at: string;
}

export type QuoteEvent =
  | DomainEvent<'QuoteIssued', QuoteIssuedData>
  | DomainEvent<'QuoteBound', { quoteId: string; coverageId: string; at: string }>;

export interface RequestQuote {
  readonly type: 'RequestQuote';
  readonly quoteId: string;
  /** Undefined when intake has no such contract. */
  readonly contract?: ContractFacts;
  readonly protectedPartyId: string;
  readonly coverageLimit: string;
  readonly termDays: number;
  readonly market?: MarketFacts;
  /** The counterparty's credit (the service looks it up once it knows who the counterparty is). */
  readonly credit?: CreditFacts;
  /** The contract's parties in default at margin-monitor now (SPEC §3.9: no protection on them or against them). */
  readonly partiesInDefault?: readonly string[];
  /** The pool's open coverages (the service's capacity book): the capital charge is the marginal Cover-2 against them. */
  readonly book?: PoolBookFacts;
  readonly policy: PricingPolicy;
  readonly at: string;
}

export type QuoteCommand = RequestQuote | { readonly type: 'MarkQuoteBound'; readonly quoteId: string; readonly coverageId: string; readonly at: string };

export interface QuoteState {
  readonly status: 'NONE' | 'ISSUED' | 'BOUND';
  readonly quote?: QuoteIssuedData;
  readonly coverageId?: string;
}

export const quoteDecider: Decider<QuoteCommand, QuoteState, QuoteEvent> = {
  initialState: { status: 'NONE' },

  decide(command, state) {
    switch (command.type) {
      case 'RequestQuote':
        return [{ type: 'QuoteIssued', data: issueQuote(command, state) }];
      case 'MarkQuoteBound': {
        if (state.status === 'NONE') reject('quoteId', 'knownQuote', `quote ${command.quoteId} does not exist`);
        if (state.coverageId === command.coverageId) return [];
        if (state.status === 'BOUND') reject('quoteId', 'quoteBound', `quote ${command.quoteId} is already bound to coverage ${state.coverageId}`);
        return [{ type: 'QuoteBound', data: { quoteId: command.quoteId, coverageId: command.coverageId, at: command.at } }];
      }
      default:
        return assertNever(command, 'quote command');
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'QuoteIssued':
        return { status: 'ISSUED', quote: event.data };
      case 'QuoteBound':
        return { ...state, status: 'BOUND', coverageId: event.data.coverageId };
      default:
        return assertNever(event, 'quote event');
    }
  },
};

/** SPEC §3.9: from a default on, no coverage is quoted or bound on the defaulter's contracts or against it. */
export function defaultedPartyMessage(partyId: string, protectedPartyId: string, contractId: string): string {
  return partyId === protectedPartyId
    ? `party ${partyId} is in default: no coverage is quoted or bound on its contracts (contract ${contractId})`
    : `counterparty ${partyId} is in default: no coverage is quoted or bound against a party in default (contract ${contractId})`;
}

/** The quote's priced term in ms (from its issue). */
export function quoteTermMs(quote: QuoteIssuedData): number {
  return ms(quote.termEnd) - ms(quote.at);
}

function issueQuote(command: RequestQuote, state: QuoteState): QuoteIssuedData {
  if (state.status !== 'NONE') reject('quoteId', 'unique', `quote ${command.quoteId} already exists`);
  const { contract, policy } = command;
  if (!contract) return reject('contractId', 'knownContract', 'the contract is not registered');
  const atMs = ms(command.at);
  const v = new Violations();
  v.check(contract.status === 'OPEN', 'contractId', 'openContract', `contract ${contract.contractId} is ${contract.status}; only an open contract can be covered`);
  for (const partyId of command.partiesInDefault ?? []) v.add('contractId', 'notInDefault', defaultedPartyMessage(partyId, command.protectedPartyId, contract.contractId));
  const protectedSide = sideOf(contract, command.protectedPartyId);
  v.check(protectedSide !== undefined, 'protectedPartyId', 'contractParty', `party ${command.protectedPartyId} is not a side of contract ${contract.contractId}`);
  const scale = isSupportedCurrency(contract.currency) ? currencyOf(contract.currency).scale : 0;
  const limitProblem = amountProblem(command.coverageLimit, scale);
  v.check(limitProblem === undefined, 'coverageLimit', 'currencyScale', `coverageLimit ${limitProblem ?? ''} (${contract.currency})`);
  const limitMinor = limitProblem === undefined ? toMinor(command.coverageLimit, scale) : 0n;
  if (limitProblem === undefined) v.check(limitMinor > 0n, 'coverageLimit', 'positive', 'coverageLimit must be greater than 0');
  const termValid = Number.isInteger(command.termDays) && command.termDays >= 1 && command.termDays <= policy.termDaysMax;
  v.check(termValid, 'termDays', 'range', `termDays must be a whole number of days from 1 to ${policy.termDaysMax}`);
  const termEndMs = Math.min(atMs + command.termDays * DAY_MS, contract.expiry ? ms(contract.expiry) : Number.POSITIVE_INFINITY);
  if (contract.expiry && ms(contract.expiry) <= atMs) {
    v.add('contractId', 'expired', `contract ${contract.contractId} expired at ${contract.expiry}`);
  } else if (termValid && termEndMs - atMs < policy.intervalMs) {
    v.add('termDays', 'termTooShort', `the covered term ends at ${iso(termEndMs)} (contract expiry), shorter than one ${policy.intervalMs / 3_600_000} h premium interval`);
  }
  const counterpartyId = protectedSide ? counterpartyOf(contract, protectedSide) : '';
  if (protectedSide) pricingInputViolations(command.market, command.credit, contract.underlying, counterpartyId, atMs, policy, v);
  v.throwIfAny();

  const priced = priceProtection({
    contract,
    protectedSide: protectedSide!,
    market: command.market!,
    credit: command.credit!,
    coverageLimitMinor: limitMinor,
    scale,
    startMs: atMs,
    termMs: termEndMs - atMs,
    seed: seedOf(command.quoteId),
    policy,
    book: command.book,
  });
  return {
    quoteId: command.quoteId,
    contractId: contract.contractId,
    underlying: contract.underlying,
    protectedPartyId: command.protectedPartyId,
    protectedSide: protectedSide!,
    counterpartyId,
    currency: contract.currency,
    coverageLimit: fromMinor(limitMinor, scale),
    termDays: command.termDays,
    termEnd: iso(termEndMs),
    validUntil: iso(atMs + policy.quoteValidityMs),
    premiumRateAnnual: priced.premiumRateAnnual,
    premiumPerInterval: fromMinor(priced.premiumPerIntervalMinor, scale),
    premiumTotal: fromMinor(priced.premiumTotalMinor, scale),
    intervalHours: policy.intervalMs / 3_600_000,
    stressContribution: fromMinor(priced.stressContributionMinor, scale),
    basis: priced.basis,
    components: priced.components,
    at: command.at,
  };
}
