import Database from 'better-sqlite3';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { DomainRejection } from '@backstop/kernel';
import { SqliteEventStore } from '@backstop/event-store';
import { describeKafka, sleep, waitUntil } from '@backstop/testing';
import { startConsumer, DeadLetter } from './consumer-runner';
import { encodeEnvelope, makeEnvelope } from './envelope';
import { classifyError, InvalidMessageError } from './errors';
import { KafkaBus } from './kafka-bus';

/** Issue 9, defect 12: errors are classified by type, each class produced by the real broker or store. */
describeKafka('error classes from the real broker and store', (brokers) => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-errors-'));
  const unreachable = new Kafka({ clientId: 'nowhere', brokers: ['127.0.0.1:1'], connectionTimeout: 300, retry: { retries: 0 }, logLevel: logLevel.NOTHING });
  let bus: KafkaBus;
  beforeAll(() => {
    bus = new KafkaBus({ brokers, clientId: 'errors-int' });
  });
  afterAll(() => bus.close());

  const failure = async (work: () => Promise<unknown>): Promise<unknown> => {
    try {
      await work();
    } catch (err) {
      return err;
    }
    throw new Error('expected a failure');
  };

  it('a broker that cannot be reached is transient; a record the broker refuses for its size is the message\'s fault', async () => {
    const producer = unreachable.producer();
    const down = await failure(() => producer.connect());
    expect((down as Error).name).toMatch(/^KafkaJS/);
    expect(classifyError(down)).toBe('transient');
    const topic = `errors-${randomUUID().slice(0, 8)}`;
    await bus.ensureTopics([topic]);
    const tooLarge = await failure(() => bus.publish(topic, [{ key: 'k', value: randomBytes(2_000_000) }]));
    expect(classifyError(tooLarge)).toBe('invalid');
  }, 60_000);

  it('SQLite busy/full/IO errors and a concurrent writer are transient; validation and rules are invalid; a bug is unknown', async () => {
    const file = join(dir, 'busy.db');
    const store = new SqliteEventStore(file);
    await store.append('s', [{ id: randomUUID(), type: 'A', data: {} }], 'no_stream');
    const conflict = await failure(() => store.append('s', [{ id: randomUUID(), type: 'B', data: {} }], 'no_stream'));
    expect(classifyError(conflict)).toBe('transient');
    const locker = new Database(file);
    locker.pragma('busy_timeout = 0');
    const other = new Database(file);
    other.pragma('busy_timeout = 0');
    locker.exec('BEGIN IMMEDIATE');
    const busy = await failure(async () => other.exec('BEGIN IMMEDIATE'));
    locker.exec('ROLLBACK');
    locker.close();
    other.close();
    expect((busy as { code?: string }).code).toBe('SQLITE_BUSY');
    expect(classifyError(busy)).toBe('transient');
    expect(classifyError(new Database.SqliteError('database or disk is full', 'SQLITE_FULL'))).toBe('transient');
    expect(classifyError(new Database.SqliteError('disk I/O error', 'SQLITE_IOERR_WRITE'))).toBe('transient');
    expect(classifyError(new InvalidMessageError('price must be a decimal string'))).toBe('invalid');
    expect(classifyError(new DomainRejection([{ field: 'amount', rule: 'positive', message: 'amount must be positive' }]))).toBe('invalid');
    expect(classifyError(new TypeError('x is undefined'))).toBe('unknown');
    // Names no longer decide: an error merely NAMED like an outage is not treated as one.
    const impostor = new Error('boom');
    impostor.name = 'ServiceUnavailable';
    expect(classifyError(impostor)).toBe('unknown');
    await store.close();
  });

  it('a broker failure while replying redelivers the command: it is answered once, never dead-lettered, and the consumer says it is retrying meanwhile', async () => {
    const topic = `cmds-${randomUUID().slice(0, 8)}`;
    const replies = `replies-${randomUUID().slice(0, 8)}`;
    const dlq = `dlq-${randomUUID().slice(0, 8)}`;
    await bus.ensureTopics([topic, replies, dlq]);
    const store = new SqliteEventStore(join(dir, 'processed.db'));
    const dead: DeadLetter[] = [];
    const answered: string[] = [];
    const dlqReader = await bus.subscribe({ groupId: `r-${dlq}`, topics: [dlq, replies], handle: async (m) => {
      if (m.topic === dlq) dead.push(JSON.parse(m.value.toString()) as DeadLetter);
      else answered.push(m.key);
    } });
    const blip = unreachable.producer();
    let attempts = 0;
    const statuses: string[] = [];
    const runner = await startConsumer({
      bus,
      groupId: `g-${topic}`,
      topics: [topic],
      dlqTopic: dlq,
      processed: store,
      accepts: (type) => type === 'Ping',
      retryBackoffMs: 20,
      handle: async (envelope) => {
        attempts += 1;
        // The first replies go to a broker that is not there (a real kafkajs connection error), for
        // longer than the bounded retries of an unknown failure would last.
        if (attempts <= 5) await blip.connect();
        await bus.publish(replies, [{ key: envelope.id, value: 'reply' }]);
        return 'done';
      },
    });
    const watcher = setInterval(() => statuses.push(runner.status().state), 20);
    try {
      const ping = makeEnvelope({ type: 'Ping', key: 'k', time: '2026-01-01T00:00:00Z', payload: {} });
      await bus.publish(topic, [encodeEnvelope(ping)]);
      await waitUntil(() => (answered.includes(ping.id) ? true : undefined), 30_000, 'the reply after the blip');
      await sleep(500);
      expect(attempts).toBe(6);
      expect(answered.filter((k) => k === ping.id)).toHaveLength(1);
      expect(dead).toEqual([]);
      expect(statuses).toContain('retrying');
      expect(runner.status().state).toBe('running');
    } finally {
      clearInterval(watcher);
      await runner.stop();
      await dlqReader.stop();
      await store.close();
    }
  }, 60_000);
});
