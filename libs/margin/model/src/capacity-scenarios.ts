/**
 * The Cover-2 scenario set (SPEC §6), one definition for the capacity assessment (settlement's
 * CapacityAssessed) and the premium's capital charge (pricing): both call stressScenarios and
 * cover2Contribution / cover2 on it.
 *
 * - historical: the worst non-overlapping MPOR-day windows of each daily series (BTC's worst 5
 *   days fell 42%, its worst day 35%: a 1-day move under-states a 5-day close-out), each window
 *   applied to every series that has prices at both ends, so a crash hits all coins as it did;
 * - hypothetical: ±Nσ·√MPOR log-moves for each underlying alone and for all together;
 * - each price scenario also with vol × (1 + volShockUp): implied vol spikes in a crash (March
 *   2020: BTC implied vol from ~60% to ~150%), which raises what a defaulted option writer owes;
 * - liquidation cost: closing out a defaulter's book in a stressed market costs a spread
 *   (StressMarket.liquidationCostFraction, from the policy).
 * CPMI-IOSCO PFMI principle 4 KC 4 and principle 6 KC 3 (MPOR, liquidation costs), EMIR RTS
 * 153/2013 art. 30 (extreme but plausible: historical and hypothetical scenarios).
 */
import { iso } from '@backstop/kernel';
import { CounterpartyExposure, cover2Contribution, historicalShocks, HypotheticalShock, hypotheticalShocks, PricePoint, StressCoverage, StressMarket, StressScenario } from './stress';

export interface StressPolicy {
  /** Worst N windows down and N up per underlying. */
  readonly worstDays: number;
  /** The N of ±Nσ. */
  readonly sigmas: readonly number[];
  /** The margin period of risk: the length of a historical window and of a hypothetical move. */
  readonly horizonDays: number;
  /** Annual vol when the market feed has none for an underlying. */
  readonly defaultVolAnnual: number;
  /** Days after a series' first price that are left out: a listing's first weeks are not plausible moves today. */
  readonly skipFirstDays: number;
  /** Relative vol shock applied, as a second variant, to every price scenario (default 0.5). */
  readonly volShockUp?: number;
  /** Close-out cost as a fraction of the notional at the shocked mark (default 0.01). */
  readonly liquidationCostFraction?: number;
}

export const DEFAULT_STRESS_POLICY: StressPolicy = {
  worstDays: 5,
  sigmas: [3, 5],
  horizonDays: 5,
  defaultVolAnnual: 0.8,
  skipFirstDays: 30,
  volShockUp: 0.5,
  liquidationCostFraction: 0.01,
};

/** One historical window: every underlying's move over it. */
export interface HistoricalDay {
  readonly fromMs: number;
  readonly toMs: number;
  readonly moves: Readonly<Record<string, number>>;
}

const DAY = (date: string) => Date.parse(`${date}T00:00:00Z`);

/**
 * The worst 5-day windows of ../shared/data (CoinGecko daily snapshots, 00:00 UTC), used when the
 * CSVs are missing, so the stress still has history in it.
 */
export const FALLBACK_CRASH_DAYS: readonly HistoricalDay[] = [
  { fromMs: DAY('2013-11-04'), toMs: DAY('2013-11-09'), moves: { 'BTC-USD': 0.5821 } },
  { fromMs: DAY('2015-01-09'), toMs: DAY('2015-01-14'), moves: { 'BTC-USD': -0.4055 } },
  { fromMs: DAY('2016-02-06'), toMs: DAY('2016-02-11'), moves: { 'BTC-USD': 0.0057, 'ETH-USD': 1.385 } },
  { fromMs: DAY('2017-12-02'), toMs: DAY('2017-12-07'), moves: { 'BTC-USD': 0.6565, 'ETH-USD': -0.0384 } },
  { fromMs: DAY('2018-02-01'), toMs: DAY('2018-02-06'), moves: { 'BTC-USD': -0.3226, 'ETH-USD': -0.3813 } },
  { fromMs: DAY('2020-03-08'), toMs: DAY('2020-03-13'), moves: { 'BTC-USD': -0.4223, 'ETH-USD': -0.5341 } },
  { fromMs: DAY('2021-05-15'), toMs: DAY('2021-05-20'), moves: { 'BTC-USD': -0.253, 'ETH-USD': -0.3873 } },
];

const DAY_MS = 86_400_000;

/** Price of a sorted series at exactly `atMs`, or undefined. */
function priceAt(points: readonly PricePoint[], atMs: number): number | undefined {
  let lo = 0;
  let hi = points.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid].dateMs === atMs) return points[mid].price;
    if (points[mid].dateMs < atMs) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/**
 * The worst `worstDays` MPOR windows down and up of each series (historicalShocks over
 * policy.horizonDays), each applied to every series with prices at both its ends. Sorted by date.
 */
export function historicalDays(series: Readonly<Record<string, readonly PricePoint[]>>, policy: StressPolicy): HistoricalDay[] {
  const kept: Record<string, PricePoint[]> = {};
  for (const [underlying, raw] of Object.entries(series)) {
    const points = [...raw].sort((a, b) => a.dateMs - b.dateMs);
    if (points.length < 2) continue;
    const fromMs = points[0].dateMs + policy.skipFirstDays * DAY_MS;
    kept[underlying] = points.filter((p) => p.dateMs >= fromMs);
  }
  const windows = new Map<string, { fromMs: number; toMs: number }>();
  for (const points of Object.values(kept)) {
    if (points.length < 2) continue;
    const shocks = historicalShocks(points, policy.worstDays, policy.horizonDays);
    for (const m of [...shocks.down, ...shocks.up]) windows.set(`${m.fromMs}:${m.toMs}`, { fromMs: m.fromMs, toMs: m.toMs });
  }
  return [...windows.values()]
    .sort((a, b) => a.fromMs - b.fromMs || a.toMs - b.toMs)
    .map(({ fromMs, toMs }) => {
      const moves: Record<string, number> = {};
      for (const [underlying, points] of Object.entries(kept)) {
        const from = priceAt(points, fromMs);
        const to = priceAt(points, toMs);
        if (from !== undefined && to !== undefined) moves[underlying] = to / from - 1;
      }
      return { fromMs, toMs, moves };
    });
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

/** Each price scenario as it is, and again with every shocked underlying's vol × (1 + volShockUp). */
export function withVolShocks(scenarios: readonly StressScenario[], volShockUp: number): StressScenario[] {
  if (!(volShockUp >= 0 && Number.isFinite(volShockUp))) throw new RangeError(`volShockUp must be finite and ≥ 0, got ${volShockUp}`);
  if (volShockUp === 0) return [...scenarios];
  const out: StressScenario[] = [];
  for (const s of scenarios) {
    out.push(s);
    const volShocks = Object.fromEntries(Object.keys(s.shocks).map((u) => [u, volShockUp]));
    out.push({ name: `${s.name}, vol +${Math.round(volShockUp * 100)}%`, shocks: s.shocks, volShocks });
  }
  return out;
}

/** The whole Cover-2 scenario set for a market, and the market with the policy's liquidation cost. */
export function stressScenarios(market: StressMarket, historical: readonly HistoricalDay[], policy: StressPolicy): { scenarios: StressScenario[]; market: StressMarket } {
  const scenarios = withVolShocks([...historicalDayScenarios(historical), ...hypotheticalStressScenarios(market, policy)], policy.volShockUp ?? DEFAULT_STRESS_POLICY.volShockUp!);
  return { scenarios, market: { ...market, liquidationCostFraction: policy.liquidationCostFraction ?? DEFAULT_STRESS_POLICY.liquidationCostFraction } };
}

export interface CoverageStressInput {
  /** The pool's other exposures (empty: the coverage's standalone Cover-2 contribution). */
  readonly book: readonly CounterpartyExposure[];
  readonly counterpartyId: string;
  /** Collateral the coverage's contract holds from the counterparty that the book does not count yet (0 if it does). */
  readonly collateral: number;
  readonly coverage: StressCoverage;
  readonly market: StressMarket;
  readonly historical: readonly HistoricalDay[];
  readonly policy: StressPolicy;
}

/**
 * A new coverage's marginal contribution to Cover 2 on the capacity assessment's scenario set:
 * what the capacity gate reserves and what the premium charges capital for.
 */
export function coverageStressContribution(input: CoverageStressInput): number {
  const { scenarios, market } = stressScenarios(input.market, input.historical, input.policy);
  return cover2Contribution(input.book, { counterpartyId: input.counterpartyId, collateral: input.collateral, coverages: [input.coverage] }, scenarios, market).contribution;
}
