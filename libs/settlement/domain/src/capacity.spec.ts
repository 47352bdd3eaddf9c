import { readFileSync } from 'node:fs';
import { DAY_MS, HOUR_MS, iso, specFor } from '@backstop/kernel';
import type { PricePoint } from '@backstop/margin-model';
import { ExposureBook } from './book';
import {
  assessCapacity, CapacityCommand, capacityCapitalMinor, capacityDecider, CapacityResult, DEFAULT_STRESS_POLICY, FALLBACK_CRASH_DAYS, historicalDays,
  historicalDayScenarios, pendingWithdrawalsMinor, withdrawalCapacityProblem,
} from './capacity';
import { PoolCommand, poolDecider } from './pool';
import { asProvider, history, stateOf, T0 } from './testing/fixtures';

const day0 = Date.UTC(2020, 0, 1);
const series = (prices: number[]): PricePoint[] => prices.map((price, i) => ({ dateMs: day0 + i * DAY_MS, price }));

describe('historical stress days', () => {
  it('takes each series\' worst days and applies every series\' move of that day (1-day horizon)', () => {
    const days = historicalDays(
      { 'BTC-USD': series([100, 100, 65, 70, 140]), 'ETH-USD': series([10, 11, 5, 5, 6]) },
      { ...DEFAULT_STRESS_POLICY, worstDays: 1, skipFirstDays: 0, horizonDays: 1 },
    );
    expect(days.map((d) => [iso(d.toMs).slice(0, 10), d.moves])).toEqual([
      ['2020-01-03', { 'BTC-USD': expect.closeTo(-0.35, 10), 'ETH-USD': expect.closeTo(-0.5454, 3) }],
      ['2020-01-05', { 'BTC-USD': 1, 'ETH-USD': expect.closeTo(0.2, 10) }],
    ]);
    expect(historicalDayScenarios(days)[0].name).toBe('historical 2020-01-02→2020-01-03 BTC-USD -35.00%, ETH-USD -54.55%');
  });

  it('moves over the margin period of risk: five −10% days are one −41% window, not five −10% days', () => {
    const prices = [100, 100, 100, 90, 81, 72.9, 65.61, 59.049, 59.049, 59.049, 59.049, 59.049];
    const days = historicalDays({ 'SOL-USD': series(prices) }, { ...DEFAULT_STRESS_POLICY, worstDays: 2, skipFirstDays: 0, horizonDays: 5 });
    const down = days.filter((d) => d.moves['SOL-USD'] < 0);
    expect(down[0]).toEqual({ fromMs: day0 + 2 * DAY_MS, toMs: day0 + 7 * DAY_MS, moves: { 'SOL-USD': expect.closeTo(-0.40951, 10) } });
    // the second-worst window may not overlap the first
    for (const d of down.slice(1)) expect(d.toMs <= down[0].fromMs || d.fromMs >= down[0].toMs).toBe(true);
  });

  it('finds BTC\'s worst 5-day window in the real data: 2020-03-08 → 03-13, −42%, ETH −53% with it', () => {
    const load = (name: string): PricePoint[] => readFileSync(`${__dirname}/../../../../../shared/data/${name}`, 'utf8').trim().split('\n').slice(1)
      .map((l) => l.split(',')).filter((c) => c[1] !== '').map((c) => ({ dateMs: Date.parse(`${c[0].slice(0, 10)}T00:00:00Z`), price: Number(c[1]) }));
    const days = historicalDays({ 'BTC-USD': load('btc-usd-daily.csv'), 'ETH-USD': load('eth-usd-daily.csv') }, DEFAULT_STRESS_POLICY);
    const worst = days.reduce((w, d) => ((d.moves['BTC-USD'] ?? 0) < (w.moves['BTC-USD'] ?? 0) ? d : w));
    expect(historicalDayScenarios([worst])[0].name).toBe('historical 2020-03-08→2020-03-13 BTC-USD -42.23%, ETH-USD -53.41%');
  });

  it('leaves out a series\' first days after listing', () => {
    const days = historicalDays({ 'ETH-USD': series([10, 4, 5, 5, 4.5]) }, { ...DEFAULT_STRESS_POLICY, worstDays: 1, skipFirstDays: 2, horizonDays: 1 });
    expect(days.map((d) => d.moves['ETH-USD'])).toEqual([expect.closeTo(-0.1, 10)]);
  });

  it('ships the worst 5-day windows as a fallback', () => {
    expect(historicalDayScenarios(FALLBACK_CRASH_DAYS).map((s) => s.name)).toContain('historical 2020-03-08→2020-03-13 BTC-USD -42.23%, ETH-USD -53.41%');
  });
});

describe('Cover 2 capacity', () => {
  // Three counterparties on BTC at 100 000 (the margin model's stress example): a −35% day costs
  // cpB min(40 000, 70 000 − 10 000) and cpC 17 500; cpA's protected long loses nothing on the way down.
  const contract = (id: string, long: string, short: string, size: string) => ({
    type: 'ContractRegistered',
    data: { contractId: id, kind: 'PERPETUAL', underlying: 'BTC-USD', size, entryPrice: '100000', currency: 'USDC', longPartyId: long, shortPartyId: short, longInitialMargin: '0', shortInitialMargin: '0', at: T0 },
  });
  const cover = (id: string, contractId: string, protectedPartyId: string, counterpartyId: string, limit: string) => ({
    type: 'CoverageBound',
    data: { coverageId: id, contractId, protectedPartyId, counterpartyId, currency: 'USDC', coverageLimit: limit, start: T0, end: '2027-01-01T00:00:00Z', at: T0 },
  });
  const collateral = (contractId: string, partyId: string, side: string, balance: string) => ({ type: 'CollateralDeposited', data: { contractId, partyId, side, amount: balance, currency: 'USDC', balance, at: T0 } });
  const events = [
    contract('a', 'desk1', 'cpA', '1'), cover('ca', 'a', 'desk1', 'cpA', '50000'), collateral('a', 'cpA', 'SHORT', '5000'),
    contract('b', 'cpB', 'desk2', '2'), cover('cb', 'b', 'desk2', 'cpB', '40000'), collateral('b', 'cpB', 'LONG', '10000'),
    contract('c', 'cpC', 'desk3', '0.5'), cover('cc', 'c', 'desk3', 'cpC', '1000000000'),
    { type: 'MarkRecorded', data: { underlying: 'BTC-USD', price: '100000', volAnnual: '0.6', sane: true, at: T0 } },
  ];
  const bookOf = (more: { type: string; data: Record<string, unknown> }[] = []) => {
    const b = new ExposureBook();
    [...events, ...more].forEach((e) => b.apply(e));
    return b;
  };
  const book = bookOf();
  const crash = [{ fromMs: day0, toMs: day0 + DAY_MS, moves: { 'BTC-USD': -0.35 } }];
  // No liquidation cost, so the figures are the one-line formula's; the cost has its own test.
  const POLICY = { ...DEFAULT_STRESS_POLICY, liquidationCostFraction: 0 };
  const assess = (b: ExposureBook) => {
    const exposures = b.counterpartyExposures(T0, 'USDC', new Map());
    return assessCapacity({ currency: 'USDC', scale: 6, capitalMinor: 50_000_000_000n, exposures, market: b.stressMarket(T0, exposures, 0.8), historical: crash, policy: POLICY });
  };

  it('requires the two largest losses of the worst scenario and reports the headroom', () => {
    const exposures = book.counterpartyExposures(T0, 'USDC', new Map());
    const result = assessCapacity({
      currency: 'USDC',
      scale: 6,
      capitalMinor: 100_000_000_000n,
      exposures,
      market: book.stressMarket(T0, exposures, 0.8),
      historical: crash,
      policy: POLICY,
    });
    expect(result).toMatchObject({
      requirementMinor: 57_500_000_000n,
      headroomMinor: 42_500_000_000n,
      worstScenario: 'historical 2020-01-01→2020-01-02 BTC-USD -35.00%',
      worstCounterparties: [{ counterpartyId: 'cpB', lossMinor: 40_000_000_000n }, { counterpartyId: 'cpC', lossMinor: 17_500_000_000n }],
      counterpartyCount: 3,
      coverageCount: 3,
    });
    // ±3σ and ±5σ over 5 days at 60% vol are milder than the crash day here, but they are in the table.
    expect(result.scenarios.map((s) => s.name)).toEqual(expect.arrayContaining(['hypothetical BTC-USD -5σ -29.61%', 'hypothetical BTC-USD +5σ +42.07%']));
  });

  it('stresses a coverage at its cut limit after pricing\'s CoverageLimitReduced; a repricing leaves the limit as it is', () => {
    // Pricing's payload as it publishes it (libs/pricing/domain/src/coverage.ts).
    const cut = {
      type: 'CoverageLimitReduced',
      data: {
        coverageId: 'cb', oldLimit: '40000.000000', newLimit: '25000.000000', oldStressContribution: '40000.000000', newStressContribution: '25000.000000',
        oldPremiumPerInterval: '10.000000', newPremiumPerInterval: '6.250000', effectiveFrom: T0, reason: 'pool main capacity stressed', at: T0,
      },
    };
    const repriced = {
      type: 'CoverageRepriced',
      data: { coverageId: 'cb', oldRateAnnual: '0.05', newRateAnnual: '0.08', oldPremiumPerInterval: '10', newPremiumPerInterval: '16', reason: 'mark moved', effectiveFrom: T0, stressContribution: '38000.000000', at: T0 },
    };
    expect(assess(book)).toMatchObject({ requirementMinor: 57_500_000_000n, headroomMinor: -7_500_000_000n });
    const afterCut = bookOf([cut, repriced]);
    expect(afterCut.counterpartyExposures(T0, 'USDC', new Map()).find((e) => e.counterpartyId === 'cpB')!.coverages).toEqual([expect.objectContaining({ coverageLimit: 25_000 })]);
    // cpB's −35% loss (60 000 beyond its collateral) is now capped at 25 000: 25 000 + cpC's 17 500, and the headroom is back.
    expect(assess(afterCut)).toMatchObject({
      requirementMinor: 42_500_000_000n,
      headroomMinor: 7_500_000_000n,
      worstCounterparties: [{ counterpartyId: 'cpB', lossMinor: 25_000_000_000n }, { counterpartyId: 'cpC', lossMinor: 17_500_000_000n }],
    });
  });

  it('adds the liquidation cost of closing out at the shocked mark: 1% of the notional by default', () => {
    const exposures = book.counterpartyExposures(T0, 'USDC', new Map());
    const result = assessCapacity({ currency: 'USDC', scale: 6, capitalMinor: 0n, exposures, market: book.stressMarket(T0, exposures, 0.8), historical: crash, policy: DEFAULT_STRESS_POLICY });
    // cpC: 0.5 × 35 000 + 1% × 0.5 × 65 000 = 17 825; cpB still capped at 40 000
    expect(result.worstCounterparties).toEqual([{ counterpartyId: 'cpB', lossMinor: 40_000_000_000n }, { counterpartyId: 'cpC', lossMinor: 17_825_000_000n }]);
    expect(result.scenarios.map((s) => s.name)).toContain('historical 2020-01-01→2020-01-02 BTC-USD -35.00%, vol +50%');
  });

  it('is zero with no coverage', () => {
    const result = assessCapacity({ currency: 'USDC', scale: 6, capitalMinor: 5n, exposures: [], market: { nowMs: 0, underlyings: {} }, historical: crash, policy: DEFAULT_STRESS_POLICY });
    expect(result).toMatchObject({ requirementMinor: 0n, headroomMinor: 5n, worstScenario: null, worstCounterparties: [] });
  });
});

describe('publishing the assessment', () => {
  const spec = specFor(capacityDecider);
  const result = (requirementMinor: bigint, capitalMinor = 1_000_000_000n): CapacityResult => ({
    currency: 'USDC',
    capitalMinor,
    requirementMinor,
    headroomMinor: capitalMinor - requirementMinor,
    worstScenario: 's1',
    worstCounterparties: [{ counterpartyId: 'cp1', lossMinor: requirementMinor }],
    scenarios: [],
    counterpartyCount: 1,
    coverageCount: 1,
  });
  const publish = (r: CapacityResult, at = T0, changed = false): CapacityCommand => ({ type: 'PublishCapacity', poolId: 'main', result: r, changed, materialityBps: 100, heartbeatMs: 24 * HOUR_MS, at });
  const first = spec.given([]).when(publish(result(500_000_000n))).events();

  it('publishes the first assessment with capital, requirement, headroom and the worst two', () => {
    expect(first[0].data).toEqual({
      poolId: 'main',
      currency: 'USDC',
      capital: '1000.000000',
      cover2Requirement: '500.000000',
      headroom: '500.000000',
      worstScenario: 's1',
      worstCounterparties: [{ counterpartyId: 'cp1', loss: '500.000000' }],
      scenarioCount: 0,
      counterpartyCount: 1,
      coverageCount: 1,
      trigger: 'FIRST',
      at: T0,
    });
  });

  it('republishes on a capital or coverage change, a material move or the heartbeat, and not otherwise', () => {
    const given = spec.given(first);
    expect(given.when(publish(result(504_000_000n), iso(Date.parse(T0) + HOUR_MS))).events()).toEqual([]);
    expect(given.when(publish(result(506_000_000n))).events()[0].data.trigger).toBe('MATERIAL_CHANGE');
    expect(given.when(publish(result(500_000_000n, 2n))).events()[0].data.trigger).toBe('MATERIAL_CHANGE');
    expect(given.when(publish(result(500_000_000n), T0, true)).events()[0].data.trigger).toBe('CAPITAL_OR_COVERAGE_CHANGED');
    expect(given.when(publish(result(500_000_000n), iso(Date.parse(T0) + 24 * HOUR_MS))).events()[0].data.trigger).toBe('HEARTBEAT');
  });
});

describe('capital net of pending withdrawals, and the withdrawal gate', () => {
  const pool = specFor(poolDecider);
  const deposit = (providerId: string, tranche: 'JUNIOR' | 'SENIOR', amount: string): PoolCommand => ({ type: 'DepositCapital', providerId, tranche, amount, provider: asProvider(providerId), at: T0 });
  const funded = history(poolDecider, [deposit('p1', 'JUNIOR', '60'), deposit('p2', 'JUNIOR', '40'), deposit('p3', 'SENIOR', '300')]);
  const request = (providerId: string, tranche: 'JUNIOR' | 'SENIOR', capacity?: { capitalNetMinor: bigint; requirementMinor: bigint }): PoolCommand => ({
    type: 'RequestWithdrawal', providerId, tranche, ...(capacity ? { capacity } : {}), at: T0,
  });

  it('counts capital with a pending withdrawal out of capacity until its window closes', () => {
    const nowMs = Date.parse(T0);
    expect(capacityCapitalMinor(stateOf(poolDecider, funded), nowMs)).toBe(400_000_000n);
    const pending = history(poolDecider, [request('p3', 'SENIOR')], funded);
    expect(pendingWithdrawalsMinor(stateOf(poolDecider, pending), nowMs)).toBe(300_000_000n);
    expect(capacityCapitalMinor(stateOf(poolDecider, pending), nowMs)).toBe(100_000_000n);
    // after the window (20 + 2 days) closes unused, the capital counts again
    expect(capacityCapitalMinor(stateOf(poolDecider, pending), nowMs + 23 * DAY_MS)).toBe(400_000_000n);
  });

  it('refuses a request that would leave less than the Cover-2 requirement, naming the headroom', () => {
    const capacity = { capitalNetMinor: 400_000_000n, requirementMinor: 250_000_000n };
    const refused = pool.given(funded).when(request('p3', 'SENIOR', capacity));
    expect(refused.events).toThrow(/withdrawing 300\.000000 USDC would break Cover 2: .* headroom 150\.000000 USDC/);
    try {
      refused.events();
    } catch (err) {
      expect((err as { violations: { field: string; rule: string }[] }).violations.map((v) => `${v.field}:${v.rule}`)).toEqual(['shares:cover2']);
    }
    // 60 fits in the 150 of headroom
    expect(pool.given(funded).when(request('p1', 'JUNIOR', capacity)).events()[0].type).toBe('WithdrawalRequested');
  });

  it('names a headroom of zero when the pool is already short', () => {
    expect(withdrawalCapacityProblem({ capitalNetMinor: 100n, requirementMinor: 500n }, 1n, 'USDC')).toMatch(/headroom 0\.000000 USDC/);
    expect(withdrawalCapacityProblem({ capitalNetMinor: 500n, requirementMinor: 100n }, 400n, 'USDC')).toBeUndefined();
  });
});
