import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '@backstop/kernel';
import { EventStore, SqliteEventStore } from '@backstop/event-store';
import { InProcessBus, TOPICS } from '@backstop/messaging';
import { MetricsRegistry, silentLogger } from '@backstop/telemetry';
import { waitUntil } from '@backstop/testing';
import { Runtime } from './runtime';
import { STORE_WRITE_FAILURE_HOLD_MS, StoreWriteHealth, storeFailureCode } from './store-write-health';

/**
 * A real SQLite store whose checkpoint writes fail the way a full disk makes them fail (a genuine
 * better-sqlite3 SqliteError with code SQLITE_FULL) while `full` is set.
 */
function withFullDisk(store: SqliteEventStore): { store: EventStore; disk: { full: boolean; refused: number } } {
  const disk = { full: false, refused: 0 };
  const wrapped = Object.create(store) as EventStore;
  wrapped.saveCheckpoint = async (name, position) => {
    if (disk.full) {
      disk.refused += 1;
      throw new Database.SqliteError('database or disk is full', 'SQLITE_FULL');
    }
    return store.saveCheckpoint(name, position);
  };
  return { store: wrapped, disk };
}

describe('readiness (issue 9: defects 1 and 5)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-ready-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const clock = new ManualClock(new Date('2026-01-01T00:00:00Z'));
  const config = {
    services: ['contract-intake', 'premium-pricing', 'margin-monitor', 'default-settlement'] as const,
    mode: 'single-process' as const,
    port: 0,
    host: '127.0.0.1',
    dataFile: join(dir, 'unused.db'),
    topicPrefix: '',
    kafkaPartitions: 1,
  };

  it('a checkpoint write failing with SQLITE_FULL is not-ready and retried with backoff, never an unhandled rejection; then it recovers', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const sqlite = new SqliteEventStore(join(dir, 'full.db'), clock);
    const { store, disk } = withFullDisk(sqlite);
    const runtime = new Runtime({ ...config, services: [...config.services] }, store, new InProcessBus(), silentLogger, new MetricsRegistry(), clock);
    const seen: string[] = [];
    runtime.registerConsumer({
      name: 'watcher',
      service: 'contract-intake',
      topics: [TOPICS.intakeEvents],
      types: ['PartyRegistered'],
      handle: async (envelope) => {
        seen.push(envelope.id);
      },
    });
    try {
      await runtime.start();
      expect((await runtime.readiness()).ready).toBe(true);
      disk.full = true;
      const appended = await sqlite.append('party-p1', [{ id: 'd0000000-0000-4000-8000-000000000001', type: 'PartyRegistered', data: { partyId: 'p1' } }], 'no_stream');
      const notReady = await waitUntil(async () => {
        const r = await runtime.readiness();
        return !r.ready && disk.refused >= 3 ? r : undefined;
      }, 10_000, 'readiness to report the full disk');
      expect(Object.entries(notReady.checks).filter(([name]) => name.startsWith('subscription:')).map(([, v]) => v)).toEqual(
        expect.arrayContaining([expect.stringMatching(/retrying: database or disk is full/)]),
      );
      // The handler ran once for the event; only the checkpoint is retried, with backoff (not a hot loop).
      expect(seen).toEqual(['d0000000-0000-4000-8000-000000000001']);
      const refusedSoFar = disk.refused;
      await new Promise((r) => setTimeout(r, 500));
      expect(disk.refused - refusedSoFar).toBeLessThan(30);
      disk.full = false;
      await runtime.waitForSubscriptions(appended.position, 15_000);
      await waitUntil(async () => ((await runtime.readiness()).ready ? true : undefined), 10_000, 'readiness to recover');
      expect(await sqlite.loadCheckpoint('contract-intake.watcher')).toBe(appended.position);
      expect(seen).toEqual(['d0000000-0000-4000-8000-000000000001']);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await runtime.stop();
    }
  }, 40_000);

  it('a command append failing with SQLITE_FULL is counted and makes the runtime not ready (reads still pass); a write going through again makes it ready', async () => {
    const sqlite = new SqliteEventStore(join(dir, 'full-append.db'), clock);
    const disk = { full: false };
    const store = Object.create(sqlite) as EventStore;
    store.append = async (...args) => {
      if (disk.full) throw new Database.SqliteError('database or disk is full', 'SQLITE_FULL');
      return sqlite.append(...args);
    };
    store.saveCheckpoint = async (...args) => {
      if (disk.full) throw new Database.SqliteError('database or disk is full', 'SQLITE_FULL');
      return sqlite.saveCheckpoint(...args);
    };
    let nowMs = 1_000_000;
    const metrics = new MetricsRegistry();
    const writes = new StoreWriteHealth(store, metrics, silentLogger, () => nowMs);
    const runtime = new Runtime({ ...config, services: [...config.services] }, store, new InProcessBus(), silentLogger, metrics, clock, writes);
    try {
      await runtime.start();
      expect((await runtime.readiness()).ready).toBe(true);
      disk.full = true;
      const failure = await store.append('party-p2', [{ id: 'd0000000-0000-4000-8000-000000000002', type: 'PartyRegistered', data: { partyId: 'p2' } }], 'no_stream').catch((err: unknown) => err);
      expect(storeFailureCode(failure)).toBe('SQLITE_FULL');
      let readiness = await runtime.readiness();
      expect(readiness.ready).toBe(false);
      expect(readiness.checks.store).toBe('ok');
      expect(readiness.checks['store-writes']).toMatch(/^failing: SQLITE_FULL on append \(1 failed writes/);
      expect(await metrics.render()).toMatch(/backstop_event_store_write_failures_total\{operation="append",code="SQLITE_FULL"\} 1/);
      // After the hold, readiness probes with a write: still full, still not ready (and the probe counts).
      nowMs += STORE_WRITE_FAILURE_HOLD_MS;
      readiness = await runtime.readiness();
      expect(readiness.checks['store-writes']).toMatch(/^failing: SQLITE_FULL on saveCheckpoint \(2 failed writes/);
      // Space freed: within the hold it stays not ready, then the probe write goes through.
      disk.full = false;
      nowMs += 1_000;
      expect((await runtime.readiness()).ready).toBe(false);
      nowMs += STORE_WRITE_FAILURE_HOLD_MS;
      readiness = await runtime.readiness();
      expect(readiness.checks['store-writes']).toBe('ok');
      expect(readiness.ready).toBe(true);
      // A conflict is not a store failure.
      await store.append('party-p3', [{ id: 'd0000000-0000-4000-8000-000000000003', type: 'PartyRegistered', data: { partyId: 'p3' } }], 'no_stream');
      await expect(store.append('party-p3', [{ id: 'd0000000-0000-4000-8000-000000000004', type: 'PartyRegistered', data: { partyId: 'p3' } }], 'no_stream')).rejects.toThrow();
      expect((await runtime.readiness()).checks['store-writes']).toBe('ok');
    } finally {
      await runtime.stop();
    }
  });

  it('a stopped consumer makes the runtime not ready, naming it', async () => {
    const store = new SqliteEventStore(join(dir, 'stopped.db'), clock);
    const runtime = new Runtime({ ...config, services: [...config.services] }, store, new InProcessBus(), silentLogger, new MetricsRegistry(), clock);
    try {
      await runtime.start();
      expect((await runtime.readiness()).ready).toBe(true);
      const consumers = (runtime as unknown as { running: { groupId: string; stop(): Promise<void> }[] }).running;
      const intake = consumers.find((c) => c.groupId === 'contract-intake.commands')!;
      await intake.stop();
      const readiness = await runtime.readiness();
      expect(readiness.ready).toBe(false);
      expect(readiness.checks['consumer:contract-intake.commands']).toBe('stopped: stopped');
    } finally {
      await runtime.stop();
    }
  });

  it('refuses to start on a store whose hash chain does not verify, naming the stream', async () => {
    const file = join(dir, 'tampered.db');
    const writer = new SqliteEventStore(file, clock);
    await writer.append('contract-c9', [{ id: 'd0000000-0000-4000-8000-000000000009', type: 'CollateralDeposited', data: { amount: '100.000000' } }], 'no_stream');
    await writer.close();
    const db = new Database(file);
    db.prepare(`UPDATE events SET data = '{"amount":"900.000000"}'`).run();
    db.close();
    const runtime = new Runtime({ ...config, services: [...config.services] }, new SqliteEventStore(file, clock), new InProcessBus(), silentLogger, new MetricsRegistry(), clock);
    await expect(runtime.start()).rejects.toThrow(/does not verify: stream contract-c9, revision 0, position 1.*ALTERED/);
    await runtime.stop();
  });
});
