import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromMinor, toMinor } from '@backstop/kernel';
import type { StoredEvent } from '@backstop/event-store';
import type { CommandReply } from '@backstop/platform';

/**
 * The March 2020 BTC crash, end to end: two counterparties long BTC perpetuals against a protected
 * desk, two providers in two tranches. cpA ignores its margin call (the backstop covers it) and
 * defaults in the crash; cpB cures its calls. Marks are the CSV's daily snapshots 2020-03-06 ..
 * 2020-03-16 re-stamped onto the scenario's clock (one day per mark; time advances in 3-hour steps
 * between them so deadlines fall when they should).
 *
 * The deployment is configured as a venue fed DAILY settlement marks would be (SCENARIO_ENV): a
 * 40% sanity band, since a 15% band would hold the real -35% day as a JUMP (that rule has its own
 * specs), and a 4-day second deadline, so the crash day, not the second deadline, is what defaults
 * cpA and the loss reaches the tranches.
 */
export const SCENARIO_ENV: Record<string, string> = {
  MARGIN_MARK_BAND: '0.4',
  MARGIN_SECOND_GRACE_MS: String(4 * 86_400_000),
  PRICING_MC_PATHS: '500',
  MARGIN_MARK_MAX_STALE_MS: String(3_600_000),
  // Inputs the expected waterfall is computed from (checkCrashOutcome), set here rather than
  // assumed from the defaults: the liquidation cost per instrument and the tranches' income weights.
  BACKSTOP_LIQUIDATION_COST: `PERPETUAL=${'0.005'}`,
  BACKSTOP_TRANCHE_WEIGHTS: 'JUNIOR=3,SENIOR=1',
};
/** The same inputs as numbers for the expected figures: liquidation cost (parts per million), income weights. */
const LIQUIDATION_COST_PPM = 5_000n;
const TRANCHE_WEIGHTS = { JUNIOR: 3n, SENIOR: 1n } as const;
export interface ScenarioTarget {
  /** Sends a command to whichever service owns it; returns the reply. */
  send(type: string, payload: Record<string, unknown>): Promise<CommandReply>;
  /** Publishes a MarkPrice input. */
  mark(payload: { underlying: string; price: string; volAnnual: string; at: string }): Promise<void>;
  /** Lets the services catch up (and, where the clock is manual, moves it and runs the tickers). */
  advanceTo(iso: string): Promise<void>;
  /** Every event in the store, in global order. */
  events(): Promise<StoredEvent[]>;
}

export const CAST = {
  desk: 'desk1',
  cpA: 'cpA',
  cpB: 'cpB',
  junior: 'provJ',
  senior: 'provS',
  c1: 'perpA',
  c2: 'perpB',
} as const;

export const TERMS = {
  entryPrice: '9000',
  sizeA: '10',
  sizeB: '5',
  collateralA: '19000',
  collateralB: '22000',
  deskCollateralA: '25000',
  deskCollateralB: '15000',
  juniorCapital: '12000',
  seniorCapital: '60000',
  limitA: '30000',
  limitB: '20000',
  premiumFunds: '5000',
  vol: '0.8',
};

export function crashMarks(dataDir: string, startMs: number): { at: string; price: string }[] {
  const rows = readFileSync(join(dataDir, 'btc-usd-daily.csv'), 'utf8')
    .split('\n')
    .filter((line) => /^2020-03-(0[6-9]|1[0-6]) /.test(line))
    .map((line) => Number(line.split(',')[1]));
  if (rows.length !== 11) throw new Error(`expected 11 daily rows 2020-03-06..16 in btc-usd-daily.csv, found ${rows.length}`);
  return rows.map((price, day) => ({ at: new Date(startMs + day * DAY).toISOString(), price: price.toFixed(2) }));
}

const DAY = 86_400_000;
const STEP = 3 * 3_600_000;

export interface ScenarioRun {
  readonly events: StoredEvent[];
  /** The marks sent (the CSV's daily prices on the scenario's clock): inputs of the expected figures. */
  readonly marks: { at: string; price: string }[];
  readonly defaultId: string;
  /** Global position just before the default was declared, and after it was settled. */
  readonly positionBeforeDefault: bigint;
  readonly positionAfterSettled: bigint;
}

async function ok(target: ScenarioTarget, type: string, payload: Record<string, unknown>): Promise<CommandReply> {
  const reply = await target.send(type, payload);
  if (reply.status !== 'ACCEPTED') throw new Error(`${type} was rejected: ${JSON.stringify(reply.violations)}`);
  return reply;
}

/** A contract live: registered by an operator, or proposed (no sender, e.g. Kafka) and accepted by the other side. */
async function register(target: ScenarioTarget, contract: Record<string, unknown>, acceptingPartyId: string): Promise<void> {
  const reply = await ok(target, 'RegisterContract', contract);
  if (reply.events?.includes('ContractProposed')) await ok(target, 'AcceptContract', { contractId: contract.contractId, partyId: acceptingPartyId });
}

export async function runCrashScenario(
  target: ScenarioTarget,
  dataDir: string,
  startMs: number,
  log: (m: string) => void = () => undefined,
  stepMs = STEP,
): Promise<ScenarioRun> {
  const marks = crashMarks(dataDir, startMs);
  const t0 = marks[0].at;
  await target.advanceTo(t0);
  for (const [partyId, role, credit] of [
    [CAST.desk, 'DESK', { rating: 'A' }],
    [CAST.cpA, 'COUNTERPARTY', { rating: 'BB' }],
    [CAST.cpB, 'COUNTERPARTY', { rating: 'BBB' }],
    [CAST.junior, 'PROVIDER', { rating: 'A' }],
    [CAST.senior, 'PROVIDER', { rating: 'AA' }],
  ] as const) {
    await ok(target, 'RegisterParty', { partyId, name: partyId, role, credit });
  }
  await ok(target, 'DepositCapital', { providerId: CAST.junior, tranche: 'JUNIOR', amount: TERMS.juniorCapital });
  await ok(target, 'DepositCapital', { providerId: CAST.senior, tranche: 'SENIOR', amount: TERMS.seniorCapital });
  const contract = (contractId: string, longPartyId: string, size: string) => ({
    contractId, kind: 'PERPETUAL', underlying: 'BTC-USD', size, entryPrice: TERMS.entryPrice, currency: 'USDC',
    longPartyId, shortPartyId: CAST.desk, longInitialMargin: '0', shortInitialMargin: '0',
  });
  await register(target, contract(CAST.c1, CAST.cpA, TERMS.sizeA), CAST.cpA);
  await register(target, contract(CAST.c2, CAST.cpB, TERMS.sizeB), CAST.cpB);
  await ok(target, 'DepositCollateral', { contractId: CAST.c1, partyId: CAST.cpA, amount: TERMS.collateralA });
  await ok(target, 'DepositCollateral', { contractId: CAST.c2, partyId: CAST.cpB, amount: TERMS.collateralB });
  await ok(target, 'DepositCollateral', { contractId: CAST.c1, partyId: CAST.desk, amount: TERMS.deskCollateralA });
  await ok(target, 'DepositCollateral', { contractId: CAST.c2, partyId: CAST.desk, amount: TERMS.deskCollateralB });
  await ok(target, 'FundPremiumAccount', { partyId: CAST.desk, amount: TERMS.premiumFunds, currency: 'USDC' });
  await target.mark({ underlying: 'BTC-USD', price: marks[0].price, volAnnual: TERMS.vol, at: t0 });
  await target.advanceTo(t0);
  await ok(target, 'RequestQuote', { quoteId: 'qA', contractId: CAST.c1, protectedPartyId: CAST.desk, coverageLimit: TERMS.limitA, termDays: 30 });
  await ok(target, 'RequestQuote', { quoteId: 'qB', contractId: CAST.c2, protectedPartyId: CAST.desk, coverageLimit: TERMS.limitB, termDays: 30 });
  await ok(target, 'BindCoverage', { coverageId: 'covA', quoteId: 'qA' });
  await ok(target, 'BindCoverage', { coverageId: 'covB', quoteId: 'qB' });
  log('set up: 5 parties, 2 tranches, 2 contracts, 2 coverages bound');

  const cured = new Set<string>();
  let events: StoredEvent[] = [];
  const cureCallsOfB = async () => {
    events = await target.events();
    for (const call of events.filter((e) => e.type === 'MarginCallIssued' && e.data.partyId === CAST.cpB)) {
      const callId = String(call.data.callId);
      if (cured.has(callId)) continue;
      cured.add(callId);
      await ok(target, 'DepositCollateral', { contractId: CAST.c2, partyId: CAST.cpB, amount: String(call.data.amount) });
      log(`cpB cures ${callId} with ${String(call.data.amount)}`);
    }
  };
  for (const [day, mark] of marks.entries()) {
    if (day > 0) {
      // A mark reaches the services when it is observed: they judge it by their own (receiving)
      // clock and flag one dated ahead of it, so the clock gets there first.
      await target.advanceTo(mark.at);
      await target.mark({ underlying: 'BTC-USD', price: mark.price, volAnnual: TERMS.vol, at: mark.at });
    }
    for (let t = Date.parse(mark.at); t < Date.parse(mark.at) + DAY; t += stepMs) {
      await target.advanceTo(new Date(t).toISOString());
      await cureCallsOfB();
    }
    if (events.some((e) => e.type === 'DefaultSettled')) break;
  }
  const declared = events.find((e) => e.type === 'DefaultDeclared');
  const settled = events.find((e) => e.type === 'DefaultSettled');
  if (!declared || !settled) throw new Error(`the default was not settled; last events: ${events.slice(-15).map((e) => e.type).join(', ')}`);
  return {
    events,
    marks,
    defaultId: String(declared.data.defaultId),
    positionBeforeDefault: declared.position - 1n,
    positionAfterSettled: settled.position,
  };
}

/** Sum of decimal-string amounts in minor units (USDC scale 6). */
export function minor(amount: unknown): bigint {
  return toMinor(String(amount), 6);
}

export function usdc(amountMinor: bigint): string {
  return fromMinor(amountMinor, 6);
}

export interface LedgerView {
  /**
   * Balances (account → minor units) replayed from the books up to a position of the run's events
   * (ScenarioRun's positions; a deployment whose books are in another store maps them to its own).
   */
  balancesAt(position: bigint): Promise<Map<string, bigint>>;
}

const byType = (events: StoredEvent[], type: string) => events.filter((e) => e.type === type);

/**
 * What the crash must have done, checked against the events and the ledger. The default, the
 * close-out, the advance, each tranche's capital and every layer of the waterfall are computed here
 * from the scenario's inputs and SPEC's rules, not read back from settlement's events.
 */
/**
 * `ledger` is the books to replay; `'not-checked'` only where a spec checks the books elsewhere (the
 * scale-out run, whose stores are per service and which runs no ledger process: the distributed run
 * checks the books through the ledger service).
 */
export async function checkCrashOutcome(run: ScenarioRun, ledger: LedgerView | 'not-checked'): Promise<void> {
  const { events, defaultId } = run;
  // Margin: cpA was called and missed; the backstop covered the missed call; cpB cured every call.
  const callsA = byType(events, 'MarginCallIssued').filter((e) => e.data.partyId === CAST.cpA);
  expect(callsA.length).toBeGreaterThanOrEqual(1);
  const missed = byType(events, 'MarginCallMissed').filter((e) => e.data.partyId === CAST.cpA);
  expect(missed.length).toBeGreaterThanOrEqual(1);
  for (const m of missed) {
    const cover = byType(events, 'MarginCoveredByBackstop').filter((e) => e.data.callId === m.data.callId);
    expect(cover).toHaveLength(1);
    expect(minor(cover[0].data.amount)).toBeGreaterThan(0n);
    expect(minor(cover[0].data.amount)).toBeLessThanOrEqual(minor(m.data.amount));
  }
  const callsB = byType(events, 'MarginCallIssued').filter((e) => e.data.partyId === CAST.cpB);
  const curedB = byType(events, 'MarginCallCured').filter((e) => e.data.partyId === CAST.cpB);
  expect(curedB.map((e) => e.data.callId).sort()).toEqual(callsB.map((e) => e.data.callId).sort());
  expect(byType(events, 'MarginCallMissed').filter((e) => e.data.partyId === CAST.cpB)).toHaveLength(0);

  // Default: triggered for cpA only, declared once, settled once.
  const triggers = byType(events, 'DefaultTriggered');
  expect(new Set(triggers.map((e) => e.data.partyId))).toEqual(new Set([CAST.cpA]));
  expect(byType(events, 'DefaultDeclared')).toHaveLength(1);
  expect(byType(events, 'DefaultSettled')).toHaveLength(1);

  // ---- Expected figures, computed here from the inputs (terms, the CSV's prices, the configured
  // liquidation cost and tranche weights) and SPEC §3.8-3.9 and §5, never from settlement's own events.
  // Upstream facts used as inputs: the missed call's amount (margin's SPAN figure) and the premiums
  // pricing charged; the store's global order says only which came before the default.

  // Default: the first daily mark at which cpA's own equity (its collateral plus the contract's
  // mark-to-market; a pool advance is the pool's money, not cpA's) is below zero.
  const entry = minor(TERMS.entryPrice);
  const sizeA = BigInt(TERMS.sizeA);
  const ownEquity = (price: string) => minor(TERMS.collateralA) + (minor(price) - entry) * sizeA;
  const defaultMark = run.marks.find((m) => ownEquity(m.price) < 0n);
  if (!defaultMark) throw new Error('by the inputs cpA never reaches negative equity: the scenario is not the crash');
  const declared = byType(events, 'DefaultDeclared')[0].data;
  expect([declared.reason, declared.at, (declared.lastSaneMarks as Record<string, string>)['BTC-USD']]).toEqual(['NEGATIVE_EQUITY', defaultMark.at, defaultMark.price]);

  // Close-out: c1 at that mark, moved against the long defaulter by the liquidation cost.
  const closedOut = byType(events, 'ContractClosedOut').filter((e) => e.data.defaultId === defaultId);
  expect(closedOut.map((e) => e.data.contractId)).toEqual([CAST.c1]);
  const co = closedOut[0].data;
  expect(co.defaulterSide).toBe('LONG');
  const closeOutScaled = minor(defaultMark.price) * (1_000_000n - LIQUIDATION_COST_PPM); // price × 10^6 (minor) × 10^6 (ppm)
  if (closeOutScaled % 1_000_000n !== 0n) throw new Error('the close-out price is not exact in 6 decimals; pick inputs where it is');
  const closeOutPrice = closeOutScaled / 1_000_000n;
  expect(minor(co.closeOutPrice)).toBe(closeOutPrice);
  const lossOwed = (entry - closeOutPrice) * sizeA;
  expect(minor(co.lossOwed)).toBe(lossOwed);

  // The pool's advance for cpA's missed call(s): the call's amount within the coverage limit left
  // (SPEC §3.8), funded junior first (the first-loss tranche), then senior.
  const tranche = { JUNIOR: minor(TERMS.juniorCapital), SENIOR: minor(TERMS.seniorCapital) };
  const min = (...xs: bigint[]) => xs.reduce((a, b) => (b < a ? b : a));
  let advanced = 0n;
  const expectedAdvance = new Map<string, bigint>();
  for (const m of missed) expectedAdvance.set(String(m.data.callId), 0n);
  let limitLeft = minor(TERMS.limitA);
  // Premium income: each charge pricing made, split across tranches pro rata by capital × weight
  // (SPEC §6: junior earns more), largest remainder; charged premiums only count before the default.
  const charges = new Map<string, bigint[]>();
  for (const e of byType(events, 'PremiumCharged')) charges.set(String(e.data.coverageId), [...(charges.get(String(e.data.coverageId)) ?? []), minor(e.data.amount)]);
  // Up to where the pool was charged for the default (its balances then are what the tranches hold).
  const charged = byType(events, 'DefaultLossCharged').filter((e) => e.data.defaultId === defaultId);
  expect(charged).toHaveLength(1);
  for (const e of events) {
    if (e.position >= charged[0].position) break;
    if (e.type === 'MarginCoveredByBackstop' && e.data.partyId === CAST.cpA) {
      const call = missed.find((m) => m.data.callId === e.data.callId)!;
      const amount = min(minor(call.data.amount), limitLeft);
      expectedAdvance.set(String(call.data.callId), amount);
      limitLeft -= amount;
      advanced += amount;
      const fromJunior = min(amount, tranche.JUNIOR);
      tranche.JUNIOR -= fromJunior;
      tranche.SENIOR -= amount - fromJunior;
    }
    if (e.type === 'PremiumIncomeDistributed') {
      const premium = charges.get(String(e.data.coverageId))?.shift();
      if (premium === undefined) throw new Error(`premium income for ${String(e.data.coverageId)} without a PremiumCharged for it`);
      const wJ = tranche.JUNIOR * TRANCHE_WEIGHTS.JUNIOR;
      const wS = tranche.SENIOR * TRANCHE_WEIGHTS.SENIOR;
      let toJ = (premium * wJ) / (wJ + wS);
      let toS = (premium * wS) / (wJ + wS);
      if (toJ + toS < premium) {
        // Largest remainder; a tie goes to the first (junior).
        if ((premium * wJ) % (wJ + wS) >= (premium * wS) % (wJ + wS)) toJ += 1n;
        else toS += 1n;
      }
      tranche.JUNIOR += toJ;
      tranche.SENIOR += toS;
    }
  }
  for (const e of byType(events, 'MarginCoveredByBackstop').filter((x) => x.data.partyId === CAST.cpA)) {
    expect([e.data.callId, minor(e.data.amount)]).toEqual([e.data.callId, expectedAdvance.get(String(e.data.callId))]);
  }

  // Waterfall (SPEC §5): in order, each layer takes exactly what is left of the loss, up to what it
  // holds; the pool's layers (the advance and the tranches) together at most the coverage limit.
  const expectedLayers: { layer: string; available: bigint; take: bigint }[] = [];
  let remaining = lossOwed;
  let poolRoom = minor(TERMS.limitA);
  for (const [layer, available, isPool] of [
    ['DEFAULTER_CONTRACT_COLLATERAL', minor(TERMS.collateralA), false],
    ['POOL_MARGIN_ADVANCE', advanced, true],
    ['JUNIOR_TRANCHE', tranche.JUNIOR, true],
    ['SENIOR_TRANCHE', tranche.SENIOR, true],
  ] as const) {
    if (remaining === 0n || (isPool && poolRoom === 0n)) break;
    const take = isPool ? min(available, remaining, poolRoom) : min(available, remaining);
    expectedLayers.push({ layer, available, take });
    remaining -= take;
    if (isPool) poolRoom -= take;
  }
  const claimExpected = remaining;
  const layers = byType(events, 'LossAllocated').filter((e) => e.data.defaultId === defaultId).sort((a, b) => Number(a.data.step) - Number(b.data.step));
  // Every layer, not a prefix: the same layers, in the same order, holding and taking exactly this.
  expect(layers.map((e) => [e.data.layer, minor(e.data.available), minor(e.data.amount)])).toEqual(expectedLayers.map((l) => [l.layer, l.available, l.take]));
  const payouts = byType(events, 'PayoutMade').filter((e) => e.data.defaultId === defaultId);
  expect(payouts).toHaveLength(1);
  const payout = payouts[0].data;
  expect(payout.partyId).toBe(CAST.desk);
  const fromDefaulterExpected = expectedLayers[0].take;
  const fromPoolExpected = expectedLayers.slice(1).reduce((sum, l) => sum + l.take, 0n);
  expect([minor(payout.amount), minor(payout.fromDefaulter), minor(payout.fromPool)]).toEqual([fromDefaulterExpected + fromPoolExpected, fromDefaulterExpected, fromPoolExpected]);
  const claims = byType(events, 'ClaimRecorded').filter((e) => e.data.defaultId === defaultId && e.data.partyId === CAST.desk);
  expect(claims.reduce((sum, e) => sum + minor(e.data.amount), 0n)).toBe(claimExpected);

  // Providers: each tranche's loss split by share, and each provider's books moved by exactly that.
  // Every deployment has books to replay: the single store's, or (one store per service) the ledger service's own store.
  if (ledger === 'not-checked') {
    for (const [trancheName, provider] of [['junior', CAST.junior], ['senior', CAST.senior]] as const) {
      const take = expectedLayers.find((l) => l.layer === `${trancheName.toUpperCase()}_TRANCHE`)?.take ?? 0n;
      const layer = layers.find((e) => e.data.layer === `${trancheName.toUpperCase()}_TRANCHE`);
      expect([provider, minor((layer?.data.perProvider as Record<string, string> | undefined)?.[provider] ?? '0')]).toEqual([provider, take]);
    }
    return;
  }
  const before = await ledger.balancesAt(run.positionBeforeDefault);
  const after = await ledger.balancesAt(run.positionAfterSettled);
  for (const [trancheName, provider] of [['junior', CAST.junior], ['senior', CAST.senior]] as const) {
    const account = `pool-capital:${trancheName}:${provider}`;
    // One provider per tranche: it bears the whole of its tranche's take.
    const take = expectedLayers.find((l) => l.layer === `${trancheName.toUpperCase()}_TRANCHE`)?.take ?? 0n;
    const layer = layers.find((e) => e.data.layer === `${trancheName.toUpperCase()}_TRANCHE`);
    expect([provider, minor((layer?.data.perProvider as Record<string, string> | undefined)?.[provider] ?? '0')]).toEqual([provider, take]);
    // The books hold the provider's capital before the default (not an empty replay that moves by 0).
    expect([account, (before.get(account) ?? 0n) > 0n]).toEqual([account, true]);
    expect([account, (before.get(account) ?? 0n) - (after.get(account) ?? 0n)]).toEqual([account, take]);
  }
}
