import { DomainRejection } from '@backstop/kernel';
import { Envelope, InvalidMessageError, TOPICS } from '@backstop/messaging';
import { ConsumerDefinition, FactNotYetKnownError, TickerDefinition } from '@backstop/platform';
import { MarginCallMissedData, PremiumChargedData } from '@backstop/settlement';
import { SERVICE, Settlement } from './settlement';
import { poolStream, readBook, step } from './steps';

/**
 * Pool events that change capital; pricing events that change coverage. Both republish capacity.
 * A limit cut must reach pricing as a new assessment at once (its next cut is decided on it), and a
 * repricing (its stress contribution moved) gets a fresh headroom too; pricing reprices on marks and
 * credit only, never on CapacityAssessed, so this is no loop.
 */
const CAPITAL_EVENTS = ['CapitalDeposited', 'CapitalWithdrawn', 'PremiumIncomeDistributed', 'MarginCoveredByBackstop', 'MarginAdvanceRepaid', 'DefaultLossCharged'];
const COVERAGE_EVENTS = ['CoverageBound', 'CoverageEnded', 'CoverageLimitReduced', 'CoverageRepriced', 'CoverageLapsed'];

/**
 * What default-settlement reacts to. Every handler is idempotent: pool and default appends derive
 * their event ids from the source event id (or a step id), so a redelivery appends nothing.
 * A message the pool rejects (wrong currency, a party already in default) or one missing fields is
 * thrown as InvalidMessageError: dead-lettered at once with the reason (visible, not just a log line),
 * never retried, since retrying would never succeed and would block the consumer behind it.
 */
export function settlementConsumers(settlement: Settlement): ConsumerDefinition[] {
  const { runtime, config, pool, settler, capacity, facts } = settlement;
  const logger = runtime.logger.child({ component: SERVICE });
  const now = () => runtime.clock.now().toISOString();
  const causation = (envelope: Envelope) => ({
    causationId: envelope.id,
    correlationId: envelope.correlationId,
    occurredAt: now(),
    ...(envelope.traceparent ? { traceparent: envelope.traceparent } : {}),
  });
  const onPool = async (envelope: Envelope, command: Parameters<typeof pool.decide>[0]) => {
    try {
      await step(runtime.store, poolStream(config.pool.poolId), pool, command, causation(envelope));
    } catch (err) {
      if (!(err instanceof DomainRejection)) throw err;
      logger.warn(`${envelope.type} not applied to the pool`, { eventId: envelope.id, violations: err.violations.map((v) => `${v.field}:${v.rule}: ${v.message}`) });
      throw new InvalidMessageError(`${envelope.type} ${envelope.id} not applied to the pool: ${err.message}`);
    }
  };
  const fields = (envelope: Envelope, names: readonly string[]): boolean => {
    const missing = names.filter((n) => typeof envelope.payload[n] !== 'string');
    if (missing.length > 0) throw new InvalidMessageError(`${envelope.type} ${envelope.id} without ${missing.join(', ')}`);
    return true;
  };

  return [
    {
      name: 'premium-income',
      service: SERVICE,
      topics: [TOPICS.pricingEvents],
      types: ['PremiumCharged'],
      handle: async (envelope) => {
        if (!fields(envelope, ['coverageId', 'payerPartyId', 'amount', 'currency'])) return;
        const d = envelope.payload as unknown as PremiumChargedData;
        await onPool(envelope, { type: 'DistributePremium', coverageId: d.coverageId, payerPartyId: d.payerPartyId, amount: d.amount, currency: d.currency, at: now() });
      },
    },
    {
      name: 'margin-cover',
      service: SERVICE,
      topics: [TOPICS.marginEvents],
      types: ['MarginCallMissed'],
      handle: async (envelope) => {
        if (!fields(envelope, ['callId', 'partyId', 'amount', 'currency'])) return;
        const d = envelope.payload as unknown as MarginCallMissedData;
        // SPEC §3.8: the advance is capped by the limits of those protected against the party.
        const book = await readBook(runtime.store);
        const protections = book.protectionsAgainst(d.partyId, typeof d.at === 'string' ? d.at : now(), d.currency);
        await onPool(envelope, { type: 'CoverMarginCall', callId: d.callId, partyId: d.partyId, amount: d.amount, currency: d.currency, protections, at: now() });
      },
    },
    {
      name: 'margin-advance-repayment',
      service: SERVICE,
      topics: [TOPICS.intakeEvents],
      types: ['CollateralDeposited'],
      handle: async (envelope) => {
        // The party's next deposits repay the pool's margin advance first (SPEC §3.8); none outstanding: no event.
        if (!fields(envelope, ['partyId', 'amount', 'currency'])) return;
        const d = envelope.payload as { partyId: string; amount: string; currency: string };
        await onPool(envelope, { type: 'RepayMarginAdvance', partyId: d.partyId, amount: d.amount, currency: d.currency, reference: envelope.id, at: now() });
      },
    },
    {
      name: 'default-settlement',
      service: SERVICE,
      topics: [TOPICS.marginEvents],
      types: ['DefaultTriggered'],
      handle: async (envelope) => {
        await settler.onTrigger(envelope);
      },
    },
    {
      name: 'capacity',
      service: SERVICE,
      topics: [TOPICS.pricingEvents, TOPICS.settlementEvents],
      types: [...COVERAGE_EVENTS, ...CAPITAL_EVENTS],
      handle: async (envelope) => {
        // Capacity is measured on this service's own book (its read model): a coverage change is
        // counted only once the read model keeps it (for the types it keeps), or the assessment would
        // miss the change it reports.
        const stream = (envelope.payload as { _stream?: unknown })._stream;
        if (facts.options.types.includes(envelope.type) && typeof stream === 'string' && !(await facts.waitForFact(stream, envelope.id))) {
          throw new FactNotYetKnownError(`${envelope.type} ${envelope.id}: default-settlement's read model has not kept it yet; redelivered later`);
        }
        await capacity.publish(true, envelope.id, envelope.correlationId);
      },
    },
  ];
}

export function settlementTickers(settlement: Settlement): TickerDefinition[] {
  const { config, settler, capacity } = settlement;
  return [
    {
      name: 'settlement-capacity',
      service: SERVICE,
      everyMs: config.capacityTickMs,
      handle: (nowIso) => capacity.publish(false, `capacity-tick:${nowIso}`),
    },
    {
      name: 'settlement-resume',
      service: SERVICE,
      everyMs: config.resumeTickMs,
      handle: () => settler.resumeFrozen(),
    },
  ];
}
