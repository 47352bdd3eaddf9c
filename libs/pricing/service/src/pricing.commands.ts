import { Accepted, causationOf, CommandDefinition } from '@backstop/platform';
import { BindCoverageDto, PremiumAccountDto, RequestQuoteDto } from './dto';
import { PricingService } from './pricing.service';
import { CachedDecision } from './stream-cache';

const SERVICE = 'premium-pricing' as const;

function accepted(decided: CachedDecision<unknown>, ids: Record<string, string>): Accepted {
  return { stream: decided.stream, revision: decided.lastRevision, ids, events: decided.eventTypes };
}

/** The premium-pricing commands (SPEC section 3 steps 3-4, section 8). */
export function pricingCommands(pricing: PricingService): CommandDefinition<any>[] {
  const requestQuote: CommandDefinition<RequestQuoteDto> = {
    type: 'RequestQuote',
    service: SERVICE,
    schemaVersion: 1,
    summary: "Price protection of one side of a contract against the other side's default; the quote shows every component and is valid for a short window.",
    dto: RequestQuoteDto,
    example: { quoteId: 'q-desk1-1', contractId: 'btc-perp-1', protectedPartyId: 'desk1', coverageLimit: '25000.000000', termDays: 30 },
    key: (p) => p.quoteId,
    auth: { roles: ['desk'], actsFor: (p) => [p.protectedPartyId] },
    handle: async (p, ctx) => accepted(await pricing.requestQuote(p, ctx.receivedAt, causationOf(ctx)), { quoteId: p.quoteId }),
  };

  const bindCoverage: CommandDefinition<BindCoverageDto> = {
    type: 'BindCoverage',
    service: SERVICE,
    schemaVersion: 1,
    summary: 'Bind a valid quote into a coverage, if the pool has the stress capacity for it (the rejection names what is left).',
    dto: BindCoverageDto,
    example: { coverageId: 'cov-desk1-1', quoteId: 'q-desk1-1' },
    key: (p) => p.coverageId,
    auth: { roles: ['desk'], actsFor: async (p) => [await pricing.protectedPartyOfQuote(p.quoteId)] },
    handle: async (p, ctx) => accepted(await pricing.bindCoverage(p, ctx.receivedAt, causationOf(ctx)), { coverageId: p.coverageId, quoteId: p.quoteId }),
  };

  const fund: CommandDefinition<PremiumAccountDto> = {
    type: 'FundPremiumAccount',
    service: SERVICE,
    schemaVersion: 1,
    summary: "Put money in a protected party's premium account; premiums are charged from it (and a missed one is paid at once).",
    dto: PremiumAccountDto,
    example: { partyId: 'desk1', amount: '2500.000000', currency: 'USDC' },
    key: (p) => p.partyId,
    auth: { roles: ['desk'], actsFor: (p) => [p.partyId] },
    handle: async (p, ctx) => accepted(await pricing.fundAccount(p, ctx.receivedAt, causationOf(ctx)), { partyId: p.partyId }),
  };

  const withdraw: CommandDefinition<PremiumAccountDto> = {
    type: 'WithdrawPremiumAccount',
    service: SERVICE,
    schemaVersion: 1,
    summary: 'Take money back from a premium account, never below zero.',
    dto: PremiumAccountDto,
    example: { partyId: 'desk1', amount: '500.000000', currency: 'USDC' },
    key: (p) => p.partyId,
    auth: { roles: ['desk'], actsFor: (p) => [p.partyId] },
    handle: async (p, ctx) => accepted(await pricing.withdrawAccount(p, ctx.receivedAt, causationOf(ctx)), { partyId: p.partyId }),
  };

  return [requestQuote, bindCoverage, fund, withdraw];
}
