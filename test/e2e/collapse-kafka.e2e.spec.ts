import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore, StoredEvent } from '@backstop/event-store';
import { replay } from '@backstop/ledger';
import { ConsumerHandle, encodeEnvelope, KafkaBus, makeEnvelope, TOPICS, TopicName, TopicNames } from '@backstop/messaging';
import { commandEnvelope, CommandReply, SERVICE_NAMES, ServiceName } from '@backstop/platform';
import { describeKafka, readAllEvents, RunningApp, uniquePrefix, waitUntil, WORKSPACE_ROOT } from '@backstop/testing';
import { advanceTestClocks, publishCommand, SERVICE_COMMAND_TOPICS, startServiceApps, stopServiceHarness, waitForServicesQuiet, COMMAND_SERVICE as SCENARIO_COMMAND_SERVICE } from './scenario/services';

/**
 * A made-up coin collapses by more than 99% in seven daily closes (issue 8): 80 → 0.0006, every
 * day beyond the 15% band but one. Four services as four processes over the real broker, with the
 * DEFAULT mark-sanity settings (no widened band): margin must follow the fall, call the long
 * counterparty, default it and close it out at the accepted mark; the protected desk is paid what
 * its coverage allows, the unprotected desk gets none of the pool's money.
 *
 * Every expected figure below is computed here from the scenario's own numbers, not read back
 * from the services' events.
 */
const START = '2026-05-01T00:00:00.000Z';
const DAY = 86_400_000;
const STEP = 6 * 3_600_000;
const U = 'DOOM-USD';
/** Daily closes: −12.5%, −43%, −62.5%, −83%, −84%, −87.5%, −98.8%; 80 → 0.0006 is −99.99925%. */
const CLOSES = ['80', '70', '40', '15', '2.5', '0.4', '0.05', '0.0006'];
const VOL = '0.8';
const SIZE_A = 1_000n; // cpX long, desk1 short (protected)
const SIZE_B = 500n; // cpX long, desk2 short (unprotected)
const ENTRY = '80';
const COLLATERAL_A = '12000';
const COLLATERAL_B = '6000';
const LIMIT_A = '30000';
/** The default liquidation cost of a perpetual (DEFAULT_LIQUIDATION_COSTS): 0.5% against the defaulter. */
const LIQUIDATION_COST_BPS = 50n;

const COMMAND_SERVICE: Record<string, ServiceName> = SCENARIO_COMMAND_SERVICE;
const COMMAND_TOPIC: Record<ServiceName, TopicName> = SERVICE_COMMAND_TOPICS;

/** USDC (scale 6) decimal string → minor units, by string arithmetic (no float). */
const minor = (amount: unknown): bigint => {
  const [whole, fraction = ''] = String(amount).split('.');
  const sign = whole.startsWith('-') ? -1n : 1n;
  return sign * (BigInt(whole.replace('-', '')) * 1_000_000n + BigInt((fraction + '000000').slice(0, 6)));
};
const min = (a: bigint, b: bigint) => (a < b ? a : b);

describeKafka('a > 99% collapse in seven daily marks, four services over Kafka, default mark sanity', (brokers) => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-collapse-'));
  const dataFile = join(dir, 'backstop.db');
  const prefix = uniquePrefix('collapse');
  const topics = new TopicNames(prefix);
  const apps = new Map<ServiceName, RunningApp>();
  const replies = new Map<string, CommandReply>();
  const marginTopicTypes: string[] = [];
  let client: KafkaBus;
  let observer: ConsumerHandle;
  let store: SqliteEventStore;
  let events: StoredEvent[] = [];

  const readAll = (): Promise<StoredEvent[]> => readAllEvents(store);
  const quiescent = () => waitForServicesQuiet(store, SERVICE_NAMES);
  const send = async (type: string, payload: Record<string, unknown>): Promise<CommandReply> => {
    const reply = await publishCommand(client, topics.of(COMMAND_TOPIC[COMMAND_SERVICE[type]]), commandEnvelope(type, payload), replies);
    if (reply.status !== 'ACCEPTED') throw new Error(`${type} was rejected: ${JSON.stringify(reply.violations)}`);
    return reply;
  };
  const mark = async (price: string, at: string) => {
    const payload = { underlying: U, price, volAnnual: VOL, at };
    await client.publish(topics.of(TOPICS.marketMarks), [encodeEnvelope(makeEnvelope({ type: 'MarkPrice', key: U, time: at, payload }))]);
    await waitUntil(async () => (await store.readStream(`market-${U}`)).some((e) => e.type === 'MarkRecorded' && e.data.at === at) || undefined, 30_000, `the mark at ${at} to be recorded`);
  };
  const advanceTo = (iso: string) => advanceTestClocks(apps.values(), iso, quiescent);
  const dayAt = (day: number) => new Date(Date.parse(START) + day * DAY).toISOString();
  const ofType = (type: string) => events.filter((e) => e.type === type);

  beforeAll(async () => {
    const env = {
      KAFKA_BROKERS: brokers.join(','),
      KAFKA_TOPIC_PREFIX: prefix,
      BACKSTOP_DATA_FILE: dataFile,
      BACKSTOP_TEST_CLOCK: START,
      PRICING_MC_PATHS: '500',
      // Daily marks: a mark may be up to an hour old when it arrives. Band, confirmations,
      // persistence and the stale alarm keep their defaults.
      MARGIN_MARK_MAX_STALE_MS: String(3_600_000),
      // A 4-day second deadline (as in the March 2020 scenario): the fall itself, not the second
      // deadline one day after the first call, is what defaults the counterparty.
      MARGIN_SECOND_GRACE_MS: String(4 * DAY),
      LOG_LEVEL: 'info',
    };
    await startServiceApps(apps, SERVICE_NAMES, env, 90_000);
    store = new SqliteEventStore(dataFile);
    client = new KafkaBus({ brokers, clientId: 'collapse-e2e' });
    observer = await client.subscribe({
      groupId: `${prefix}observer`,
      topics: [topics.of(TOPICS.replies), topics.of(TOPICS.marginEvents)],
      handle: async (m) => {
        const body = JSON.parse(m.value.toString()) as { type: string; payload: CommandReply };
        if (m.topic === topics.of(TOPICS.replies)) replies.set(m.key, body.payload);
        else marginTopicTypes.push(body.type);
      },
    });

    await advanceTo(START);
    for (const [partyId, role, rating] of [
      ['desk1', 'DESK', 'A'],
      ['desk2', 'DESK', 'A'],
      ['cpX', 'COUNTERPARTY', 'BB'],
      ['provJ', 'PROVIDER', 'A'],
      ['provS', 'PROVIDER', 'AA'],
    ] as const) {
      await send('RegisterParty', { partyId, name: partyId, role, credit: { rating } });
    }
    await send('DepositCapital', { providerId: 'provJ', tranche: 'JUNIOR', amount: '100000' });
    await send('DepositCapital', { providerId: 'provS', tranche: 'SENIOR', amount: '400000' });
    const contract = (contractId: string, shortPartyId: string, size: bigint) => ({
      contractId, kind: 'PERPETUAL', underlying: U, size: String(size), entryPrice: ENTRY, currency: 'USDC',
      longPartyId: 'cpX', shortPartyId, longInitialMargin: '0', shortInitialMargin: '0',
    });
    // A Kafka command carries no sender: it proposes, and the other side accepts (consent, issue 9).
    for (const [contractId, desk, size] of [['cA', 'desk1', SIZE_A], ['cB', 'desk2', SIZE_B]] as const) {
      const reply = await send('RegisterContract', contract(contractId, desk, size));
      if (reply.events?.includes('ContractProposed')) await send('AcceptContract', { contractId, partyId: desk });
    }
    await send('DepositCollateral', { contractId: 'cA', partyId: 'cpX', amount: COLLATERAL_A });
    await send('DepositCollateral', { contractId: 'cB', partyId: 'cpX', amount: COLLATERAL_B });
    await send('DepositCollateral', { contractId: 'cA', partyId: 'desk1', amount: COLLATERAL_A });
    await send('DepositCollateral', { contractId: 'cB', partyId: 'desk2', amount: COLLATERAL_B });
    await send('FundPremiumAccount', { partyId: 'desk1', amount: '5000', currency: 'USDC' });
    await mark(CLOSES[0], START);
    await advanceTo(START);
    await send('RequestQuote', { quoteId: 'qA', contractId: 'cA', protectedPartyId: 'desk1', coverageLimit: LIMIT_A, termDays: 30 });
    await send('BindCoverage', { coverageId: 'covA', quoteId: 'qA' });

    for (let day = 1; day < CLOSES.length; day++) {
      await advanceTo(dayAt(day));
      await mark(CLOSES[day], dayAt(day));
      for (let t = Date.parse(dayAt(day)) + STEP; t < Date.parse(dayAt(day + 1)); t += STEP) await advanceTo(new Date(t).toISOString());
    }
    await quiescent();
    events = await readAll();
    if (process.env.DEBUG_SCENARIO) writeFileSync(process.env.DEBUG_SCENARIO, JSON.stringify(events.map((e) => ({ stream: e.stream, type: e.type, data: e.data })), null, 1));
  }, 900_000);

  afterAll(() => stopServiceHarness({ observer, client, apps, store, dir }));

  it('follows every mark: each close is accepted on its day or the next, down to 0.0006, and pricing prices on the same view', () => {
    expect(1 - Number(CLOSES.at(-1)) / Number(CLOSES[0])).toBeGreaterThan(0.99);
    const recorded = ofType('MarkRecorded').filter((e) => e.data.underlying === U);
    expect(recorded.map((e) => e.data.at)).toEqual(CLOSES.map((_, day) => dayAt(day)));
    // The accepted price after each close: this close, or (held one day as a candidate) the one before.
    let acceptedPrice: string | undefined;
    CLOSES.forEach((close, day) => {
      if (recorded[day].data.sane === true) acceptedPrice = String(recorded[day].data.price);
      expect([day, [close, CLOSES[day - 1]].includes(acceptedPrice as string)]).toEqual([day, true]);
      // A held close is a candidate level, never STALE/FUTURE/OUT_OF_RANGE: margin stresses it.
      if (recorded[day].data.sane !== true) expect(recorded[day].data.flag).toBe('JUMP');
    });
    expect(acceptedPrice).toBe(CLOSES.at(-1));
    const accepted = recorded.filter((e) => e.data.sane === true).map((e) => String(e.data.price));
    // One price view: pricing's read model holds exactly margin's accepted marks, in order.
    const priced = events.filter((e) => e.stream === `pricing-market-${U}`).map((e) => String(e.data.price));
    expect(priced).toEqual(accepted);
    // The feed went quiet between daily closes: the stale-mark alarm was raised on the margin topic.
    expect(ofType('MarkStale').length).toBeGreaterThan(0);
    expect(marginTopicTypes).toEqual(expect.arrayContaining(['MarkRecorded', 'MarkStale', 'MarginCallIssued', 'DefaultTriggered']));
  });

  it('calls the counterparty and defaults it during the fall, closing out at the accepted mark of the default instant', () => {
    expect(ofType('MarginCallIssued').filter((e) => e.data.partyId === 'cpX').length).toBeGreaterThanOrEqual(1);
    const triggers = ofType('DefaultTriggered');
    expect(triggers.map((e) => e.data.partyId)).toEqual(['cpX']);
    const triggerMark = String((triggers[0].data.lastSaneMarks as Record<string, string>)[U]);
    // Defaulted while the coin was still falling, on a close margin had accepted.
    expect(CLOSES.slice(1, 5)).toContain(triggerMark);
    const closedOut = ofType('ContractClosedOut');
    expect(closedOut.map((e) => e.data.contractId).sort()).toEqual(['cA', 'cB']);
    for (const e of closedOut) expect(e.data.mark).toBe(triggerMark);
    expect(ofType('DefaultSettled')).toHaveLength(1);
  });

  it('pays the protected desk min(limit, loss) of pool money to the minor unit, and the unprotected desk none', () => {
    const triggerMark = String((ofType('DefaultTriggered')[0].data.lastSaneMarks as Record<string, string>)[U]);
    // Close-out price per unit: the accepted mark, 0.5% worse for the long defaulter, in minor units (floored).
    const closeOutMinor = (minor(triggerMark) * (10_000n - LIQUIDATION_COST_BPS)) / 10_000n;
    const lossA = (minor(ENTRY) - closeOutMinor) * SIZE_A;
    const lossB = (minor(ENTRY) - closeOutMinor) * SIZE_B;
    // The defaulter's own collateral pays first, up to the losses, pro rata by loss (2:1 here, as
    // are the collateral amounts, so the split is exact); the pool then pays only the protected
    // desk, up to its limit.
    const own = min(minor(COLLATERAL_A) + minor(COLLATERAL_B), lossA + lossB);
    const ownToA = (own * lossA) / (lossA + lossB);
    const ownToB = own - ownToA;
    expect(ownToA * (lossA + lossB)).toBe(own * lossA);
    const poolToA = min(minor(LIMIT_A), lossA - ownToA);
    // The fall made the pool pay: the scenario really tests the limit (loss beyond collateral + limit).
    expect(lossA - ownToA).toBeGreaterThan(minor(LIMIT_A));

    const payouts = (partyId: string) => ofType('PayoutMade').filter((e) => e.data.partyId === partyId);
    const sum = (list: StoredEvent[], field: string) => list.reduce((s, e) => s + minor(e.data[field]), 0n);
    expect(sum(payouts('desk1'), 'amount')).toBe(ownToA + poolToA);
    expect(sum(payouts('desk2'), 'amount')).toBe(ownToB);
    expect(sum(payouts('desk2'), 'fromPool')).toBe(0n);
    // Everything the pool put in (advances for missed calls and tranche losses) is within desk1's limit, exactly.
    const tranches = ofType('LossAllocated').filter((e) => String(e.data.layer).endsWith('TRANCHE'));
    const advanced = ofType('MarginCoveredByBackstop');
    expect(sum(tranches, 'amount') + sum(advanced, 'amount')).toBe(poolToA);
    // What stays unpaid is a claim on the estate.
    const claims = (partyId: string) => ofType('ClaimRecorded').filter((e) => e.data.partyId === partyId);
    expect(sum(claims('desk1'), 'amount')).toBe(lossA - ownToA - poolToA);
    expect(sum(claims('desk2'), 'amount')).toBe(lossB - ownToB);
  });

  it('the ledger replays from the store and verify passes on it', async () => {
    const projection = await replay((after, maxCount) => store.readAll({ after, maxCount }));
    expect(projection.balances().length).toBeGreaterThan(0);
    const cli = (args: string[]) =>
      spawnSync(process.execPath, ['-r', join(WORKSPACE_ROOT, 'tools/register.js'), join(WORKSPACE_ROOT, 'apps/compliance-cli/src/main.ts'), ...args, '--data', dataFile], {
        cwd: WORKSPACE_ROOT,
        encoding: 'utf8',
        timeout: 120_000,
      });
    const replayed = cli(['replay', '--format', 'json']);
    expect([replayed.status, replayed.stderr.slice(-500)]).toEqual([0, expect.any(String)]);
    const verified = cli(['verify']);
    expect([verified.status, verified.stdout]).toEqual([0, expect.stringMatching(/OK/)]);
  });
});
