import { EventStore, SubscriptionHandle, startCatchUpSubscription } from '@backstop/event-store';
import { encodeEnvelope, MessageBus, TopicNames } from '@backstop/messaging';
import { Logger, MetricsRegistry } from '@backstop/telemetry';
import { ServiceName } from './config';
import { eventEnvelope, ownerOf } from './streams';

/**
 * Events reach Kafka FROM the store: a checkpointed subscription publishes each appended event of
 * the streams this service owns; checkpoints follow in batches. A crash before the checkpoint
 * re-sends those events with the same message ids, which consumers dedupe: nothing is lost, nothing
 * takes effect twice. There is no second write that could be lost after the append.
 */
export async function startEventPublisher(options: {
  store: EventStore;
  bus: MessageBus;
  topics: TopicNames;
  services: readonly ServiceName[];
  logger: Logger;
  metrics: MetricsRegistry;
  name?: string;
}): Promise<SubscriptionHandle> {
  const published = options.metrics.counter('backstop_events_published_total', 'Events published from the store, by topic');
  const lag = options.metrics.gauge('backstop_publisher_position', 'Global position of the last published event');
  const name = options.name ?? `publisher-${[...options.services].sort().join('+')}`;
  return startCatchUpSubscription(options.store, {
    name,
    handle: async (event) => {
      const owner = ownerOf(event.stream);
      if (!owner || !options.services.includes(owner.service)) return false; // not ours: no checkpoint write due
      const topic = options.topics.of(owner.topic);
      await options.bus.publish(topic, [encodeEnvelope(eventEnvelope(event))]);
      published.inc({ topic });
      lag.set(Number(event.position), { publisher: name });
    },
    onError: (error, event, attempt) =>
      options.logger.warn('publishing an event failed; will retry', {
        eventId: event.id,
        stream: event.stream,
        attempt,
        error: (error as Error).message,
      }),
  });
}
