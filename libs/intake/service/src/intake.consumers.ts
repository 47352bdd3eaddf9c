import { contractDecider } from '@backstop/intake';
import { DomainRejection } from '@backstop/kernel';
import { TOPICS } from '@backstop/messaging';
import { ConsumerDefinition, decideOnStream, Runtime, streamName } from '@backstop/platform';

const SERVICE = 'contract-intake' as const;

/**
 * What intake listens to: default-settlement's ContractClosedOut marks the contract DEFAULTED
 * (SPEC §3.9), with the defaulter's collateral shown as taken by the close-out. Idempotent: the
 * causation is the close-out event's id, and a contract already DEFAULTED adds nothing.
 */
export function intakeConsumers(runtime: Runtime): ConsumerDefinition[] {
  const logger = runtime.logger.child({ component: SERVICE });
  return [
    {
      name: 'intake-close-outs',
      service: SERVICE,
      topics: [TOPICS.settlementEvents],
      types: ['ContractClosedOut'],
      handle: async (envelope) => {
        const p = envelope.payload;
        const fields = ['contractId', 'defaultId', 'defaulterPartyId', 'closeOutPrice', 'at'] as const;
        const missing = fields.filter((f) => typeof p[f] !== 'string');
        if (missing.length > 0) {
          logger.error(`ContractClosedOut without ${missing.join(', ')}: skipped`, { eventId: envelope.id });
          return;
        }
        const command = {
          type: 'MarkDefaulted' as const,
          contractId: p.contractId as string,
          defaultId: p.defaultId as string,
          defaulterPartyId: p.defaulterPartyId as string,
          closeOutPrice: p.closeOutPrice as string,
          at: p.at as string,
        };
        const causation = { causationId: envelope.id, correlationId: envelope.correlationId, occurredAt: runtime.clock.now().toISOString(), ...(envelope.traceparent ? { traceparent: envelope.traceparent } : {}) };
        try {
          await decideOnStream(runtime.store, streamName('contract', command.contractId), contractDecider, command, causation);
        } catch (err) {
          if (!(err instanceof DomainRejection)) throw err;
          logger.warn('ContractClosedOut not applied to the contract', { eventId: envelope.id, violations: err.violations.map((v) => `${v.field}:${v.rule}: ${v.message}`) });
        }
      },
    },
  ];
}
