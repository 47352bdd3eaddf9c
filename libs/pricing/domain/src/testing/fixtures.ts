import { ContractFacts, CreditFacts, MarketFacts } from '../facts';
import { DEFAULT_PRICING_POLICY, PricingPolicy } from '../policy';
import { quoteDecider, QuoteEvent, QuoteState, RequestQuote } from '../quote';

/** Shared decider-spec fixtures: a BTC perpetual between desk1 (long) and cp1 (short). */
export const AT = '2026-01-01T00:00:00.000Z';

/** Few paths: the specs check rules, not Monte Carlo accuracy (the model's specs do that). */
export const TEST_POLICY: PricingPolicy = { ...DEFAULT_PRICING_POLICY, model: { ...DEFAULT_PRICING_POLICY.model, paths: 200, steps: 12 } };

export const PERP: ContractFacts = {
  contractId: 'c1',
  status: 'OPEN',
  kind: 'PERPETUAL',
  underlying: 'BTC-USD',
  size: '2',
  entryPrice: '60000',
  currency: 'USDC',
  longPartyId: 'desk1',
  shortPartyId: 'cp1',
  collateral: { LONG: '12000.000000', SHORT: '12000.000000' },
};

export const MARKET: MarketFacts = { underlying: 'BTC-USD', price: '60000', priceAt: AT, volAnnual: '0.6', volAt: AT };

export const CREDIT: CreditFacts = { partyId: 'cp1', pdAnnual: '0.02', source: 'intake profile', at: AT };

export function requestQuote(overrides: Partial<RequestQuote> = {}): RequestQuote {
  return {
    type: 'RequestQuote',
    quoteId: 'q1',
    contract: PERP,
    protectedPartyId: 'desk1',
    coverageLimit: '50000',
    termDays: 30,
    market: MARKET,
    credit: CREDIT,
    policy: TEST_POLICY,
    at: AT,
    ...overrides,
  };
}

/** The QuoteIssued event of `requestQuote(overrides)`. */
export function quoteIssued(overrides: Partial<RequestQuote> = {}): QuoteEvent {
  const [event] = quoteDecider.decide(requestQuote(overrides), quoteDecider.initialState);
  return event;
}

export function quoteStateOf(...events: QuoteEvent[]): QuoteState {
  return events.reduce(quoteDecider.evolve, quoteDecider.initialState);
}
