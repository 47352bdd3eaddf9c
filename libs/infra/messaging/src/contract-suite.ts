import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@backstop/event-store';
import { waitUntil, sleep } from '@backstop/testing';
import { startConsumer, DeadLetter, HandlerContext } from './consumer-runner';
import { encodeEnvelope, Envelope, makeEnvelope } from './envelope';
import { RedeliverLaterError } from './errors';
import { ConsumerHandle, MessageBus, TransportMessage } from './port';

/**
 * The message bus contract and the consumer runner's guarantees; every bus adapter runs these.
 * `makeBus` returns a new client of the SAME broker (or the same in-memory bus) on each call.
 */
export function messageBusContract(adapterName: string, makeBus: () => Promise<MessageBus>, waitMs = 20_000): void {
  describe(`message bus contract: ${adapterName}`, () => {
    let bus: MessageBus;
    const handles: ConsumerHandle[] = [];
    const buses: MessageBus[] = [];
    const topic = (name: string) => `c-${name}-${randomUUID().slice(0, 8)}`;
    const consume = async (target: MessageBus, groupId: string, topics: string[], onMessage: (m: TransportMessage) => Promise<void>) => {
      const handle = await target.subscribe({ groupId, topics, handle: onMessage });
      handles.push(handle);
      return handle;
    };

    beforeAll(async () => {
      bus = await makeBus();
      buses.push(bus);
    });
    afterAll(async () => {
      for (const h of handles) await h.stop().catch(() => undefined);
      for (const b of buses) await b.close();
    });

    it('delivers every message to every group, in order per key', async () => {
      const t = topic('order');
      await bus.ensureTopics([t]);
      const seen: Record<string, string[]> = { g1: [], g2: [] };
      for (const g of ['g1', 'g2']) {
        await consume(bus, `${g}-${t}`, [t], async (m) => {
          seen[g].push(`${m.key}:${m.value.toString()}`);
        });
      }
      const sent: string[] = [];
      for (let i = 0; i < 30; i += 1) sent.push(`k${i % 3}:${i}`);
      await bus.publish(t, sent.map((s) => ({ key: s.split(':')[0], value: s.split(':')[1] })));
      await waitUntil(() => seen.g1.length >= 30 && seen.g2.length >= 30, waitMs, 'both groups to receive 30 messages');
      for (const g of ['g1', 'g2']) {
        expect([...seen[g]].sort()).toEqual([...sent].sort());
        for (const key of ['k0', 'k1', 'k2']) {
          const values = seen[g].filter((s) => s.startsWith(`${key}:`)).map((s) => Number(s.split(':')[1]));
          expect(values).toEqual([...values].sort((a, b) => a - b));
        }
      }
    });

    it('redelivers a message whose handler threw, and a restarted group resumes after its commits', async () => {
      const t = topic('resume');
      await bus.ensureTopics([t]);
      const group = `g-${t}`;
      const got: string[] = [];
      let failOnce = true;
      const first = await consume(bus, group, [t], async (m) => {
        const v = m.value.toString();
        if (v === 'b' && failOnce) {
          failOnce = false;
          throw new Error('transient');
        }
        got.push(v);
      });
      await bus.publish(t, ['a', 'b', 'c'].map((v) => ({ key: 'same', value: v })));
      await waitUntil(() => got.length >= 3, waitMs, 'a, b, c');
      await first.stop();
      const other = await makeBus();
      buses.push(other);
      await other.publish(t, ['d', 'e'].map((v) => ({ key: 'same', value: v })));
      await consume(other, group, [t], async (m) => {
        got.push(m.value.toString());
      });
      await waitUntil(() => got.length >= 5, waitMs, 'd, e after restart');
      await sleep(300);
      expect(got).toEqual(['a', 'b', 'c', 'd', 'e']);
    });

    it('a batch handler: what it committed is not redelivered after it throws; the rest is, in order', async () => {
      const t = topic('batch');
      await bus.ensureTopics([t]);
      const seen: string[] = [];
      let failOnce = true;
      const handle = await bus.subscribe({
        groupId: `g-${t}`,
        topics: [t],
        handleBatch: async (messages, control) => {
          for (const [i, m] of messages.entries()) {
            seen.push(m.value.toString());
            if (failOnce && m.value.toString() === 'c') {
              failOnce = false;
              throw new Error('transient');
            }
            await control.commit(i + 1);
          }
        },
      });
      handles.push(handle);
      await bus.publish(t, ['a', 'b', 'c', 'd', 'e'].map((v) => ({ key: 'same', value: v })));
      await waitUntil(() => seen.includes('e') || undefined, waitMs, 'all five');
      await sleep(300);
      expect(seen).toEqual(['a', 'b', 'c', 'c', 'd', 'e']);
    });

    describe('consumer runner', () => {
      const store = new SqliteEventStore(join(mkdtempSync(join(tmpdir(), 'backstop-runner-')), 'processed.db'));
      afterAll(() => store.close());

      it('dead-letters junk with the reason and original bytes, skips duplicates, and keeps consuming', async () => {
        const t = topic('runner');
        const dlq = topic('dlq');
        await bus.ensureTopics([t, dlq]);
        const handled: string[] = [];
        const dead: DeadLetter[] = [];
        await consume(bus, `dlq-reader-${dlq}`, [dlq], async (m) => {
          dead.push(JSON.parse(m.value.toString()) as DeadLetter);
        });
        handles.push(
          await startConsumer({
            bus,
            groupId: `runner-${t}`,
            topics: [t],
            dlqTopic: dlq,
            processed: store,
            accepts: (type) => type === 'Ping' || type === 'Boom',
            messageBytesMax: 2_000,
            retriesMax: 2,
            retryBackoffMs: 10,
            handle: async (envelope) => {
              if (envelope.type === 'Boom') throw new Error('handler exploded');
              handled.push(String(envelope.payload.n));
              return 'ok';
            },
          }),
        );
        const ping = (n: number, id = randomUUID()) =>
          encodeEnvelope(makeEnvelope({ id, type: 'Ping', key: 'k', time: '2026-01-01T00:00:00Z', payload: { n } }));
        const dupId = randomUUID();
        const raw = [
          { key: 'k', value: 'not json {' },
          { key: 'k', value: JSON.stringify({ hello: 'no envelope' }) },
          encodeEnvelope(makeEnvelope({ type: 'Unheard', key: 'k', time: '2026-01-01T00:00:00Z', payload: {} })),
          { key: 'k', value: 'x'.repeat(3_000) },
          encodeEnvelope(makeEnvelope({ type: 'Boom', key: 'k', time: '2026-01-01T00:00:00Z', payload: {} })),
          ping(1, dupId),
          ping(1, dupId),
          ping(2),
        ];
        await bus.publish(t, raw);
        await waitUntil(() => handled.length >= 2 && dead.length >= 5, waitMs, 'two handled and five dead letters');
        await sleep(300);
        expect(handled).toEqual(['1', '2']);
        expect(dead.map((d) => d.reason)).toEqual(['NOT_JSON', 'INVALID_ENVELOPE', 'UNKNOWN_TYPE', 'OVERSIZED', 'HANDLER_FAILED']);
        expect(Buffer.from(dead[0].originalBase64, 'base64').toString()).toBe('not json {');
        expect(dead[1].detail).toMatch(/id must be a UUID/);
        expect(dead[2].detail).toMatch(/"Unheard" is not handled/);
        expect(dead[4].detail).toMatch(/handler exploded \(after 3 attempts\)/);
        expect(dead.every((d) => d.source.topic === t)).toBe(true);
      });

      it('commits no offset before the batch\'s replies are sent: a consumer stopped meanwhile leaves them to the next, which repeats the stored replies', async () => {
        const t = topic('durable');
        const replies = topic('replies');
        const dlq = topic('dlq');
        await bus.ensureTopics([t, replies, dlq]);
        const answered: string[] = [];
        await consume(bus, `reader-${replies}`, [replies], async (m) => void answered.push(m.key));
        let brokerDown = true;
        const flaky: MessageBus = {
          kind: bus.kind,
          location: bus.location,
          ensureTopics: (topics) => bus.ensureTopics(topics),
          subscribe: (o) => bus.subscribe(o),
          close: async () => undefined,
          publish: async (to, messages) => {
            if (to === replies && brokerDown) throw new RedeliverLaterError(new Error('broker down'));
            await bus.publish(to, messages);
          },
        };
        const handled: string[] = [];
        const repeated: string[] = [];
        const options = {
          groupId: `runner-${t}`,
          topics: [t],
          dlqTopic: dlq,
          processed: store,
          accepts: (type: string) => type === 'Ping',
          retryBackoffMs: 10,
          redeliveryBackoffMsMax: 50,
          handle: async (envelope: Envelope, _m: TransportMessage, context: HandlerContext) => {
            handled.push(envelope.id);
            context.publish(replies, [{ key: envelope.id, value: 'pong' }]);
            return envelope.id;
          },
          onDuplicate: async (_envelope: Envelope, stored: string, context: HandlerContext) => {
            repeated.push(stored);
            context.publish(replies, [{ key: stored, value: 'pong again' }]);
          },
        };
        const first = await startConsumer({ ...options, bus: flaky });
        const pings = Array.from({ length: 5 }, () => makeEnvelope({ type: 'Ping', key: 'k', time: '2026-01-01T00:00:00Z', payload: {} }));
        await bus.publish(t, pings.map((p) => encodeEnvelope(p)));
        await waitUntil(() => (handled.length >= 5 && first.status().state === 'retrying') || undefined, waitMs, 'five handled, their replies failing');
        await first.stop();
        expect(answered).toEqual([]);
        brokerDown = false;
        handles.push(await startConsumer({ ...options, bus: flaky }));
        await waitUntil(() => new Set(answered).size >= 5 || undefined, waitMs, 'the five replies from the next consumer');
        // Handled once (the store remembers them); their offsets were not committed, so the next consumer
        // got them again and re-sent the stored replies.
        expect(handled).toEqual(pings.map((p) => p.id));
        expect([...repeated].sort()).toEqual(pings.map((p) => p.id).sort());
        expect([...new Set(answered)].sort()).toEqual(pings.map((p) => p.id).sort());
      });

      it.each([1, 4])('publishes what handlers queue batched, retries a failed publish in place, and handles each message once, in key order (concurrency %i)', async (concurrency) => {
        const t = topic('batched');
        const replies = topic('replies');
        const dlq = topic('dlq');
        await bus.ensureTopics([t, replies, dlq]);
        const answered: string[] = [];
        await consume(bus, `reader-${replies}`, [replies], async (m) => void answered.push(m.key));
        const sends: number[] = [];
        let failures = 3;
        // The broker answering "not now" to the first reply produces (a real outage is in errors.int.spec.ts).
        const blipping: MessageBus = {
          kind: bus.kind,
          location: bus.location,
          ensureTopics: (topics) => bus.ensureTopics(topics),
          subscribe: (o) => bus.subscribe(o),
          close: async () => undefined,
          publish: async (to, messages) => {
            if (to === replies) {
              if (failures > 0) {
                failures -= 1;
                throw new RedeliverLaterError(new Error('broker blip'));
              }
              sends.push(messages.length);
            }
            await bus.publish(to, messages);
          },
        };
        const handled: string[] = [];
        const statuses = new Set<string>();
        const runner = await startConsumer({
          bus: blipping,
          groupId: `runner-${t}`,
          topics: [t],
          dlqTopic: dlq,
          processed: store,
          accepts: (type) => type === 'Ping',
          retryBackoffMs: 10,
          concurrency,
          // Flush by the batch, not by the clock: the count of produces below then does not depend on the host's speed.
          batchFlushMs: 60_000,
          handle: async (envelope, _message, context) => {
            handled.push(envelope.id);
            // Give other keys a chance to overtake (they may when concurrency > 1).
            if (Number(envelope.payload.n) % 7 === 0) await sleep(1);
            context.publish(replies, [{ key: envelope.id, value: 'pong' }]);
            return 'ok';
          },
        });
        handles.push(runner);
        const watcher = setInterval(() => statuses.add(runner.status().state), 5);
        const count = 300;
        const pings = Array.from({ length: count }, (_, n) => makeEnvelope({ type: 'Ping', key: `k${n % 5}`, time: '2026-01-01T00:00:00Z', payload: { n } }));
        await bus.publish(t, pings.map((p) => encodeEnvelope(p)));
        try {
          await waitUntil(() => new Set(answered).size >= count || undefined, waitMs, `${count} replies`);
          await sleep(300);
        } finally {
          clearInterval(watcher);
        }
        expect([...handled].sort()).toEqual(pings.map((p) => p.id).sort());
        for (let k = 0; k < 5; k += 1) {
          const ofKey = new Set(pings.filter((p) => p.key === `k${k}`).map((p) => p.id));
          expect(handled.filter((id) => ofKey.has(id))).toEqual(pings.filter((p) => p.key === `k${k}`).map((p) => p.id));
        }
        expect([...answered].sort()).toEqual(pings.map((p) => p.id).sort());
        expect(sends.reduce((a, b) => a + b, 0)).toBe(count);
        // Batched: one produce per fetched batch (a few per partition), far fewer than replies.
        expect(sends.length).toBeLessThanOrEqual(count / 10);
        expect(statuses).toContain('retrying');
        expect(runner.status().state).toBe('running');
      });
    });
  });
}
