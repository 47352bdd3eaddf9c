import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@backstop/event-store';
import { commandEnvelope, CommandReply } from '@backstop/platform';
import { bearer, RunningApp, startApp } from '@backstop/testing';

/**
 * Issue 9, defect 3: two replicas (two processes, so they truly run at once) on ONE store file. One
 * command id sent at the same moment with two bodies, one to each replica: exactly one body is
 * applied, its sender gets ACCEPTED, the other gets the idempotencyConflict rejection (409), and
 * never ACCEPTED for a body that was not applied.
 */
describe('one command id, two bodies, two replicas on one store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-replicas-'));
  const dataFile = join(dir, 'shared.db');
  const env = { BACKSTOP_DATA_FILE: dataFile };
  let one: RunningApp | undefined;
  let two: RunningApp | undefined;

  beforeAll(async () => {
    [one, two] = await Promise.all([startApp('apps/backstop/src/main.ts', env), startApp('apps/backstop/src/main.ts', env)]);
  }, 120_000);
  afterAll(async () => {
    await one?.stop();
    await two?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const send = async (app: RunningApp, id: string, partyId: string): Promise<{ status: number; reply: CommandReply }> => {
    const body = commandEnvelope('RegisterParty', { partyId, name: partyId, role: 'DESK', credit: { rating: 'A' } }, { id });
    const res = await fetch(`${app.url}/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer('operator') }, body: JSON.stringify(body) });
    return { status: res.status, reply: (await res.json()) as CommandReply };
  };

  it('applies exactly one body of 20 concurrent pairs and answers the other with 409', async () => {
    const pairs = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const id = randomUUID();
        const [a, b] = await Promise.all([send(one!, id, `a${i}`), send(two!, id, `b${i}`)]);
        return { i, id, a, b };
      }),
    );
    const store = new SqliteEventStore(dataFile);
    try {
      for (const { i, a, b } of pairs) {
        const applied = { a: (await store.readStream(`party-a${i}`)).length > 0, b: (await store.readStream(`party-b${i}`)).length > 0 };
        // Exactly one body applied...
        expect({ i, applied: [applied.a, applied.b].filter(Boolean).length }).toEqual({ i, applied: 1 });
        // ...its sender was told ACCEPTED, the other sender idempotencyConflict.
        const [winner, loser] = applied.a ? [a, b] : [b, a];
        expect({ i, status: winner.status, reply: winner.reply.status }).toEqual({ i, status: 200, reply: 'ACCEPTED' });
        expect({ i, status: loser.status, rule: loser.reply.violations?.[0]?.rule }).toEqual({ i, status: 409, rule: 'idempotencyConflict' });
        // A retry of the losing body on the other replica is still a conflict.
        const retry = await send(applied.a ? one! : two!, pairs[i].id, applied.a ? `b${i}` : `a${i}`);
        expect({ i, status: retry.status }).toEqual({ i, status: 409 });
      }
    } finally {
      await store.close();
    }
  }, 120_000);
});
