import { BeforeApplicationShutdown, Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { EventStore } from '@backstop/event-store';
import { LedgerInvariantViolation, LedgerProjection, PageReader } from '@backstop/ledger';
import { Runtime, RUNTIME } from '@backstop/platform';
import { WakeableSleep } from './wakeable-sleep';

const PAGE_SIZE = 500;
const POLL_MS = 200;
const RETRY_MS_MAX = 5_000;

/** The store's readAll as the ledger's page reader (StoredEvent has the SourceEvent shape). */
export function storeReader(store: EventStore): PageReader {
  return (after, maxCount) => store.readAll({ after, maxCount });
}

export interface LedgerHalt {
  readonly eventId: string;
  readonly eventType: string;
  readonly stream: string;
  readonly position: string;
  readonly reason: string;
}

/**
 * The live ledger: an in-memory projection fed straight from the event store in global position
 * order, from position 0 at every start (no checkpoint: balances live in memory, so a restart
 * rebuilds them). Reading the store rather than the Kafka topics keeps the one global order in
 * both modes (the services share one store; four topics have no order between them), which is
 * what makes live equal to a replay at every position.
 *
 * An event the ledger refuses (an unbalanced entry, a floored account below zero) halts it at
 * that event: it books nothing after it, says so on every endpoint and in the log, and waits for
 * a fix (corrections are new events; a restart re-reads from the start).
 */
@Injectable()
export class LiveLedger implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly projection = new LedgerProjection();
  private halt: LedgerHalt | undefined;
  private readError: string | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly sleeper = new WakeableSleep();
  private unsubscribe: (() => void) | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly positionGauge;
  private readonly haltedGauge;
  private readonly postingsCounter;

  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {
    this.positionGauge = runtime.metrics.gauge('backstop_ledger_position', 'Global position of the last event the live ledger booked');
    this.haltedGauge = runtime.metrics.gauge('backstop_ledger_halted', '1 when the live ledger refused an event and stopped');
    this.postingsCounter = runtime.metrics.counter('backstop_ledger_postings_total', 'Postings made by the live ledger');
  }

  onApplicationBootstrap(): void {
    this.unsubscribe = this.runtime.store.onAppend(() => this.sleeper.wake());
    this.loop = this.run();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.sleeper.wake();
    this.unsubscribe?.();
    await this.loop;
  }

  /** The live projection (read it, never feed it). */
  current(): LedgerProjection {
    return this.projection;
  }

  halted(): LedgerHalt | undefined {
    return this.halt;
  }

  lastReadError(): string | undefined {
    return this.readError;
  }

  /** Resolves once the live ledger has booked everything up to `position` (tests, readiness). */
  waitFor(position: bigint, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.projection.position >= position) return done(resolve);
        if (this.halt) return done(() => reject(new Error(`the ledger halted at position ${this.halt!.position}: ${this.halt!.reason}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`ledger at position ${this.projection.position}, not ${position}, after ${timeoutMs} ms`))), timeoutMs);
      const done = (then: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        then();
      };
      this.waiters.add(check);
      check();
    });
  }

  private async run(): Promise<void> {
    let backoffMs = POLL_MS;
    while (!this.stopped) {
      if (this.halt) {
        await this.sleeper.sleep(RETRY_MS_MAX);
        continue;
      }
      let page;
      try {
        page = await this.runtime.store.readAll({ after: this.projection.position, maxCount: PAGE_SIZE });
        this.readError = undefined;
        backoffMs = POLL_MS;
      } catch (err) {
        this.readError = (err as Error).message;
        this.runtime.logger.warn('ledger: reading the store failed; retrying', { error: this.readError });
        await this.sleeper.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, RETRY_MS_MAX);
        continue;
      }
      for (const event of page) {
        if (this.stopped || !this.book(event)) break;
      }
      this.positionGauge.set(Number(this.projection.position));
      this.waiters.forEach((check) => check());
      if (page.length < PAGE_SIZE) await this.sleeper.sleep(POLL_MS);
    }
  }

  private book(event: Parameters<LedgerProjection['apply']>[0]): boolean {
    try {
      this.postingsCounter.inc({}, this.projection.apply(event).length);
      return true;
    } catch (err) {
      const reason = err instanceof LedgerInvariantViolation ? err.reason : (err as Error).message;
      this.halt = { eventId: event.id, eventType: event.type, stream: event.stream, position: event.position.toString(), reason };
      this.haltedGauge.set(1);
      this.runtime.logger.error('ledger halted: an event cannot be booked', { ...this.halt });
      return false;
    }
  }

}
