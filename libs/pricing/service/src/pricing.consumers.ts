import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { DomainRejection, isIsoUtc, isSupportedCurrency } from '@backstop/kernel';
import { Envelope, flattenValidationErrors, InvalidMessageError, TOPICS } from '@backstop/messaging';
import { ConsumerDefinition, CreditScoreDto, Runtime, TickerDefinition } from '@backstop/platform';
import { PricingService, Trigger } from './pricing.service';

const SERVICE = 'premium-pricing' as const;

/** Clock skew allowed on an input's own time (margin-monitor's MARGIN_MARK_FUTURE_TOLERANCE_MS default). */
export const INPUT_FUTURE_TOLERANCE_MS = 5_000;

/**
 * An input that breaks its schema (the platform's MarkPriceDto / CreditScoreDto; HTTP checks them
 * too, but Kafka producers can send anything): thrown as an InvalidMessageError, so the consumer runner dead-letters it at once with this reason (never retried). */
export class InvalidInputError extends InvalidMessageError {
  constructor(type: string, detail: string) {
    super(`${type} payload is invalid: ${detail}`);
    this.name = 'InvalidInputError';
  }
}

function parseInput<T extends object>(type: string, dto: new () => T, payload: unknown): T {
  const instance = plainToInstance(dto, payload as object);
  const violations = flattenValidationErrors(validateSync(instance as object));
  if (violations.length > 0) throw new InvalidInputError(type, violations.map((v) => `${v.field}: ${v.message}`).join('; '));
  return instance;
}

function trigger(envelope: Envelope): Trigger {
  return { causationId: envelope.id, correlationId: envelope.correlationId, ...(envelope.traceparent ? { traceparent: envelope.traceparent } : {}) };
}

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const at = (envelope: Envelope): string => {
  const given = envelope.payload.at;
  return isIsoUtc(given) ? given : envelope.time;
};

/**
 * What pricing listens to, registered through the runtime so the same handlers run on Kafka
 * (their own consumer groups) and, in the single-process default, on the store (event topics)
 * and the in-process bus (input topics). Every handler is idempotent: decisions are keyed by the
 * message id (the event id, for events), so a redelivery writes nothing new.
 */
export function pricingConsumers(pricing: PricingService): ConsumerDefinition[] {
  return [
    {
      // The ONE accepted price view (issue 8 defect 3): margin-monitor's accepted marks, never the
      // raw feed, so pricing cannot quote or reprice on a price margin flagged (a 10^30 print, a
      // bad tick, a mark dated years ahead). Zero or absent vol = unknown: the last real one stays.
      name: 'pricing-accepted-marks',
      service: SERVICE,
      topics: [TOPICS.marginEvents],
      types: ['MarkRecorded'],
      handle: async (envelope) => {
        try {
          const mark = acceptedMark(envelope);
          if (mark === undefined) return;
          await pricing.observeMark(mark, trigger(envelope));
        } catch (err) {
          // Another service's event is not redelivered differently: retrying it forever would stall
          // this consumer (the store-fed subscription retries until success). Say so and move on.
          if (!(err instanceof InvalidInputError || err instanceof DomainRejection)) throw err;
          pricing.runtime.logger.error('MarkRecorded not usable; skipped', { eventId: envelope.id, error: err.message });
        }
      },
    },
    {
      name: 'pricing-credit-scores',
      service: SERVICE,
      topics: [TOPICS.creditScores],
      types: ['CreditScore'],
      handle: async (envelope) => {
        const score = parseInput('CreditScore', CreditScoreDto, envelope.payload);
        // Judged by the receiving clock: a score dated ahead of it would hide every later real one
        // (pricing keeps the newest by `at`), as a future-dated mark once poisoned the mark view.
        const aheadMs = Date.parse(score.at) - pricing.runtime.clock.now().getTime();
        if (aheadMs > INPUT_FUTURE_TOLERANCE_MS) throw new InvalidInputError('CreditScore', `at: ${score.at} is ${aheadMs} ms ahead of the receiving clock, tolerance ${INPUT_FUTURE_TOLERANCE_MS} ms`);
        const { partyId, rating, pdAnnual, source } = score;
        await pricing.observeCredit({ partyId, ...(rating !== undefined ? { rating } : {}), ...(pdAnnual !== undefined ? { pdAnnual } : {}), source, at: score.at }, trigger(envelope));
      },
    },
    {
      name: 'pricing-intake-events',
      service: SERVICE,
      topics: [TOPICS.intakeEvents],
      types: ['CreditProfileUpdated', 'ContractClosed'],
      handle: async (envelope) => {
        const p = envelope.payload;
        // Kept first (idempotent), so the reaction reads the read model with this fact in it.
        await pricing.facts.observe(envelope);
        if (envelope.type === 'CreditProfileUpdated' && str(p.partyId)) return pricing.creditProfileUpdated(str(p.partyId)!, trigger(envelope));
        if (envelope.type === 'ContractClosed' && str(p.contractId)) {
          const contractId = str(p.contractId)!;
          return pricing.endCoverages((r) => r.contractId === contractId, 'CONTRACT_CLOSED', `contract ${contractId} closed by both sides at ${str(p.closePrice) ?? '?'}`, at(envelope), trigger(envelope));
        }
      },
    },
    {
      name: 'pricing-margin-events',
      service: SERVICE,
      topics: [TOPICS.marginEvents],
      types: ['ContractSettled'],
      handle: async (envelope) => {
        const contractId = str(envelope.payload.contractId);
        if (!contractId) return;
        const detail = `contract ${contractId} settled (${str(envelope.payload.reason) ?? '?'}) at ${str(envelope.payload.price) ?? '?'}`;
        await pricing.endCoverages((r) => r.contractId === contractId, 'CONTRACT_SETTLED', detail, at(envelope), trigger(envelope));
      },
    },
    {
      name: 'pricing-settlement-events',
      service: SERVICE,
      topics: [TOPICS.settlementEvents],
      types: ['CapacityAssessed', 'DefaultSettled'],
      handle: async (envelope) => {
        const p = envelope.payload;
        if (envelope.type === 'DefaultSettled') {
          const partyId = str(p.partyId);
          if (!partyId) return;
          return pricing.endCoverages((r) => r.counterpartyId === partyId, 'DEFAULT_SETTLED', `default ${str(p.defaultId) ?? '?'} of ${partyId} settled`, at(envelope), trigger(envelope));
        }
        try {
          await pricing.capacityAssessed(capacityAssessment(envelope), trigger(envelope));
        } catch (err) {
          // Another service's event is not redelivered differently: retrying it forever would stall this
          // consumer (the store-fed subscription retries until success). Say so loudly and move on.
          if (!(err instanceof InvalidInputError || err instanceof DomainRejection)) throw err;
          pricing.runtime.logger.error('CapacityAssessed not usable; skipped', { eventId: envelope.id, error: err.message });
        }
      },
    },
  ];
}

/**
 * margin-monitor's MarkRecorded as pricing uses it: only an accepted one (`sane: true`); a vol is
 * kept only when it means something (> 0). A flagged mark is nothing to price on: undefined.
 * A malformed accepted one is an error (logged and skipped by the consumer).
 */
export function acceptedMark(envelope: Envelope): { underlying: string; price: string; volAnnual?: string; at: string } | undefined {
  const p = envelope.payload;
  if (p.sane !== true) return undefined;
  const underlying = str(p.underlying);
  const price = str(p.price);
  const markAt = str(p.at);
  if (!underlying || !price || !isIsoUtc(markAt) || !(Number(price) > 0) || !Number.isFinite(Number(price))) {
    throw new InvalidInputError('MarkRecorded', 'an accepted mark needs underlying, a positive decimal price and an ISO-8601 UTC at');
  }
  const vol = str(p.volAnnual);
  const realVol = vol !== undefined && Number(vol) > 0 && Number.isFinite(Number(vol));
  return { underlying, price, ...(realVol ? { volAnnual: vol } : {}), at: markAt };
}

/** CapacityAssessed as default-settlement documents it; a malformed one is an error (dead-lettered on Kafka, retried from the store). */
export function capacityAssessment(envelope: Envelope) {
  const p = envelope.payload;
  const stream = str(p._stream);
  const poolId = str(p.poolId) ?? (stream?.startsWith('pool-') ? stream.slice(5) : undefined);
  const currency = str(p.currency);
  const headroom = str(p.headroom);
  if (!poolId || !currency || !isSupportedCurrency(currency) || headroom === undefined) {
    throw new InvalidInputError('CapacityAssessed', 'needs poolId, a supported currency and headroom (a decimal string)');
  }
  const worst = Array.isArray(p.worstCounterparties) ? p.worstCounterparties : [];
  const worstCounterparties = worst
    .map((w) => (typeof w === 'string' ? w : str((w as Record<string, unknown>)?.partyId) ?? str((w as Record<string, unknown>)?.counterpartyId)))
    .filter((w): w is string => w !== undefined);
  return {
    poolId,
    currency,
    headroom,
    capital: str(p.capital) ?? '',
    cover2Requirement: str(p.cover2Requirement) ?? '',
    assessedAt: at(envelope),
    worstCounterparties,
  };
}

/** Premium collection: every tick charges what has fallen due, lapses what is past its grace, expires what is over. */
export function premiumTicker(pricing: PricingService, everyMs: number): TickerDefinition {
  return { name: 'pricing-premium-collection', service: SERVICE, everyMs, handle: (nowIso) => pricing.collectAll(nowIso) };
}

export function registerPricing(runtime: Runtime, pricing: PricingService, tickMs: number): void {
  runtime.registerConsumer(pricing.facts.consumer());
  pricingConsumers(pricing).forEach((consumer) => runtime.registerConsumer(consumer));
  runtime.registerTicker(premiumTicker(pricing, tickMs));
}
