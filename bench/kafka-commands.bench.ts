/**
 * Issue 13, Kafka row: a burst of commands over the real broker into the four services, each its
 * own process (as deployed), against a bare kafkajs echo loop on the same broker with the same
 * message count. Both sides: the burst is produced as fast as the client can (500 per produce), and
 * a message counts when its answer (the service's reply on backstop.replies, or the echo) is back at
 * the client. Prints commands/s and p99 (send → answer) for both, and the ratio; the median of
 * BENCH_KAFKA_ROUNDS rounds (default 3) with the spread (min–max); writes bench/results/kafka-commands.json.
 *
 * BENCH_KAFKA_BURST (default 20,000) sets the burst; e.g. BENCH_KAFKA_BURST=2000 for a quick run.
 * KAFKA_BROKERS uses a running broker; otherwise one is started (tools/kafka/broker.js) and stopped.
 *
 * The burst is split evenly over the four command topics, commands that do real work:
 * intake RegisterParty (new parties: accepted, one new stream each), pricing FundPremiumAccount
 * (parties registered before the timing: accepted, appended to their account streams), margin
 * DeclareDefault and settlement RecordRecovery naming no known party or default (decided on their
 * streams and rejected: nothing written). The printed accepted/rejected counts say what ran.
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { encodeEnvelope, KafkaBus, makeEnvelope, OutgoingMessage, TOPICS, TopicNames } from '@backstop/messaging';
import type { RunningApp } from '@backstop/testing';
import { startServiceApps, SERVICE_COMMAND_TOPICS } from '../test/e2e/scenario/services';

const { startBroker } = require('../tools/kafka/broker') as { startBroker: (o?: { log?: (m: string) => void }) => Promise<{ brokers: string; stop(): Promise<void> }> };

const BURST = Number(process.env.BENCH_KAFKA_BURST ?? 20_000);
const ROUNDS = Number(process.env.BENCH_KAFKA_ROUNDS ?? 3);
const PRODUCE_CHUNK = 500;
const SERVICES = Object.keys(SERVICE_COMMAND_TOPICS) as (keyof typeof SERVICE_COMMAND_TOPICS)[];
const FUNDED_PARTIES = 100;

interface RoundFigures {
  readonly perSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly seconds: number;
  readonly accepted?: number;
  readonly rejected?: number;
}

const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Produces `messages` per topic in chunks, all topics at once; stamps each key's send time. */
async function burst(client: KafkaBus, byTopic: ReadonlyMap<string, { key: string; message: OutgoingMessage }[]>, sentAt: Map<string, number>): Promise<void> {
  await Promise.all(
    [...byTopic].map(async ([topic, items]) => {
      for (let i = 0; i < items.length; i += PRODUCE_CHUNK) {
        const chunk = items.slice(i, i + PRODUCE_CHUNK);
        const at = performance.now();
        chunk.forEach((c) => sentAt.set(c.key, at));
        await client.publish(topic, chunk.map((c) => c.message));
      }
    }),
  );
}

function figures(sentAt: ReadonlyMap<string, number>, answeredAt: ReadonlyMap<string, number>, started: number): RoundFigures {
  const latencies = [...answeredAt].map(([key, at]) => at - (sentAt.get(key) ?? at)).sort((a, b) => a - b);
  const seconds = (Math.max(...answeredAt.values()) - started) / 1000;
  return { perSec: answeredAt.size / seconds, p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99), seconds };
}

async function waitFor(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The baseline: a child process consuming each input topic (eachBatch) and producing an echo per message, one send per batch. */
async function echoRound(brokers: string, round: number): Promise<RoundFigures> {
  const prefix = `bench-echo-${Date.now().toString(36)}-${round}.`;
  const inputs = SERVICES.map((s) => `${prefix}${s}`);
  const output = `${prefix}out`;
  const client = new KafkaBus({ brokers: [brokers], clientId: 'bench-echo-client' });
  await client.ensureTopics([...inputs, output]);
  const answeredAt = new Map<string, number>();
  const reader = await client.subscribe({ groupId: `${prefix}reader`, topics: [output], handleBatch: async (messages) => void messages.forEach((m) => answeredAt.set(m.key, performance.now())) });
  const echo = fork(__filename, ['--echo', brokers, prefix, ...inputs], { execArgv: ['-r', join(__dirname, '..', 'tools', 'register.js')], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    await new Promise<void>((resolve, reject) => {
      echo.once('message', () => resolve());
      echo.once('exit', (code) => reject(new Error(`echo process exited with ${code}`)));
    });
    const byTopic = new Map(inputs.map((t) => [t, [] as { key: string; message: OutgoingMessage }[]]));
    for (let i = 0; i < BURST; i += 1) {
      const key = randomUUID();
      byTopic.get(inputs[i % inputs.length])!.push({ key, message: { key, value: JSON.stringify({ id: key, n: i, padding: 'x'.repeat(200) }) } });
    }
    const sentAt = new Map<string, number>();
    const started = performance.now();
    await burst(client, byTopic, sentAt);
    await waitFor(() => answeredAt.size >= BURST, 600_000, `${BURST} echoes`);
    return figures(sentAt, answeredAt, started);
  } finally {
    echo.kill('SIGTERM');
    await reader.stop();
    await client.close();
  }
}

/** The echo process (forked by echoRound). */
async function echoMain(brokers: string, prefix: string, inputs: readonly string[]): Promise<void> {
  const kafka = new Kafka({ clientId: 'bench-echo', brokers: [brokers], logLevel: logLevel.WARN });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const consumer = kafka.consumer({ groupId: `${prefix}echo`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [...inputs], fromBeginning: true });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.run({
    eachBatch: async ({ batch }) => {
      await producer.send({ topic: `${prefix}out`, acks: -1, messages: batch.messages.map((m) => ({ key: m.key, value: m.value })) });
    },
  });
  await joined;
  process.send!('ready');
  const stop = () => void Promise.all([consumer.disconnect(), producer.disconnect()]).finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  // The bench process went away without stopping it: stop too.
  process.on('disconnect', stop);
}

/** The four services, each its own process, on one store file. */
async function systemRound(brokers: string, round: number): Promise<RoundFigures> {
  const prefix = `bench-cmd-${Date.now().toString(36)}-${round}.`;
  const topics = new TopicNames(prefix);
  const dir = mkdtempSync(join(tmpdir(), 'backstop-bench-kafka-'));
  const apps = new Map<string, RunningApp>();
  const client = new KafkaBus({ brokers: [brokers], clientId: 'bench-cmd-client' });
  const answeredAt = new Map<string, number>();
  const statuses = new Map<string, string>();
  const reader = await client.subscribe({
    groupId: `${prefix}reader`,
    topics: [topics.of(TOPICS.replies)],
    handleBatch: async (messages) => {
      const at = performance.now();
      for (const m of messages) {
        if (answeredAt.has(m.key)) continue;
        answeredAt.set(m.key, at);
        statuses.set(m.key, (JSON.parse(m.value.toString()) as { payload: { status: string } }).payload.status);
      }
    },
  });
  try {
    await startServiceApps(apps, SERVICES, { KAFKA_BROKERS: brokers, KAFKA_TOPIC_PREFIX: prefix, BACKSTOP_DATA_FILE: join(dir, 'backstop.db') }, 120_000);
    const command = (type: string, payload: Record<string, unknown>, key: string) => {
      const envelope = makeEnvelope({ id: randomUUID(), type, key, time: new Date().toISOString(), payload });
      return { key: envelope.id, message: encodeEnvelope(envelope) };
    };
    const run = async (byTopic: Map<string, { key: string; message: OutgoingMessage }[]>, what: string) => {
      const sentAt = new Map<string, number>();
      const before = answeredAt.size;
      const count = [...byTopic.values()].reduce((n, items) => n + items.length, 0);
      const started = performance.now();
      await burst(client, byTopic, sentAt);
      await waitFor(() => answeredAt.size - before >= count, 1_800_000, `${count} replies (${what})`);
      return { sentAt, started };
    };
    // Not timed: the parties whose premium accounts the burst funds.
    const parties = Array.from({ length: FUNDED_PARTIES }, (_, i) => `bench-${round}-funded-${i}`);
    await run(new Map([[topics.of(TOPICS.intakeCommands), parties.map((partyId) => command('RegisterParty', { partyId, name: partyId, role: 'DESK', credit: { rating: 'A' } }, partyId))]]), 'set-up');
    const byTopic = new Map(SERVICES.map((s) => [topics.of(SERVICE_COMMAND_TOPICS[s]), [] as { key: string; message: OutgoingMessage }[]]));
    for (let i = 0; i < BURST; i += 1) {
      const service = SERVICES[i % SERVICES.length];
      const list = byTopic.get(topics.of(SERVICE_COMMAND_TOPICS[service]))!;
      if (service === 'contract-intake') {
        const partyId = `bench-${round}-p${i}`;
        list.push(command('RegisterParty', { partyId, name: partyId, role: 'DESK', credit: { rating: 'A' } }, partyId));
      } else if (service === 'premium-pricing') {
        const partyId = parties[i % FUNDED_PARTIES];
        list.push(command('FundPremiumAccount', { partyId, amount: '10', currency: 'USDC' }, partyId));
      } else if (service === 'margin-monitor') {
        const partyId = `bench-${round}-nobody-${i}`;
        list.push(command('DeclareDefault', { partyId, reason: 'bench' }, partyId));
      } else {
        list.push(command('RecordRecovery', { defaultId: `bench-${round}-none-${i}`, amount: '10', currency: 'USDC', reference: 'bench' }, 'pool'));
      }
    }
    const keys = new Set([...byTopic.values()].flat().map((c) => c.key));
    const { sentAt, started } = await run(byTopic, 'burst');
    const timed = new Map([...answeredAt].filter(([key]) => keys.has(key)));
    const outcome = [...keys].map((k) => statuses.get(k));
    return { ...figures(sentAt, timed, started), accepted: outcome.filter((s) => s === 'ACCEPTED').length, rejected: outcome.filter((s) => s === 'REJECTED').length };
  } finally {
    await reader.stop();
    await client.close();
    for (const [service, app] of apps) {
      await app.stop();
      // BENCH_KAFKA_LOGS=<dir>: keep each service's log of the round (to see where the time went).
      if (process.env.BENCH_KAFKA_LOGS) writeFileSync(join(process.env.BENCH_KAFKA_LOGS, `${service}-round${round}.log`), app.output());
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const spread = (rounds: readonly RoundFigures[], pick: (r: RoundFigures) => number) => `${fmt(Math.min(...rounds.map(pick)))}–${fmt(Math.max(...rounds.map(pick)))}`;

export default async function kafkaCommandsBench(): Promise<void> {
  let broker: { brokers: string; stop(): Promise<void> } | undefined;
  const brokers = process.env.KAFKA_BROKERS?.split(',')[0] ?? (broker = await startBroker({ log: (m) => process.stderr.write(`${m}\n`) })).brokers;
  const echo: RoundFigures[] = [];
  const system: RoundFigures[] = [];
  try {
    // Alternating rounds, so a busy moment of the host hits both sides alike.
    for (let round = 0; round < ROUNDS; round += 1) {
      echo.push(await echoRound(brokers, round));
      process.stderr.write(`  round ${round + 1}/${ROUNDS}: echo ${fmt(echo[round].perSec)}/s p99 ${fmt(echo[round].p99Ms)} ms`);
      system.push(await systemRound(brokers, round));
      process.stderr.write(`; services ${fmt(system[round].perSec)}/s p99 ${fmt(system[round].p99Ms)} ms (${system[round].accepted} accepted, ${system[round].rejected} rejected)\n`);
    }
  } finally {
    await broker?.stop();
  }
  const stat = (values: readonly number[]) => ({ median: median(values), min: Math.min(...values), max: Math.max(...values), rounds: values });
  const throughput = { system: stat(system.map((r) => r.perSec)), echo: stat(echo.map((r) => r.perSec)) };
  const p99 = { system: stat(system.map((r) => r.p99Ms)), echo: stat(echo.map((r) => r.p99Ms)) };
  const result = {
    bench: 'kafka-commands',
    // The rows in the shape bench/run.ts's summary table reads (measure vs baseline of the same run).
    rows: [
      {
        bench: 'kafka-commands',
        measure: `Kafka commands/s, 4 service processes, burst of ${BURST}`,
        unit: 'commands/s',
        higherIsBetter: true,
        value: throughput.system,
        baseline: 'bare kafkajs echo loop, same broker and count',
        baselineValue: throughput.echo,
        ratio: throughput.system.median / throughput.echo.median,
        target: '>= 0.3x',
        met: throughput.system.median / throughput.echo.median >= 0.3,
      },
      {
        bench: 'kafka-commands',
        measure: `Kafka command p99 (send to reply), burst of ${BURST}`,
        unit: 'ms',
        higherIsBetter: false,
        value: p99.system,
        baseline: 'bare kafkajs echo loop p99',
        baselineValue: p99.echo,
        ratio: p99.system.median / p99.echo.median,
        target: '<= 2,000 ms',
        met: p99.system.median <= 2_000,
      },
    ],
    name: 'kafka-commands',
    burst: BURST,
    rounds: ROUNDS,
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    at: new Date().toISOString(),
    services: { perSecMedian: median(system.map((r) => r.perSec)), p99MsMedian: median(system.map((r) => r.p99Ms)), rounds: system },
    echo: { perSecMedian: median(echo.map((r) => r.perSec)), p99MsMedian: median(echo.map((r) => r.p99Ms)), rounds: echo },
    ratio: median(system.map((r) => r.perSec)) / median(echo.map((r) => r.perSec)),
    targets: { ratioMin: 0.3, p99MsMax: 2_000 },
  };
  process.stdout.write(
    `\nKafka commands, burst of ${fmt(BURST)} over 4 topics, median of ${ROUNDS} rounds (min–max)\n` +
      `  4 service processes          ${fmt(result.services.perSecMedian).padStart(8)} commands/s (${spread(system, (r) => r.perSec)})  p99 ${fmt(result.services.p99MsMedian)} ms (${spread(system, (r) => r.p99Ms)})\n` +
      `  bare kafkajs echo loop       ${fmt(result.echo.perSecMedian).padStart(8)} messages/s (${spread(echo, (r) => r.perSec)})  p99 ${fmt(result.echo.p99MsMedian)} ms (${spread(echo, (r) => r.p99Ms)})\n` +
      `  ratio ${result.ratio.toFixed(3)}x (target >= 0.3x); services p99 ${fmt(result.services.p99MsMedian)} ms (target <= 2,000 ms)\n`,
  );
  const out = join(__dirname, 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'kafka-commands.json'), `${JSON.stringify(result, null, 2)}\n`);
}

if (require.main === module) {
  const at = process.argv.indexOf('--echo');
  if (at >= 0) {
    const [brokers, prefix, ...inputs] = process.argv.slice(at + 1);
    echoMain(brokers, prefix, inputs).catch((err: Error) => {
      process.stderr.write(`${err.stack}\n`);
      process.exit(1);
    });
  } else {
    kafkaCommandsBench().catch((err: Error) => {
      process.stderr.write(`${err.stack}\n`);
      process.exit(1);
    });
  }
}
