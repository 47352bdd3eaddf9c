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
};
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
  /** Balances (account → minor units) replayed from the store up to a global position. */
  balancesAt(position: bigint): Promise<Map<string, bigint>>;
}

const byType = (events: StoredEvent[], type: string) => events.filter((e) => e.type === type);

/**
 * What the crash must have done, checked against the events and the ledger. Each expectation is
 * computed from the scenario's inputs and the published facts, not copied from the outcome.
 */
export async function checkCrashOutcome(run: ScenarioRun, ledger: LedgerView | undefined): Promise<void> {
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

  // Close-out: c1 at the last sane mark, worse for the long defaulter by the perpetual liquidation cost.
  const closedOut = byType(events, 'ContractClosedOut').filter((e) => e.data.defaultId === defaultId);
  expect(closedOut.map((e) => e.data.contractId)).toEqual([CAST.c1]);
  const co = closedOut[0].data;
  expect(co.defaulterSide).toBe('LONG');
  expect(Number(co.closeOutPrice)).toBeCloseTo(Number(co.mark) * (1 - Number(co.liquidationCostFraction)), 6);
  const lossOwed = minor(co.lossOwed);
  const expectedLoss = (minor(TERMS.entryPrice) - minor(Number(co.closeOutPrice).toFixed(6))) * BigInt(TERMS.sizeA);
  expect(lossOwed).toBeLessThanOrEqual(expectedLoss);
  expect(expectedLoss - lossOwed).toBeLessThan(BigInt(TERMS.sizeA));

  // Waterfall: each layer takes exactly the remaining shortfall it can, in order; nothing is lost.
  const layers = byType(events, 'LossAllocated').filter((e) => e.data.defaultId === defaultId).sort((a, b) => Number(a.data.step) - Number(b.data.step));
  expect(layers.map((e) => e.data.layer)).toEqual(['DEFAULTER_CONTRACT_COLLATERAL', 'POOL_MARGIN_ADVANCE', 'JUNIOR_TRANCHE', 'SENIOR_TRANCHE'].slice(0, layers.length));
  const payouts = byType(events, 'PayoutMade').filter((e) => e.data.defaultId === defaultId);
  expect(payouts).toHaveLength(1);
  const payout = payouts[0].data;
  expect(payout.partyId).toBe(CAST.desk);
  const claims = byType(events, 'ClaimRecorded').filter((e) => e.data.defaultId === defaultId && e.data.partyId === CAST.desk);
  const claimed = claims.reduce((s, e) => s + minor(e.data.amount), 0n);
  const taken = layers.reduce((s, e) => s + minor(e.data.amount), 0n);
  expect(taken + claimed).toBe(lossOwed);
  expect(minor(payout.amount)).toBe(taken);
  expect(minor(payout.fromDefaulter) + minor(payout.fromPool)).toBe(minor(payout.amount));
  expect(minor(payout.fromPool)).toBeLessThanOrEqual(minor(TERMS.limitA));
  let remaining = lossOwed;
  let poolRoom = minor(TERMS.limitA);
  for (const layer of layers) {
    const isPool = String(layer.data.layer).endsWith('TRANCHE');
    const reach = isPool ? (remaining < poolRoom ? remaining : poolRoom) : remaining;
    const available = minor(layer.data.available);
    const expected = available < reach ? available : reach;
    expect([layer.data.layer, minor(layer.data.amount)]).toEqual([layer.data.layer, expected]);
    remaining -= expected;
    if (isPool) poolRoom -= expected;
  }

  // Providers: each tranche's loss split by share, and each provider's books moved by exactly that.
  // (A deployment without one ordered log to replay, e.g. one store per service and no ledger service yet, passes no ledger.)
  if (!ledger) return;
  const before = await ledger.balancesAt(run.positionBeforeDefault);
  const after = await ledger.balancesAt(run.positionAfterSettled);
  for (const [tranche, provider] of [['junior', CAST.junior], ['senior', CAST.senior]] as const) {
    const account = `pool-capital:${tranche}:${provider}`;
    const layer = layers.find((e) => e.data.layer === `${tranche.toUpperCase()}_TRANCHE`);
    const share = layer ? minor((layer.data.perProvider as Record<string, string>)[provider] ?? '0') : 0n;
    expect([account, (before.get(account) ?? 0n) - (after.get(account) ?? 0n)]).toEqual([account, share]);
  }
}
