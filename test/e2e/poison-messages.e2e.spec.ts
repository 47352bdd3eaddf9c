import { createHash } from 'node:crypto';
import { IntakeModule } from '@backstop/intake-service';
import { ConsumerHandle, DeadLetter, encodeEnvelope, KafkaBus, TOPICS, TopicNames } from '@backstop/messaging';
import { commandEnvelope, CommandReply, startTestBackstop, TestBackstop } from '@backstop/platform';
import { describeKafka, uniquePrefix, waitUntil } from '@backstop/testing';

/**
 * Issue 9, defect 1: one message used to stop a service's Kafka consumer for good (a "constructor"
 * key made class-transformer throw "targetType is not a constructor", 3,000 levels of nesting
 * overflowed the stack, a dead-letter copy over the broker's limit was refused), so every later
 * command went unanswered while /health/ready said ok. Over HTTP the same bodies gave 500.
 */
describeKafka('poison messages on the real broker', (brokers) => {
  const prefix = uniquePrefix('poison');
  const topics = new TopicNames(prefix);
  let app: TestBackstop;
  let client: KafkaBus;
  let observer: ConsumerHandle;
  const replies = new Map<string, CommandReply[]>();
  const dead: DeadLetter[] = [];

  beforeAll(async () => {
    app = await startTestBackstop({ modules: [IntakeModule], services: ['contract-intake'], config: { mode: 'distributed', kafkaBrokers: brokers, topicPrefix: prefix } });
    client = new KafkaBus({ brokers, clientId: 'poison-e2e' });
    observer = await client.subscribe({
      groupId: `${prefix}observer`,
      topics: [topics.of(TOPICS.replies), topics.of(TOPICS.dlq)],
      handle: async (m) => {
        const body = JSON.parse(m.value.toString());
        if (m.topic === topics.of(TOPICS.dlq)) dead.push(body as DeadLetter);
        else replies.set(m.key, [...(replies.get(m.key) ?? []), body.payload as CommandReply]);
      },
    });
  }, 90_000);
  afterAll(async () => {
    await observer?.stop();
    await client?.close();
    await app?.close();
  });

  const party = { partyId: 'desk1', name: 'Desk', role: 'DESK', credit: { rating: 'A' } };
  const deep = (levels: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < levels; i += 1) v = { a: v };
    return v;
  };
  /** Raw JSON text, so "__proto__" stays a key (an object literal would set the prototype). */
  const poisons = (): { name: string; text: string; key: string }[] => {
    const env = (payloadJson: string) => {
      const e = commandEnvelope('RegisterParty', party);
      const text = JSON.stringify(e).replace(/"payload":\{.*\}\}$/, `"payload":${payloadJson}}`);
      return { text, key: e.id };
    };
    const ctor = env(`{"partyId":"desk1","name":"Desk","role":"DESK","credit":{"rating":"A","constructor":{"prototype":{}}}}`);
    const proto = env(`{"partyId":"desk1","name":"Desk","role":"DESK","credit":{"__proto__":{"rating":"A"}}}`);
    const nested = env(JSON.stringify({ ...party, credit: deep(3_000) }));
    const infinite = env(`{"partyId":"desk1","name":"Desk","role":"DESK","credit":{"pdAnnual":1e309}}`);
    return [
      { name: 'constructor', ...ctor },
      { name: '__proto__', ...proto },
      { name: 'deep', ...nested },
      { name: '1e309', ...infinite },
    ];
  };

  it('dead-letters each poison with the field and rule, answers the next command, and stays ready', async () => {
    const list = poisons();
    // A message whose base64 dead-letter copy (~1.2 MB) exceeds the broker's 1 MiB message limit.
    const huge = Buffer.alloc(900_000, 'x');
    await client.publish(topics.of(TOPICS.intakeCommands), [...list.map((p) => ({ key: `poison-${p.name}`, value: p.text })), { key: 'poison-huge', value: huge }]);
    const next = commandEnvelope('RegisterParty', party);
    await client.publish(topics.of(TOPICS.intakeCommands), [encodeEnvelope(next)]);

    const accepted = await waitUntil(() => replies.get(next.id)?.[0], 60_000, 'the reply to the command after the poisons');
    expect(accepted).toMatchObject({ status: 'ACCEPTED', stream: 'party-desk1' });
    await waitUntil(() => (dead.length >= 5 ? true : undefined), 20_000, 'five dead letters');
    const byKey = new Map(dead.map((d) => [d.source.key, d]));
    expect(byKey.get('poison-constructor')).toMatchObject({ reason: 'INVALID_ENVELOPE', violations: [{ field: 'payload.credit.constructor', rule: 'forbiddenKey' }] });
    expect(byKey.get('poison-__proto__')).toMatchObject({ reason: 'INVALID_ENVELOPE', violations: [{ field: 'payload.credit.__proto__', rule: 'forbiddenKey' }] });
    expect(byKey.get('poison-deep')?.reason).toBe('INVALID_ENVELOPE');
    expect(byKey.get('poison-deep')?.violations?.[0].rule).toBe('maxDepth');
    expect(byKey.get('poison-1e309')).toMatchObject({ reason: 'INVALID_ENVELOPE', violations: [{ field: 'payload.credit.pdAnnual', rule: 'finiteNumber' }] });
    const hugeLetter = byKey.get('poison-huge')!;
    expect(hugeLetter).toMatchObject({ reason: 'OVERSIZED', originalBytes: 900_000, originalTruncated: true, originalSha256: createHash('sha256').update(huge).digest('hex') });
    expect(Buffer.from(hugeLetter.originalBase64, 'base64').length).toBeLessThan(900_000);
    expect(hugeLetter.detail).toMatch(/the original is 900000 bytes; the first \d+ are kept/);
    // Nothing was written for them: the one party stream holds the one accepted registration.
    expect((await app.runtime.store.readStream('party-desk1')).map((e) => e.metadata.causationId)).toEqual([next.id]);
    const ready = await fetch(`${app.url}/health/ready`);
    expect(ready.status).toBe(200);
  }, 90_000);

  it('over HTTP the same bodies get 400 naming the field and rule, never 500', async () => {
    for (const poison of poisons()) {
      const res = await fetch(`${app.url}/v1/commands`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${app.runtime.auth.tokenFor('operator')}` },
        body: poison.text,
      });
      const body = (await res.json()) as { violations: { field: string; rule: string }[] };
      expect({ name: poison.name, status: res.status }).toEqual({ name: poison.name, status: 400 });
      expect(body.violations[0].rule).toMatch(/^(forbiddenKey|maxDepth|finiteNumber)$/);
      expect(body.violations[0].field).toMatch(/^payload\.credit/);
    }
  }, 30_000);

  it('a consumer that stops makes /health/ready answer 503 naming it', async () => {
    const consumers = (app.runtime as unknown as { running: { groupId: string; stop(): Promise<void> }[] }).running;
    const commands = consumers.find((c) => c.groupId === `${prefix}contract-intake.commands`)!;
    await commands.stop();
    const res = await fetch(`${app.url}/health/ready`);
    const body = (await res.json()) as { checks: Record<string, string> };
    expect(res.status).toBe(503);
    expect(body.checks[`consumer:${prefix}contract-intake.commands`]).toMatch(/^stopped/);
  }, 30_000);
});
