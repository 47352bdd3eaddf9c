import { assertNever, currencyOf, Decider, DomainEvent, fromMinor, invariant, iso, ms, reject, Side, toMinor, Violations } from '@backstop/kernel';
import { pdAnnualOf } from '@backstop/pricing-model';
import { ContractFacts, CreditFacts, MarketFacts } from './facts';
import { ceilDiv } from './numbers';
import { PricingPolicy } from './policy';
import { modelCredit, PriceComponents, PricingBasis, pricingInputViolations, priceProtection } from './price';
import { defaultedPartyMessage, quoteTermMs, QuoteState } from './quote';
import { repriceReasons } from './repricing';

export type CoverageEndReason = 'CONTRACT_CLOSED' | 'CONTRACT_SETTLED' | 'EXPIRED' | 'DEFAULT_SETTLED';
export const COVERAGE_END_REASONS: readonly CoverageEndReason[] = ['CONTRACT_CLOSED', 'CONTRACT_SETTLED', 'EXPIRED', 'DEFAULT_SETTLED'];

export interface CoverageBoundData {
  readonly coverageId: string;
  readonly quoteId: string;
  readonly contractId: string;
  readonly underlying: string;
  readonly protectedPartyId: string;
  readonly protectedSide: Side;
  readonly counterpartyId: string;
  readonly currency: string;
  readonly coverageLimit: string;
  readonly premiumRateAnnual: string;
  readonly premiumPerInterval: string;
  readonly intervalHours: number;
  readonly graceHours: number;
  readonly stressContribution: string;
  readonly start: string;
  readonly end: string;
  readonly basis: PricingBasis;
  readonly at: string;
}

interface PeriodData {
  readonly coverageId: string;
  readonly payerPartyId: string;
  readonly amount: string;
  readonly currency: string;
  readonly periodStart: string;
  readonly periodEnd: string;
  readonly at: string;
}

export type CoverageEvent =
  | DomainEvent<'CoverageBound', CoverageBoundData>
  | DomainEvent<'PremiumCharged', PeriodData & { rateAnnual: string }>
  | DomainEvent<'PremiumPaymentMissed', PeriodData & { graceUntil: string }>
  | DomainEvent<'CoverageLapsed', { coverageId: string; reason: string; unpaidAmount: string; currency: string; at: string }>
  | DomainEvent<
      'CoverageRepriced',
      {
        coverageId: string;
        oldRateAnnual: string;
        newRateAnnual: string;
        oldPremiumPerInterval: string;
        newPremiumPerInterval: string;
        reason: string;
        effectiveFrom: string;
        stressContribution: string;
        basis: PricingBasis;
        components: PriceComponents;
        at: string;
      }
    >
  | DomainEvent<
      'CoverageLimitReduced',
      {
        coverageId: string;
        oldLimit: string;
        newLimit: string;
        oldStressContribution: string;
        newStressContribution: string;
        oldPremiumPerInterval: string;
        newPremiumPerInterval: string;
        effectiveFrom: string;
        reason: string;
        at: string;
      }
    >
  | DomainEvent<'CoverageEnded', { coverageId: string; reason: CoverageEndReason; detail: string; end: string; at: string }>;

export type CoverageCommand =
  | {
      readonly type: 'BindCoverage';
      readonly coverageId: string;
      /** The quote stream's state (NONE when there is no such quote). */
      readonly quote: QuoteState;
      readonly contractStatus?: ContractFacts['status'];
      /** The contract's parties in default at margin-monitor now (SPEC §3.9). */
      readonly partiesInDefault?: readonly string[];
      readonly policy: PricingPolicy;
      readonly at: string;
    }
  | { readonly type: 'ChargePremium'; readonly coverageId: string; readonly periodStart: string; readonly paid: boolean; readonly at: string }
  | { readonly type: 'LapseCoverage'; readonly coverageId: string; readonly at: string }
  | { readonly type: 'EndCoverage'; readonly coverageId: string; readonly reason: CoverageEndReason; readonly detail: string; readonly at: string }
  | {
      readonly type: 'RepriceCoverage';
      readonly coverageId: string;
      readonly contract?: ContractFacts;
      readonly market?: MarketFacts;
      readonly credit?: CreditFacts;
      readonly policy: PricingPolicy;
      readonly at: string;
    }
  | { readonly type: 'ReduceLimit'; readonly coverageId: string; readonly newLimitMinor: bigint; readonly reason: string; readonly at: string };

/** A premium rate from an instant on: repricing and limit cuts add one for the next interval. */
export interface RateStep {
  readonly effectiveFromMs: number;
  readonly rateAnnual: string;
  readonly perIntervalMinor: bigint;
}

export interface UnpaidPeriod {
  readonly periodStartMs: number;
  readonly periodEndMs: number;
  readonly amountMinor: bigint;
  readonly graceUntilMs: number;
}

export interface CoverageState {
  readonly status: 'NONE' | 'ACTIVE' | 'LAPSED' | 'ENDED';
  readonly bound?: CoverageBoundData;
  readonly scale: number;
  readonly limitMinor: bigint;
  readonly stressMinor: bigint;
  readonly startMs: number;
  /** The term's end, or when the coverage ended early (contract closed/settled, default settled). */
  readonly endMs: number;
  readonly intervalMs: number;
  readonly graceMs: number;
  readonly rates: readonly RateStep[];
  readonly basis?: PricingBasis;
  /** End of the last period billed (charged, or recorded as missed). */
  readonly billedThroughMs: number;
  readonly unpaid: readonly UnpaidPeriod[];
  readonly chargedTotalMinor: bigint;
  readonly closing?: { readonly reason: string; readonly at: string };
}

const EMPTY: CoverageState = {
  status: 'NONE',
  scale: 0,
  limitMinor: 0n,
  stressMinor: 0n,
  startMs: 0,
  endMs: 0,
  intervalMs: 0,
  graceMs: 0,
  rates: [],
  billedThroughMs: 0,
  unpaid: [],
  chargedTotalMinor: 0n,
};

/**
 * A bound coverage's whole life (SPEC §3 steps 3-5): bound from a valid quote, premiums charged in
 * arrears each interval from the protected party's premium account (or missed, with a grace
 * period, then lapsed), re-priced for the next interval when its inputs move, limit cut when the
 * pool's capacity is stressed, ended with its contract or term.
 */
export const coverageDecider: Decider<CoverageCommand, CoverageState, CoverageEvent> = {
  initialState: EMPTY,

  decide(command, state) {
    switch (command.type) {
      case 'BindCoverage':
        return bind(command, state);
      case 'ChargePremium':
        return chargePremium(command, state);
      case 'LapseCoverage':
        return lapse(command, state);
      case 'EndCoverage':
        return end(command, state);
      case 'RepriceCoverage':
        return reprice(command, state);
      case 'ReduceLimit':
        return reduceLimit(command, state);
      default:
        return assertNever(command, 'coverage command');
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'CoverageBound': {
        const d = event.data;
        const scale = currencyOf(d.currency).scale;
        const startMs = ms(d.start);
        return {
          ...EMPTY,
          status: 'ACTIVE',
          bound: d,
          scale,
          limitMinor: toMinor(d.coverageLimit, scale),
          stressMinor: toMinor(d.stressContribution, scale),
          startMs,
          endMs: ms(d.end),
          intervalMs: d.intervalHours * 3_600_000,
          graceMs: d.graceHours * 3_600_000,
          rates: [{ effectiveFromMs: startMs, rateAnnual: d.premiumRateAnnual, perIntervalMinor: toMinor(d.premiumPerInterval, scale) }],
          basis: d.basis,
          billedThroughMs: startMs,
        };
      }
      case 'PremiumCharged': {
        const startMs = ms(event.data.periodStart);
        const amount = toMinor(event.data.amount, state.scale);
        const wasUnpaid = state.unpaid.some((u) => u.periodStartMs === startMs);
        return pruneRates({
          ...state,
          unpaid: state.unpaid.filter((u) => u.periodStartMs !== startMs),
          billedThroughMs: wasUnpaid ? state.billedThroughMs : ms(event.data.periodEnd),
          chargedTotalMinor: state.chargedTotalMinor + amount,
        });
      }
      case 'PremiumPaymentMissed':
        return pruneRates({
          ...state,
          billedThroughMs: ms(event.data.periodEnd),
          unpaid: [
            ...state.unpaid,
            {
              periodStartMs: ms(event.data.periodStart),
              periodEndMs: ms(event.data.periodEnd),
              amountMinor: toMinor(event.data.amount, state.scale),
              graceUntilMs: ms(event.data.graceUntil),
            },
          ],
        });
      case 'CoverageLapsed':
        return { ...state, status: 'LAPSED', closing: { reason: event.data.reason, at: event.data.at } };
      case 'CoverageRepriced':
        return {
          ...withRate(state, {
            effectiveFromMs: ms(event.data.effectiveFrom),
            rateAnnual: event.data.newRateAnnual,
            perIntervalMinor: toMinor(event.data.newPremiumPerInterval, state.scale),
          }),
          basis: event.data.basis,
          stressMinor: toMinor(event.data.stressContribution, state.scale),
        };
      case 'CoverageLimitReduced':
        return {
          ...withRate(state, {
            effectiveFromMs: ms(event.data.effectiveFrom),
            rateAnnual: latestRate(state).rateAnnual,
            perIntervalMinor: toMinor(event.data.newPremiumPerInterval, state.scale),
          }),
          limitMinor: toMinor(event.data.newLimit, state.scale),
          stressMinor: toMinor(event.data.newStressContribution, state.scale),
        };
      case 'CoverageEnded':
        return { ...state, status: 'ENDED', endMs: ms(event.data.end), closing: { reason: event.data.reason, at: event.data.at } };
      default:
        return assertNever(event, 'coverage event');
    }
  },
};

// ---------------------------------------------------------------------------------------------
// Premium schedule: periods of `intervalMs` from the start, the last one cut at the end.

export interface PremiumPeriod {
  readonly periodStartMs: number;
  readonly periodEndMs: number;
  readonly amountMinor: bigint;
  /** True for a period already recorded as missed (a payment retry). */
  readonly retry: boolean;
}

/** What the premium schedule asks for next at `nowMs` (the service carries it out, step by step). */
export type PremiumAction =
  | { readonly kind: 'none' }
  | ({ readonly kind: 'charge' } & PremiumPeriod)
  | { readonly kind: 'lapse' }
  | { readonly kind: 'expire' }
  /** Nothing more will happen to this coverage: its capacity can be released. */
  | { readonly kind: 'settled'; readonly unpaidMinor: bigint };

/**
 * The next premium step at `nowMs`, skipping payment retries already tried in this pass
 * (`tried`: period starts). Order: retries of missed periods, then newly due periods, then the
 * term's end. Once the oldest missed premium is past its grace period, nothing is retried (money
 * that arrives after the deadline cannot revive the coverage): the periods up to the deadline —
 * the desk was covered during them — are billed, then the coverage lapses.
 */
export function nextPremiumAction(state: CoverageState, nowMs: number, tried: ReadonlySet<number> = new Set()): PremiumAction {
  if (state.status === 'NONE') return { kind: 'none' };
  const unpaidMinor = state.unpaid.reduce((sum, u) => sum + u.amountMinor, 0n);
  if (state.status === 'LAPSED') return { kind: 'settled', unpaidMinor };
  const oldest = state.unpaid[0];
  const overdue = oldest !== undefined && oldest.graceUntilMs <= nowMs;
  if (overdue && state.status !== 'ACTIVE') return { kind: 'settled', unpaidMinor };
  if (!overdue) {
    const retry = state.unpaid.find((u) => !tried.has(u.periodStartMs));
    if (retry) return { kind: 'charge', periodStartMs: retry.periodStartMs, periodEndMs: retry.periodEndMs, amountMinor: retry.amountMinor, retry: true };
  }
  const billUntilMs = overdue ? oldest.graceUntilMs : nowMs;
  const next = nextPeriod(state);
  if (next && next.periodEndMs <= billUntilMs) return { kind: 'charge', ...next, retry: false };
  if (overdue) return { kind: 'lapse' };
  if (next) return { kind: 'none' };
  if (state.status === 'ACTIVE') return nowMs >= state.endMs ? { kind: 'expire' } : { kind: 'none' };
  return state.unpaid.length === 0 ? { kind: 'settled', unpaidMinor } : { kind: 'none' };
}

/** The next period not yet billed, with its amount, or undefined once the term is billed. */
export function nextPeriod(state: CoverageState): Omit<PremiumPeriod, 'retry'> | undefined {
  const startMs = state.billedThroughMs;
  if (startMs >= state.endMs) return undefined;
  const endMs = Math.min(startMs + state.intervalMs, state.endMs);
  return { periodStartMs: startMs, periodEndMs: endMs, amountMinor: periodAmount(state, startMs, endMs) };
}

/**
 * The premium of one period: the rate in force at its start, pro rata for a short last period,
 * rounded UP to the minor unit (SPEC §2: premiums round in the pool's favour).
 */
export function periodAmount(state: CoverageState, startMs: number, endMs: number): bigint {
  const rate = rateAt(state, startMs);
  const lengthMs = endMs - startMs;
  if (lengthMs === state.intervalMs) return rate.perIntervalMinor;
  return ceilDiv(rate.perIntervalMinor * BigInt(lengthMs), BigInt(state.intervalMs));
}

/** The first period boundary at or after `atMs`: a new rate applies from there ("the next interval"). */
export function nextBoundaryMs(state: CoverageState, atMs: number): number {
  const elapsed = Math.max(atMs - state.startMs, 0);
  const boundary = state.startMs + Math.ceil(elapsed / state.intervalMs) * state.intervalMs;
  return Math.max(boundary, state.billedThroughMs);
}

export function latestRate(state: CoverageState): RateStep {
  invariant(state.rates.length > 0, 'a bound coverage has a rate');
  return state.rates[state.rates.length - 1];
}

function rateAt(state: CoverageState, atMs: number): RateStep {
  let found = state.rates[0];
  for (const step of state.rates) if (step.effectiveFromMs <= atMs) found = step;
  invariant(found !== undefined, 'a bound coverage has a rate');
  return found;
}

/** A rate from `step.effectiveFromMs` on replaces any decided earlier for the same or a later start. */
function withRate(state: CoverageState, step: RateStep): CoverageState {
  return { ...state, rates: [...state.rates.filter((r) => r.effectiveFromMs < step.effectiveFromMs), step] };
}

/** Rates that no unbilled period can use any more are dropped (the state stays small). */
function pruneRates(state: CoverageState): CoverageState {
  const firstUsed = state.rates.reduce((index, r, i) => (r.effectiveFromMs <= state.billedThroughMs ? i : index), 0);
  return firstUsed === 0 ? state : { ...state, rates: state.rates.slice(firstUsed) };
}

// ---------------------------------------------------------------------------------------------

function requireBound(state: CoverageState, coverageId: string): CoverageBoundData {
  if (state.status === 'NONE' || !state.bound) return reject('coverageId', 'knownCoverage', `coverage ${coverageId} does not exist`);
  return state.bound;
}

function bind(command: Extract<CoverageCommand, { type: 'BindCoverage' }>, state: CoverageState): CoverageEvent[] {
  if (state.status !== 'NONE') reject('coverageId', 'unique', `coverage ${command.coverageId} already exists`);
  const quote = command.quote.quote;
  if (command.quote.status === 'NONE' || !quote) return reject('quoteId', 'knownQuote', 'no such quote: request one with RequestQuote');
  if (command.quote.status === 'BOUND' && command.quote.coverageId !== command.coverageId) {
    reject('quoteId', 'quoteBound', `quote ${quote.quoteId} is already bound to coverage ${command.quote.coverageId}`);
  }
  const v = new Violations();
  v.check(ms(command.at) <= ms(quote.validUntil), 'quoteId', 'quoteExpired', `quote ${quote.quoteId} expired at ${quote.validUntil}; request a new quote`);
  v.check(command.contractStatus === 'OPEN', 'quoteId', 'openContract', `contract ${quote.contractId} is ${command.contractStatus ?? 'not registered'}; only an open contract can be covered`);
  for (const partyId of command.partiesInDefault ?? []) v.add('quoteId', 'notInDefault', defaultedPartyMessage(partyId, quote.protectedPartyId, quote.contractId));
  v.throwIfAny();
  const startMs = ms(command.at);
  return [
    {
      type: 'CoverageBound',
      data: {
        coverageId: command.coverageId,
        quoteId: quote.quoteId,
        contractId: quote.contractId,
        underlying: quote.underlying,
        protectedPartyId: quote.protectedPartyId,
        protectedSide: quote.protectedSide,
        counterpartyId: quote.counterpartyId,
        currency: quote.currency,
        coverageLimit: quote.coverageLimit,
        premiumRateAnnual: quote.premiumRateAnnual,
        premiumPerInterval: quote.premiumPerInterval,
        intervalHours: quote.intervalHours,
        graceHours: command.policy.graceMs / 3_600_000,
        stressContribution: quote.stressContribution,
        start: command.at,
        end: iso(startMs + quoteTermMs(quote)),
        basis: quote.basis,
        at: command.at,
      },
    },
  ];
}

function chargePremium(command: Extract<CoverageCommand, { type: 'ChargePremium' }>, state: CoverageState): CoverageEvent[] {
  const bound = requireBound(state, command.coverageId);
  const startMs = ms(command.periodStart);
  const unpaid = state.unpaid.find((u) => u.periodStartMs === startMs);
  const next = nextPeriod(state);
  let period: PremiumPeriod;
  if (unpaid) {
    period = { ...unpaid, retry: true };
  } else if (next && next.periodStartMs === startMs) {
    if (state.status === 'LAPSED') reject('coverageId', 'lapsed', `coverage ${command.coverageId} has lapsed; no further premium is due`);
    if (next.periodEndMs > ms(command.at)) reject('periodStart', 'notDue', `the period from ${command.periodStart} ends at ${iso(next.periodEndMs)}; premiums are charged in arrears`);
    period = { ...next, retry: false };
  } else if (startMs < state.billedThroughMs) {
    return []; // already charged: a redelivered or racing charge changes nothing
  } else {
    return reject('periodStart', 'periodOrder', `the next premium period of coverage ${command.coverageId} starts at ${iso(state.billedThroughMs)}`);
  }
  const data = {
    coverageId: command.coverageId,
    payerPartyId: bound.protectedPartyId,
    amount: fromMinor(period.amountMinor, state.scale),
    currency: bound.currency,
    periodStart: iso(period.periodStartMs),
    periodEnd: iso(period.periodEndMs),
    at: command.at,
  };
  if (command.paid) return [{ type: 'PremiumCharged', data: { ...data, rateAnnual: rateAt(state, period.periodStartMs).rateAnnual } }];
  if (period.retry) return [];
  return [{ type: 'PremiumPaymentMissed', data: { ...data, graceUntil: iso(period.periodEndMs + state.graceMs) } }];
}

function lapse(command: Extract<CoverageCommand, { type: 'LapseCoverage' }>, state: CoverageState): CoverageEvent[] {
  const bound = requireBound(state, command.coverageId);
  if (state.status !== 'ACTIVE') return [];
  const first = state.unpaid[0];
  if (!first || first.graceUntilMs > ms(command.at)) {
    reject('coverageId', 'notOverdue', `coverage ${command.coverageId} has no premium unpaid past its grace period`);
  }
  const unpaidMinor = state.unpaid.reduce((sum, u) => sum + u.amountMinor, 0n);
  const reason =
    `premium of ${fromMinor(first.amountMinor, state.scale)} ${bound.currency} for ${iso(first.periodStartMs)}–${iso(first.periodEndMs)} ` +
    `still unpaid at the end of its grace period (${iso(first.graceUntilMs)}); ${fromMinor(unpaidMinor, state.scale)} ${bound.currency} unpaid in all`;
  return [{ type: 'CoverageLapsed', data: { coverageId: command.coverageId, reason, unpaidAmount: fromMinor(unpaidMinor, state.scale), currency: bound.currency, at: command.at } }];
}

function end(command: Extract<CoverageCommand, { type: 'EndCoverage' }>, state: CoverageState): CoverageEvent[] {
  requireBound(state, command.coverageId);
  if (state.status !== 'ACTIVE') return []; // ended or lapsed already: a second source of the same end changes nothing
  const atMs = ms(command.at);
  if (command.reason === 'EXPIRED' && atMs < state.endMs) {
    reject('coverageId', 'notExpired', `coverage ${command.coverageId} runs until ${iso(state.endMs)}`);
  }
  const endMs = Math.min(state.endMs, atMs);
  return [{ type: 'CoverageEnded', data: { coverageId: command.coverageId, reason: command.reason, detail: command.detail, end: iso(endMs), at: command.at } }];
}

function reprice(command: Extract<CoverageCommand, { type: 'RepriceCoverage' }>, state: CoverageState): CoverageEvent[] {
  const bound = requireBound(state, command.coverageId);
  if (state.status !== 'ACTIVE' || !state.basis) return [];
  const contract = command.contract;
  if (!contract || contract.status !== 'OPEN') return []; // its end arrives as its own event
  const atMs = ms(command.at);
  const effectiveFromMs = nextBoundaryMs(state, atMs);
  // Less than one interval left: nothing to re-price for "the next interval".
  if (effectiveFromMs >= state.endMs || state.endMs - atMs < state.intervalMs) return [];
  pricingInputViolations(command.market, command.credit, bound.underlying, bound.counterpartyId, atMs, command.policy).throwIfAny();
  const market = command.market!;
  const credit = command.credit!;
  const reasons = repriceReasons(
    state.basis,
    { underlying: bound.underlying, spot: Number(market.price), volAnnual: Number(market.volAnnual), pdAnnual: pdAnnualOf(modelCredit(credit)) },
    command.policy.reprice,
  );
  if (reasons.length === 0) return [];
  const priced = priceProtection({
    contract,
    protectedSide: bound.protectedSide,
    market,
    credit,
    coverageLimitMinor: state.limitMinor,
    scale: state.scale,
    startMs: atMs,
    termMs: state.endMs - atMs,
    seed: state.basis.seed,
    policy: { ...command.policy, intervalMs: state.intervalMs },
  });
  const old = latestRate(state);
  return [
    {
      type: 'CoverageRepriced',
      data: {
        coverageId: command.coverageId,
        oldRateAnnual: old.rateAnnual,
        newRateAnnual: priced.premiumRateAnnual,
        oldPremiumPerInterval: fromMinor(old.perIntervalMinor, state.scale),
        newPremiumPerInterval: fromMinor(priced.premiumPerIntervalMinor, state.scale),
        reason: reasons.join('; '),
        effectiveFrom: iso(effectiveFromMs),
        stressContribution: fromMinor(priced.stressContributionMinor, state.scale),
        basis: priced.basis,
        components: priced.components,
        at: command.at,
      },
    },
  ];
}

function reduceLimit(command: Extract<CoverageCommand, { type: 'ReduceLimit' }>, state: CoverageState): CoverageEvent[] {
  requireBound(state, command.coverageId);
  if (state.status !== 'ACTIVE' || command.newLimitMinor >= state.limitMinor) return [];
  if (command.newLimitMinor < 0n) reject('newLimit', 'nonNegative', 'a coverage limit cannot be cut below 0');
  const old = latestRate(state);
  // The rate per unit of limit stays; the premium falls with the limit, from the next interval, rounded up.
  const newPerInterval = ceilDiv(old.perIntervalMinor * command.newLimitMinor, state.limitMinor);
  const newStress = state.stressMinor < command.newLimitMinor ? state.stressMinor : command.newLimitMinor;
  return [
    {
      type: 'CoverageLimitReduced',
      data: {
        coverageId: command.coverageId,
        oldLimit: fromMinor(state.limitMinor, state.scale),
        newLimit: fromMinor(command.newLimitMinor, state.scale),
        oldStressContribution: fromMinor(state.stressMinor, state.scale),
        newStressContribution: fromMinor(newStress, state.scale),
        oldPremiumPerInterval: fromMinor(old.perIntervalMinor, state.scale),
        newPremiumPerInterval: fromMinor(newPerInterval, state.scale),
        effectiveFrom: iso(nextBoundaryMs(state, ms(command.at))),
        reason: command.reason,
        at: command.at,
      },
    },
  ];
}
