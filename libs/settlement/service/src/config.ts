import { isAbsolute, resolve } from 'node:path';
import { DAY_MS, HOUR_MS, InstrumentKind } from '@backstop/kernel';
import {
  DEFAULT_LIQUIDATION_COSTS,
  DEFAULT_POOL_POLICY,
  DEFAULT_STRESS_POLICY,
  LiquidationCosts,
  PoolPolicy,
  poolPolicyProblems,
  StressPolicy,
  Tranche,
} from '@backstop/settlement';
import { LayerKind } from '@backstop/settlement-model';

/** Everything an operator can tune in default-settlement, from the environment (see README.md here). */
export interface SettlementConfig {
  readonly pool: PoolPolicy;
  readonly liquidationCosts: LiquidationCosts;
  readonly stress: StressPolicy;
  /** Where the daily price CSVs for the historical stress live. */
  readonly marketDataDir: string;
  readonly capacityTickMs: number;
  readonly capacityHeartbeatMs: number;
  readonly capacityMaterialityBps: number;
  /** How often a settlement left half-done (crash, dead-lettered trigger) is driven to its end. */
  readonly resumeTickMs: number;
}

const KINDS: readonly InstrumentKind[] = ['PERPETUAL', 'FUTURE', 'OPTION'];

export function settlementConfigFromEnv(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): SettlementConfig {
  const dir = env.BACKSTOP_MARKET_DATA_DIR || '../shared/data';
  const pool: PoolPolicy = {
    ...DEFAULT_POOL_POLICY,
    cooldownMs: days(env, 'BACKSTOP_WITHDRAWAL_COOLDOWN_DAYS', DEFAULT_POOL_POLICY.cooldownMs / DAY_MS) * DAY_MS,
    windowMs: days(env, 'BACKSTOP_WITHDRAWAL_WINDOW_DAYS', DEFAULT_POOL_POLICY.windowMs / DAY_MS) * DAY_MS,
    trancheWeights: weights(env.BACKSTOP_TRANCHE_WEIGHTS),
    waterfallOrder: order(env.BACKSTOP_WATERFALL_ORDER),
  };
  const problems = poolPolicyProblems(pool);
  if (problems.length > 0) throw new Error(`default-settlement configuration: ${problems.join('; ')}`);
  return {
    pool,
    liquidationCosts: liquidationCosts(env.BACKSTOP_LIQUIDATION_COST),
    stress: {
      worstDays: integer(env, 'BACKSTOP_STRESS_WORST_DAYS', DEFAULT_STRESS_POLICY.worstDays, 0, 1_000),
      sigmas: list(env.BACKSTOP_STRESS_SIGMAS, 'BACKSTOP_STRESS_SIGMAS') ?? DEFAULT_STRESS_POLICY.sigmas,
      horizonDays: number(env, 'BACKSTOP_STRESS_HORIZON_DAYS', DEFAULT_STRESS_POLICY.horizonDays, 0.01, 365),
      defaultVolAnnual: number(env, 'BACKSTOP_STRESS_DEFAULT_VOL', DEFAULT_STRESS_POLICY.defaultVolAnnual, 0, 10),
      skipFirstDays: integer(env, 'BACKSTOP_STRESS_SKIP_FIRST_DAYS', DEFAULT_STRESS_POLICY.skipFirstDays, 0, 3_650),
    },
    marketDataDir: isAbsolute(dir) ? dir : resolve(cwd, dir),
    capacityTickMs: integer(env, 'BACKSTOP_CAPACITY_TICK_MS', 60_000, 100, DAY_MS),
    capacityHeartbeatMs: number(env, 'BACKSTOP_CAPACITY_HEARTBEAT_HOURS', 24, 0, 24 * 365) * HOUR_MS,
    capacityMaterialityBps: number(env, 'BACKSTOP_CAPACITY_MATERIALITY_BPS', 100, 0, 10_000),
    resumeTickMs: integer(env, 'BACKSTOP_SETTLEMENT_RESUME_TICK_MS', 30_000, 100, DAY_MS),
  };
}

function number(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) throw new Error(`${name} must be a number from ${min} to ${max}, got "${text}"`);
  return value;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const value = number(env, name, fallback, min, max);
  if (!Number.isInteger(value)) throw new Error(`${name} must be a whole number, got "${env[name]}"`);
  return value;
}

function days(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  return number(env, name, fallback, 0, 3_650);
}

function list(text: string | undefined, name: string): number[] | undefined {
  if (!text) return undefined;
  const values = text.split(',').map((s) => Number(s.trim()));
  if (values.length === 0 || values.some((v) => !(v > 0) || !Number.isFinite(v))) throw new Error(`${name} must be positive numbers separated by commas, e.g. "3,5"`);
  return values;
}

/** "JUNIOR=3,SENIOR=1" */
function weights(text: string | undefined): Record<Tranche, bigint> {
  if (!text) return { ...DEFAULT_POOL_POLICY.trancheWeights };
  const result: Record<Tranche, bigint> = { JUNIOR: 0n, SENIOR: 0n };
  for (const part of text.split(',')) {
    const [name, value] = part.split('=').map((s) => s.trim());
    if ((name !== 'JUNIOR' && name !== 'SENIOR') || !/^[0-9]{1,6}$/.test(value ?? '')) {
      throw new Error(`BACKSTOP_TRANCHE_WEIGHTS must look like "JUNIOR=3,SENIOR=1", got "${text}"`);
    }
    result[name] = BigInt(value);
  }
  return result;
}

/** "DEFAULTER_CONTRACT_COLLATERAL,POOL_MARGIN_ADVANCE,JUNIOR_TRANCHE,SENIOR_TRANCHE" */
function order(text: string | undefined): LayerKind[] {
  if (!text) return [...DEFAULT_POOL_POLICY.waterfallOrder];
  return text.split(',').map((s) => s.trim()) as LayerKind[];
}

/** "PERPETUAL=0.005,FUTURE=0.0075,OPTION=0.02,ETH-USD:OPTION=0.03" */
function liquidationCosts(text: string | undefined): LiquidationCosts {
  if (!text) return DEFAULT_LIQUIDATION_COSTS;
  const byKind: Record<InstrumentKind, number> = { ...DEFAULT_LIQUIDATION_COSTS.byKind };
  const overrides: Record<string, number> = {};
  for (const part of text.split(',')) {
    const [key, value] = part.split('=').map((s) => s.trim());
    const fraction = Number(value);
    const kind = key?.split(':').at(-1) as InstrumentKind;
    if (!KINDS.includes(kind) || !(fraction >= 0 && fraction < 1)) {
      throw new Error(`BACKSTOP_LIQUIDATION_COST must look like "PERPETUAL=0.005,OPTION=0.02,ETH-USD:OPTION=0.03" (fractions in [0, 1)), got "${text}"`);
    }
    if (key.includes(':')) overrides[key] = fraction;
    else byKind[kind] = fraction;
  }
  return { byKind, overrides };
}
