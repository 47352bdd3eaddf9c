import fc from 'fast-check';
import { LedgerProjection } from './projection';
import { replay } from './replay';
import { scenarioArb, Simulator } from './testing/simulator';

/**
 * STYLE.md: any sequence of valid events keeps the ledger balanced and the pool non-negative, and
 * replay equals live. The live projection is fed event by event (as the service's subscription
 * does); each replay starts empty and reads the log in pages through a JSON round trip (as from the store).
 */
describe('ledger properties over plausible event sequences', () => {
  it('replay at every k-th position (by position and by instant) equals the live digest there; every entry balances', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb(40), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 64 }), async (actions, k, pageSize) => {
        const sim = new Simulator().run(actions);
        const live = new LedgerProjection();
        const digests: string[] = [];
        for (const event of sim.log.events) {
          const postings = live.apply(event); // throws on an unbalanced entry or a floored account below zero
          for (const p of postings) {
            expect(p.amountMinor > 0n).toBe(true);
            expect(p.debit).not.toBe(p.credit);
          }
          const trial = live.balances().reduce((s, l) => s + (l.normal === 'debit' ? l.balanceMinor : -l.balanceMinor), 0n);
          expect(trial).toBe(0n); // Σ debit-normal balances = Σ credit-normal balances
          digests.push(live.digest());
        }
        for (let i = k - 1; i < sim.log.events.length; i += k) {
          const event = sim.log.events[i];
          const byPosition = await replay(sim.log.reader(), { until: { kind: 'position', position: event.position }, pageSize });
          expect(byPosition.digest()).toBe(digests[i]);
          const byInstant = await replay(sim.log.reader(), { until: { kind: 'instant', at: event.recordedAt }, pageSize });
          expect(byInstant.digest()).toBe(digests[i]);
        }
        expect((await replay(sim.log.reader(), { pageSize })).digest()).toBe(live.digest());
      }),
      { numRuns: 60 },
    );
  });

  it('the balances are the ones the world expects: collateral, pool capital and premiums held', () => {
    fc.assert(
      fc.property(scenarioArb(60), (actions) => {
        const sim = new Simulator().run(actions);
        const live = new LedgerProjection();
        sim.log.events.forEach((e) => live.apply(e));
        const balance = (account: string) => live.balances().find((l) => l.account === account)?.balanceMinor ?? 0n;
        for (const [key, expected] of sim.capital) {
          const [tranche, provider] = key.split('|');
          expect(balance(`pool-capital:${tranche.toLowerCase()}:${provider}`)).toBe(expected);
        }
        for (const [key, expected] of sim.collateral) {
          const [party, contract] = key.split('|');
          if (sim.defaulted.has(party)) continue; // its collateral went down the waterfall
          expect(balance(`collateral:${party}:${contract}`)).toBe(expected);
          expect(balance(`variation-margin:${party}:${contract}`)).toBe(sim.vm.get(key) ?? 0n);
        }
        for (const [contract, expected] of sim.collected) expect(balance(`premium-collected:cov${contract}`)).toBe(expected);
        for (const [party, expected] of sim.premiumAccount) expect(balance(`premium-account:${party}`)).toBe(expected);
        expect(balance('premium-reserve:main')).toBe(sim.reserve);
        for (const line of live.balances()) {
          const floored = (line.class === 'liability' || line.class === 'equity') && line.kind !== 'variation-margin' && line.kind !== 'pool-capital';
          if (floored) expect(line.balanceMinor >= 0n).toBe(true);
        }
        for (const tranche of ['junior', 'senior']) {
          const total = live.balances().filter((l) => l.account.startsWith(`pool-capital:${tranche}:`)).reduce((s, l) => s + l.balanceMinor, 0n);
          expect(total >= 0n).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });
});
