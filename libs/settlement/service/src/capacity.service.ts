import { Clock, currencyOf, Decider } from '@backstop/kernel';
import { EventStore } from '@backstop/event-store';
import { Logger } from '@backstop/telemetry';
import { loadState } from '@backstop/platform';
import {
  advanceOutstanding,
  assessCapacity,
  capacityCapitalMinor,
  CapacityAssessedData,
  capacityDecider,
  CapacityResult,
  createPoolDecider,
  PoolCommand,
  PoolEvent,
  PoolState,
} from '@backstop/settlement';
import { SettlementConfig } from './config';
import { MarketHistory } from './market-data';
import { capacityStream, LiveBook, poolStream, step } from './steps';

export interface CapacityView {
  readonly result: CapacityResult;
  readonly marks: Record<string, { price: string; volAnnual?: string; at: string }>;
  readonly historySource: string;
  readonly at: string;
}

/**
 * Cover 2 over the live book (SPEC §6): computed on demand (GET /v1/stress) and published as
 * CapacityAssessed whenever capital or coverage changes, and on a ticker when it moved materially
 * or the last one is old.
 */
export class CapacityAssessor {
  private readonly book: LiveBook;
  private readonly pool: Decider<PoolCommand, PoolState, PoolEvent>;

  constructor(
    private readonly store: EventStore,
    private readonly config: SettlementConfig,
    private readonly history: MarketHistory,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.book = new LiveBook(store);
    this.pool = createPoolDecider(config.pool);
  }

  async compute(): Promise<CapacityView> {
    const at = this.clock.now().toISOString();
    const book = await this.book.refresh();
    const { state } = await loadState(this.store, poolStream(this.config.pool.poolId), this.pool);
    const currency = this.config.pool.currency;
    const advances = new Map([...state.advances.keys()].map((partyId) => [partyId, advanceOutstanding(state, partyId)]));
    const exposures = book.counterpartyExposures(at, currency, advances);
    const market = book.stressMarket(at, exposures, this.config.stress.defaultVolAnnual);
    const result = assessCapacity({
      currency,
      scale: currencyOf(currency).scale,
      // Capital that can absorb a loss (the waterfall's tranche balances), net of pending withdrawals.
      capitalMinor: capacityCapitalMinor(state, Date.parse(at)),
      exposures,
      market,
      historical: this.history.days,
      policy: this.config.stress,
    });
    return { result, marks: book.lastMarks(), historySource: this.history.source, at };
  }

  /** Publishes if capital/coverage `changed`, or on a material move / heartbeat; idempotent by causation. */
  async publish(changed: boolean, causationId: string, correlationId = causationId): Promise<void> {
    const view = await this.compute();
    const decided = await step(
      this.store,
      capacityStream(this.config.pool.poolId),
      capacityDecider,
      {
        type: 'PublishCapacity',
        poolId: this.config.pool.poolId,
        result: view.result,
        changed,
        materialityBps: this.config.capacityMaterialityBps,
        heartbeatMs: this.config.capacityHeartbeatMs,
        at: view.at,
      },
      { causationId, correlationId, occurredAt: view.at },
    );
    if (decided.events.length > 0 && !decided.alreadyApplied && view.result.headroomMinor < 0n) {
      this.logger.warn('pool capacity below Cover 2: new coverage should be refused', {
        requirement: view.result.requirementMinor.toString(),
        capital: view.result.capitalMinor.toString(),
        worstScenario: view.result.worstScenario,
      });
    }
  }

  async lastPublished(): Promise<CapacityAssessedData | null> {
    const { state } = await loadState(this.store, capacityStream(this.config.pool.poolId), capacityDecider);
    return state.last ?? null;
  }
}
