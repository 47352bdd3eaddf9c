import { Envelope, makeEnvelope, TOPICS, TopicName } from '@backstop/messaging';
import { StoredEvent } from '@backstop/event-store';
import { ServiceName } from './config';

/** Each service owns its stream categories (SPEC section 1); no service writes another's. */
export const STREAM_OWNERS: Record<string, { service: ServiceName; topic: TopicName }> = {
  party: { service: 'contract-intake', topic: TOPICS.intakeEvents },
  contract: { service: 'contract-intake', topic: TOPICS.intakeEvents },
  collateral: { service: 'contract-intake', topic: TOPICS.intakeEvents },
  quote: { service: 'premium-pricing', topic: TOPICS.pricingEvents },
  coverage: { service: 'premium-pricing', topic: TOPICS.pricingEvents },
  pricing: { service: 'premium-pricing', topic: TOPICS.pricingEvents },
  margin: { service: 'margin-monitor', topic: TOPICS.marginEvents },
  market: { service: 'margin-monitor', topic: TOPICS.marginEvents },
  pool: { service: 'default-settlement', topic: TOPICS.settlementEvents },
  default: { service: 'default-settlement', topic: TOPICS.settlementEvents },
};

export function streamCategory(stream: string): string {
  const dash = stream.indexOf('-');
  return dash < 0 ? stream : stream.slice(0, dash);
}

export function streamEntityId(stream: string): string {
  const dash = stream.indexOf('-');
  return dash < 0 ? stream : stream.slice(dash + 1);
}

export function ownerOf(stream: string): { service: ServiceName; topic: TopicName } | undefined {
  return STREAM_OWNERS[streamCategory(stream)];
}

export function streamName(category: keyof typeof STREAM_OWNERS, id: string): string {
  return `${category}-${id}`;
}

/**
 * A stored event as the message the world sees on backstop.events.*: same id (so consumers dedupe
 * a republished event), keyed by the entity id, carrying the stream position for auditors.
 */
export function eventEnvelope(event: StoredEvent): Envelope {
  const meta = event.metadata;
  return makeEnvelope({
    id: event.id,
    type: event.type,
    schemaVersion: typeof meta.schemaVersion === 'number' ? meta.schemaVersion : 1,
    time: typeof meta.occurredAt === 'string' ? meta.occurredAt : event.recordedAt,
    key: streamEntityId(event.stream),
    correlationId: typeof meta.correlationId === 'string' ? meta.correlationId : event.id,
    causationId: typeof meta.causationId === 'string' ? meta.causationId : undefined,
    traceparent: typeof meta.traceparent === 'string' ? meta.traceparent : undefined,
    payload: { ...event.data, _stream: event.stream, _revision: event.revision, _position: event.position.toString() },
  });
}
