import { specFor } from '@backstop/kernel';
import { optionValue } from '@backstop/margin-model';
import type { ContractSpec } from '@backstop/contracts';
import { DEFAULT_LIQUIDATION_COSTS, DefaultedContract } from './close-out';
import { DefaultCommand, defaultDecider, DefaultEvent } from './default-case';
import { DefaultLossChargedData, PoolEvent, poolDecider } from './pool';
import { asProvider, history, stateOf, T0 } from './testing/fixtures';

const spec = specFor(defaultDecider);

const declare: DefaultCommand = {
  type: 'DeclareDefault',
  defaultId: 'cp1',
  partyId: 'cp1',
  reason: 'SECOND_DEADLINE',
  detail: 'equity below maintenance past the second deadline',
  lastSaneMarks: { 'BTC-USD': '70000' },
  triggerEventId: 'evt-1',
  bookPosition: '42',
  currency: 'USDC',
  at: T0,
};
const declared = history(defaultDecider, [declare]);

const perp = (_contractId: string, long: string, short: string, size = '2', entryPrice = '60000'): ContractSpec => ({
  kind: 'PERPETUAL',
  underlying: 'BTC-USD',
  size,
  entryPrice,
  currency: 'USDC',
  longPartyId: long,
  shortPartyId: short,
  longInitialMargin: '0',
  shortInitialMargin: '0',
});
const defaulted = (contractId: string, contractSpec: ContractSpec, collateral: string, coverages: { coverageId: string; limit: string }[] = []): DefaultedContract => ({
  contractId,
  spec: contractSpec,
  defaulterSide: contractSpec.longPartyId === 'cp1' ? 'LONG' : 'SHORT',
  protectedPartyId: contractSpec.longPartyId === 'cp1' ? contractSpec.shortPartyId : contractSpec.longPartyId,
  defaulterCollateral: collateral,
  coverages,
});
const marks = { 'BTC-USD': { price: '70000', source: 'TRIGGER' as const, volAnnual: '0.6' } };
const closeOut = (contracts: DefaultedContract[]): DefaultCommand => ({ type: 'CloseOut', defaultId: 'cp1', contracts, marks, costs: DEFAULT_LIQUIDATION_COSTS, at: T0 });

describe('default case decider', () => {
  it('declares one case per defaulter: a second trigger adds nothing', () => {
    const { type: _type, ...data } = declare as Extract<DefaultCommand, { type: 'DeclareDefault' }>;
    expect(declared).toEqual([{ type: 'DefaultDeclared', data }]);
    expect(spec.given(declared).when({ ...declare, triggerEventId: 'evt-2', reason: 'OPERATOR' }).events()).toEqual([]);
  });

  describe('CloseOut', () => {
    it('closes a perpetual at the mark moved against the defaulter by the liquidation cost', () => {
      const events = spec.given(declared).when(closeOut([defaulted('c1', perp('c1', 'desk1', 'cp1'), '5000', [{ coverageId: 'cov1', limit: '15000' }])])).events();
      expect(events[0]).toEqual({
        type: 'ContractClosedOut',
        data: {
          defaultId: 'cp1',
          contractId: 'c1',
          kind: 'PERPETUAL',
          underlying: 'BTC-USD',
          defaulterPartyId: 'cp1',
          defaulterSide: 'SHORT',
          protectedPartyId: 'desk1',
          size: '2',
          entryPrice: '60000',
          mark: '70000',
          markSource: 'TRIGGER',
          liquidationCostFraction: '0.005',
          // The short defaulter is bought back above the mark: 70000 × 1.005.
          closeOutPrice: '70350',
          closeOutValue: '20700.000000',
          lossOwed: '20700.000000',
          defaulterCollateral: '5000.000000',
          coverageIds: ['cov1'],
          currency: 'USDC',
          at: T0,
        },
      });
      expect(events[1]).toEqual({
        type: 'LossesAssessed',
        data: {
          defaultId: 'cp1',
          partyId: 'cp1',
          currency: 'USDC',
          contractCollateral: '5000.000000',
          parties: [{ partyId: 'desk1', contractIds: ['c1'], netValue: '20700.000000', lossOwed: '20700.000000', coverageLimit: '15000.000000', coverages: [{ coverageId: 'cov1', limit: '15000.000000' }] }],
          excludedContracts: [],
          at: T0,
        },
      });
    });

    it('nets a party\'s contracts with the defaulter, values options with Black-76, and leaves out other currencies', () => {
      const call: ContractSpec = { ...perp('o1', 'cp1', 'desk1', '1', '1000'), kind: 'OPTION', optionType: 'CALL', strike: '80000', expiry: '2026-01-31T00:00:00.000Z' };
      const events = spec
        .given(declared)
        .when(closeOut([
          defaulted('c1', perp('c1', 'desk1', 'cp1'), '1000'),
          defaulted('c2', perp('c2', 'cp1', 'desk1', '1'), '2000'),
          defaulted('o1', call, '0'),
          defaulted('x1', { ...perp('x1', 'desk2', 'cp1'), currency: 'USDT' }, '9'),
        ]))
        .events();
      const closeOuts = events.filter((e) => e.type === 'ContractClosedOut').map((e) => e.data as { contractId: string; closeOutValue: string; closeOutPrice: string });
      expect(closeOuts.map((c) => c.contractId)).toEqual(['c1', 'c2', 'o1']);
      // c2: desk1 is short 1 against a long defaulter sold at 70000 × 0.995 = 69650: desk1 owes 9650.
      expect(closeOuts[1].closeOutValue).toBe('-9650.000000');
      // o1: the defaulter holds a call desk1 wrote: it is sold 2% below its Black-76 value, and desk1 owes that less the premium.
      const value = optionValue('CALL', 80_000, Date.parse('2026-01-31T00:00:00Z'), 70_000, 0.6, Date.parse(T0));
      expect(Number(closeOuts[2].closeOutPrice)).toBeCloseTo(value * 0.98, 6);
      expect(Number(closeOuts[2].closeOutValue)).toBeCloseTo(-(value * 0.98 - 1000), 5);
      const assessed = events.at(-1)!.data as { parties: { netValue: string; lossOwed: string }[]; contractCollateral: string; excludedContracts: unknown[] };
      const net = 20700 - 9650 + Number(closeOuts[2].closeOutValue);
      expect(Number(assessed.parties[0].netValue)).toBeCloseTo(net, 5);
      expect(assessed.contractCollateral).toBe('3000.000000');
      expect(assessed.excludedContracts).toEqual([{ contractId: 'x1', reason: 'settles in USDT, the pool in USDC' }]);
    });

    it('is rejected before the declaration and a no-op once done', () => {
      expect(spec.given([]).when(closeOut([])).rejection().violations[0]).toMatchObject({ field: 'defaultId', rule: 'declared' });
      const closed = history(defaultDecider, [closeOut([])], declared);
      expect(spec.given(closed).when(closeOut([defaulted('c1', perp('c1', 'desk1', 'cp1'), '1')])).events()).toEqual([]);
    });
  });

  describe('RecordWaterfall and recovery', () => {
    // cp1 owes desk1 400 (covered up to 300) and desk2 100 (uncovered); the pool advanced 120 for it.
    const funded = history(poolDecider, [
      { type: 'DepositCapital', providerId: 'p1', tranche: 'JUNIOR', amount: '60', provider: asProvider('p1'), at: T0 },
      { type: 'DepositCapital', providerId: 'p2', tranche: 'JUNIOR', amount: '40', provider: asProvider('p2'), at: T0 },
      { type: 'DepositCapital', providerId: 'p3', tranche: 'SENIOR', amount: '300', provider: asProvider('p3'), at: T0 },
      { type: 'CoverMarginCall', callId: 'm1', partyId: 'cp1', amount: '120', currency: 'USDC', protections: [{ partyId: 'desk1', coverageLimit: '100000' }], at: T0 },
      {
        type: 'ChargeDefaultLoss',
        defaultId: 'cp1',
        partyId: 'cp1',
        losses: [{ partyId: 'desk1', loss: '400', coverageLimit: '300' }, { partyId: 'desk2', loss: '100', coverageLimit: '0' }],
        contractCollateral: '50',
        at: T0,
      },
    ]);
    const charge = (funded.at(-1) as Extract<PoolEvent, { type: 'DefaultLossCharged' }>).data as DefaultLossChargedData;
    const assessed: DefaultEvent = {
      type: 'LossesAssessed',
      data: {
        defaultId: 'cp1',
        partyId: 'cp1',
        currency: 'USDC',
        contractCollateral: '50.000000',
        parties: [
          { partyId: 'desk1', contractIds: ['c1', 'c2'], netValue: '400.000000', lossOwed: '400.000000', coverageLimit: '300.000000', coverages: [{ coverageId: 'covA', limit: '200.000000' }, { coverageId: 'covB', limit: '100.000000' }] },
          { partyId: 'desk2', contractIds: ['c3'], netValue: '100.000000', lossOwed: '100.000000', coverageLimit: '0.000000', coverages: [] },
        ],
        excludedContracts: [],
        at: T0,
      },
    };
    const closedOut = [...declared, assessed];
    const record: DefaultCommand = { type: 'RecordWaterfall', defaultId: 'cp1', charge, at: T0 };

    it('records the waterfall line by line, payouts within each coverage, claims and the settlement', () => {
      const events = spec.given(closedOut).when(record).events();
      expect(events.map((e) => e.type)).toEqual([
        'LossAllocated', 'LossAllocated', 'LossAllocated', 'LossAllocated',
        'PayoutMade', 'PayoutMade', 'ClaimRecorded', 'ClaimRecorded', 'DefaultSettled',
      ]);
      expect(events.slice(0, 4).map((e) => { const d = e.data as { layer: string; step: number; amount: string }; return [d.step, d.layer, d.amount]; })).toEqual([
        [1, 'DEFAULTER_CONTRACT_COLLATERAL', '50.000000'],
        [2, 'POOL_MARGIN_ADVANCE', '120.000000'],
        [3, 'JUNIOR_TRANCHE', '0.000000'],
        [4, 'SENIOR_TRANCHE', '180.000000'],
      ]);
      // The advance (earmarked for desk1) counts against desk1's limit of 300: pool pays it 300 in all.
      expect(events[4].data).toMatchObject({ partyId: 'desk1', amount: '340.000000', fromDefaulter: '40.000000', fromPool: '300.000000', coverageId: 'covA', perCoverage: { covA: '200.000000', covB: '100.000000' } });
      // desk2 bought no protection: its share of the defaulter's collateral only, no pool money.
      expect(events[5].data).toMatchObject({ partyId: 'desk2', amount: '10.000000', fromPool: '0.000000', coverageId: null, coverageIds: [] });
      // Claims on the estate; the pool's unrepaid 120 advance is its providers' claim (see creditors).
      expect(events[6].data).toEqual({ defaultId: 'cp1', partyId: 'desk1', amount: '60.000000', withinCoverage: '0.000000', currency: 'USDC', at: T0 });
      expect(events[7].data).toEqual({ defaultId: 'cp1', partyId: 'desk2', amount: '90.000000', withinCoverage: '0.000000', currency: 'USDC', at: T0 });
      expect(events[8].data).toMatchObject({
        totals: { loss: '500.000000', fromDefaulter: '50.000000', fromPool: '300.000000', unpaid: '150.000000', advanceUnreturned: '120.000000' },
        creditors: [
          { layer: 'UNPAID_CLAIMS', perCreditor: { desk1: '60.000000', desk2: '90.000000' } },
          { layer: 'SENIOR_TRANCHE', perCreditor: { p3: '200.000000' } },
          { layer: 'JUNIOR_TRANCHE', perCreditor: { p1: '60.000000', p2: '40.000000' } },
        ],
      });
      expect(spec.given([...closedOut, ...events]).when(record).events()).toEqual([]);
      expect(spec.given(declared).when(record).rejection().violations[0].rule).toBe('closedOut');
    });

    it('repays a recovery up the waterfall: unpaid claims, then senior, then junior; the rest to the defaulter', () => {
      const settled = history(defaultDecider, [record], closedOut);
      const recover = (amount: string): DefaultCommand => ({ type: 'RecordRecovery', defaultId: 'cp1', amount, reference: 'estate-1', at: T0 });
      const first = spec.given(settled).when(recover('200')).events();
      expect(first.map((e) => [e.type, (e.data as { layer?: string }).layer, (e.data as { amount: string }).amount])).toEqual([
        ['RecoveryReceived', undefined, '200.000000'],
        ['RecoveryAllocated', 'UNPAID_CLAIMS', '150.000000'],
        ['RecoveryAllocated', 'SENIOR_TRANCHE', '50.000000'],
      ]);
      const second = spec.given([...settled, ...first]).when(recover('300')).events();
      expect(second[0].data).toMatchObject({ repaid: '250.000000', surplusToDefaulter: '50.000000' });
      expect(second.slice(1).map((e) => e.data)).toEqual([
        expect.objectContaining({ layer: 'SENIOR_TRANCHE', amount: '150.000000', perCreditor: { p3: '150.000000' }, outstandingAfter: '0.000000' }),
        expect.objectContaining({ layer: 'JUNIOR_TRANCHE', amount: '100.000000', perCreditor: { p1: '60.000000', p2: '40.000000' } }),
        expect.objectContaining({ layer: 'SURPLUS', amount: '50.000000', perCreditor: { cp1: '50.000000' } }),
      ]);
      expect(stateOf(defaultDecider, [...settled, ...first, ...second]).outstanding.every((l) => l.creditors.every((c) => c.outstandingMinor === 0n))).toBe(true);
    });

    it('rejects a recovery for an unknown or unsettled default, in another currency, or not positive', () => {
      const recover = { type: 'RecordRecovery' as const, defaultId: 'cp1', amount: '1', reference: 'r', at: T0 };
      expect(spec.given([]).when(recover).rejection().violations[0].rule).toBe('knownDefault');
      expect(spec.given(closedOut).when(recover).rejection().violations[0].rule).toBe('settled');
      const settled = history(defaultDecider, [record], closedOut);
      expect(spec.given(settled).when({ ...recover, currency: 'USDT', amount: '1.0000001' }).rejection().violations.map((v) => v.rule)).toEqual(['defaultCurrency', 'currencyScale']);
      expect(spec.given(settled).when({ ...recover, amount: '0' }).rejection().violations[0].rule).toBe('positive');
    });
  });
});
