import { randomUUID } from 'node:crypto';
import { startCatchUpSubscription } from './catch-up-subscription';
import { GENESIS_HASH, verifyChains } from './hash-chain';
import { EventStore, NewEvent, StoredEvent, WrongExpectedRevisionError } from './port';

/**
 * The event store contract: every adapter runs exactly these specs.
 * `open` returns a new connection to the SAME backing store each call (a "restart").
 */
export function eventStoreContract(adapterName: string, open: () => Promise<EventStore>): void {
  describe(`event store contract: ${adapterName}`, () => {
    let store: EventStore;
    const opened: EventStore[] = [];
    const connect = async () => {
      const s = await open();
      opened.push(s);
      return s;
    };
    const tag = `t${randomUUID().slice(0, 8)}`;
    const streamName = (name: string) => `${name}_${tag}-${randomUUID().slice(0, 8)}`;
    const ev = (type: string, data: Record<string, unknown> = {}): NewEvent => ({ id: randomUUID(), type, data });

    beforeAll(async () => {
      store = await connect();
    });
    afterAll(async () => {
      for (const s of opened) await s.close();
    });

    it('appends and reads a stream in revision order', async () => {
      const s = streamName('order');
      const r1 = await store.append(s, [ev('A', { n: 1 }), ev('B', { n: 2 })], 'no_stream');
      const r2 = await store.append(s, [ev('C', { n: 3 })], r1.lastRevision);
      expect(r1.lastRevision).toBe(1);
      expect(r2.lastRevision).toBe(2);
      expect(r2.position > r1.position).toBe(true);
      const read = await store.readStream(s);
      expect(read.map((e) => [e.type, e.revision, e.data.n])).toEqual([['A', 0, 1], ['B', 1, 2], ['C', 2, 3]]);
      expect(await store.readStream(s, { fromRevision: 1, maxCount: 1 })).toHaveLength(1);
      expect(await store.readStream(streamName('missing'))).toEqual([]);
    });

    it('rejects a stale expected revision and writes nothing', async () => {
      const s = streamName('occ');
      await store.append(s, [ev('A')], 'no_stream');
      await store.append(s, [ev('B')], 0);
      await expect(store.append(s, [ev('Stale')], 0)).rejects.toBeInstanceOf(WrongExpectedRevisionError);
      await expect(store.append(s, [ev('Stale')], 'no_stream')).rejects.toBeInstanceOf(WrongExpectedRevisionError);
      await expect(store.append(streamName('none'), [ev('Stale')], 3)).rejects.toBeInstanceOf(WrongExpectedRevisionError);
      expect((await store.readStream(s)).map((e) => e.type)).toEqual(['A', 'B']);
      const any = await store.append(s, [ev('C')], 'any');
      expect(any.lastRevision).toBe(2);
    });

    it('lets exactly one of two racing writers with the same expected revision win', async () => {
      const s = streamName('race');
      await store.append(s, [ev('Start')], 'no_stream');
      const results = await Promise.allSettled(
        [1, 2, 3, 4].map((w) => store.append(s, [ev(`W${w}`), ev(`W${w}`)], 0)),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const types = (await store.readStream(s)).map((e) => e.type);
      expect(types).toHaveLength(3);
      expect(types[1]).toBe(types[2]);
    });

    it('writes each append atomically: concurrent batches never interleave', async () => {
      const s = streamName('atomic');
      const writers = 6;
      const batch = 15;
      await Promise.all(
        Array.from({ length: writers }, (_, w) =>
          store.append(s, Array.from({ length: batch }, (_x, i) => ev(`W${w}`, { i })), 'any'),
        ),
      );
      const events = await store.readStream(s);
      expect(events).toHaveLength(writers * batch);
      for (let start = 0; start < events.length; start += batch) {
        const block = events.slice(start, start + batch);
        expect(new Set(block.map((e) => e.type)).size).toBe(1);
        expect(block.map((e) => e.data.i)).toEqual(Array.from({ length: batch }, (_x, i) => i));
      }
    });

    it('stores an event id appended twice once', async () => {
      const s = streamName('idem');
      const events = [ev('A'), ev('B')];
      const first = await store.append(s, events, 'no_stream');
      const again = await store.append(s, events, 'no_stream');
      expect(again.duplicate).toBe(true);
      expect(again.lastRevision).toBe(first.lastRevision);
      expect(again.position).toBe(first.position);
      expect(await store.readStream(s)).toHaveLength(2);
      const all = await readEverything(store, s);
      expect(all).toHaveLength(2);
    });

    it('gives readers a total, gap-free global order across streams', async () => {
      const a = streamName('globalA');
      const b = streamName('globalB');
      const written: string[] = [];
      for (let i = 0; i < 12; i += 1) {
        const e = ev('G', { i });
        written.push(e.id);
        await store.append(i % 2 === 0 ? a : b, [e], 'any');
      }
      for (const pageSize of [1, 5, 100]) {
        const seen = await readEverything(store, `_${tag}-`, pageSize);
        const ours = seen.filter((e) => e.stream === a || e.stream === b);
        expect(ours.map((e) => e.id)).toEqual(written);
        const positions = seen.map((e) => e.position);
        positions.slice(1).forEach((p, i) => expect(p > positions[i]).toBe(true));
        expect(new Set(seen.map((e) => e.id)).size).toBe(seen.length);
      }
    });

    it('resumes a subscription from its checkpoint after a restart without loss or duplicates', async () => {
      const s = streamName('sub');
      const name = `contract-${tag}-${randomUUID().slice(0, 8)}`;
      const received: number[] = [];
      const subscribe = async (target: EventStore) =>
        startCatchUpSubscription(target, {
          name,
          pollMs: 20,
          handle: async (e) => {
            if (e.stream === s) received.push(e.data.i as number);
          },
        });
      const first = await subscribe(store);
      let last = await store.append(s, [0, 1, 2].map((i) => ev('S', { i })), 'no_stream');
      await first.waitFor(last.position, 10_000);
      await first.stop();
      last = await store.append(s, [3, 4].map((i) => ev('S', { i })), 'any');
      const restarted = await connect();
      expect(await restarted.loadCheckpoint(name)).toBe(first.position());
      const second = await subscribe(restarted);
      await second.waitFor(last.position, 10_000);
      last = await restarted.append(s, [5].map((i) => ev('S', { i })), 'any');
      await second.waitFor(last.position, 10_000);
      await second.stop();
      expect(received).toEqual([0, 1, 2, 3, 4, 5]);
    });

    it('retries a failing handler and delivers the event once it succeeds', async () => {
      const s = streamName('retry');
      const handled: string[] = [];
      let failures = 2;
      const sub = await startCatchUpSubscription(store, {
        name: `retry-${tag}`,
        pollMs: 20,
        handle: async (e) => {
          if (e.stream !== s) return;
          if (failures > 0) {
            failures -= 1;
            throw new Error('transient');
          }
          handled.push(e.type);
        },
      });
      const r = await store.append(s, [ev('X'), ev('Y')], 'no_stream');
      await sub.waitFor(r.position, 10_000);
      await sub.stop();
      expect(handled).toEqual(['X', 'Y']);
    });

    it('chains every event to its stream predecessor by hash, so verify finds no broken link', async () => {
      const s = streamName('chain');
      await store.append(s, [ev('A', { n: 1 }), ev('B', { n: 2 })], 'no_stream');
      await store.append(s, [ev('C', { n: 3 })], 'any');
      const events = await store.readStream(s);
      expect(events[0].metadata.prevHash).toBe(GENESIS_HASH);
      expect(events[1].metadata.prevHash).toBe(events[0].metadata.hash);
      expect(events[2].metadata.prevHash).toBe(events[1].metadata.hash);
      const result = await verifyChains(store);
      expect(result.firstBreak).toBeUndefined();
      expect(result.eventsChecked).toBeGreaterThanOrEqual(3);
    });

    it('keeps checkpoints and processed-message records durably', async () => {
      const name = `cp-${tag}`;
      expect(await store.loadCheckpoint(name)).toBeUndefined();
      await store.saveCheckpoint(name, 42n);
      await store.saveCheckpoint(name, 43n);
      const id = randomUUID();
      expect(await store.findProcessed('consumer', id)).toBeUndefined();
      await store.recordProcessed('consumer', id, '{"ok":true}');
      await store.recordProcessed('consumer', id, '{"ok":false}');
      const restarted = await connect();
      expect(await restarted.loadCheckpoint(name)).toBe(43n);
      expect(await restarted.findProcessed('consumer', id)).toBe('{"ok":true}');
    });
  });
}

async function readEverything(store: EventStore, streamContains: string, pageSize = 500): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let after = 0n;
  for (let page = 0; page < 10_000; page += 1) {
    const events = await store.readAll({ after, maxCount: pageSize });
    if (events.length === 0) break;
    out.push(...events.filter((e) => e.stream.includes(streamContains)));
    after = events[events.length - 1].position;
  }
  return out;
}
