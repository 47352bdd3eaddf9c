import { amountProblem, assertNever, currencyOf, Decider, DomainEvent, fromMinor, isIsoUtc, isSupportedCurrency, ms, reject, toMinor } from '@backstop/kernel';
import { PRICING_LIMITS } from './policy';
import { QuoteIssuedData } from './quote';

/**
 * The capacity book (stream `pricing-capacity`): the ONE stream every bind reserves through, so
 * binds racing each other are serialised by the store's expected revision — the second writer
 * re-reads, sees the first reservation, and decides again on what is left. It also remembers the
 * latest CapacityAssessed of default-settlement per currency, and which coverages hold capacity
 * (the service's index of open coverages by contract, underlying and counterparty).
 */
export interface NotedAssessment {
  readonly poolId: string;
  readonly currency: string;
  readonly headroomMinor: bigint;
  readonly capital: string;
  readonly cover2Requirement: string;
  readonly assessedAt: string;
  readonly sourceEventId: string;
}

export interface Reservation {
  readonly coverageId: string;
  readonly quoteId: string;
  readonly contractId: string;
  readonly underlying: string;
  readonly protectedPartyId: string;
  readonly counterpartyId: string;
  readonly currency: string;
  readonly stressMinor: bigint;
  readonly reservedAtMs: number;
}

export type CapacityEvent =
  | DomainEvent<
      'CapacityAssessmentNoted',
      { poolId: string; currency: string; headroom: string; capital: string; cover2Requirement: string; assessedAt: string; sourceEventId: string; at: string }
    >
  | DomainEvent<
      'CapacityReserved',
      {
        coverageId: string;
        quoteId: string;
        quoteValidUntil: string;
        contractId: string;
        underlying: string;
        protectedPartyId: string;
        counterpartyId: string;
        currency: string;
        stressContribution: string;
        /** What was left before this reservation: headroom − reserved since the assessment. */
        availableBefore: string;
        at: string;
      }
    >
  | DomainEvent<'CapacityReleased', { coverageId: string; currency: string; stressContribution: string; reason: string; at: string }>;

export type CapacityCommand =
  | {
      readonly type: 'NoteCapacityAssessment';
      readonly poolId: string;
      readonly currency: string;
      readonly headroom: string;
      readonly capital: string;
      readonly cover2Requirement: string;
      readonly assessedAt: string;
      readonly sourceEventId: string;
      readonly at: string;
    }
  | {
      readonly type: 'ReserveCapacity';
      readonly coverageId: string;
      readonly quote: QuoteIssuedData;
      readonly assessmentLagMs: number;
      /**
       * The coverage's marginal Cover-2 contribution against the open coverages at bind (price.ts
       * marginalStress, the quote's function): the book may have changed since the quote. Absent:
       * the quote's figure.
       */
      readonly stressAtBind?: string;
      readonly at: string;
    }
  | { readonly type: 'ReleaseCapacity'; readonly coverageId: string; readonly reason: string; readonly at: string };

export interface CapacityState {
  readonly assessments: Readonly<Record<string, NotedAssessment>>;
  readonly open: Readonly<Record<string, Reservation>>;
  /** Quotes bound while still valid (quoteId → coverageId, valid until): a quote binds once. */
  readonly recentQuotes: Readonly<Record<string, { readonly coverageId: string; readonly validUntilMs: number }>>;
}

export const capacityDecider: Decider<CapacityCommand, CapacityState, CapacityEvent> = {
  initialState: { assessments: {}, open: {}, recentQuotes: {} },

  decide(command, state) {
    switch (command.type) {
      case 'NoteCapacityAssessment': {
        if (!isSupportedCurrency(command.currency)) reject('currency', 'isCurrency', `currency ${command.currency} is not supported`);
        const problem = amountProblem(command.headroom, currencyOf(command.currency).scale);
        if (problem) reject('headroom', 'currencyScale', `headroom ${problem} (${command.currency})`);
        if (!isIsoUtc(command.assessedAt)) reject('at', 'isIsoUtc', 'the assessment time must be an ISO-8601 UTC instant');
        const previous = state.assessments[command.currency];
        if (previous && ms(previous.assessedAt) > ms(command.assessedAt)) return []; // an older assessment arriving late
        const { type: _type, ...data } = command;
        return [{ type: 'CapacityAssessmentNoted', data }];
      }
      case 'ReserveCapacity':
        return reserve(command, state);
      case 'ReleaseCapacity': {
        const held = state.open[command.coverageId];
        if (!held) return [];
        const scale = currencyOf(held.currency).scale;
        return [
          {
            type: 'CapacityReleased',
            data: { coverageId: command.coverageId, currency: held.currency, stressContribution: fromMinor(held.stressMinor, scale), reason: command.reason, at: command.at },
          },
        ];
      }
      default:
        return assertNever(command, 'capacity command');
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'CapacityAssessmentNoted': {
        const d = event.data;
        const scale = currencyOf(d.currency).scale;
        const noted: NotedAssessment = {
          poolId: d.poolId,
          currency: d.currency,
          headroomMinor: toMinor(d.headroom, scale),
          capital: d.capital,
          cover2Requirement: d.cover2Requirement,
          assessedAt: d.assessedAt,
          sourceEventId: d.sourceEventId,
        };
        return { ...state, assessments: { ...state.assessments, [d.currency]: noted } };
      }
      case 'CapacityReserved': {
        const d = event.data;
        const atMs = ms(d.at);
        const reservation: Reservation = {
          coverageId: d.coverageId,
          quoteId: d.quoteId,
          contractId: d.contractId,
          underlying: d.underlying,
          protectedPartyId: d.protectedPartyId,
          counterpartyId: d.counterpartyId,
          currency: d.currency,
          stressMinor: toMinor(d.stressContribution, currencyOf(d.currency).scale),
          reservedAtMs: atMs,
        };
        const recentQuotes = pruneQuotes({ ...state.recentQuotes, [d.quoteId]: { coverageId: d.coverageId, validUntilMs: ms(d.quoteValidUntil) } }, atMs);
        return { ...state, open: { ...state.open, [d.coverageId]: reservation }, recentQuotes };
      }
      case 'CapacityReleased': {
        const { [event.data.coverageId]: _released, ...open } = state.open;
        return { ...state, open };
      }
      default:
        return assertNever(event, 'capacity event');
    }
  },
};

export interface CapacityView {
  readonly assessment: NotedAssessment;
  /** Stress reserved by binds the assessment may not have counted yet. */
  readonly reservedSinceMinor: bigint;
  readonly availableMinor: bigint;
}

/**
 * What a bind may still take in `currency`: the latest assessment's headroom less the stress of
 * the coverages reserved since it (with `lagMs` of slack for the settlement service's delay in
 * counting a new coverage). Undefined until an assessment has been noted.
 */
export function capacityAvailable(state: CapacityState, currency: string, lagMs: number): CapacityView | undefined {
  const assessment = state.assessments[currency];
  if (!assessment) return undefined;
  const sinceMs = ms(assessment.assessedAt) - lagMs;
  const reservedSinceMinor = Object.values(state.open)
    .filter((r) => r.currency === currency && r.reservedAtMs > sinceMs)
    .reduce((sum, r) => sum + r.stressMinor, 0n);
  return { assessment, reservedSinceMinor, availableMinor: assessment.headroomMinor - reservedSinceMinor };
}

function reserve(command: Extract<CapacityCommand, { type: 'ReserveCapacity' }>, state: CapacityState): CapacityEvent[] {
  const { quote, coverageId } = command;
  const held = state.open[coverageId];
  if (held && held.quoteId === quote.quoteId) return []; // this bind already reserved (a resumed bind)
  if (held) reject('coverageId', 'unique', `coverage ${coverageId} already exists`);
  const boundTo = state.recentQuotes[quote.quoteId];
  if (boundTo && boundTo.coverageId !== coverageId) reject('quoteId', 'quoteBound', `quote ${quote.quoteId} is already bound to coverage ${boundTo.coverageId}`);
  const scale = currencyOf(quote.currency).scale;
  const view = capacityAvailable(state, quote.currency, command.assessmentLagMs);
  if (!view) {
    return reject(
      'quoteId',
      'noCapacityAssessment',
      `no capacity assessment yet for ${quote.currency}: the pool's capacity is unknown until default-settlement publishes CapacityAssessed`,
    );
  }
  const stress = command.stressAtBind ?? quote.stressContribution;
  const stressProblem = amountProblem(stress, scale);
  if (stressProblem) reject('stressAtBind', 'currencyScale', `stress at bind ${stressProblem} (${quote.currency})`);
  const needed = toMinor(stress, scale);
  if (view.availableMinor < needed) {
    const left = fromMinor(view.availableMinor, scale);
    reject(
      'quoteId',
      'poolCapacity',
      `the coverage needs ${stress} ${quote.currency} of stress capacity; the pool has ${left} ${quote.currency} left ` +
        `(headroom ${fromMinor(view.assessment.headroomMinor, scale)} in pool ${view.assessment.poolId}'s assessment at ${view.assessment.assessedAt}, ` +
        `less ${fromMinor(view.reservedSinceMinor, scale)} reserved since)`,
    );
  }
  return [
    {
      type: 'CapacityReserved',
      data: {
        coverageId,
        quoteId: quote.quoteId,
        quoteValidUntil: quote.validUntil,
        contractId: quote.contractId,
        underlying: quote.underlying,
        protectedPartyId: quote.protectedPartyId,
        counterpartyId: quote.counterpartyId,
        currency: quote.currency,
        stressContribution: fromMinor(needed, scale),
        availableBefore: fromMinor(view.availableMinor, scale),
        at: command.at,
      },
    },
  ];
}

/** Only quotes still within their validity can be bound again, so older entries are dropped. */
function pruneQuotes(quotes: CapacityState['recentQuotes'], atMs: number): CapacityState['recentQuotes'] {
  const live = Object.entries(quotes).filter(([, q]) => q.validUntilMs >= atMs);
  return Object.fromEntries(live.slice(-PRICING_LIMITS.recentQuotesMax));
}
