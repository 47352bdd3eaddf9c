import { Decider } from '@backstop/kernel';
import { ReadModel, Runtime } from '@backstop/platform';
import { createPoolDecider, PoolCommand, PoolEvent, PoolState } from '@backstop/settlement';
import { CapacityAssessor } from './capacity.service';
import { SettlementConfig, settlementConfigFromEnv } from './config';
import { DefaultSettler } from './default-settler';
import { SETTLEMENT_FACTS } from './facts-view';
import { loadMarketHistory, MarketHistory } from './market-data';

export const SERVICE = 'default-settlement' as const;

/** Injection token of the default-settlement composition (config, pool decider, settler, capacity). */
export const SETTLEMENT = Symbol('backstop.settlement');

export interface Settlement {
  readonly runtime: Runtime;
  readonly config: SettlementConfig;
  readonly pool: Decider<PoolCommand, PoolState, PoolEvent>;
  readonly history: MarketHistory;
  readonly settler: DefaultSettler;
  readonly capacity: CapacityAssessor;
  /** Parties, contracts, coverages, marks and defaults as the other services published them (this service's read model). */
  readonly facts: ReadModel;
}

/** Reads the configuration and the market history once, at start-up. */
export function createSettlement(runtime: Runtime, env: NodeJS.ProcessEnv = process.env): Settlement {
  const logger = runtime.logger.child({ component: SERVICE });
  const config = settlementConfigFromEnv(env);
  const history = loadMarketHistory(config.marketDataDir, config.stress, logger);
  const facts = new ReadModel(runtime.store, { service: SERVICE, ...SETTLEMENT_FACTS });
  return {
    facts,
    runtime,
    config,
    pool: createPoolDecider(config.pool),
    history,
    settler: new DefaultSettler({ store: runtime.store, config, clock: runtime.clock, logger, facts }),
    capacity: new CapacityAssessor(runtime.store, config, history, runtime.clock, logger),
  };
}
