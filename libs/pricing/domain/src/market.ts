import { amountProblem, assertNever, Decider, DomainEvent, ms, Violations } from '@backstop/kernel';
import { ratingGrade, SIMULATION_LIMITS } from '@backstop/pricing-model';
import { CreditFacts, MarketFacts } from './facts';

/**
 * What pricing has seen of the market and of credit, recorded in its own streams
 * (`pricing-market-<underlying>`, `pricing-credit-<partyId>`) so every replica and every restart
 * prices on the same latest mark, vol and PD. A reading older than the one held is ignored
 * (inputs may be redelivered or arrive late); a mark without a vol keeps the last vol.
 */
export type MarketEvent = DomainEvent<'MarketObserved', { underlying: string; price: string; volAnnual?: string; at: string }>;

export type MarketCommand = { readonly type: 'ObserveMark'; readonly underlying: string; readonly price: string; readonly volAnnual?: string; readonly at: string };

export type MarketState = MarketFacts | undefined;

export const marketDecider: Decider<MarketCommand, MarketState, MarketEvent> = {
  initialState: undefined,

  decide(command, state) {
    const v = new Violations();
    v.check(amountProblem(command.price, 12) === undefined && Number(command.price) > 0, 'price', 'positive', 'price must be a decimal string greater than 0');
    if (command.volAnnual !== undefined) {
      const vol = Number(command.volAnnual);
      v.check(
        amountProblem(command.volAnnual, 12) === undefined && vol >= 0 && vol <= SIMULATION_LIMITS.volAnnualMax,
        'volAnnual',
        'range',
        `volAnnual must be a decimal string from 0 to ${SIMULATION_LIMITS.volAnnualMax}`,
      );
    }
    v.throwIfAny();
    if (state && ms(state.priceAt) > ms(command.at)) return [];
    const { type: _type, ...data } = command;
    return [{ type: 'MarketObserved', data }];
  },

  evolve(state, event) {
    switch (event.type) {
      case 'MarketObserved': {
        const d = event.data;
        const vol = d.volAnnual !== undefined ? { volAnnual: d.volAnnual, volAt: d.at } : state?.volAnnual !== undefined ? { volAnnual: state.volAnnual, volAt: state.volAt } : {};
        return { underlying: d.underlying, price: d.price, priceAt: d.at, ...vol };
      }
      default:
        return assertNever(event.type, 'market event');
    }
  },
};

export type CreditEvent = DomainEvent<'CreditObserved', { partyId: string; rating?: string; pdAnnual?: string; source: string; at: string }>;

export type CreditCommand = { readonly type: 'ObserveCredit'; readonly partyId: string; readonly rating?: string; readonly pdAnnual?: string; readonly source: string; readonly at: string };

export type CreditState = CreditFacts | undefined;

export const creditDecider: Decider<CreditCommand, CreditState, CreditEvent> = {
  initialState: undefined,

  decide(command, state) {
    const v = new Violations();
    v.check((command.rating === undefined) !== (command.pdAnnual === undefined), 'rating', 'exactlyOne', 'a credit score has exactly one of rating or pdAnnual');
    if (command.pdAnnual !== undefined) {
      const pd = Number(command.pdAnnual);
      v.check(amountProblem(command.pdAnnual, 12) === undefined && pd >= 0 && pd <= 1, 'pdAnnual', 'range', 'pdAnnual must be a decimal string from 0 to 1');
    }
    if (command.rating !== undefined) {
      try {
        ratingGrade(command.rating);
      } catch (err) {
        v.add('rating', 'knownRating', (err as Error).message);
      }
    }
    v.throwIfAny();
    if (state && ms(state.at) > ms(command.at)) return [];
    const { type: _type, ...data } = command;
    return [{ type: 'CreditObserved', data }];
  },

  evolve(_state, event) {
    switch (event.type) {
      case 'CreditObserved':
        return { ...event.data };
      default:
        return assertNever(event.type, 'credit event');
    }
  },
};

/** The counterparty's credit: the later of intake's profile and the credit feed's last score. */
export function latestCredit(profile: CreditFacts | undefined, feed: CreditFacts | undefined): CreditFacts | undefined {
  if (!profile) return feed;
  if (!feed) return profile;
  return ms(feed.at) >= ms(profile.at) ? feed : profile;
}
