import { IntakeModule } from '@backstop/intake-service';
import { ConsumerHandle, encodeEnvelope, KafkaBus, TOPICS, TopicNames, DeadLetter } from '@backstop/messaging';
import { commandEnvelope, CommandReply, startTestBackstop, TestBackstop } from '@backstop/platform';
import { describeKafka, uniquePrefix, waitUntil } from '@backstop/testing';

interface Seen {
  topic: string;
  key: string;
  body: { id: string; type: string; causationId?: string; payload: Record<string, unknown> };
}

describeKafka('contract-intake on the real broker', (brokers) => {
  const prefix = uniquePrefix('intake');
  const topics = new TopicNames(prefix);
  let app: TestBackstop;
  let client: KafkaBus;
  let observer: ConsumerHandle;
  const seen: Seen[] = [];

  beforeAll(async () => {
    app = await startTestBackstop({
      modules: [IntakeModule],
      services: ['contract-intake'],
      config: { mode: 'distributed', kafkaBrokers: brokers, topicPrefix: prefix },
    });
    client = new KafkaBus({ brokers, clientId: 'intake-e2e' });
    observer = await client.subscribe({
      groupId: `${prefix}observer`,
      topics: [topics.of(TOPICS.replies), topics.of(TOPICS.intakeEvents), topics.of(TOPICS.dlq)],
      handle: async (m) => {
        seen.push({ topic: m.topic, key: m.key, body: JSON.parse(m.value.toString()) });
      },
    });
  }, 60_000);
  afterAll(async () => {
    await observer?.stop();
    await client?.close();
    await app?.close();
  });

  const send = async (type: string, payload: Record<string, unknown>, id?: string) => {
    const envelope = commandEnvelope(type, payload, { id });
    await client.publish(topics.of(TOPICS.intakeCommands), [encodeEnvelope(envelope)]);
    return envelope.id;
  };
  const replyTo = (commandId: string) =>
    waitUntil(() => seen.find((s) => s.topic === topics.of(TOPICS.replies) && s.key === commandId)?.body.payload as CommandReply | undefined, 20_000, `reply to ${commandId}`);

  it('takes commands from Kafka, replies on backstop.replies and publishes the events from the store', async () => {
    const desk = await send('RegisterParty', { partyId: 'desk1', name: 'Desk', role: 'DESK', credit: { rating: 'A' } });
    const cp = await send('RegisterParty', { partyId: 'cp1', name: 'CP', role: 'COUNTERPARTY', credit: { rating: 'BB' } });
    expect(await replyTo(desk)).toMatchObject({ status: 'ACCEPTED', stream: 'party-desk1', revision: 0 });
    expect(await replyTo(cp)).toMatchObject({ status: 'ACCEPTED' });
    const contract = await send('RegisterContract', {
      contractId: 'perp1', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '1', entryPrice: '60000', currency: 'USDC',
      longPartyId: 'desk1', shortPartyId: 'cp1', longInitialMargin: '6000', shortInitialMargin: '6000',
    });
    // A Kafka command carries no sender: it only proposes; the other side's AcceptContract makes it live.
    expect(await replyTo(contract)).toMatchObject({ status: 'ACCEPTED', stream: 'contract-perp1', events: ['ContractProposed'] });
    const accept = await send('AcceptContract', { contractId: 'perp1', partyId: 'cp1' });
    expect(await replyTo(accept)).toMatchObject({ status: 'ACCEPTED', stream: 'contract-perp1', revision: 1, events: ['ContractRegistered'] });
    const event = await waitUntil(() => seen.find((s) => s.topic === topics.of(TOPICS.intakeEvents) && s.body.type === 'ContractRegistered'), 20_000, 'ContractRegistered on the events topic');
    expect(event.key).toBe('perp1');
    expect(event.body.causationId).toBe(accept);
    expect(event.body.payload).toMatchObject({ contractId: 'perp1', _stream: 'contract-perp1', _revision: 1 });
  }, 60_000);

  it('rejects a bad command with every field and rule, replies again to a retry, and keeps consuming', async () => {
    const bad = await send('RegisterParty', { partyId: '', name: 5, role: 'BANK', credit: {} });
    const reply = await replyTo(bad).catch((err: Error) => { throw new Error(`${err.message}; seen: ${JSON.stringify(seen.map((s) => [s.topic, s.key, s.body.type]))}`); });
    expect(reply.status).toBe('REJECTED');
    expect(reply.violations?.map((v) => v.field)).toEqual(expect.arrayContaining(['payload.partyId', 'payload.name', 'payload.role']));
    const id = '0b7d7c3e-0000-4000-8000-00000000aa01';
    await send('DepositCollateral', { contractId: 'perp1', partyId: 'cp1', amount: '100' }, id);
    await replyTo(id);
    await send('DepositCollateral', { contractId: 'perp1', partyId: 'cp1', amount: '100' }, id);
    await waitUntil(() => seen.filter((s) => s.topic === topics.of(TOPICS.replies) && s.key === id).length >= 2 || undefined, 20_000, 'the second reply');
    const replies = seen.filter((s) => s.topic === topics.of(TOPICS.replies) && s.key === id).map((s) => s.body.payload);
    expect(replies[1]).toEqual(replies[0]);
    const deposits = seen.filter((s) => s.topic === topics.of(TOPICS.intakeEvents) && s.body.type === 'CollateralDeposited');
    expect(deposits).toHaveLength(1);
  }, 60_000);

  it('answers a reused command id with another body with idempotencyConflict, as HTTP answers 409 (issue 9, defect 4)', async () => {
    const id = '0b7d7c3e-0000-4000-8000-00000000aa02';
    await send('DepositCollateral', { contractId: 'perp1', partyId: 'cp1', amount: '7' }, id);
    expect(await replyTo(id)).toMatchObject({ status: 'ACCEPTED' });
    await send('DepositCollateral', { contractId: 'perp1', partyId: 'cp1', amount: '7000' }, id);
    await waitUntil(() => seen.filter((s) => s.topic === topics.of(TOPICS.replies) && s.key === id).length >= 2 || undefined, 20_000, 'the reply to the reused id');
    const second = seen.filter((s) => s.topic === topics.of(TOPICS.replies) && s.key === id)[1].body;
    expect(second.type).toBe('CommandRejected');
    expect(second.payload).toMatchObject({ status: 'REJECTED', violations: [expect.objectContaining({ field: 'id', rule: 'idempotencyConflict' })] });
    // Only the first body was applied: the contract holds 100 (earlier test) + 7 on cp1's side.
    const state = await app.get<{ collateral: Record<string, string> }>('/v1/contracts/perp1');
    expect(state.body.collateral.SHORT).toBe('107.000000');
  }, 60_000);

  it('dead-letters malformed messages on the commands topic with the reason and the original bytes', async () => {
    await client.publish(topics.of(TOPICS.intakeCommands), [
      { key: 'x', value: '{"not": "an envelope"' },
      { key: 'y', value: JSON.stringify({ hello: 1 }) },
      encodeEnvelope(commandEnvelope('LaunchRocket', { target: 'moon' })),
      { key: 'z', value: 'x'.repeat(300_000) },
    ]);
    const dead = await waitUntil(() => {
      const d = seen.filter((s) => s.topic === topics.of(TOPICS.dlq)).map((s) => s.body as unknown as DeadLetter);
      return d.length >= 4 ? d : undefined;
    }, 30_000, 'four dead letters');
    expect(dead.map((d) => d.reason).sort()).toEqual(['INVALID_ENVELOPE', 'NOT_JSON', 'OVERSIZED', 'UNKNOWN_TYPE']);
    expect(Buffer.from(dead.find((d) => d.reason === 'NOT_JSON')!.originalBase64, 'base64').toString()).toBe('{"not": "an envelope"');
    const after = await send('RegisterParty', { partyId: 'p2', name: 'After', role: 'DESK', credit: { rating: 'A' } });
    expect(await replyTo(after)).toMatchObject({ status: 'ACCEPTED' });
  }, 60_000);

  it('shares the broker with a second deployment under another prefix without joining its consumer groups', async () => {
    // Regression: group ids used to be unprefixed, so two deployments on one broker joined the same
    // group for different topics and one of them never received its commands.
    const otherPrefix = uniquePrefix('intake-other');
    const other = await startTestBackstop({
      modules: [IntakeModule],
      services: ['contract-intake'],
      config: { mode: 'distributed', kafkaBrokers: brokers, topicPrefix: otherPrefix },
    });
    const otherSeen: Seen[] = [];
    const otherObserver = await client.subscribe({
      groupId: `${otherPrefix}observer`,
      topics: [new TopicNames(otherPrefix).of(TOPICS.replies)],
      handle: async (m) => {
        otherSeen.push({ topic: m.topic, key: m.key, body: JSON.parse(m.value.toString()) });
      },
    });
    try {
      const there = commandEnvelope('RegisterParty', { partyId: 'o1', name: 'Other', role: 'DESK', credit: { rating: 'A' } });
      await client.publish(new TopicNames(otherPrefix).of(TOPICS.intakeCommands), [encodeEnvelope(there)]);
      const here = await send('RegisterParty', { partyId: 'p3', name: 'Here', role: 'DESK', credit: { rating: 'A' } });
      expect(await replyTo(here)).toMatchObject({ status: 'ACCEPTED', stream: 'party-p3' });
      const reply = await waitUntil(() => otherSeen.find((s) => s.key === there.id)?.body.payload as CommandReply | undefined, 20_000, 'the other deployment\'s reply');
      expect(reply).toMatchObject({ status: 'ACCEPTED', stream: 'party-o1' });
    } finally {
      await otherObserver.stop();
      await other.close();
    }
  }, 60_000);
});
