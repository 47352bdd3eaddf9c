import { ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@backstop/event-store';
import { ConsumerHandle, encodeEnvelope, KafkaBus, TOPICS, TopicNames } from '@backstop/messaging';
import { commandEnvelope, CommandReply } from '@backstop/platform';
import { bearer, describeKafka, readAllEvents, TEST_TOKENS, uniquePrefix, waitUntil, WORKSPACE_ROOT } from '@backstop/testing';

interface Child {
  readonly child: ChildProcess;
  readonly url: string;
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** contract-intake as its own process (its deployment's entry), returned as soon as its HTTP port is bound. */
async function spawnIntake(env: Record<string, string>): Promise<Child> {
  const tokens = Object.entries(TEST_TOKENS).map(([role, token]) => `${token}=${role}`).join(',');
  const child = spawn(process.execPath, ['-r', join(WORKSPACE_ROOT, 'tools/register.js'), join(WORKSPACE_ROOT, 'apps/contract-intake/src/main.ts')], {
    cwd: WORKSPACE_ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', BACKSTOP_TOKENS: tokens, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const url = await waitUntil(() => /(?:HTTP bound to|listening on) (http:\/\/[\d.]+:\d+)/.exec(out)?.[1], 60_000, 'contract-intake to bind its port').catch((err: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${err.message}\n${out.slice(-3000)}`);
  });
  return { child, url, output: () => out, exited };
}

const party = (partyId: string) => ({ partyId, name: `Desk ${partyId}`, role: 'DESK', credit: { rating: 'A' } });

/**
 * Item 7 of issue 12 (SPEC sections 9-10): a Kubernetes rollout sends SIGTERM while the service is
 * under load from both Kafka and HTTP. Nothing in flight may be lost or applied twice: every HTTP
 * command that was acknowledged is stored once, every refused one can be retried with its id, every
 * Kafka command gets exactly one reply (its offset was committed before the consumer left, so the
 * restarted service does not get it again). And at start-up HTTP answers liveness before the
 * consumer group has joined, with readiness failing until the backlog is consumed.
 */
describeKafka('SIGTERM under load, and start-up against probes', (brokers) => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-sigterm-'));
  const prefix = uniquePrefix('sigterm');
  const topics = new TopicNames(prefix);
  const env = { KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: prefix, BACKSTOP_DATA_FILE: join(dir, 'intake.db') };
  const children: Child[] = [];
  let client: KafkaBus;
  let observer: ConsumerHandle | undefined;
  const replies: { key: string; status: string }[] = [];
  const published: string[] = [];

  afterAll(async () => {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await observer?.stop();
    await client?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const sendKafka = async (ids: string[]) => {
    await client.publish(
      topics.of(TOPICS.intakeCommands),
      ids.map((id) => encodeEnvelope(commandEnvelope('RegisterParty', party(`k-${id}`), { id, key: `k-${id}` }))),
    );
  };
  const probe = async (url: string, path: string) => {
    const res = await fetch(`${url}${path}`);
    return { status: res.status, body: (await res.json()) as { checks?: Record<string, string> } };
  };

  it('binds HTTP first and is ready only once caught up; on SIGTERM finishes in-flight work and loses nothing', async () => {
    client = new KafkaBus({ brokers, clientId: 'sigterm-e2e' });
    await client.ensureTopics(topics.all());
    observer = await client.subscribe({
      groupId: `${prefix}observer`,
      topics: [topics.of(TOPICS.replies), topics.of(TOPICS.intakeEvents)],
      handle: async (m) => {
        const body = JSON.parse(m.value.toString()) as { id: string; payload: CommandReply };
        if (m.topic === topics.of(TOPICS.replies)) replies.push({ key: m.key, status: body.payload.status });
        else published.push(body.id);
      },
    });

    // A backlog waits on the commands topic before the service starts.
    const backlog = Array.from({ length: 150 }, () => randomUUID());
    for (let i = 0; i < backlog.length; i += 50) await sendKafka(backlog.slice(i, i + 50));

    const first = await spawnIntake(env);
    children.push(first);
    const live = await probe(first.url, '/health/live');
    const ready = await probe(first.url, '/health/ready');
    expect(live.status).toBe(200);
    expect(ready.status).toBe(503);
    // Ready the first time only once the backlog is consumed: every backlog command is in the store then.
    await waitUntil(async () => ((await probe(first.url, '/health/ready')).status === 200) || undefined, 60_000, 'readiness');
    const store = new SqliteEventStore(env.BACKSTOP_DATA_FILE);
    const streamsAtReady = new Set((await readAllEvents(store)).map((e) => e.stream));
    await store.close();
    expect(backlog.filter((id) => !streamsAtReady.has(`party-k-${id}`))).toEqual([]);

    // Load: Kafka batches and four HTTP clients, then SIGTERM in the middle of it.
    const kafkaIds: string[] = [...backlog];
    let loading = true;
    const kafkaLoad = (async () => {
      while (loading) {
        const batch = Array.from({ length: 10 }, () => randomUUID());
        kafkaIds.push(...batch);
        await sendKafka(batch);
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    type Sent = { envelope: ReturnType<typeof commandEnvelope>; outcome: 'acked' | 'refused' | 'unreachable' | 'other'; status?: number; reply?: CommandReply };
    const http = new Map<string, Sent>();
    const httpClient = async (n: number) => {
      for (let i = 0; loading; i += 1) {
        const envelope = commandEnvelope('RegisterParty', party(`h-${n}-${i}`));
        try {
          const res = await fetch(`${first.url}/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer() }, body: JSON.stringify(envelope) });
          const body = (await res.json()) as CommandReply;
          const outcome = res.status === 200 && body.status === 'ACCEPTED' ? 'acked' : res.status === 503 ? 'refused' : 'other';
          http.set(envelope.id, { envelope, outcome, status: res.status, reply: body });
        } catch {
          http.set(envelope.id, { envelope, outcome: 'unreachable' });
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    const clients = [0, 1, 2, 3].map(httpClient);
    await waitUntil(() => [...http.values()].filter((h) => h.outcome === 'acked').length >= 40 || undefined, 60_000, '40 HTTP commands acknowledged');
    first.child.kill('SIGTERM');
    const stopped = await first.exited;
    loading = false;
    await Promise.all([kafkaLoad, ...clients]);
    expect(first.output()).toMatch(/shutting down: no new work/);
    if (stopped.code !== 0) console.log(first.output().split('\n').filter((l) => !l.includes('command handled')).slice(-25).join('\n'));
    expect(stopped).toEqual({ code: 0, signal: null });
    // Every HTTP request was either acknowledged, refused with 503 (nothing written) or never reached the server: no 500s.
    expect([...http.values()].filter((h) => h.outcome === 'other').map((h) => [h.status, h.reply])).toEqual([]);

    // The next instance: every Kafka command gets exactly one reply; the unacknowledged HTTP commands are retried by id.
    const second = await spawnIntake(env);
    children.push(second);
    const unacked = [...http.entries()].filter(([, h]) => h.outcome !== 'acked');
    await waitUntil(async () => ((await probe(second.url, '/health/ready')).status === 200) || undefined, 60_000, 'readiness after restart');
    for (const [, { envelope }] of unacked) {
      const res = await fetch(`${second.url}/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer() }, body: JSON.stringify(envelope) });
      expect(res.status).toBe(200);
      expect(((await res.json()) as CommandReply).status).toBe('ACCEPTED');
    }
    const kafkaSet = new Set(kafkaIds);
    await waitUntil(() => kafkaIds.every((id) => replies.some((r) => r.key === id)) || undefined, 60_000, 'a reply to every Kafka command');
    const events = await (async () => {
      const s = new SqliteEventStore(env.BACKSTOP_DATA_FILE);
      try {
        return await readAllEvents(s);
      } finally {
        await s.close();
      }
    })();
    await waitUntil(() => events.every((e) => published.includes(e.id)) || undefined, 30_000, 'every stored event on the events topic');
    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });

    const repliesPerCommand = new Map<string, number>();
    for (const r of replies.filter((r) => kafkaSet.has(r.key))) repliesPerCommand.set(r.key, (repliesPerCommand.get(r.key) ?? 0) + 1);
    expect(replies.filter((r) => kafkaSet.has(r.key) && r.status !== 'ACCEPTED')).toEqual([]);
    expect([...repliesPerCommand.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    // Applied once: one PartyRegistered per party, for every Kafka command and every HTTP command sent.
    const perStream = new Map<string, number>();
    for (const e of events.filter((e) => e.type === 'PartyRegistered')) perStream.set(e.stream, (perStream.get(e.stream) ?? 0) + 1);
    expect([...perStream.values()].every((n) => n === 1)).toBe(true);
    expect(perStream.size).toBe(kafkaIds.length + http.size);
    expect([...http.values()].filter((h) => h.outcome === 'acked').length).toBeGreaterThanOrEqual(40);
  }, 300_000);
});
