/**
 * Pool capacity (SPEC §6, Cover 2 as CPMI-IOSCO PFMI principle 4 asks of CCPs): the pool's capital
 * net of pending withdrawals against the loss of the two counterparties whose default would cost
 * it most, under extreme but plausible moves over the margin period of risk (the margin model's
 * stressScenarios: worst MPOR-day historical windows, ±Nσ·√MPOR, vol shocks, liquidation costs).
 * The stress arithmetic is the margin model's (cover2); amounts become minor units here, rounded
 * UP (a requirement never rounds in favour of writing more cover, SPEC §2).
 *
 * The published assessment lives in its own stream (`pool-<poolId>-capacity`) so that frequent
 * re-assessments never contend with the money stream.
 */
import { assertNever, currencyOf, Decider, DomainEvent, floatToMinor, fromMinor, ms, toMinor } from '@backstop/kernel';
import { cover2, CounterpartyExposure, HistoricalDay, StressMarket, StressPolicy, stressScenarios } from '@backstop/margin-model';
import { valueOfShares } from '@backstop/settlement-model';
import { pendingPhase, PoolState, trancheAvailable } from './pool';
import { TRANCHES } from './policy';

// The scenario set lives with the stress arithmetic in the margin model, so that pricing's capital
// charge and this assessment use one definition; re-exported for this library's users.
export { DEFAULT_STRESS_POLICY, FALLBACK_CRASH_DAYS, historicalDays, historicalDayScenarios, hypotheticalStressScenarios } from '@backstop/margin-model';
export type { HistoricalDay, StressPolicy } from '@backstop/margin-model';

export interface CounterpartyLossMinor {
  readonly counterpartyId: string;
  readonly lossMinor: bigint;
}

export interface CapacityResult {
  readonly currency: string;
  readonly capitalMinor: bigint;
  readonly requirementMinor: bigint;
  /** Capital minus the requirement: negative means the pool cannot take Cover 2. */
  readonly headroomMinor: bigint;
  readonly worstScenario: string | null;
  readonly worstCounterparties: readonly CounterpartyLossMinor[];
  readonly scenarios: readonly { readonly name: string; readonly cover2Minor: bigint; readonly worst: readonly CounterpartyLossMinor[] }[];
  readonly counterpartyCount: number;
  readonly coverageCount: number;
}

export function assessCapacity(input: {
  readonly currency: string;
  readonly scale: number;
  readonly capitalMinor: bigint;
  readonly exposures: readonly CounterpartyExposure[];
  readonly market: StressMarket;
  readonly historical: readonly HistoricalDay[];
  readonly policy: StressPolicy;
}): CapacityResult {
  // Historical windows shock only the underlyings they have prices for; an underlying the book does not hold is ignored.
  const { scenarios, market } = stressScenarios(input.market, input.historical, input.policy);
  const result = cover2(input.exposures, scenarios, market);
  // Shed binary noise below 1/1000 of a minor unit first, so 57500.00000000001 does not round up a whole unit.
  const up = (x: number) => floatToMinor(Number(x.toFixed(input.scale + 3)), input.scale, 'up');
  const worst = result.scenarios.find((s) => s.scenario === result.worstScenario);
  const requirementMinor = up(result.requirement);
  return {
    currency: input.currency,
    capitalMinor: input.capitalMinor,
    requirementMinor,
    headroomMinor: input.capitalMinor - requirementMinor,
    // With nothing at risk no scenario is "worst": every one costs zero.
    worstScenario: requirementMinor > 0n ? (result.worstScenario ?? null) : null,
    worstCounterparties: (worst?.losses ?? []).slice(0, 2).filter((l) => l.loss > 0).map((l) => ({ counterpartyId: l.counterpartyId, lossMinor: up(l.loss) })),
    scenarios: result.scenarios.map((s) => ({
      name: s.scenario,
      cover2Minor: up(s.cover2),
      worst: s.losses.slice(0, 2).filter((l) => l.loss > 0).map((l) => ({ counterpartyId: l.counterpartyId, lossMinor: up(l.loss) })),
    })),
    counterpartyCount: input.exposures.length,
    coverageCount: input.exposures.reduce((s, e) => s + e.coverages.length, 0),
  };
}

// ---------------------------------------------------------------------------------------------
// Capital net of pending withdrawals, and the withdrawal gate (SPEC §6)

/**
 * What pending withdrawals (requested, window not yet closed) may still take out: each the lesser of
 * its value at request and now, as the withdrawal pays (SPEC §6). Capacity must not count it.
 */
export function pendingWithdrawalsMinor(state: PoolState, nowMs: number): bigint {
  let total = 0n;
  for (const tranche of TRANCHES) {
    for (const position of state.positions[tranche].values()) {
      const pending = position.pending;
      if (!pending || pendingPhase(pending, nowMs) === 'EXPIRED') continue;
      const now = valueOfShares(state.tranches[tranche], pending.shares);
      total += now < pending.valueAtRequestMinor ? now : pending.valueAtRequestMinor;
    }
  }
  return total;
}

/** Capital that counts for Cover 2: what can absorb a loss, less what pending withdrawals may take. */
export function capacityCapitalMinor(state: PoolState, nowMs: number): bigint {
  const available = TRANCHES.reduce((s, t) => s + trancheAvailable(state, t), 0n);
  const net = available - pendingWithdrawalsMinor(state, nowMs);
  return net > 0n ? net : 0n;
}

/** The Cover-2 position a withdrawal request is judged against (from the last assessment). */
export interface WithdrawalCapacity {
  /** capacityCapitalMinor: net of withdrawals already pending. */
  readonly capitalNetMinor: bigint;
  readonly requirementMinor: bigint;
}

/**
 * Why withdrawing `amountMinor` would break Cover 2, or undefined: the capital left after it must
 * still cover the requirement. The message names the headroom, so the provider knows what can go.
 */
export function withdrawalCapacityProblem(capacity: WithdrawalCapacity, amountMinor: bigint, currency: string): string | undefined {
  const scale = currencyOf(currency).scale;
  const headroom = capacity.capitalNetMinor - capacity.requirementMinor;
  if (capacity.capitalNetMinor - amountMinor >= capacity.requirementMinor) return undefined;
  const left = headroom > 0n ? headroom : 0n;
  return (
    `withdrawing ${fromMinor(amountMinor, scale)} ${currency} would break Cover 2: capital net of pending withdrawals is ` +
    `${fromMinor(capacity.capitalNetMinor, scale)} against a requirement of ${fromMinor(capacity.requirementMinor, scale)}; ` +
    `headroom ${fromMinor(left, scale)} ${currency}`
  );
}

// ---------------------------------------------------------------------------------------------
// The published assessment (stream pool-<poolId>-capacity)

export interface CapacityAssessedData {
  poolId: string;
  currency: string;
  capital: string;
  cover2Requirement: string;
  headroom: string;
  worstScenario: string | null;
  worstCounterparties: { counterpartyId: string; loss: string }[];
  scenarioCount: number;
  counterpartyCount: number;
  coverageCount: number;
  /** What made it publish: CAPITAL_OR_COVERAGE_CHANGED, MATERIAL_CHANGE, HEARTBEAT or FIRST. */
  trigger: 'CAPITAL_OR_COVERAGE_CHANGED' | 'MATERIAL_CHANGE' | 'HEARTBEAT' | 'FIRST';
  at: string;
}

export type CapacityEvent = DomainEvent<'CapacityAssessed', CapacityAssessedData>;

export type CapacityCommand = {
  type: 'PublishCapacity';
  poolId: string;
  result: CapacityResult;
  /** A capital or coverage change publishes whatever the numbers. */
  changed: boolean;
  /** A ticker publishes when the requirement moved by more than this, relative… */
  materialityBps: number;
  /** …or when the last publication is this old. */
  heartbeatMs: number;
  at: string;
};

export interface CapacityState {
  readonly last?: CapacityAssessedData;
}

export const capacityDecider: Decider<CapacityCommand, CapacityState, CapacityEvent> = {
  initialState: {},
  decide(command, state) {
    switch (command.type) {
      case 'PublishCapacity': {
        const trigger = publishTrigger(command, state.last);
        if (!trigger) return [];
        const r = command.result;
        const scale = currencyOf(r.currency).scale;
        return [
          {
            type: 'CapacityAssessed',
            data: {
              poolId: command.poolId,
              currency: r.currency,
              capital: fromMinor(r.capitalMinor, scale),
              cover2Requirement: fromMinor(r.requirementMinor, scale),
              headroom: fromMinor(r.headroomMinor, scale),
              worstScenario: r.worstScenario,
              worstCounterparties: r.worstCounterparties.map((w) => ({ counterpartyId: w.counterpartyId, loss: fromMinor(w.lossMinor, scale) })),
              scenarioCount: r.scenarios.length,
              counterpartyCount: r.counterpartyCount,
              coverageCount: r.coverageCount,
              trigger,
              at: command.at,
            },
          },
        ];
      }
      default:
        return assertNever(command.type, 'capacity command');
    }
  },
  evolve(_state, event) {
    switch (event.type) {
      case 'CapacityAssessed':
        return { last: event.data };
      default:
        return assertNever(event.type, 'capacity event');
    }
  },
};

function publishTrigger(command: CapacityCommand, last: CapacityAssessedData | undefined): CapacityAssessedData['trigger'] | undefined {
  if (!last) return 'FIRST';
  if (command.changed) return 'CAPITAL_OR_COVERAGE_CHANGED';
  const r = command.result;
  const scale = currencyOf(r.currency).scale;
  const lastCapital = toMinor(last.capital, scale);
  const lastRequirement = toMinor(last.cover2Requirement, scale);
  const moved = r.requirementMinor > lastRequirement ? r.requirementMinor - lastRequirement : lastRequirement - r.requirementMinor;
  const base = lastRequirement > 0n ? lastRequirement : 1n;
  const sameWorst = r.worstScenario === last.worstScenario && r.worstCounterparties.map((w) => w.counterpartyId).join() === last.worstCounterparties.map((w) => w.counterpartyId).join();
  if (r.capitalMinor !== lastCapital || !sameWorst || moved * 10_000n > base * BigInt(Math.max(0, Math.floor(command.materialityBps)))) return 'MATERIAL_CHANGE';
  if (ms(command.at) - ms(last.at) >= command.heartbeatMs) return 'HEARTBEAT';
  return undefined;
}
