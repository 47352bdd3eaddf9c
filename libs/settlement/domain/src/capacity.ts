/**
 * Pool capacity (SPEC §6, Cover 2 as CPMI-IOSCO PFMI principle 4 asks of CCPs): the pool's capital
 * against the loss of the two counterparties whose default would cost it most, under extreme but
 * plausible moves:
 *   - historical: the worst days of the daily price history (each day applied to every underlying
 *     that has a price that day, so a crash hits BTC and ETH together as it did), and
 *   - hypothetical: ±Nσ over a horizon for each underlying alone and for all of them together.
 * The stress arithmetic is the margin model's (cover2); amounts become minor units here, rounded
 * UP (a requirement never rounds in favour of writing more cover, SPEC §2).
 *
 * The published assessment lives in its own stream (`pool-<poolId>-capacity`) so that frequent
 * re-assessments never contend with the money stream.
 */
import { assertNever, currencyOf, Decider, DomainEvent, floatToMinor, fromMinor, iso, ms, toMinor } from '@backstop/kernel';
import {
  cover2,
  CounterpartyExposure,
  historicalShocks,
  HypotheticalShock,
  hypotheticalShocks,
  PricePoint,
  StressMarket,
  StressScenario,
} from '@backstop/margin-model';

export interface StressPolicy {
  /** Worst N days down and N up per underlying. */
  readonly worstDays: number;
  /** The N of ±Nσ. */
  readonly sigmas: readonly number[];
  /** Horizon of a hypothetical move (the margin period of risk of a bilateral OTC book: 5 days). */
  readonly horizonDays: number;
  /** Annual vol when the market feed has none for an underlying. */
  readonly defaultVolAnnual: number;
  /** Days after a series' first price that are left out: a listing's first weeks are not plausible moves today. */
  readonly skipFirstDays: number;
}

export const DEFAULT_STRESS_POLICY: StressPolicy = { worstDays: 5, sigmas: [3, 5], horizonDays: 5, defaultVolAnnual: 0.8, skipFirstDays: 30 };

/** One day of history: every underlying's move from the previous observation. */
export interface HistoricalDay {
  readonly fromMs: number;
  readonly toMs: number;
  readonly moves: Readonly<Record<string, number>>;
}

const DAY = (date: string) => Date.parse(`${date}T00:00:00Z`);

/**
 * Known crash (and melt-up) days, from the CoinGecko daily snapshots in ../shared/data (00:00 UTC
 * to 00:00 UTC): used when the CSVs are missing, so the stress still has history in it.
 */
export const FALLBACK_CRASH_DAYS: readonly HistoricalDay[] = [
  { fromMs: DAY('2017-12-06'), toMs: DAY('2017-12-07'), moves: { 'BTC-USD': 0.3326, 'ETH-USD': 0.0078 } },
  { fromMs: DAY('2020-03-12'), toMs: DAY('2020-03-13'), moves: { 'BTC-USD': -0.3519, 'ETH-USD': -0.4305 } },
  { fromMs: DAY('2021-01-21'), toMs: DAY('2021-01-22'), moves: { 'BTC-USD': -0.1313, 'ETH-USD': -0.1897 } },
  { fromMs: DAY('2021-05-19'), toMs: DAY('2021-05-20'), moves: { 'BTC-USD': -0.1347, 'ETH-USD': -0.263 } },
  { fromMs: DAY('2022-06-13'), toMs: DAY('2022-06-14'), moves: { 'BTC-USD': -0.1585 } },
  { fromMs: DAY('2022-11-09'), toMs: DAY('2022-11-10'), moves: { 'BTC-USD': -0.1519 } },
];

/**
 * The worst days of each series (historicalShocks), each as a day on which every series that has a
 * move ending that day moves. Sorted by date.
 */
export function historicalDays(series: Readonly<Record<string, readonly PricePoint[]>>, policy: StressPolicy): HistoricalDay[] {
  const movesByDay = new Map<number, { fromMs: number; moves: Record<string, number> }>();
  const selected = new Set<number>();
  for (const [underlying, raw] of Object.entries(series)) {
    const points = [...raw].sort((a, b) => a.dateMs - b.dateMs);
    if (points.length < 2) continue;
    const fromMs = points[0].dateMs + policy.skipFirstDays * 86_400_000;
    const kept = points.filter((p) => p.dateMs >= fromMs);
    for (let i = 1; i < kept.length; i++) {
      const day = movesByDay.get(kept[i].dateMs) ?? { fromMs: kept[i - 1].dateMs, moves: {} };
      day.moves[underlying] = kept[i].price / kept[i - 1].price - 1;
      movesByDay.set(kept[i].dateMs, day);
    }
    const shocks = historicalShocks(kept, policy.worstDays);
    for (const m of [...shocks.down, ...shocks.up]) selected.add(m.toMs);
  }
  return [...selected].sort((a, b) => a - b).map((toMs) => ({ fromMs: movesByDay.get(toMs)!.fromMs, toMs, moves: movesByDay.get(toMs)!.moves }));
}

const percent = (move: number): string => `${move >= 0 ? '+' : ''}${(move * 100).toFixed(2)}%`;

export function historicalDayScenarios(days: readonly HistoricalDay[]): StressScenario[] {
  return days.map((d) => {
    const parts = Object.entries(d.moves).sort(([a], [b]) => (a < b ? -1 : 1)).map(([u, m]) => `${u} ${percent(m)}`);
    return { name: `historical ${iso(d.fromMs).slice(0, 10)}→${iso(d.toMs).slice(0, 10)} ${parts.join(', ')}`, shocks: { ...d.moves } };
  });
}

/** ±Nσ for each underlying alone, and for all together in the same direction (crypto moves together). */
export function hypotheticalStressScenarios(market: StressMarket, policy: StressPolicy): StressScenario[] {
  const underlyings = Object.keys(market.underlyings).sort();
  const scenarios: StressScenario[] = [];
  const shocksOf = new Map<string, HypotheticalShock[]>(
    underlyings.map((u) => [u, hypotheticalShocks(market.underlyings[u].volAnnual, policy.sigmas, policy.horizonDays)]),
  );
  for (const u of underlyings) {
    for (const s of shocksOf.get(u)!) {
      scenarios.push({ name: `hypothetical ${u} ${s.sigmas > 0 ? '+' : ''}${s.sigmas}σ ${percent(s.relativeMove)}`, shocks: { [u]: s.relativeMove } });
    }
  }
  if (underlyings.length > 1) {
    const count = shocksOf.get(underlyings[0])!.length;
    for (let i = 0; i < count; i++) {
      const sigmas = shocksOf.get(underlyings[0])![i].sigmas;
      const shocks = Object.fromEntries(underlyings.map((u) => [u, shocksOf.get(u)![i].relativeMove]));
      scenarios.push({ name: `hypothetical all underlyings ${sigmas > 0 ? '+' : ''}${sigmas}σ`, shocks });
    }
  }
  return scenarios;
}

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
  const scenarios = [...historicalDayScenarios(input.historical), ...hypotheticalStressScenarios(input.market, input.policy)];
  // Historical days shock only the underlyings they have prices for; an underlying the book does not hold is ignored.
  const result = cover2(input.exposures, scenarios, input.market);
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
