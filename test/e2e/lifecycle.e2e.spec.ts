import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeEnvelope, KafkaBus, TOPICS, TopicNames } from '@backstop/messaging';
import { commandEnvelope } from '@backstop/platform';
import { bearer, describeKafka, RunningApp, startApp, TEST_TOKENS, uniquePrefix, waitUntil, WORKSPACE_ROOT } from '@backstop/testing';

/**
 * Start-up and shutdown against the probes (issue 12, item 7): HTTP is bound before the consumers
 * join their groups (liveness answers, readiness says "starting", new work gets 503), and SIGTERM
 * under load loses nothing: every command either completed or was refused without effect, and
 * resending them all after a restart applies each exactly once.
 */
const headers = { ...bearer('operator'), 'content-type': 'application/json' };

describe('SIGTERM under HTTP load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-sigterm-'));
  const dataFile = join(dir, 'backstop.db');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('drains: each command completes or is refused, the process exits 0, and a resend applies each once', async () => {
    const commands = Array.from({ length: 120 }, (_, i) =>
      commandEnvelope('RegisterParty', { partyId: `sig${i}`, name: `Party ${i}`, role: 'DESK', credit: { rating: 'A' } }, { key: `sig${i}` }),
    );
    const app = await startApp('apps/backstop/src/main.ts', { BACKSTOP_DATA_FILE: dataFile, KAFKA_BROKERS: '' });
    const exited = new Promise<number | null>((resolve) => app.child.on('exit', (code) => resolve(code)));
    const outcomes = new Map<string, string>();
    let next = 0;
    let completed = 0;
    const worker = async () => {
      while (next < commands.length) {
        const command = commands[next++];
        try {
          const res = await fetch(`${app.url}/v1/commands`, { method: 'POST', headers, body: JSON.stringify(command) });
          const body = (await res.json()) as { status?: string };
          outcomes.set(command.id, res.status === 200 ? `200 ${body.status}` : String(res.status));
        } catch {
          outcomes.set(command.id, 'no connection'); // refused or closed before a request was read
        }
        completed += 1;
      }
    };
    const load = Promise.all(Array.from({ length: 6 }, worker));
    await waitUntil(() => (completed >= 30 ? true : undefined), 30_000, '30 commands done');
    app.child.kill('SIGTERM');
    await load;
    expect(await exited).toBe(0); // drained within the grace period, not killed
    const kinds = new Set(outcomes.values());
    // Completed and accepted, refused while stopping (503), or never reached the server: nothing else.
    for (const kind of kinds) expect(['200 ACCEPTED', '503', 'no connection']).toContain(kind);
    expect([...outcomes.values()].filter((o) => o === '200 ACCEPTED').length).toBeGreaterThanOrEqual(30);

    // Restart on the same store and resend everything with the same ids: what was accepted comes
    // back as the stored reply, what was refused is applied now, nothing is applied twice.
    const again = await startApp('apps/backstop/src/main.ts', { BACKSTOP_DATA_FILE: dataFile, KAFKA_BROKERS: '' });
    try {
      for (const command of commands) {
        const res = await fetch(`${again.url}/v1/commands`, { method: 'POST', headers, body: JSON.stringify(command) });
        expect([command.payload.partyId, res.status, await res.json()]).toEqual([
          command.payload.partyId,
          200,
          expect.objectContaining({ status: 'ACCEPTED', stream: `party-${command.payload.partyId}`, revision: 0 }),
        ]);
      }
    } finally {
      await again.stop();
    }
  }, 120_000);
});

describeKafka('start-up against the probes', (brokers) => {
  it('answers liveness and refuses work as "starting" before its consumers have joined, then becomes ready', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backstop-startup-'));
    const tokens = Object.entries(TEST_TOKENS).map(([role, token]) => `${token}=${role}`).join(',');
    const child = spawn(process.execPath, ['-r', join(WORKSPACE_ROOT, 'tools/register.js'), join(WORKSPACE_ROOT, 'apps/contract-intake/src/main.ts')], {
      cwd: WORKSPACE_ROOT,
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', BACKSTOP_TOKENS: tokens, KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: uniquePrefix('startup'), BACKSTOP_DATA_FILE: join(dir, 'b.db') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    try {
      // The port is only in the log line printed once started; find it from the process instead:
      // the app binds before it starts, so poll the ports it has open.
      const port = await waitUntil(() => listeningPort(child.pid!), 60_000, 'the app to bind its port');
      const base = `http://127.0.0.1:${port}`;
      const seen: string[] = [];
      let refusedWork: { status: number; retryAfter: string | null } | undefined;
      await waitUntil(async () => {
        const live = await fetch(`${base}/health/live`);
        const ready = await fetch(`${base}/health/ready`);
        const body = (await ready.json()) as { checks: { started: string } };
        seen.push(`${live.status}/${ready.status}/${body.checks.started}`);
        if (ready.status === 503 && !refusedWork) {
          const res = await fetch(`${base}/v1/commands`, { method: 'POST', headers, body: JSON.stringify(commandEnvelope('RegisterParty', { partyId: 'early', name: 'E', role: 'DESK', credit: { rating: 'A' } })) });
          refusedWork = { status: res.status, retryAfter: res.headers.get('retry-after') };
        }
        return ready.status === 200 ? true : undefined;
      }, 60_000, 'ready');
      expect(seen).toContain('200/503/starting');
      expect(seen.at(-1)).toBe('200/200/ok');
      expect(refusedWork).toEqual({ status: 503, retryAfter: '1' });
      expect(out).toMatch(/runtime started/);
    } finally {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});

describeKafka('SIGTERM while consuming commands from Kafka', (brokers) => {
  it('finishes the messages in flight, commits, exits 0; after a restart every command has exactly one effect', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backstop-kafka-sigterm-'));
    const prefix = uniquePrefix('sigterm');
    const topics = new TopicNames(prefix);
    const env = { KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: prefix, BACKSTOP_DATA_FILE: join(dir, 'b.db') };
    const client = new KafkaBus({ brokers, clientId: 'sigterm-e2e' });
    const replies: { key: string; status: string; revision?: number }[] = [];
    const observer = await client.subscribe({
      groupId: `${prefix}observer`,
      topics: [topics.of(TOPICS.replies)],
      handle: async (m) => {
        const body = JSON.parse(m.value.toString()) as { payload: { status: string; revision?: number } };
        replies.push({ key: m.key, status: body.payload.status, revision: body.payload.revision });
      },
    });
    let app: RunningApp | undefined;
    try {
      app = await startApp('apps/contract-intake/src/main.ts', env);
      const commands = Array.from({ length: 200 }, (_, i) =>
        commandEnvelope('RegisterParty', { partyId: `k${i}`, name: `Party ${i}`, role: 'DESK', credit: { rating: 'A' } }, { key: `k${i}` }),
      );
      for (let i = 0; i < commands.length; i += 50) await client.publish(topics.of(TOPICS.intakeCommands), commands.slice(i, i + 50).map(encodeEnvelope));
      await waitUntil(() => (replies.length >= 20 ? true : undefined), 60_000, '20 replies');
      expect(await app.stop()).toBe(0); // SIGTERM mid-stream: drained and closed in time
      const beforeRestart = replies.length;
      expect(beforeRestart).toBeLessThan(commands.length); // it really was stopped under load

      app = await startApp('apps/contract-intake/src/main.ts', env);
      const ids = new Set(commands.map((c) => c.id));
      await waitUntil(() => (new Set(replies.map((r) => r.key).filter((k) => ids.has(k))).size === ids.size ? true : undefined), 90_000, 'a reply to every command');
      // Exactly one effect each: every reply (a redelivery re-sends the stored one) is revision 0.
      expect(replies.filter((r) => ids.has(r.key) && !(r.status === 'ACCEPTED' && r.revision === 0))).toEqual([]);
      // Offsets were committed on the way down: nothing handled before SIGTERM came back after it.
      const perCommand = new Map<string, number>();
      for (const r of replies) perCommand.set(r.key, (perCommand.get(r.key) ?? 0) + 1);
      expect([...perCommand.values()].filter((n) => n > 1)).toEqual([]);
    } finally {
      await app?.stop();
      await observer.stop();
      await client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});

/** The TCP port a process listens on, from /proc (Linux): its socket inodes matched in /proc/net/tcp. */
function listeningPort(pid: number): number | undefined {
  let inodes: Set<string>;
  try {
    inodes = new Set(
      readdirSync(`/proc/${pid}/fd`)
        .map((fd) => {
          try {
            return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
          } catch {
            return undefined;
          }
        })
        .filter((x): x is string => !!x),
    );
  } catch {
    return undefined;
  }
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = readFileSync(file, 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      const cols = line.trim().split(/\s+/);
      // state 0A = LISTEN; local address is hex ip:port; inode is column 9
      if (cols[3] === '0A' && inodes.has(cols[9])) return parseInt(cols[1].split(':')[1], 16);
    }
  }
  return undefined;
}
