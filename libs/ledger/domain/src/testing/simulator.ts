import fc from 'fast-check';
import { allocateProRata, fromMinor } from '@backstop/kernel';
import { EventLog } from './book';

/**
 * Plausible sequences of the four services' money events for property tests: a small world (two
 * desks, two counterparties, three providers, three contracts) and actions the simulator turns
 * into the events a correct system would publish — never overdrawing collateral or capital, a
 * default's layers taking exactly the shortfall, recoveries never repaying more than was lost.
 * It also keeps the balances it expects, so a test can check the ledger against them.
 */
export type Action =
  | { readonly kind: 'deposit'; readonly contract: number; readonly side: number; readonly amount: number }
  | { readonly kind: 'withdraw'; readonly contract: number; readonly side: number; readonly percent: number }
  | { readonly kind: 'flow'; readonly flow: 'FundingExchanged' | 'ContractSettled'; readonly contract: number; readonly payerSide: number; readonly percent: number }
  | { readonly kind: 'capital'; readonly provider: number; readonly tranche: number; readonly amount: number }
  | { readonly kind: 'withdrawCapital'; readonly provider: number; readonly tranche: number; readonly percent: number }
  | { readonly kind: 'premium'; readonly contract: number; readonly amount: number }
  | { readonly kind: 'distribute'; readonly contract: number; readonly percent: number }
  | { readonly kind: 'cover'; readonly counterparty: number; readonly percent: number }
  | { readonly kind: 'default'; readonly counterparty: number; readonly lossPercent: number; readonly recoveryPercent: number };

const percent = fc.integer({ min: 0, max: 100 });
const cents = fc.integer({ min: 1, max: 2_000_000 });
const idx3 = fc.integer({ min: 0, max: 2 });
const idx2 = fc.integer({ min: 0, max: 1 });

export const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('deposit' as const), contract: idx3, side: idx2, amount: cents }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('withdraw' as const), contract: idx3, side: idx2, percent }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('flow' as const), flow: fc.constantFrom('FundingExchanged' as const, 'ContractSettled' as const), contract: idx3, payerSide: idx2, percent }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('capital' as const), provider: idx3, tranche: idx2, amount: cents }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('withdrawCapital' as const), provider: idx3, tranche: idx2, percent }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('premium' as const), contract: idx3, amount: cents }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('distribute' as const), contract: idx3, percent }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('cover' as const), counterparty: idx2, percent: fc.integer({ min: 0, max: 30 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('default' as const), counterparty: idx2, lossPercent: fc.integer({ min: 1, max: 300 }), recoveryPercent: percent }) },
);

/** Collateral on every side and capital from every provider first, then `maxActions` random actions. */
export function scenarioArb(maxActions: number): fc.Arbitrary<Action[]> {
  // Sometimes premiums come before any capital: the pool then holds them in its reserve.
  const early = fc.array(fc.record({ kind: fc.constant('premium' as const), contract: idx3, amount: cents }), { maxLength: 2 });
  const warmup = fc.tuple(fc.array(cents, { minLength: 6, maxLength: 6 }), early, fc.array(cents, { minLength: 0, maxLength: 6 })).map(([collateral, premiums, capital]): Action[] => [
    ...collateral.map((amount, i): Action => ({ kind: 'deposit', contract: i % 3, side: Math.floor(i / 3), amount })),
    ...premiums.flatMap((p): Action[] => [p, { kind: 'distribute', contract: p.contract, percent: 100 }]),
    ...capital.map((amount, i): Action => ({ kind: 'capital', provider: i % 3, tranche: Math.floor(i / 3), amount })),
  ]);
  return fc.tuple(warmup, fc.array(actionArb, { minLength: 1, maxLength: maxActions })).map(([w, a]) => [...w, ...a]);
}

const DESKS = ['desk1', 'desk2'];
const COUNTERPARTIES = ['cp1', 'cp2'];
const PROVIDERS = ['p1', 'p2', 'p3'];
const TRANCHES = ['JUNIOR', 'SENIOR'] as const;
/** [long (desk), short (counterparty)] */
const CONTRACTS: readonly (readonly [string, string])[] = [
  ['desk1', 'cp1'],
  ['desk2', 'cp1'],
  ['desk1', 'cp2'],
];
const at = '2026-01-01T00:00:00.000Z';
const usdc = (minor: bigint) => fromMinor(minor, 6);

export class Simulator {
  readonly log = new EventLog();
  /** Expected balances. Collateral `${party}|c${i}` (intake's balance), variation margin likewise. */
  readonly collateral = new Map<string, bigint>();
  readonly vm = new Map<string, bigint>();
  /** `${TRANCHE}|${provider}` book capital. */
  readonly capital = new Map<string, bigint>();
  readonly collected = new Map<number, bigint>();
  readonly premiumAccount = new Map<string, bigint>();
  reserve = 0n;
  private readonly advanced = new Map<string, bigint>();
  /** `${TRANCHE}|${provider}|${defaulter}` → what the provider lost or advanced for the defaulter, still owed. */
  private readonly recoverable = new Map<string, bigint>();
  /** `${TRANCHE}|${provider}|${defaulter}` → margin advances outstanding. */
  private readonly advances = new Map<string, bigint>();
  readonly defaulted = new Set<string>();

  constructor() {
    for (const p of [...DESKS, ...COUNTERPARTIES, ...PROVIDERS]) {
      const role = DESKS.includes(p) ? 'DESK' : COUNTERPARTIES.includes(p) ? 'COUNTERPARTY' : 'PROVIDER';
      this.log.add('PartyRegistered', { partyId: p, name: p, role, credit: { rating: 'BBB' }, at });
    }
    CONTRACTS.forEach(([longPartyId, shortPartyId], i) => {
      this.log.add('ContractRegistered', { contractId: `c${i}`, kind: 'PERPETUAL', underlying: 'BTC-USD', size: '1', entryPrice: '60000', currency: 'USDC', longPartyId, shortPartyId, longInitialMargin: '0', shortInitialMargin: '0', at });
      this.log.add('CoverageBound', { coverageId: `cov${i}`, quoteId: `q${i}`, contractId: `c${i}`, protectedPartyId: longPartyId, counterpartyId: shortPartyId, currency: 'USDC', coverageLimit: '1000000', at });
    });
  }

  run(actions: readonly Action[]): this {
    actions.forEach((a) => this.step(a));
    return this;
  }

  private open(contract: number): boolean {
    return !this.defaulted.has(CONTRACTS[contract][1]);
  }

  private get(map: Map<string, bigint>, key: string): bigint {
    return map.get(key) ?? 0n;
  }

  private add(map: Map<string, bigint>, key: string, delta: bigint): void {
    map.set(key, this.get(map, key) + delta);
  }

  private step(a: Action): void {
    switch (a.kind) {
      case 'deposit': {
        if (!this.open(a.contract)) return;
        const party = CONTRACTS[a.contract][a.side];
        const amount = BigInt(a.amount) * 10_000n;
        this.add(this.collateral, `${party}|c${a.contract}`, amount);
        const balance = usdc(this.get(this.collateral, `${party}|c${a.contract}`));
        this.log.add('CollateralDeposited', { contractId: `c${a.contract}`, partyId: party, side: a.side === 0 ? 'LONG' : 'SHORT', amount: usdc(amount), currency: 'USDC', balance, at });
        this.log.add('CollateralRecorded', { partyId: party, contractId: `c${a.contract}`, side: a.side === 0 ? 'LONG' : 'SHORT', change: 'DEPOSIT', amount: usdc(amount), balance, currency: 'USDC', at });
        return;
      }
      case 'withdraw': {
        if (!this.open(a.contract)) return;
        const party = CONTRACTS[a.contract][a.side];
        const amount = (this.get(this.collateral, `${party}|c${a.contract}`) * BigInt(a.percent)) / 100n;
        if (amount === 0n) return;
        this.add(this.collateral, `${party}|c${a.contract}`, -amount);
        const balance = usdc(this.get(this.collateral, `${party}|c${a.contract}`));
        this.log.add('CollateralWithdrawn', { contractId: `c${a.contract}`, partyId: party, side: a.side === 0 ? 'LONG' : 'SHORT', amount: usdc(amount), currency: 'USDC', balance, at });
        return;
      }
      case 'flow': {
        if (!this.open(a.contract)) return;
        const payer = CONTRACTS[a.contract][a.payerSide];
        const receiver = CONTRACTS[a.contract][1 - a.payerSide];
        // flows are owed in full: up to 120% of what the payer holds (variation margin is not floored)
        const amount = (this.get(this.collateral, `${payer}|c${a.contract}`) * BigInt(a.percent) * 12n) / 1000n;
        this.add(this.vm, `${payer}|c${a.contract}`, -amount);
        this.add(this.vm, `${receiver}|c${a.contract}`, amount);
        const extra = a.flow === 'FundingExchanged' ? { rate: '0.0001', mark: '60000' } : { reason: 'CLOSE', price: '61000' };
        this.log.add(a.flow, { contractId: `c${a.contract}`, payerPartyId: payer, receiverPartyId: receiver, amount: usdc(amount), currency: 'USDC', ...extra, at });
        return;
      }
      case 'capital': {
        const amount = BigInt(a.amount) * 10_000n;
        this.add(this.capital, `${TRANCHES[a.tranche]}|${PROVIDERS[a.provider]}`, amount);
        this.log.add('CapitalDeposited', { poolId: 'main', providerId: PROVIDERS[a.provider], tranche: TRANCHES[a.tranche], amount: usdc(amount), shares: usdc(amount), currency: 'USDC', cancelledShares: '0', at });
        return;
      }
      case 'withdrawCapital': {
        const key = `${TRANCHES[a.tranche]}|${PROVIDERS[a.provider]}`;
        const amount = (this.get(this.capital, key) * BigInt(a.percent)) / 100n;
        if (amount === 0n) return;
        this.add(this.capital, key, -amount);
        this.log.add('WithdrawalRequested', { poolId: 'main', providerId: PROVIDERS[a.provider], tranche: TRANCHES[a.tranche], shares: '1', valueAtRequest: usdc(amount), opensAt: at, closesAt: at, at });
        this.log.add('CapitalWithdrawn', { poolId: 'main', providerId: PROVIDERS[a.provider], tranche: TRANCHES[a.tranche], shares: '1', amount: usdc(amount), valueAtRequest: usdc(amount), valueNow: usdc(amount), currency: 'USDC', at });
        return;
      }
      case 'premium': {
        if (!this.open(a.contract)) return;
        const amount = BigInt(a.amount) * 100n;
        const payer = CONTRACTS[a.contract][0];
        this.add(this.premiumAccount, payer, amount);
        this.log.add('PremiumAccountFunded', { partyId: payer, amount: usdc(amount), currency: 'USDC', balance: usdc(this.get(this.premiumAccount, payer)), at });
        this.add(this.premiumAccount, payer, -amount);
        this.collected.set(a.contract, (this.collected.get(a.contract) ?? 0n) + amount);
        const period = { periodStart: at, periodEnd: at };
        this.log.add('PremiumAccountDebited', { partyId: payer, coverageId: `cov${a.contract}`, amount: usdc(amount), currency: 'USDC', balance: usdc(this.get(this.premiumAccount, payer)), ...period, at });
        this.log.add('PremiumCharged', { coverageId: `cov${a.contract}`, payerPartyId: payer, amount: usdc(amount), currency: 'USDC', ...period, rateAnnual: '0.05', at });
        return;
      }
      case 'distribute':
        return this.distribute(a.contract, a.percent);
      case 'cover':
        return this.cover(COUNTERPARTIES[a.counterparty], a.percent);
      case 'default':
        return this.defaultOf(COUNTERPARTIES[a.counterparty], a.lossPercent, a.recoveryPercent);
      default: {
        const _exhaustive: never = a;
        return _exhaustive;
      }
    }
  }

  /** Every (tranche, provider) with book capital, in a fixed order. */
  private holders(tranches: readonly string[] = TRANCHES): { tranche: string; provider: string; capital: bigint }[] {
    return tranches.flatMap((tranche) => PROVIDERS.map((provider) => ({ tranche, provider, capital: this.get(this.capital, `${tranche}|${provider}`) }))).filter((h) => h.capital > 0n);
  }

  /** settlement: the premium plus the reserve goes to the providers; with no capital to earn it, all is held. */
  private distribute(contract: number, pct: number): void {
    const amount = ((this.collected.get(contract) ?? 0n) * BigInt(pct)) / 100n;
    const holders = this.holders();
    const total = amount + this.reserve;
    const perProvider: Record<string, Record<string, string>> = { JUNIOR: {}, SENIOR: {} };
    const trancheTotals = new Map<string, bigint>(TRANCHES.map((t) => [t, 0n]));
    const earning = holders.length > 0;
    if (earning) {
      const parts = total === 0n ? holders.map(() => 0n) : allocateProRata(total, holders.map((h) => h.capital));
      holders.forEach((h, i) => {
        if (parts[i] === 0n) return;
        perProvider[h.tranche][h.provider] = usdc(parts[i]);
        trancheTotals.set(h.tranche, trancheTotals.get(h.tranche)! + parts[i]);
        this.add(this.capital, `${h.tranche}|${h.provider}`, parts[i]);
      });
    }
    const perTranche = Object.fromEntries([...trancheTotals].map(([t, v]) => [t, usdc(v)]));
    const fromReserve = earning ? this.reserve : 0n;
    this.reserve = earning ? 0n : total;
    this.collected.set(contract, (this.collected.get(contract) ?? 0n) - amount);
    this.log.add('PremiumIncomeDistributed', {
      poolId: 'main', coverageId: `cov${contract}`, payerPartyId: CONTRACTS[contract][0], amount: usdc(amount), currency: 'USDC',
      fromReserve: usdc(fromReserve), perTranche, perProvider, undistributed: usdc(this.reserve), at,
    });
  }

  private cover(party: string, pct: number): void {
    if (this.defaulted.has(party)) return;
    const holders = this.holders(['JUNIOR']);
    const total = holders.reduce((s, h) => s + h.capital, 0n);
    const amount = (total * BigInt(pct)) / 100n;
    if (amount === 0n) return;
    const parts = allocateProRata(amount, holders.map((h) => h.capital));
    const perProvider: Record<string, Record<string, string>> = { JUNIOR: {}, SENIOR: {} };
    holders.forEach((h, i) => {
      if (parts[i] === 0n) return;
      perProvider.JUNIOR[h.provider] = usdc(parts[i]);
      this.add(this.capital, `JUNIOR|${h.provider}`, -parts[i]);
      this.add(this.recoverable, `JUNIOR|${h.provider}|${party}`, parts[i]);
      this.add(this.advances, `JUNIOR|${h.provider}|${party}`, parts[i]);
    });
    this.add(this.advanced, party, amount);
    const callId = `call${this.log.events.length}`;
    this.log.add('MarginCallMissed', { callId, partyId: party, amount: usdc(amount), currency: 'USDC', at });
    this.log.add('MarginCoveredByBackstop', { poolId: 'main', callId, partyId: party, amount: usdc(amount), requested: usdc(amount), uncovered: '0', currency: 'USDC', perTranche: { JUNIOR: usdc(amount), SENIOR: '0' }, perProvider, at });
    this.log.add('BackstopCoverRecorded', { partyId: party, callId, amount: usdc(amount), currency: 'USDC', at });
  }

  /** As default-settlement records a default: close-out, assessment, the pool's charge, the lines, the claims. */
  private defaultOf(defaulter: string, lossPercent: number, recoveryPercent: number): void {
    if (this.defaulted.has(defaulter)) return;
    const contracts = CONTRACTS.map((c, i) => ({ i, long: c[0], short: c[1] })).filter((c) => c.short === defaulter);
    const defaultId = defaulter;
    this.log.add('DefaultDeclared', { defaultId, partyId: defaulter, reason: 'OPERATOR', detail: 'test', lastSaneMarks: {}, triggerEventId: 'x', bookPosition: '0', currency: 'USDC', at });
    this.defaulted.add(defaulter);
    const owed = new Map<string, bigint>();
    let held = 0n;
    for (const c of contracts) {
      const net = this.get(this.collateral, `${defaulter}|c${c.i}`) + this.get(this.vm, `${defaulter}|c${c.i}`);
      const mine = net > 0n ? net : 0n;
      const loss = ((mine + this.get(this.collateral, `${c.long}|c${c.i}`)) * BigInt(lossPercent)) / 100n;
      held += mine;
      owed.set(c.long, (owed.get(c.long) ?? 0n) + loss);
      this.log.add('ContractClosedOut', { defaultId, contractId: `c${c.i}`, defaulterPartyId: defaulter, protectedPartyId: c.long, closeOutPrice: '70000', closeOutValue: usdc(loss), lossOwed: usdc(loss), defaulterCollateral: usdc(mine), currency: 'USDC', at });
    }
    const parties = [...owed.keys()].sort();
    this.log.add('LossesAssessed', { defaultId, partyId: defaulter, currency: 'USDC', contractCollateral: usdc(held), parties: parties.map((p) => ({ partyId: p, lossOwed: usdc(owed.get(p)!) })), excludedContracts: [], at });
    this.log.add('WithdrawalsFrozen', { poolId: 'main', defaultId, partyId: defaulter, at });
    const loss = [...owed.values()].reduce((s, v) => s + v, 0n);
    const advance = this.get(this.advanced, defaulter);
    const take = (available: bigint, left: bigint) => (available < left ? available : left);
    const x1 = take(held, loss);
    const x2 = take(advance, loss - x1);
    const layers: { layer: string; available: bigint; taken: bigint; perProvider?: Record<string, string> }[] = [
      { layer: 'DEFAULTER_CONTRACT_COLLATERAL', available: held, taken: x1 },
      { layer: 'POOL_MARGIN_ADVANCE', available: advance, taken: x2 },
    ];
    let left = loss - x1 - x2;
    let fromPool = 0n;
    for (const tranche of TRANCHES) {
      const holders = this.holders([tranche]);
      const available = holders.reduce((s, h) => s + h.capital, 0n);
      const x = take(available, left);
      const parts = x === 0n ? [] : allocateProRata(x, holders.map((h) => h.capital));
      const perProvider: Record<string, string> = {};
      holders.forEach((h, i) => {
        if (!parts[i]) return;
        perProvider[h.provider] = usdc(parts[i]);
        this.add(this.capital, `${tranche}|${h.provider}`, -parts[i]);
        this.add(this.recoverable, `${tranche}|${h.provider}|${defaulter}`, parts[i]);
      });
      layers.push({ layer: `${tranche}_TRANCHE`, available, taken: x, perProvider });
      left -= x;
      fromPool += x;
    }
    // what the defaulter's layers left unused repays the advances in cash, pro rata; the rest goes back to the estate
    const unused = held - x1 + (advance - x2);
    const returnedTotal = take(unused, advance);
    const advanceRows = TRANCHES.flatMap((t) => PROVIDERS.map((p) => ({ t, p, amount: this.get(this.advances, `${t}|${p}|${defaulter}`) }))).filter((r) => r.amount > 0n);
    const returnedParts = advanceRows.length ? allocateProRata(returnedTotal, advanceRows.map((r) => r.amount)) : [];
    const returnedPerProvider: Record<string, Record<string, string>> = { JUNIOR: {}, SENIOR: {} };
    const unreturnedPerProvider: Record<string, Record<string, string>> = { JUNIOR: {}, SENIOR: {} };
    advanceRows.forEach((r, i) => {
      if (returnedParts[i] > 0n) returnedPerProvider[r.t][r.p] = usdc(returnedParts[i]);
      if (r.amount - returnedParts[i] > 0n) unreturnedPerProvider[r.t][r.p] = usdc(r.amount - returnedParts[i]);
      this.add(this.recoverable, `${r.t}|${r.p}|${defaulter}`, -returnedParts[i]);
    });
    const charged = layers.map((l) => ({ layer: l.layer, available: usdc(l.available), taken: usdc(l.taken), remaining: usdc(l.available - l.taken), perParty: {}, ...(l.perProvider ? { perProvider: l.perProvider } : {}) }));
    this.log.add('DefaultLossCharged', {
      poolId: 'main', defaultId, partyId: defaulter, currency: 'USDC', order: layers.map((l) => l.layer), layers: charged, parties: [],
      perTranche: { JUNIOR: charged[2].taken, SENIOR: charged[3].taken },
      advance: { outstanding: usdc(advance), returned: usdc(returnedTotal), unreturned: usdc(advance - returnedTotal), returnedPerProvider, unreturnedPerProvider },
      surplusToDefaulter: usdc(unused - returnedTotal), at,
    });
    charged.forEach((l, i) => this.log.add('LossAllocated', { defaultId, ...l, step: i + 1, amount: l.taken, at }));
    const weights = parties.map((p) => owed.get(p)!);
    const byDefaulter = weights.some((w) => w > 0n) ? allocateProRata(x1 + x2, weights) : weights.map(() => 0n);
    const byPool = weights.some((w) => w > 0n) ? allocateProRata(fromPool, weights) : weights.map(() => 0n);
    const unpaid = new Map<string, bigint>();
    parties.forEach((party, i) => unpaid.set(party, owed.get(party)! - byDefaulter[i] - byPool[i]));
    parties.forEach((party, i) => {
      const paid = byDefaulter[i] + byPool[i];
      if (paid > 0n) this.log.add('PayoutMade', { defaultId, partyId: party, amount: usdc(paid), fromDefaulter: usdc(byDefaulter[i]), fromPool: usdc(byPool[i]), coverageIds: [], perCoverage: {}, currency: 'USDC', at });
    });
    for (const party of parties) {
      if (unpaid.get(party)! > 0n) this.log.add('ClaimRecorded', { defaultId, partyId: party, amount: usdc(unpaid.get(party)!), withinCoverage: '0', currency: 'USDC', at });
    }
    this.log.add('DefaultSettled', { defaultId, partyId: defaulter, currency: 'USDC', totals: { advanceUnreturned: usdc(advance - returnedTotal) }, creditors: [], at });
    this.log.add('WithdrawalsUnfrozen', { poolId: 'main', defaultId, extendedWindows: [], at });
    this.recover(defaultId, defaulter, (loss * BigInt(recoveryPercent)) / 100n, unpaid);
  }

  /** Back up the waterfall in cash: unpaid claims, then senior, then junior; what is left goes back to the estate. */
  private recover(defaultId: string, defaulter: string, recovered: bigint, unpaid: Map<string, bigint>): void {
    if (recovered === 0n) return;
    const layers: { layer: string; owed: { id: string; amount: bigint }[] }[] = [
      { layer: 'UNPAID_CLAIMS', owed: [...unpaid].map(([id, amount]) => ({ id, amount })) },
      ...(['SENIOR', 'JUNIOR'] as const).map((t) => ({
        layer: `${t}_TRANCHE`,
        owed: PROVIDERS.map((p) => ({ id: p, amount: this.get(this.recoverable, `${t}|${p}|${defaulter}`) })),
      })),
    ];
    let left = recovered;
    const allocations: Record<string, unknown>[] = [];
    for (const { layer, owed } of layers) {
      const due = owed.filter((o) => o.amount > 0n);
      const total = due.reduce((s, o) => s + o.amount, 0n);
      const pay = total < left ? total : left;
      if (pay === 0n) continue;
      const parts = allocateProRata(pay, due.map((o) => o.amount));
      const perCreditor: Record<string, string> = {};
      due.forEach((o, i) => {
        if (!parts[i]) return;
        perCreditor[o.id] = usdc(parts[i]);
        if (layer !== 'UNPAID_CLAIMS') this.add(this.recoverable, `${layer.replace('_TRANCHE', '')}|${o.id}|${defaulter}`, -parts[i]);
      });
      allocations.push({ defaultId, layer, amount: usdc(pay), perCreditor, outstandingAfter: usdc(total - pay), at });
      left -= pay;
    }
    this.log.add('RecoveryReceived', { defaultId, amount: usdc(recovered), currency: 'USDC', reference: 'r', repaid: usdc(recovered - left), surplusToDefaulter: usdc(left), at });
    allocations.forEach((a) => this.log.add('RecoveryAllocated', a));
    if (left > 0n) this.log.add('RecoveryAllocated', { defaultId, layer: 'SURPLUS', amount: usdc(left), perCreditor: { [defaulter]: usdc(left) }, outstandingAfter: '0', at });
  }
}
