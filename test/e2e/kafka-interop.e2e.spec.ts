import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { CompressionCodecs, CompressionTypes } from 'kafkajs';
import { IntakeModule } from '@backstop/intake-service';
import {
  ConsumerHandle,
  DeadLetter,
  KAFKA_COMPRESSIONS,
  KafkaBus,
  KafkaCompression,
  lz4Codec,
  overrideKafkaCodecForTest,
  TOPICS,
  TopicNames,
} from '@backstop/messaging';
import { CommandReply, startTestBackstop, TestBackstop } from '@backstop/platform';
import { describeKafka, uniquePrefix, waitUntil } from '@backstop/testing';

const { runInterop } = require('../../tools/kafka/java-client') as {
  runInterop(args: string[], options?: { input?: string; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>;
};

interface Seen {
  topic: string;
  key: string;
  headers: Record<string, string>;
  value: Buffer;
}
interface JavaRecord {
  topic: string;
  key: string;
  value: string;
  headers: Record<string, string>;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const KCAT = spawnSync('kcat', ['-V'], { stdio: 'ignore' }).status === 0;

/** A desk's RegisterParty command as JSON text plus the headers a desk sets (SPEC section 8). */
function deskCommand(partyId: string) {
  const id = randomUUID();
  const correlationId = randomUUID();
  const traceparent = `00-${randomUUID().replace(/-/g, '')}-${randomUUID().replace(/-/g, '').slice(0, 16)}-01`;
  const envelope = {
    id,
    type: 'RegisterParty',
    schemaVersion: 1,
    key: partyId,
    time: '2026-01-01T00:00:00Z',
    correlationId,
    traceparent,
    payload: { partyId, name: `Desk ${partyId}`, role: 'DESK', credit: { rating: 'A' } },
  };
  const headers = { 'message-id': id, 'message-type': 'RegisterParty', 'schema-version': '1', 'correlation-id': correlationId, traceparent };
  return { id, correlationId, traceparent, key: partyId, value: JSON.stringify(envelope), headers };
}

async function javaProduce(brokers: string[], topic: string, compression: KafkaCompression, messages: { key: string; value: string; headers: Record<string, string> }[]) {
  const input = messages.map((m) => JSON.stringify(m)).join('\n');
  const run = await runInterop(['produce', brokers.join(','), topic, compression], { input, timeoutMs: 60_000 });
  if (run.code !== 0) throw new Error(`Java producer (${compression}) failed: ${run.stderr.slice(-2000)}`);
}

async function javaConsume(brokers: string[], topics: string[], keys: string[]): Promise<JavaRecord[]> {
  const run = await runInterop(['consume', brokers.join(','), topics.join(','), '45000', keys.join(',')], { timeoutMs: 60_000 });
  if (run.code !== 0) throw new Error(`Java consumer failed (${run.code}): ${run.stderr.slice(-2000)}`);
  return run.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as JavaRecord);
}

describeKafka('desks\' own Kafka clients: every codec, the official Java client and librdkafka', (brokers) => {
  const prefix = uniquePrefix('interop');
  const topics = new TopicNames(prefix);
  const commandsTopic = topics.of(TOPICS.intakeCommands);
  let app: TestBackstop;
  let client: KafkaBus;
  let observer: ConsumerHandle;
  const seen: Seen[] = [];
  const sent = new Map<KafkaCompression, ReturnType<typeof deskCommand>>();

  beforeAll(async () => {
    app = await startTestBackstop({
      modules: [IntakeModule],
      services: ['contract-intake'],
      config: { mode: 'distributed', kafkaBrokers: brokers, topicPrefix: prefix },
    });
    client = new KafkaBus({ brokers, clientId: 'interop-e2e' });
    observer = await client.subscribe({
      groupId: `${prefix}observer`,
      topics: [topics.of(TOPICS.replies), topics.of(TOPICS.intakeEvents), topics.of(TOPICS.dlq)],
      handle: async (m) => {
        seen.push({ topic: m.topic, key: m.key, headers: m.headers, value: m.value });
      },
    });
  }, 90_000);
  afterAll(async () => {
    await observer?.stop();
    await client?.close();
    await app?.close();
  });

  const replyTo = (commandId: string) =>
    waitUntil(
      () => {
        const s = seen.find((x) => x.topic === topics.of(TOPICS.replies) && x.key === commandId);
        return s ? (JSON.parse(s.value.toString()).payload as CommandReply) : undefined;
      },
      45_000,
      `reply to ${commandId}`,
    );

  it.each(KAFKA_COMPRESSIONS.map((c) => [c]))('answers a command the Java client produced with compression.type=%s', async (compression) => {
    const command = deskCommand(`java-${compression}`);
    sent.set(compression, command);
    await javaProduce(brokers, commandsTopic, compression, [command]);
    expect(await replyTo(command.id)).toMatchObject({ status: 'ACCEPTED', stream: `party-java-${compression}`, revision: 0 });
  }, 90_000);

  it('lets the Java consumer read the replies and events with their headers intact', async () => {
    const commands = [...sent.values()];
    expect(commands).toHaveLength(KAFKA_COMPRESSIONS.length);
    const records = await javaConsume(brokers, [topics.of(TOPICS.replies), topics.of(TOPICS.intakeEvents)], [...commands.map((c) => c.id), ...commands.map((c) => c.key)]);
    for (const command of commands) {
      const reply = records.find((r) => r.topic === topics.of(TOPICS.replies) && r.key === command.id);
      expect(reply).toBeDefined();
      const body = JSON.parse(reply!.value);
      expect(body).toMatchObject({ type: 'CommandAccepted', causationId: command.id, correlationId: command.correlationId });
      expect(reply!.headers).toMatchObject({ 'message-type': 'CommandAccepted', 'message-id': body.id, 'causation-id': command.id, 'correlation-id': command.correlationId });
      const event = records.find((r) => r.topic === topics.of(TOPICS.intakeEvents) && r.key === command.key);
      expect(event).toBeDefined();
      expect(JSON.parse(event!.value)).toMatchObject({ type: 'PartyRegistered', causationId: command.id, correlationId: command.correlationId });
      expect(event!.headers).toMatchObject({ 'message-type': 'PartyRegistered', 'causation-id': command.id, 'correlation-id': command.correlationId });
    }
  }, 90_000);

  it.each(KAFKA_COMPRESSIONS.map((c) => [c]))('produces with KAFKA_COMPRESSION=%s what the Java consumer reads, headers included', async (compression) => {
    const bus = new KafkaBus({ brokers, clientId: `interop-out-${compression}`, compression });
    const topic = `${prefix}interop.out.${compression}`;
    try {
      await bus.ensureTopics([topic]);
      // Large enough to compress (and to span several snappy/lz4 blocks), with non-ASCII text.
      const value = JSON.stringify({ codec: compression, text: 'Grüße €'.repeat(8_000), n: 1 }); // 88 kB
      await bus.publish(topic, [{ key: `k-${compression}`, value, headers: { 'message-type': 'Probe', 'correlation-id': `c-${compression}` } }]);
      const [record] = (await javaConsume(brokers, [topic], [`k-${compression}`])).filter((r) => r.key === `k-${compression}`);
      expect({ length: record.value.length, sha256: sha256(record.value) }).toEqual({ length: value.length, sha256: sha256(value) });
      expect(record.headers).toEqual({ 'message-type': 'Probe', 'correlation-id': `c-${compression}` });
    } finally {
      await bus.close();
    }
  }, 90_000);

  it('dead-letters a batch it cannot decode with its raw bytes, counts it, and keeps consuming', async () => {
    // Stand in for any decoder failure (a codec bug, a codec this client lacks): lz4 decoding fails
    // in this process while the Java client sends an lz4 batch. Without the guard kafkajs crashes the
    // consumer on it and no later command is answered (issue 14).
    const restore = overrideKafkaCodecForTest(CompressionTypes.LZ4, {
      compress: lz4Codec.compress,
      decompress: async () => {
        throw new Error('simulated decoder failure');
      },
    });
    const poisoned = deskCommand('java-undecodable');
    try {
      await javaProduce(brokers, commandsTopic, 'lz4', [poisoned]);
      const dead = await waitUntil(
        () => seen.filter((s) => s.topic === topics.of(TOPICS.dlq)).map((s) => JSON.parse(s.value.toString()) as DeadLetter).find((d) => d.reason === 'UNDECODABLE'),
        45_000,
        'an UNDECODABLE dead letter',
      );
      expect(dead.detail).toMatch(/lz4: simulated decoder failure .*batch of 1 records from offset \d+/);
      expect(dead.source.topic).toBe(commandsTopic);
      // The original bytes: the lz4 batch as the Java client wrote it, which a working decoder opens.
      const original = await lz4Codec.decompress(Buffer.from(dead.originalBase64, 'base64'));
      expect(original.toString('utf8')).toContain(poisoned.id);
    } finally {
      restore();
    }
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(/backstop_kafka_undecodable_batches_total\{[^}]*codec="lz4"[^}]*\} 1/);
    const ready = await app.get<{ ready?: boolean; status?: string }>('/health/ready');
    expect(ready.status).toBe(200);
    const after = deskCommand('java-after-undecodable');
    await javaProduce(brokers, commandsTopic, 'lz4', [after]);
    expect(await replyTo(after.id)).toMatchObject({ status: 'ACCEPTED' });
    expect(seen.some((s) => s.topic === topics.of(TOPICS.replies) && s.key === poisoned.id)).toBe(false);
  }, 120_000);

  it('reports a failure it cannot skip: not ready and counted while the consumer restarts, then it recovers', async () => {
    // A decoder failure outside the guard (raw codec, no batch header to trust) makes kafkajs crash
    // the consumer; it used to stay down silently. Now it restarts, and readiness says why meanwhile.
    const codecs = CompressionCodecs as unknown as Record<number, () => unknown>;
    const before = codecs[CompressionTypes.ZSTD];
    codecs[CompressionTypes.ZSTD] = () => ({
      compress: async ({ buffer }: { buffer: Buffer }) => buffer,
      decompress: async () => {
        throw new Error('simulated failure the guard cannot skip');
      },
    });
    const command = deskCommand('java-crash');
    try {
      await javaProduce(brokers, commandsTopic, 'zstd', [command]);
      const checks = await waitUntil(async () => {
        // With an operator token: anonymous probes see the verdict but not the crash's detail.
        const res = await fetch(`${app.url}/health/ready`, { headers: { authorization: `Bearer ${app.runtime.auth.tokenFor('operator')}` } });
        const body = (await res.json()) as { checks: Record<string, string> };
        return res.status === 503 ? body.checks : undefined;
      }, 45_000, 'readiness to fail');
      expect(Object.entries(checks).find(([k]) => k.startsWith('kafka-consumer:'))?.[1]).toMatch(/crashed, restarting: .*simulated failure the guard cannot skip/);
      expect(await (await fetch(`${app.url}/metrics`)).text()).toMatch(/backstop_kafka_consumer_crashes_total\{consumer_group="[^"]*contract-intake\.commands"\} [1-9]/);
    } finally {
      codecs[CompressionTypes.ZSTD] = before;
    }
    expect(await replyTo(command.id)).toMatchObject({ status: 'ACCEPTED' });
    await waitUntil(async () => ((await fetch(`${app.url}/health/ready`)).status === 200 ? true : undefined), 45_000, 'ready again');
  }, 120_000);

  (KCAT ? describe : describe.skip)(KCAT ? 'with kcat (librdkafka)' : 'with kcat (librdkafka) (skipped: kcat is not installed; apt-get install -y kcat)', () => {
    it.each(KAFKA_COMPRESSIONS.map((c) => [c]))('answers a command kcat produced with -z %s and kcat reads the reply with headers', async (compression) => {
      const command = deskCommand(`kcat-${compression}`);
      const headerArgs = Object.entries(command.headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]);
      execFileSync('kcat', ['-P', '-b', brokers.join(','), '-t', commandsTopic, '-z', compression, '-k', command.key, '-X', 'acks=all', '-X', 'enable.idempotence=true', ...headerArgs], {
        input: command.value,
        timeout: 30_000,
      });
      expect(await replyTo(command.id)).toMatchObject({ status: 'ACCEPTED', stream: `party-kcat-${compression}` });
      const out = execFileSync('kcat', ['-C', '-b', brokers.join(','), '-t', topics.of(TOPICS.replies), '-o', 'beginning', '-e', '-q', '-f', '%k\t%h\n'], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      const line = out.split('\n').find((l) => l.startsWith(`${command.id}\t`));
      expect(line).toBeDefined();
      const headers = Object.fromEntries(line!.split('\t')[1].split(',').map((h) => h.split('=', 2) as [string, string]));
      expect(headers).toMatchObject({ 'message-type': 'CommandAccepted', 'causation-id': command.id, 'correlation-id': command.correlationId });
    }, 60_000);
  });
});
