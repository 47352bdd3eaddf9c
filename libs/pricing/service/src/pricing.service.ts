import { currencyOf, DomainRejection, floatToMinor, fromMinor, iso, isSupportedCurrency, ms, reject, toMinor } from '@backstop/kernel';
import { Logger } from '@backstop/telemetry';
import {
  AccountCommand,
  accountDecider,
  AccountEvent,
  AccountState,
  capacityAvailable,
  CapacityCommand,
  capacityDecider,
  CapacityEvent,
  CapacityState,
  ContractFacts,
  counterpartyOf,
  CoverageCommand,
  coverageDecider,
  CoverageEndReason,
  CoverageEvent,
  CoverageState,
  CreditCommand,
  creditDecider,
  CreditEvent,
  CreditFacts,
  CreditState,
  latestCredit,
  limitCuts,
  MarketCommand,
  marketDecider,
  MarketEvent,
  MarketFacts,
  MarketState,
  marginalStress,
  nextPremiumAction,
  OpenCoverageFacts,
  PoolBookFacts,
  PRICING_LIMITS,
  PricingPolicy,
  QuoteCommand,
  quoteDecider,
  QuoteEvent,
  QuoteIssuedData,
  QuoteState,
  Reservation,
  sideOf,
} from '@backstop/pricing';
import { Causation, notYetKnown, ReadModel, Runtime, streamName } from '@backstop/platform';
import { contractFactsOf, evolveContract, evolveDefault, evolveParty, KnownParty, PRICING_FACTS, profileCredit } from './facts-view';
import { CachedDecision, StreamCache } from './stream-cache';

/** The one stream every bind reserves capacity through (docs/events.md, "premium-pricing"). */
export const CAPACITY_STREAM = streamName('pricing', 'capacity');
export const quoteStream = (quoteId: string) => streamName('quote', quoteId);
export const coverageStream = (coverageId: string) => streamName('coverage', coverageId);
export const accountStream = (partyId: string) => streamName('pricing', `account-${partyId}`);
export const marketStream = (underlying: string) => streamName('pricing', `market-${underlying}`);
export const creditStream = (partyId: string) => streamName('pricing', `credit-${partyId}`);

export interface Trigger {
  readonly causationId: string;
  readonly correlationId: string;
  readonly traceparent?: string;
}

/**
 * The premium-pricing service's work, shared by its commands, consumers, ticker and read endpoints.
 * Every decision is a pure decider (libs/pricing/domain) fed with facts read here; the multi-stream
 * flows (bind, premium charge) are chains of idempotent steps keyed by a deterministic causation
 * id, so a crash half-way is finished by the retry of the same command, message or tick.
 */
export class PricingService {
  readonly quotes: StreamCache<QuoteCommand, QuoteState, QuoteEvent>;
  readonly coverages: StreamCache<CoverageCommand, CoverageState, CoverageEvent>;
  readonly capacity: StreamCache<CapacityCommand, CapacityState, CapacityEvent>;
  readonly accounts: StreamCache<AccountCommand, AccountState, AccountEvent>;
  readonly markets: StreamCache<MarketCommand, MarketState, MarketEvent>;
  readonly credits: StreamCache<CreditCommand, CreditState, CreditEvent>;
  /** Parties, contracts and defaults as the other services published them (this service's read model). */
  readonly facts: ReadModel;
  private readonly logger: Logger;

  constructor(
    readonly runtime: Runtime,
    readonly policy: PricingPolicy,
  ) {
    const store = runtime.store;
    this.quotes = new StreamCache(store, quoteDecider);
    this.coverages = new StreamCache(store, coverageDecider);
    this.capacity = new StreamCache(store, capacityDecider, 1);
    this.accounts = new StreamCache(store, accountDecider);
    this.markets = new StreamCache(store, marketDecider);
    this.credits = new StreamCache(store, creditDecider);
    this.facts = new ReadModel(runtime.store, { service: 'premium-pricing', ...PRICING_FACTS });
    this.logger = runtime.logger.child({ component: 'premium-pricing' });
  }

  // ---- facts from other services (this service's read model of their events) and pricing's own observations ----

  async contractFacts(contractId: string): Promise<ContractFacts | undefined> {
    const { state } = await this.facts.fold(streamName('contract', contractId), evolveContract, undefined);
    return state && contractFactsOf(contractId, state);
  }

  /**
   * The parties among `partyIds` in default at margin-monitor (its DefaultTriggered, as kept in
   * this service's read model): from then on SPEC §3.9 forbids quoting or binding on them.
   */
  async partiesInDefault(partyIds: readonly string[]): Promise<string[]> {
    const defaulted: string[] = [];
    for (const partyId of partyIds) if ((await this.defaultedAt(partyId)) !== undefined) defaulted.push(partyId);
    return defaulted;
  }

  /** The earliest instant one of `partyIds` went into default at margin-monitor, or +∞. */
  async defaultInstantMs(partyIds: readonly string[]): Promise<number> {
    let earliest = Number.POSITIVE_INFINITY;
    for (const partyId of partyIds) {
      const at = await this.defaultedAt(partyId);
      if (at !== undefined) earliest = Math.min(earliest, ms(at));
    }
    return earliest;
  }

  private async defaultedAt(partyId: string): Promise<string | undefined> {
    return (await this.facts.fold(streamName('margin', partyId), evolveDefault, undefined)).state;
  }

  private async party(partyId: string): Promise<KnownParty | undefined> {
    return (await this.facts.fold<KnownParty | undefined>(streamName('party', partyId), evolveParty, undefined)).state;
  }

  async partyExists(partyId: string): Promise<boolean> {
    return (await this.party(partyId)) !== undefined;
  }

  /** The later of intake's credit profile and the credit feed's last score. */
  async creditOf(partyId: string): Promise<CreditFacts | undefined> {
    const profile = profileCredit(partyId, await this.party(partyId));
    const feed = (await this.credits.load(creditStream(partyId))).state;
    return latestCredit(profile, feed);
  }

  async marketOf(underlying: string): Promise<MarketFacts | undefined> {
    return (await this.markets.load(marketStream(underlying))).state;
  }

  async openReservations(filter: (r: Reservation) => boolean = () => true): Promise<Reservation[]> {
    const { state } = await this.capacity.load(CAPACITY_STREAM);
    return Object.values(state.open).filter(filter);
  }

  /**
   * The pool's open coverages in `currency` (the capacity book's reservations, each with its
   * contract and its coverage's current limit) and the latest marks of their underlyings: what the
   * quote's marginal Cover-2 contribution is measured against.
   */
  async poolBook(currency: string): Promise<PoolBookFacts> {
    const coverages: OpenCoverageFacts[] = [];
    const markets: Record<string, MarketFacts> = {};
    for (const r of await this.openReservations((x) => x.currency === currency)) {
      const contract = await this.contractFacts(r.contractId);
      if (!contract) continue;
      const coverage = (await this.coverages.load(coverageStream(r.coverageId))).state;
      if (coverage.status === 'ENDED' || coverage.status === 'NONE') continue;
      coverages.push({
        coverageId: r.coverageId,
        contract,
        protectedPartyId: r.protectedPartyId,
        counterpartyId: r.counterpartyId,
        currency: r.currency,
        coverageLimitMinor: coverage.limitMinor,
      });
      if (!markets[contract.underlying]) {
        const market = await this.marketOf(contract.underlying);
        if (market) markets[contract.underlying] = market;
      }
    }
    return { coverages, markets };
  }

  /**
   * The quote's coverage's marginal Cover-2 contribution against the open coverages now (the
   * quote's own function): what the gate reserves. Undefined when the inputs are gone (the gate
   * then reserves the quote's figure).
   */
  async stressAtBind(quote: QuoteIssuedData, at: string): Promise<string | undefined> {
    const contract = await this.contractFacts(quote.contractId);
    const market = await this.marketOf(quote.underlying);
    if (!contract || !market || !isSupportedCurrency(quote.currency)) return undefined;
    const spot = Number(market.price);
    const volAnnual = Number(market.volAnnual ?? quote.basis.volAnnual);
    if (!(spot > 0) || !(volAnnual > 0)) return undefined;
    const scale = currencyOf(quote.currency).scale;
    const stress = marginalStress({
      contract,
      protectedSide: quote.protectedSide,
      spot,
      volAnnual,
      coverageLimitMinor: toMinor(quote.coverageLimit, scale),
      scale,
      nowMs: ms(at),
      book: await this.poolBook(quote.currency),
    });
    return fromMinor(floatToMinor(stress, scale, 'up'), scale);
  }

  // ---- commands ----

  async requestQuote(p: { quoteId: string; contractId: string; protectedPartyId: string; coverageLimit: string; termDays: number }, at: string, causation: Causation) {
    const contract = await this.contractFacts(p.contractId);
    if (!contract) notYetKnown('contractId', `contract ${p.contractId} is not known to premium-pricing yet (intake's ContractRegistered has not reached it)`);
    const side = sideOf(contract, p.protectedPartyId);
    const counterpartyId = side ? counterpartyOf(contract, side) : undefined;
    if (counterpartyId && !(await this.partyExists(counterpartyId))) {
      notYetKnown('contractId', `party ${counterpartyId} (the counterparty) is not known to premium-pricing yet (intake's PartyRegistered has not reached it)`);
    }
    return this.quotes.decide(
      quoteStream(p.quoteId),
      {
        type: 'RequestQuote',
        quoteId: p.quoteId,
        contract,
        protectedPartyId: p.protectedPartyId,
        coverageLimit: p.coverageLimit,
        termDays: p.termDays,
        market: await this.marketOf(contract.underlying),
        credit: counterpartyId ? await this.creditOf(counterpartyId) : undefined,
        partiesInDefault: await this.partiesInDefault([contract.longPartyId, contract.shortPartyId]),
        book: await this.poolBook(contract.currency),
        policy: this.policy,
        at,
      },
      causation,
    );
  }

  /**
   * Bind = check the quote → reserve capacity in the book (the serialisation point) → CoverageBound
   * → QuoteBound. Each step is idempotent under the command's causation id; a retried command
   * whose reservation is already in the book resumes after it, bound at the reservation's instant.
   */
  /** The party a quote protects (who may bind it); undefined for an unknown quote. */
  async protectedPartyOfQuote(quoteId: string): Promise<string | undefined> {
    return (await this.quotes.load(quoteStream(quoteId))).state.quote?.protectedPartyId;
  }

  async bindCoverage(p: { coverageId: string; quoteId: string }, at: string, causation: Causation): Promise<CachedDecision<CoverageState>> {
    const quote = (await this.quotes.load(quoteStream(p.quoteId))).state;
    const contractStatus = quote.quote ? (await this.contractFacts(quote.quote.contractId))?.status : undefined;
    const partiesInDefault = quote.quote ? await this.partiesInDefault([quote.quote.protectedPartyId, quote.quote.counterpartyId]) : [];
    const bind = (bindAt: string): CoverageCommand => ({ type: 'BindCoverage', coverageId: p.coverageId, quote, contractStatus, partiesInDefault, policy: this.policy, at: bindAt });
    const book = (await this.capacity.load(CAPACITY_STREAM)).state;
    let reserved = book.open[p.coverageId];
    if (!reserved || reserved.quoteId !== p.quoteId) {
      coverageDecider.decide(bind(at), (await this.coverages.load(coverageStream(p.coverageId))).state); // the quote's rules, before taking capacity
      const assessmentLagMs = this.policy.capacityAssessmentLagMs;
      const stressAtBind = await this.stressAtBind(quote.quote!, at);
      const after = await this.capacity.decide(CAPACITY_STREAM, { type: 'ReserveCapacity', coverageId: p.coverageId, quote: quote.quote!, assessmentLagMs, stressAtBind, at }, causation);
      reserved = after.state.open[p.coverageId];
    }
    // Only a retry of a bind that already failed and gave its capacity back gets here without one.
    if (!reserved) reject('coverageId', 'bindFailed', `coverage ${p.coverageId} holds no capacity: this bind failed before; send a new command`);
    let decided: CachedDecision<CoverageState>;
    try {
      decided = await this.coverages.decide(coverageStream(p.coverageId), bind(iso(reserved.reservedAtMs)), causation);
    } catch (err) {
      // Nothing bound: give the capacity back rather than leave it reserved for nobody.
      if (err instanceof DomainRejection) await this.release(p.coverageId, `bind failed: ${err.message}`, at, causation);
      throw err;
    }
    await this.quotes.decide(quoteStream(p.quoteId), { type: 'MarkQuoteBound', quoteId: p.quoteId, coverageId: p.coverageId, at }, causation);
    return decided;
  }

  async fundAccount(p: { partyId: string; amount: string; currency: string }, at: string, causation: Causation) {
    if (!(await this.partyExists(p.partyId))) notYetKnown('partyId', `party ${p.partyId} is not known to premium-pricing yet (intake's PartyRegistered has not reached it)`);
    const decided = await this.accounts.decide(
      accountStream(p.partyId),
      { type: 'FundPremiumAccount', partyId: p.partyId, amount: p.amount, currency: p.currency, partyKnown: true, at },
      causation,
    );
    // Money arriving within a grace period pays what was missed, now (not at the next tick, which may be after the deadline).
    for (const r of await this.openReservations((r) => r.protectedPartyId === p.partyId && r.currency === p.currency)) {
      await this.collect(r.coverageId, at).catch((err: Error) => this.logger.warn('premium collection after funding failed', { coverageId: r.coverageId, error: err.message }));
    }
    return decided;
  }

  withdrawAccount(p: { partyId: string; amount: string; currency: string }, at: string, causation: Causation) {
    return this.accounts.decide(accountStream(p.partyId), { type: 'WithdrawPremiumAccount', partyId: p.partyId, amount: p.amount, currency: p.currency, at }, causation);
  }

  // ---- premium collection (ticker, funding) ----

  /** One pass of every coverage that holds capacity (the ticker). One coverage failing does not stop the others. */
  async collectAll(nowIso: string): Promise<void> {
    for (const r of await this.openReservations()) {
      await this.collect(r.coverageId, nowIso).catch((err: Error) => this.logger.error('premium collection failed', { coverageId: r.coverageId, error: err.message }));
    }
  }

  /**
   * Carries out the coverage's premium schedule up to `nowIso` (nextPremiumAction): each due period
   * is debited from the premium account first — the account is the money's authority, so two
   * coverages of one desk cannot spend the same balance — then recorded on the coverage as charged
   * or missed. Causation ids are per period, so a crash between the two steps is finished by the
   * next pass without a second debit.
   */
  async collect(coverageId: string, nowIso: string): Promise<void> {
    const stream = coverageStream(coverageId);
    const nowMs = ms(nowIso);
    const tried = new Set<number>();
    let billToMs: number | undefined;
    for (let step = 0; step < PRICING_LIMITS.periodsPerPassMax + 3; step++) {
      const { state } = await this.coverages.load(stream);
      // SPEC §3.9: no premium accrues from a default on: periods are billed up to the default instant only.
      billToMs ??= Math.min(nowMs, state.bound ? await this.defaultInstantMs([state.bound.protectedPartyId, state.bound.counterpartyId]) : Number.POSITIVE_INFINITY);
      const action = nextPremiumAction(state, billToMs, tried);
      const cause = (what: string): Causation => ({ causationId: `${what}:${coverageId}`, correlationId: `coverage:${coverageId}`, occurredAt: nowIso });
      switch (action.kind) {
        case 'none':
          return;
        case 'settled':
          await this.release(coverageId, releaseReason(state, action.unpaidMinor), nowIso, cause('release'));
          return;
        case 'lapse':
          await this.coverages.decide(stream, { type: 'LapseCoverage', coverageId, at: nowIso }, cause('lapse'));
          break;
        case 'expire':
          await this.coverages.decide(stream, { type: 'EndCoverage', coverageId, reason: 'EXPIRED', detail: `term ended at ${iso(state.endMs)}`, at: nowIso }, cause('expire'));
          break;
        case 'charge': {
          tried.add(action.periodStartMs);
          const periodStart = iso(action.periodStartMs);
          const paid = await this.debit(state, action.periodStartMs, action.periodEndMs, action.amountMinor, nowIso, cause(`premium:${periodStart}`));
          await this.coverages.decide(stream, { type: 'ChargePremium', coverageId, periodStart, paid, at: nowIso }, cause(`premium-${paid ? 'paid' : 'missed'}:${periodStart}`));
          break;
        }
        default: {
          const exhaustive: never = action;
          throw new Error(`unhandled premium action ${JSON.stringify(exhaustive)}`);
        }
      }
    }
  }

  private async debit(state: CoverageState, startMs: number, endMs: number, amountMinor: bigint, at: string, causation: Causation): Promise<boolean> {
    if (amountMinor === 0n) return true;
    const bound = state.bound!;
    try {
      await this.accounts.decide(
        accountStream(bound.protectedPartyId),
        { type: 'DebitPremium', partyId: bound.protectedPartyId, coverageId: bound.coverageId, amountMinor, currency: bound.currency, periodStart: iso(startMs), periodEnd: iso(endMs), at },
        causation,
      );
      return true;
    } catch (err) {
      if (err instanceof DomainRejection) return false;
      throw err;
    }
  }

  async release(coverageId: string, reason: string, at: string, causation: Causation): Promise<void> {
    const held = (await this.capacity.load(CAPACITY_STREAM)).state.open[coverageId];
    if (!held) return;
    // Keyed by the reservation (coverage + quote): a coverage id freed by a failed bind can be bound and released again.
    await this.capacity.decide(CAPACITY_STREAM, { type: 'ReleaseCapacity', coverageId, reason, at }, { ...causation, causationId: `release:${coverageId}:${held.quoteId}` });
  }

  // ---- reactions to inputs and other services' events ----

  async observeMark(payload: { underlying: string; price: string; volAnnual?: string; at: string }, trigger: Trigger): Promise<void> {
    const observed = await this.markets.decide(
      marketStream(payload.underlying),
      { type: 'ObserveMark', underlying: payload.underlying, price: payload.price, ...(payload.volAnnual !== undefined ? { volAnnual: payload.volAnnual } : {}), at: payload.at },
      this.causation(trigger),
    );
    if (observed.eventTypes.length === 0 || observed.alreadyApplied) return;
    await this.repriceWhere((r) => r.underlying === payload.underlying, trigger);
  }

  async observeCredit(payload: { partyId: string; rating?: string; pdAnnual?: string; source: string; at: string }, trigger: Trigger): Promise<void> {
    const observed = await this.credits.decide(creditStream(payload.partyId), { type: 'ObserveCredit', ...payload }, this.causation(trigger));
    if (observed.eventTypes.length === 0 || observed.alreadyApplied) return;
    await this.repriceWhere((r) => r.counterpartyId === payload.partyId, trigger);
  }

  /** Intake changed a party's credit profile: re-price what it is the counterparty of. */
  async creditProfileUpdated(partyId: string, trigger: Trigger): Promise<void> {
    await this.repriceWhere((r) => r.counterpartyId === partyId, trigger);
  }

  /**
   * Re-prices every open coverage matching `filter` against the latest inputs; the decider decides
   * whether anything moved past a threshold (most calls write nothing).
   */
  async repriceWhere(filter: (r: Reservation) => boolean, trigger: Trigger): Promise<void> {
    const at = this.now();
    for (const r of await this.openReservations(filter)) {
      try {
        const contract = await this.contractFacts(r.contractId);
        const command: CoverageCommand = {
          type: 'RepriceCoverage',
          coverageId: r.coverageId,
          contract,
          market: await this.marketOf(r.underlying),
          credit: await this.creditOf(r.counterpartyId),
          policy: this.policy,
          at,
        };
        const decided = await this.coverages.decide(coverageStream(r.coverageId), command, { ...this.causation(trigger), causationId: `reprice:${trigger.causationId}`, occurredAt: at });
        if (decided.eventTypes.length > 0 && !decided.alreadyApplied) this.logger.info('coverage repriced', { coverageId: r.coverageId, trigger: trigger.causationId });
      } catch (err) {
        if (!(err instanceof DomainRejection)) throw err;
        this.logger.warn('coverage not repriced', { coverageId: r.coverageId, reason: err.message });
      }
    }
  }

  /** Its contract closed or settled, or its counterparty's default was settled: the coverage ends (then its last premium is charged). */
  async endCoverages(filter: (r: Reservation) => boolean, reason: CoverageEndReason, detail: string, at: string, trigger: Trigger): Promise<void> {
    for (const r of await this.openReservations(filter)) {
      await this.coverages.decide(coverageStream(r.coverageId), { type: 'EndCoverage', coverageId: r.coverageId, reason, detail, at }, { ...this.causation(trigger), causationId: `end:${trigger.causationId}` });
      await this.collect(r.coverageId, maxIso(at, this.now()));
    }
  }

  /**
   * default-settlement assessed the pool: note it in the capacity book (binds check against it);
   * when what is left is negative, cut coverage limits to free the shortfall (limitCuts).
   */
  async capacityAssessed(
    a: { poolId: string; currency: string; headroom: string; capital: string; cover2Requirement: string; assessedAt: string; worstCounterparties: readonly string[] },
    trigger: Trigger,
  ): Promise<void> {
    const at = this.now();
    const noted = await this.capacity.decide(
      CAPACITY_STREAM,
      { type: 'NoteCapacityAssessment', poolId: a.poolId, currency: a.currency, headroom: a.headroom, capital: a.capital, cover2Requirement: a.cover2Requirement, assessedAt: a.assessedAt, sourceEventId: trigger.causationId, at },
      this.causation(trigger),
    );
    const view = capacityAvailable(noted.state, a.currency, this.policy.capacityAssessmentLagMs);
    if (!view || view.availableMinor >= 0n) return;
    const deficit = -view.availableMinor;
    const inCurrency = Object.values(noted.state.open).filter((r) => r.currency === a.currency);
    const worst = inCurrency.filter((r) => a.worstCounterparties.includes(r.counterpartyId));
    const targets = worst.length > 0 ? worst : inCurrency;
    const states = await Promise.all(targets.map(async (r) => ({ r, state: (await this.coverages.load(coverageStream(r.coverageId))).state })));
    const active = states.filter(({ state }) => state.status === 'ACTIVE');
    const cuts = limitCuts(active.map(({ r, state }) => ({ coverageId: r.coverageId, limitMinor: state.limitMinor, stressMinor: state.stressMinor })), deficit);
    const reason =
      `pool ${a.poolId} capacity stressed: assessment at ${a.assessedAt} leaves ${fromMinorOf(view.availableMinor, a.currency)} ${a.currency} ` +
      `(headroom ${a.headroom}, Cover 2 requirement ${a.cover2Requirement}, capital ${a.capital}); ` +
      `limits ${worst.length > 0 ? `on ${[...new Set(worst.map((r) => r.counterpartyId))].join(', ')}` : 'of every coverage in ' + a.currency} cut pro rata to free ${fromMinorOf(deficit, a.currency)} of stress capacity`;
    for (const cut of cuts) {
      await this.coverages.decide(
        coverageStream(cut.coverageId),
        { type: 'ReduceLimit', coverageId: cut.coverageId, newLimitMinor: cut.newLimitMinor, reason, at },
        { ...this.causation(trigger), causationId: `limit-cut:${trigger.causationId}`, occurredAt: at },
      );
    }
  }

  now(): string {
    return this.runtime.clock.now().toISOString();
  }

  causation(trigger: Trigger): Causation {
    return { causationId: trigger.causationId, correlationId: trigger.correlationId, occurredAt: this.now(), ...(trigger.traceparent ? { traceparent: trigger.traceparent } : {}) };
  }
}

function releaseReason(state: CoverageState, unpaidMinor: bigint): string {
  const what = state.status === 'LAPSED' ? 'coverage lapsed' : `coverage ended (${state.closing?.reason ?? 'ended'})`;
  if (unpaidMinor === 0n || !state.bound) return what;
  return `${what}; ${fromMinor(unpaidMinor, state.scale)} ${state.bound.currency} of premium unpaid after its grace period`;
}

function fromMinorOf(amountMinor: bigint, currency: string): string {
  return fromMinor(amountMinor, currencyOf(currency).scale);
}

function maxIso(a: string, b: string): string {
  return ms(a) >= ms(b) ? a : b;
}
