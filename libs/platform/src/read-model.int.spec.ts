import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FACT_OBSERVED, isReadModelStream, NOT_YET_KNOWN } from '@backstop/contracts';
import { SqliteEventStore } from '@backstop/event-store';
import { DomainRejection } from '@backstop/kernel';
import { classifyError, InvalidMessageError, makeEnvelope, TOPICS } from '@backstop/messaging';
import { FactNotYetKnownError, notYetKnown, ReadModel } from './read-model';

/** A published event as another service's publisher puts it on backstop.events.* (eventEnvelope). */
const published = (id: string, type: string, stream: string, revision: number, data: Record<string, unknown>) =>
  makeEnvelope({ id, type, key: stream.slice(stream.indexOf('-') + 1), time: '2026-01-01T00:00:00.000Z', payload: { ...data, _stream: stream, _revision: revision, _position: String(100 + revision) } });

describe('ReadModel: another service\'s facts kept in this service\'s own store', () => {
  let dir: string;
  let store: SqliteEventStore;
  let facts: ReadModel;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'read-model-'));
    store = new SqliteEventStore(join(dir, 'store.db'));
    facts = new ReadModel(store, { service: 'default-settlement', name: 'facts', topics: [TOPICS.intakeEvents], types: ['PartyRegistered', 'CreditProfileUpdated'] });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps each fact once however often it is delivered, in the source order, under its own stream', async () => {
    const registered = published('00000000-0000-4000-8000-000000000001', 'PartyRegistered', 'party-p1', 0, { partyId: 'p1', role: 'PROVIDER' });
    const updated = published('00000000-0000-4000-8000-000000000002', 'CreditProfileUpdated', 'party-p1', 1, { partyId: 'p1', credit: { rating: 'B' } });
    await facts.observe(updated);
    await facts.observe(registered);
    await facts.observe(registered);
    await facts.observe(updated);
    const stored = await store.readStream('view-default-settlement:party-p1');
    expect(stored.map((e) => e.type)).toEqual([FACT_OBSERVED, FACT_OBSERVED]);
    expect(isReadModelStream(stored[0].stream)).toBe(true);
    expect((await facts.facts('party-p1')).map((f) => [f.type, f.revision])).toEqual([['PartyRegistered', 0], ['CreditProfileUpdated', 1]]);
    const { state, known } = await facts.fold('party-p1', (n: number, f) => n + (f.type === 'PartyRegistered' ? 1 : 0), 0);
    expect({ state, known }).toEqual({ state: 1, known: true });
    expect(await facts.fold('party-ghost', (n: number) => n + 1, 0)).toEqual({ state: 0, known: false });
    expect(await store.readStream('party-p1')).toEqual([]);
  });

  it('refuses (dead-letters) a message that is not an event of a service stream', async () => {
    const bare = makeEnvelope({ type: 'PartyRegistered', key: 'p1', time: '2026-01-01T00:00:00.000Z', payload: { partyId: 'p1' } });
    await expect(facts.observe(bare)).rejects.toBeInstanceOf(InvalidMessageError);
  });

  it('waits for a fact to be kept, and says when it was not in time', async () => {
    const registered = published('00000000-0000-4000-8000-000000000003', 'PartyRegistered', 'party-p2', 0, { partyId: 'p2', role: 'DESK' });
    const waiting = facts.waitForFact('party-p2', registered.id, 5_000);
    await facts.observe(registered);
    await expect(waiting).resolves.toBe(true);
    await expect(facts.waitForFact('party-p2', '00000000-0000-4000-8000-00000000ffff', 300)).resolves.toBe(false);
  });

  it('a fact not known yet: a retryable rejection for commands, a redelivery for consumers', () => {
    let rejection: unknown;
    try {
      notYetKnown('providerId', 'party p9 is not known to default-settlement yet');
    } catch (err) {
      rejection = err;
    }
    expect(rejection).toBeInstanceOf(DomainRejection);
    expect((rejection as DomainRejection).violations).toEqual([{ field: 'providerId', rule: NOT_YET_KNOWN, message: expect.stringMatching(/not known to default-settlement yet.*retry$/) }]);
    expect(classifyError(new FactNotYetKnownError('later'))).toBe('transient');
  });
});
