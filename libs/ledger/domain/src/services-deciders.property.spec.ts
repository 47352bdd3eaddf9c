import fc from 'fast-check';
import { ContractSpec, contractDecider, partyDecider } from '@backstop/intake';
import { DAY_MS, Decider, DomainEvent, fromMinor, iso, ms } from '@backstop/kernel';
import { accountDecider } from '@backstop/pricing';
import { createPoolDecider, DEFAULT_LIQUIDATION_COSTS, DEFAULT_POOL_POLICY, defaultDecider, PoolState } from '@backstop/settlement';
import { LedgerProjection } from './projection';
import { replay } from './replay';
import { EventLog } from './testing/book';

/**
 * The ledger against the other services' REAL deciders (intake's contract, pricing's premium
 * account, settlement's pool and default case): a desk protected against a counterparty that
 * defaults, with capital, a premium, a margin advance, the close-out, the waterfall, a recovery and
 * a share-priced withdrawal afterwards. Whatever the amounts: every event books, the ledger's
 * tranche capital is the pool's own, and replay equals live. If a service changes what its events
 * mean, this is where the ledger finds out.
 */
const T0 = '2026-01-01T00:00:00.000Z';
const day = (n: number) => iso(ms(T0) + n * DAY_MS);
const usdc = (minor: bigint) => fromMinor(minor, 6);

class World {
  readonly log = new EventLog(T0);
  readonly ledger = new LedgerProjection();
  readonly digests: string[] = [];
  private readonly states = new Map<string, unknown>();

  run<C, S, E extends DomainEvent>(decider: Decider<C, S, E>, stream: string, command: C): E[] {
    let state = (this.states.get(stream) as S | undefined) ?? decider.initialState;
    const events = decider.decide(command, state);
    for (const event of events) {
      state = decider.evolve(state, event);
      this.ledger.apply(this.log.add(event.type, event.data as Record<string, unknown>, stream));
      this.digests.push(this.ledger.digest());
    }
    this.states.set(stream, state);
    return events;
  }

  state<S>(stream: string): S {
    return this.states.get(stream) as S;
  }

  /** An event of a service whose decider is not driven here (margin-monitor's funding). */
  add(type: string, data: Record<string, unknown>, stream: string): void {
    this.ledger.apply(this.log.add(type, data, stream));
    this.digests.push(this.ledger.digest());
  }
}

const cents = (max: number) => fc.integer({ min: 1, max }).map((n) => BigInt(n) * 10_000n);

describe('ledger × the services\' own deciders', () => {
  it('books a whole default lifecycle and agrees with the pool on every tranche', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          cpCollateral: cents(3_000_000),
          deskCollateral: cents(3_000_000),
          capital: fc.tuple(cents(5_000_000), cents(5_000_000), cents(5_000_000)),
          premium: cents(100_000),
          coverPercent: fc.integer({ min: 0, max: 20 }),
          fundingPercent: fc.integer({ min: 0, max: 50 }),
          markPrice: fc.integer({ min: 40_000, max: 120_000 }),
          recovery: cents(5_000_000),
          withdrawPercent: fc.integer({ min: 1, max: 100 }),
        }),
        async (p) => {
          const w = new World();
          const pool = createPoolDecider();
          const parties: [string, 'DESK' | 'COUNTERPARTY' | 'PROVIDER'][] = [['desk1', 'DESK'], ['cp1', 'COUNTERPARTY'], ['p1', 'PROVIDER'], ['p2', 'PROVIDER'], ['p3', 'PROVIDER']];
          for (const [partyId, role] of parties) w.run(partyDecider, `party-${partyId}`, { type: 'RegisterParty', partyId, name: partyId, role, credit: { rating: 'BBB' }, at: T0 });
          const spec: ContractSpec = {
            kind: 'PERPETUAL', underlying: 'BTC-USD', size: '2', entryPrice: '60000', currency: 'USDC',
            longPartyId: 'desk1', shortPartyId: 'cp1', longInitialMargin: '0', shortInitialMargin: '0',
          };
          w.run(contractDecider, 'contract-c1', { type: 'RegisterContract', contractId: 'c1', spec, longParty: { partyId: 'desk1', role: 'DESK' }, shortParty: { partyId: 'cp1', role: 'COUNTERPARTY' }, consent: { kind: 'OPERATOR' }, at: T0 });
          w.run(contractDecider, 'contract-c1', { type: 'DepositCollateral', contractId: 'c1', partyId: 'cp1', amount: usdc(p.cpCollateral), at: T0 });
          w.run(contractDecider, 'contract-c1', { type: 'DepositCollateral', contractId: 'c1', partyId: 'desk1', amount: usdc(p.deskCollateral), at: T0 });
          (['p1', 'p2', 'p3'] as const).forEach((providerId, i) =>
            w.run(pool, 'pool-main', { type: 'DepositCapital', providerId, tranche: i < 2 ? 'JUNIOR' : 'SENIOR', amount: usdc(p.capital[i]), provider: { partyId: providerId, role: 'PROVIDER' }, at: T0 }),
          );
          // pricing: the desk funds its premium account, a period's premium is debited, settlement distributes it
          w.run(accountDecider, 'pricing-account-desk1', { type: 'FundPremiumAccount', partyId: 'desk1', amount: usdc(p.premium * 2n), currency: 'USDC', partyKnown: true, at: T0 });
          w.run(accountDecider, 'pricing-account-desk1', { type: 'DebitPremium', partyId: 'desk1', coverageId: 'cov1', amountMinor: p.premium, currency: 'USDC', periodStart: T0, periodEnd: day(1), at: day(1) });
          w.run(pool, 'pool-main', { type: 'DistributePremium', coverageId: 'cov1', payerPartyId: 'desk1', amount: usdc(p.premium), currency: 'USDC', at: day(1) });
          // margin: funding paid by the desk, then a missed call the pool covers
          const funding = (p.deskCollateral * BigInt(p.fundingPercent)) / 100n;
          w.add('FundingExchanged', { contractId: 'c1', payerPartyId: 'desk1', receiverPartyId: 'cp1', amount: usdc(funding), currency: 'USDC', rate: '0.0001', mark: '60000', at: day(2) }, 'margin-desk1');
          const cover = ((p.capital[0] + p.capital[1]) * BigInt(p.coverPercent)) / 100n;
          if (cover > 0n) w.run(pool, 'pool-main', { type: 'CoverMarginCall', callId: 'call1', partyId: 'cp1', amount: usdc(cover), currency: 'USDC', protections: [{ partyId: 'desk1', coverageLimit: '100000' }], at: day(3) });

          // settlement: cp1 defaults; close-out at the mark, the pool's charge, the lines, a recovery
          const d = 'default-cp1';
          w.run(defaultDecider, d, { type: 'DeclareDefault', defaultId: 'cp1', partyId: 'cp1', reason: 'OPERATOR', detail: 'test', lastSaneMarks: { 'BTC-USD': String(p.markPrice) }, triggerEventId: 'x', bookPosition: '0', currency: 'USDC', at: day(4) });
          const cpMargin = p.cpCollateral + funding;
          w.run(defaultDecider, d, {
            type: 'CloseOut', defaultId: 'cp1',
            contracts: [{ contractId: 'c1', spec, defaulterSide: 'SHORT', protectedPartyId: 'desk1', defaulterCollateral: usdc(cpMargin), coverages: [{ coverageId: 'cov1', limit: '1000000' }] }],
            marks: { 'BTC-USD': { price: String(p.markPrice), source: 'LAST_SANE_MARK' } }, costs: DEFAULT_LIQUIDATION_COSTS, at: day(4),
          });
          const assessment = w.state<{ assessment: { contractCollateral: string; parties: { partyId: string; lossOwed: string; coverageLimit: string }[] } }>(d).assessment;
          w.run(pool, 'pool-main', { type: 'FreezeWithdrawals', defaultId: 'cp1', partyId: 'cp1', at: day(4) });
          const [charged] = w.run(pool, 'pool-main', {
            type: 'ChargeDefaultLoss', defaultId: 'cp1', partyId: 'cp1', contractCollateral: assessment.contractCollateral,
            losses: assessment.parties.map((x) => ({ partyId: x.partyId, loss: x.lossOwed, coverageLimit: x.coverageLimit })), at: day(4),
          });
          if (charged?.type !== 'DefaultLossCharged') throw new Error('the pool did not charge the default');
          w.run(defaultDecider, d, { type: 'RecordWaterfall', defaultId: 'cp1', charge: charged.data, at: day(4) });
          w.run(pool, 'pool-main', { type: 'UnfreezeWithdrawals', defaultId: 'cp1', at: day(5) });
          w.run(defaultDecider, d, { type: 'RecordRecovery', defaultId: 'cp1', amount: usdc(p.recovery), reference: 'estate', at: day(6) });
          // a provider leaves afterwards at the share price
          const shares = (w.state<PoolState>('pool-main').positions.JUNIOR.get('p2')!.shares * BigInt(p.withdrawPercent)) / 100n;
          if (shares > 0n && w.state<PoolState>('pool-main').tranches.JUNIOR.capitalMinor > 0n) {
            w.run(pool, 'pool-main', { type: 'RequestWithdrawal', providerId: 'p2', tranche: 'JUNIOR', shares: shares.toString(), at: day(7) });
            w.run(pool, 'pool-main', { type: 'WithdrawCapital', providerId: 'p2', tranche: 'JUNIOR', at: iso(ms(day(7)) + DEFAULT_POOL_POLICY.cooldownMs + DAY_MS) });
          }

          // the ledger's tranche capital is the pool's own, to the minor unit
          const poolState = w.state<PoolState>('pool-main');
          for (const [tranche, key] of [['junior', 'JUNIOR'], ['senior', 'SENIOR']] as const) {
            const booked = w.ledger.balances().filter((l) => l.account.startsWith(`pool-capital:${tranche}:`)).reduce((s, l) => s + l.balanceMinor, 0n);
            expect(booked).toBe(poolState.tranches[key].capitalMinor);
          }
          expect(w.ledger.balances().find((l) => l.account === 'premium-reserve:main')?.balanceMinor ?? 0n).toBe(poolState.reserveMinor);
          // every payable paid or turned into a claim; the recovery pot emptied; the books balance
          const balance = (account: string) => w.ledger.balances().find((l) => l.account === account)?.balanceMinor ?? 0n;
          expect(balance('payout-payable:desk1')).toBe(0n);
          expect(balance('recovery:cp1')).toBe(0n);
          expect(balance('claim-on-defaulter:cp1')).toBe(
            w.ledger.balances().filter((l) => l.kind === 'pool-recoverable' || l.kind === 'unpaid-claim').reduce((s, l) => s + l.balanceMinor, 0n),
          );
          const trial = w.ledger.balances().reduce((s, l) => s + (l.normal === 'debit' ? l.balanceMinor : -l.balanceMinor), 0n);
          expect(trial).toBe(0n);
          // replay equals live at every position
          for (let k = 1; k <= w.log.events.length; k += 3) {
            const replayed = await replay(w.log.reader(), { until: { kind: 'position', position: BigInt(k) }, pageSize: 7 });
            expect(replayed.digest()).toBe(w.digests[k - 1]);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
