/**
 * Services own their data (SPEC section 1): default-settlement knows a party only from intake's
 * PartyRegistered on backstop.events.intake, kept in its own read model in its own store. Between
 * services that is eventually consistent, and the race is visible: a command that needs a fact
 * not arrived yet is rejected as retryable (rule notYetKnown), and the same command, retried with
 * the same id once the fact has arrived, is accepted. Two runtimes, two store files, the real broker.
 */
import { randomUUID } from 'node:crypto';
import { IntakeModule } from '@backstop/intake-service';
import { startTestBackstop, TestBackstop } from '@backstop/platform';
import { SettlementModule } from '@backstop/settlement-service';
import { describeKafka, uniquePrefix, waitUntil } from '@backstop/testing';

describeKafka('read models between services on the real broker: a fact that has not arrived yet', (brokers) => {
  const prefix = uniquePrefix('race');
  const config = { mode: 'distributed' as const, kafkaBrokers: brokers, topicPrefix: prefix };
  let settlement: TestBackstop | undefined;
  let intake: TestBackstop | undefined;

  afterAll(async () => {
    await intake?.close();
    await settlement?.close();
  }, 60_000);

  it('rejects a deposit for a party settlement has not heard of as retryable, and accepts the same command once the party has arrived', async () => {
    settlement = await startTestBackstop({ modules: [SettlementModule], services: ['default-settlement'], config });
    const commandId = randomUUID();
    const deposit = { providerId: 'prov1', tranche: 'JUNIOR', amount: '1000' };

    // Sent before the fact exists anywhere: not "not registered", but "not known yet; retry".
    const early = await settlement.send('DepositCapital', deposit, { id: commandId, retryNotYetKnown: false });
    expect(early.status).toBe(422);
    expect(early.reply).toMatchObject({
      status: 'REJECTED',
      retryable: true,
      violations: [{ field: 'payload.providerId', rule: 'notYetKnown', message: expect.stringMatching(/^party prov1 is not known to default-settlement yet .*retry$/) }],
    });

    // The fact: intake, with a store of its own, registers the provider and publishes PartyRegistered.
    intake = await startTestBackstop({ modules: [IntakeModule], services: ['contract-intake'], config });
    const registered = await intake.send('RegisterParty', { partyId: 'prov1', name: 'Provider One', role: 'PROVIDER', credit: { rating: 'A' } });
    expect(registered.reply.status).toBe('ACCEPTED');

    // The client retries the SAME command (same id): a retryable rejection is not remembered.
    const attempts: string[] = [];
    const accepted = await waitUntil(
      async () => {
        const reply = await settlement!.send('DepositCapital', deposit, { id: commandId, retryNotYetKnown: false });
        attempts.push(reply.reply.status);
        return reply.reply.retryable === true ? undefined : reply;
      },
      60_000,
      'the deposit accepted once PartyRegistered reached default-settlement',
    );
    expect(accepted.status).toBe(200);
    expect(accepted.reply).toMatchObject({ status: 'ACCEPTED', commandId, stream: 'pool-main' });
    expect(attempts.every((s) => s === 'REJECTED' || s === 'ACCEPTED')).toBe(true);

    // Each service on its own store: settlement holds its kept copy, never intake's stream.
    expect(settlement.runtime.store.location).not.toBe(intake.runtime.store.location);
    expect(await settlement.runtime.store.readStream('party-prov1')).toEqual([]);
    expect((await settlement.runtime.store.readStream('view-default-settlement:party-prov1')).map((e) => [e.type, e.data.type])).toEqual([['FactObserved', 'PartyRegistered']]);
    expect((await intake.runtime.store.readStream('party-prov1')).map((e) => e.type)).toEqual(['PartyRegistered']);
  }, 180_000);
});
