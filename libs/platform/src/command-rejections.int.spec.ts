import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IsString } from 'class-validator';
import { DomainRejection } from '@backstop/kernel';
import { SqliteEventStore } from '@backstop/event-store';
import { MetricsRegistry, silentLogger } from '@backstop/telemetry';
import { CommandBus, CommandDefinition, REJECTIONS_REMEMBERED } from './commands';
import { commandEnvelope } from './testing';

class DepositDto {
  @IsString() partyId!: string;
}

/**
 * Issue 9 follow-up: "a redelivered command whose rejection has left the bounded rejection cache is
 * decided again". It can change the outcome: a deposit rejected because its party was not known yet
 * (the sender was told REJECTED, and may have sent a new command) was ACCEPTED on redelivery once the
 * party existed — after a restart (the cache is per process) or 10,000 rejections later. A rejection
 * decided by the handler (the id already claimed for the body) is now stored like an acceptance: a
 * redelivery gets the same reply, for good. Malformed commands (never claimed) stay in the cache
 * only: deciding them again gives the same answer, and they write nothing.
 */
describe('a decided rejection is final (redelivery after the rejection cache)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-rejections-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function bus(store: SqliteEventStore, known: Set<string>): CommandBus {
    const commands = new CommandBus(store, silentLogger, new MetricsRegistry(), () => new Date('2026-01-01T00:00:00Z'));
    const definition: CommandDefinition<DepositDto> = {
      type: 'Deposit',
      service: 'default-settlement',
      schemaVersion: 1,
      summary: 'test',
      example: { partyId: 'prov1' },
      dto: DepositDto,
      key: (p) => p.partyId,
      auth: { roles: ['provider'] },
      handle: async (payload, context) => {
        if (!known.has(payload.partyId)) throw new DomainRejection([{ field: 'partyId', rule: 'knownParty', message: `party ${payload.partyId} is not registered` }]);
        const result = await store.append(`deposit-${payload.partyId}`, [{ id: context.commandId, type: 'Deposited', data: { partyId: payload.partyId } }], 'any');
        return { stream: `deposit-${payload.partyId}`, revision: result.lastRevision, events: ['Deposited'] };
      },
    };
    commands.register(definition);
    return commands;
  }

  it('a redelivery after a restart gets the stored REJECTED reply, even though the party exists by then; nothing is written', async () => {
    const store = new SqliteEventStore(join(dir, 'restart.db'));
    const known = new Set<string>();
    const command = commandEnvelope('Deposit', { partyId: 'p1' });
    expect((await bus(store, known).execute(command)).status).toBe('REJECTED');
    known.add('p1');
    // A new process (the rejection cache is gone) gets the same message again.
    const again = await bus(store, known).execute(command);
    expect(again).toMatchObject({ status: 'REJECTED', violations: [expect.objectContaining({ rule: 'knownParty' })] });
    expect(await store.readStream('deposit-p1')).toEqual([]);
    // A new command (new id) for the same thing is decided on today's facts.
    expect((await bus(store, known).execute(commandEnvelope('Deposit', { partyId: 'p1' }))).status).toBe('ACCEPTED');
    await store.close();
  });

  it('in one process, more rejections than the cache holds do not make an old one decidable again', async () => {
    const store = new SqliteEventStore(join(dir, 'flood.db'));
    const known = new Set<string>();
    const commands = bus(store, known);
    const first = commandEnvelope('Deposit', { partyId: 'p2' });
    expect((await commands.execute(first)).status).toBe('REJECTED');
    // Malformed commands fill the cache (they are never claimed): the first one's entry is pushed out.
    for (let i = 0; i <= REJECTIONS_REMEMBERED.countMax; i += 1) await commands.execute(commandEnvelope('Deposit', { partyId: 7 }));
    known.add('p2');
    expect((await commands.execute(first)).status).toBe('REJECTED');
    expect(await store.readStream('deposit-p2')).toEqual([]);
    await store.close();
  }, 120_000);
});
