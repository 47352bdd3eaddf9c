/**
 * A process the crash test SIGKILLs at the worst moments. Modes (argv[2]):
 *   append <n>            append n events, print APPENDED <position>, then hang (never publishes)
 *   publish <crashAfter>  run the store→Kafka publisher; SIGKILL itself right after the
 *                         crashAfter-th send is acknowledged by Kafka, before the checkpoint is stored
 *   publish-all <pos>     run the publisher until <pos> is published, then exit 0
 * Env: DATA_FILE, KAFKA_BROKERS, TOPIC_PREFIX.
 */
import { randomUUID } from 'node:crypto';
import { SqliteEventStore } from '@backstop/event-store';
import { KafkaBus, TopicNames } from '@backstop/messaging';
import { startEventPublisher } from '@backstop/platform';
import { MetricsRegistry, silentLogger } from '@backstop/telemetry';

async function main(): Promise<void> {
  const [mode, arg] = process.argv.slice(2);
  const store = new SqliteEventStore(process.env.DATA_FILE!);
  // Hard bound: this child never outlives a broken test.
  setTimeout(() => process.exit(3), 60_000).unref();
  if (mode === 'append') {
    let last = 0n;
    for (let i = 0; i < Number(arg); i += 1) {
      const r = await store.append(`party-crash${i}`, [{ id: randomUUID(), type: 'PartyRegistered', data: { partyId: `crash${i}`, n: i } }], 'any');
      last = r.position;
    }
    process.stdout.write(`APPENDED ${last}\n`);
    setInterval(() => undefined, 1_000);
    return;
  }
  const real = new KafkaBus({ brokers: process.env.KAFKA_BROKERS!.split(','), clientId: 'crash-child' });
  let sends = 0;
  const crashAfter = mode === 'publish' ? Number(arg) : Infinity;
  const bus = Object.create(real) as KafkaBus;
  bus.publish = async (topic, messages) => {
    await real.publish(topic, messages);
    sends += 1;
    if (sends >= crashAfter) process.kill(process.pid, 'SIGKILL');
  };
  const sub = await startEventPublisher({
    store,
    bus,
    topics: new TopicNames(process.env.TOPIC_PREFIX ?? ''),
    services: ['contract-intake'],
    logger: silentLogger,
    metrics: new MetricsRegistry(),
    name: 'crash-publisher',
  });
  if (mode === 'publish-all') {
    await sub.waitFor(BigInt(arg), 30_000);
    await sub.stop();
    await real.close();
    process.stdout.write(`PUBLISHED ${sub.position()}\n`);
    process.exit(0);
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(2);
});
