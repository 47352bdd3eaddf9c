import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@backstop/event-store';
import { ConsumerHandle, KafkaBus, startConsumer, TOPICS, TopicNames } from '@backstop/messaging';
import { describeKafka, uniquePrefix, waitUntil } from '@backstop/testing';

const ROOT = join(__dirname, '..', '..');

interface ChildRun {
  child: ChildProcess;
  stdout: () => string;
  output: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>;
}

function runChild(args: string[], env: Record<string, string>): ChildRun {
  const child = spawn(process.execPath, ['-r', join(ROOT, 'tools/register.js'), join(ROOT, 'test/e2e/crash-child.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const output = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stdout: stdout + stderr })),
  );
  return { child, stdout: () => stdout, output };
}

describeKafka('SIGKILL between append and publish', (brokers) => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-crash-'));
  const prefix = uniquePrefix('crash');
  const topics = new TopicNames(prefix);
  const env = { DATA_FILE: join(dir, 'events.db'), KAFKA_BROKERS: brokers.join(','), TOPIC_PREFIX: prefix };
  let bus: KafkaBus;
  let consumer: ConsumerHandle | undefined;
  const consumerStore = new SqliteEventStore(join(dir, 'consumer.db'));

  afterAll(async () => {
    await consumer?.stop();
    await bus?.close();
    await consumerStore.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes every appended event exactly once in effect after crashes, and loses none', async () => {
    bus = new KafkaBus({ brokers, clientId: 'crash-test' });
    await bus.ensureTopics(topics.all());
    const effects = new Map<string, number>();
    const deliveries: string[] = [];
    consumer = await startConsumer({
      bus,
      groupId: `${prefix}downstream`,
      topics: [topics.of(TOPICS.intakeEvents)],
      dlqTopic: topics.of(TOPICS.dlq),
      processed: consumerStore,
      accepts: () => true,
      handle: async (envelope) => {
        effects.set(envelope.id, (effects.get(envelope.id) ?? 0) + 1);
      },
    });
    const raw = await bus.subscribe({
      groupId: `${prefix}raw-observer`,
      topics: [topics.of(TOPICS.intakeEvents)],
      handle: async (m) => {
        deliveries.push(JSON.parse(m.value.toString()).id as string);
      },
    });

    // 1. Killed after the append, before anything was published.
    const appender = runChild(['append', '5'], env);
    await waitUntil(() => /APPENDED (\d+)/.exec(appender.stdout()) ?? undefined, 30_000, 'the appender to append');
    appender.child.kill('SIGKILL');
    const appended = await appender.output;
    expect(appended.signal).toBe('SIGKILL');
    const lastPosition = BigInt(/APPENDED (\d+)/.exec(appended.stdout)![1]);

    // 2. The publisher is killed right after Kafka acknowledged the 3rd send, before its checkpoint.
    const crashing = runChild(['publish', '3'], env);
    const crashed = await crashing.output;
    expect(crashed.signal).toBe('SIGKILL');

    // 3. Restarted, it publishes the rest (re-sending the 3rd: at-least-once on the wire).
    const resumed = await runChild(['publish-all', String(lastPosition)], env).output;
    expect(resumed.code).toBe(0);

    const store = new SqliteEventStore(env.DATA_FILE);
    const stored = (await store.readAll({ maxCount: 100 })).map((e) => e.id);
    await store.close();
    expect(stored).toHaveLength(5);
    await waitUntil(() => stored.every((id) => effects.has(id)) || undefined, 30_000, 'every stored event to reach the consumer');
    await waitUntil(() => deliveries.length >= 6 || undefined, 10_000, 'the duplicate delivery to be observed');
    await raw.stop();

    expect([...effects.keys()].sort()).toEqual([...stored].sort());
    expect([...effects.values()].every((n) => n === 1)).toBe(true);
    // The wire did carry a duplicate (the send before the crash), and the idempotent consumer absorbed it.
    expect(deliveries.length).toBeGreaterThan(stored.length);
    expect(new Set(deliveries)).toEqual(new Set(stored));
  }, 120_000);
});
