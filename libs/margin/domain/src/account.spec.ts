import { HOUR_MS, specFor } from '@backstop/kernel';
import { AccountEvent, accountDecider, Assessment, PositionSpec } from './account';

const policy = { callGraceMs: 4 * HOUR_MS, secondGraceMs: 24 * HOUR_MS };
const spec = specFor(accountDecider(policy));
const T0 = '2026-01-01T00:00:00.000Z';
const at = (hours: number) => new Date(Date.parse(T0) + hours * HOUR_MS).toISOString();

const perp: PositionSpec = {
  contractId: 'c1',
  side: 'LONG',
  kind: 'PERPETUAL',
  underlying: 'BTC-USD',
  size: '2',
  entryPrice: '60000',
  currency: 'USDC',
  longPartyId: 'desk1',
  shortPartyId: 'cp1',
};
const opened = (position: PositionSpec = perp, partyId = 'desk1'): AccountEvent => ({ type: 'PositionOpened', data: { ...position, partyId, at: T0 } });
const usdc = (units: number) => BigInt(Math.round(units * 1e6));
const assessment = (equity: number, initial: number, maintenance: number, own = equity): Assessment => ({
  currency: 'USDC',
  equityMinor: usdc(equity),
  ownEquityMinor: usdc(own),
  initialMinor: usdc(initial),
  maintenanceMinor: usdc(maintenance),
});
const issued: AccountEvent = {
  type: 'MarginCallIssued',
  data: {
    callId: 'mc-desk1-1',
    partyId: 'desk1',
    amount: '12000.000000',
    currency: 'USDC',
    equity: '8000.000000',
    maintenanceRequirement: '10000.000000',
    initialRequirement: '20000.000000',
    deadline: at(5),
    secondDeadline: at(29),
    at: at(1),
  },
};
const missed: AccountEvent = { type: 'MarginCallMissed', data: { callId: 'mc-desk1-1', partyId: 'desk1', amount: '12000.000000', currency: 'USDC', at: at(5) } };
const deposit = (amount: string, hours: number, after: Assessment) => ({
  type: 'RecordCollateral' as const,
  partyId: 'desk1',
  contractId: 'c1',
  side: 'LONG' as const,
  change: 'DEPOSIT' as const,
  amount,
  balance: '0',
  currency: 'USDC',
  at: at(hours),
  after,
});
const marks = { 'BTC-USD': '52000' };
const rules = (r: { violations: readonly { field: string; rule: string }[] }) => r.violations.map((v) => `${v.field}:${v.rule}`);

describe('account decider (margin-<partyId>)', () => {
  describe('OpenPosition', () => {
    it('opens a position for the side the party holds, once', () => {
      expect(spec.given([]).when({ type: 'OpenPosition', partyId: 'desk1', position: perp, at: T0 }).events()).toEqual([opened()]);
      expect(spec.given([opened()]).when({ type: 'OpenPosition', partyId: 'desk1', position: perp, at: T0 }).events()).toEqual([]);
    });

    it('refuses terms that could not be valued or parsed on every tick and rebuild', () => {
      const bad = { ...perp, kind: 'OPTION' as const, expiry: '2026-06-01T00:00:00Z' };
      expect(rules(spec.given([]).when({ type: 'OpenPosition', partyId: 'desk1', position: bad, at: T0 }).rejection())).toEqual(['position:valuable', 'position:valuable']);
      const junk = { ...perp, size: '1e3', currency: 'EUR', expiry: 'soon' };
      expect(rules(spec.given([]).when({ type: 'OpenPosition', partyId: 'desk1', position: junk, at: T0 }).rejection())).toEqual(['currency:supportedCurrency', 'size:decimal', 'expiry:isoUtc']);
    });

    it('rejects a party that is not that side', () => {
      expect(rules(spec.given([]).when({ type: 'OpenPosition', partyId: 'cp1', position: perp, at: T0 }).rejection())).toEqual(['partyId:sideParty']);
    });
  });

  describe('RecordCollateral', () => {
    it('records intake\'s deposit and withdrawal with the new balance', () => {
      const events = spec.given([opened()]).when({ ...deposit('100', 0, assessment(100, 0, 0)), balance: '100.000000' }).events();
      expect(events).toEqual([
        { type: 'CollateralRecorded', data: { partyId: 'desk1', contractId: 'c1', side: 'LONG', change: 'DEPOSIT', amount: '100', balance: '100.000000', currency: 'USDC', at: at(0) } },
      ]);
    });

    it('rejects collateral for an unknown position or in another currency', () => {
      expect(rules(spec.given([]).when(deposit('1', 0, assessment(0, 0, 0))).rejection())).toEqual(['contractId:knownPosition']);
      expect(rules(spec.given([opened()]).when({ ...deposit('1', 0, assessment(0, 0, 0)), currency: 'USDT' }).rejection())).toEqual(['currency:contractCurrency']);
      expect(rules(spec.given([opened()]).when({ ...deposit('1.0000001', 0, assessment(0, 0, 0)) }).rejection())).toEqual(['amount:currencyScale']);
      expect(rules(spec.given([opened()]).when({ ...deposit('1', 0, assessment(0, 0, 0)), balance: '-1' }).rejection())).toEqual(['balance:nonNegative']);
    });

    it('cures an issued call once net deposits since the call reach its amount, before the deadline', () => {
      const events = spec.given([opened(), issued]).when(deposit('12000', 2, assessment(19_000, 21_000, 10_500))).events();
      expect(events[1]).toEqual({ type: 'MarginCallCured', data: { callId: 'mc-desk1-1', partyId: 'desk1', currency: 'USDC', equity: '19000.000000', cause: 'DEPOSIT', at: at(2) } });
    });

    it('cures on equity back at initial even when the deposit is smaller than the call', () => {
      expect(spec.given([opened(), issued]).when(deposit('5000', 2, assessment(20_000, 20_000, 10_000))).events().map((e) => e.type)).toEqual(['CollateralRecorded', 'MarginCallCured']);
    });

    it('adds up partial deposits and nets withdrawals', () => {
      const part = (amount: string, change: 'DEPOSIT' | 'WITHDRAWAL'): AccountEvent => ({
        type: 'CollateralRecorded',
        data: { partyId: 'desk1', contractId: 'c1', side: 'LONG', change, amount, balance: '0', currency: 'USDC', at: at(2) },
      });
      const given = spec.given([opened(), issued, part('7000', 'DEPOSIT'), part('2000', 'WITHDRAWAL')]);
      expect(given.state.calls['mc-desk1-1'].netDepositsMinor).toBe(usdc(5000));
      expect(given.when(deposit('6999.999999', 3, assessment(0, 20_000, 10_000))).events().map((e) => e.type)).toEqual(['CollateralRecorded']);
      expect(given.when(deposit('7000', 3, assessment(0, 20_000, 10_000))).events().map((e) => e.type)).toEqual(['CollateralRecorded', 'MarginCallCured']);
    });

    it('does not cure after the deadline, nor a call already missed', () => {
      expect(spec.given([opened(), issued]).when(deposit('50000', 6, assessment(60_000, 20_000, 10_000))).events().map((e) => e.type)).toEqual(['CollateralRecorded']);
      expect(spec.given([opened(), issued, missed]).when(deposit('50000', 6, assessment(60_000, 20_000, 10_000))).events().map((e) => e.type)).toEqual(['CollateralRecorded']);
    });
  });

  describe('RecordBackstopCover', () => {
    const cover = { type: 'RecordBackstopCover' as const, partyId: 'desk1', callId: 'mc-desk1-1', amount: '12000.000000', currency: 'USDC', at: at(6) };

    it('records the pool\'s advance against a call', () => {
      const given = spec.given([opened(), issued, missed]);
      const events = given.when(cover).events();
      expect(events).toEqual([{ type: 'BackstopCoverRecorded', data: { partyId: 'desk1', callId: 'mc-desk1-1', amount: '12000.000000', currency: 'USDC', at: at(6) } }]);
      expect(spec.given([opened(), issued, missed, ...events]).state.calls['mc-desk1-1'].coveredMinor).toBe(usdc(12_000));
    });

    it('rejects a cover for an unknown call or in another currency', () => {
      expect(rules(spec.given([opened()]).when(cover).rejection())).toEqual(['callId:knownCall']);
      expect(rules(spec.given([opened(), issued]).when({ ...cover, currency: 'USDT' }).rejection())).toEqual(['currency:callCurrency']);
    });
  });

  describe('AssessMargin', () => {
    const assess = (a: Assessment, hours = 1) => ({ type: 'AssessMargin' as const, partyId: 'desk1', assessment: a, lastSaneMarks: marks, at: at(hours) });

    it('calls below maintenance for the amount back to initial, with a deadline and a second deadline', () => {
      expect(spec.given([opened()]).when(assess(assessment(8_000, 20_000, 10_000))).events()).toEqual([issued]);
    });

    it('does not call at or above maintenance, nor twice while a call is open (issued or missed)', () => {
      expect(spec.given([opened()]).when(assess(assessment(10_000, 20_000, 10_000))).events()).toEqual([]);
      expect(spec.given([opened(), issued]).when(assess(assessment(1_000, 20_000, 10_000))).events()).toEqual([]);
      expect(spec.given([opened(), issued, missed]).when(assess(assessment(1_000, 20_000, 10_000))).events()).toEqual([]);
    });

    it('numbers calls per party: a new call after a cure gets the next id', () => {
      const cured: AccountEvent = { type: 'MarginCallCured', data: { callId: 'mc-desk1-1', partyId: 'desk1', currency: 'USDC', equity: '1', cause: 'DEPOSIT', at: at(2) } };
      expect(spec.given([opened(), issued, cured]).when(assess(assessment(1_000, 20_000, 10_000), 3)).events()[0].data).toMatchObject({ callId: 'mc-desk1-2' });
    });

    it('triggers a default when own equity is below zero', () => {
      expect(spec.given([opened(), issued]).when(assess(assessment(5_000, 20_000, 10_000, -0.000001))).events()).toEqual([
        { type: 'DefaultTriggered', data: { partyId: 'desk1', reason: 'NEGATIVE_EQUITY', detail: 'own equity -0.000001 USDC is below zero', lastSaneMarks: marks, at: at(1) } },
      ]);
    });

    it('decides nothing for a party without positions or already in default', () => {
      expect(spec.given([]).when(assess(assessment(-1, 20_000, 10_000))).events()).toEqual([]);
      const inDefault: AccountEvent = { type: 'DefaultTriggered', data: { partyId: 'desk1', reason: 'OPERATOR', detail: 'x', lastSaneMarks: {}, at: T0 } };
      expect(spec.given([opened(), inDefault]).when(assess(assessment(-1, 20_000, 10_000))).events()).toEqual([]);
    });
  });

  describe('deadlines', () => {
    const miss = (hours: number) => ({ type: 'MissCall' as const, partyId: 'desk1', callId: 'mc-desk1-1', now: at(hours) });
    const second = (hours: number, a: Assessment) => ({ type: 'CheckSecondDeadline' as const, partyId: 'desk1', callId: 'mc-desk1-1', now: at(hours), assessment: a, lastSaneMarks: marks });

    it('misses an issued call once its deadline has passed, stamped with the deadline', () => {
      expect(spec.given([opened(), issued]).when(miss(4.99)).events()).toEqual([]);
      expect(spec.given([opened(), issued]).when(miss(7)).events()).toEqual([missed]);
    });

    it('does not miss a cured call, and rejects an unknown one', () => {
      const cured: AccountEvent = { type: 'MarginCallCured', data: { callId: 'mc-desk1-1', partyId: 'desk1', currency: 'USDC', equity: '1', cause: 'DEPOSIT', at: at(2) } };
      expect(spec.given([opened(), issued, cured]).when(miss(7)).events()).toEqual([]);
      expect(rules(spec.given([opened()]).when(miss(7)).rejection())).toEqual(['callId:knownCall']);
    });

    it('triggers a default at the second deadline when own equity is still below maintenance', () => {
      expect(spec.given([opened(), issued, missed]).when(second(30, assessment(22_000, 20_000, 10_000, 9_999.999999))).events()).toEqual([
        {
          type: 'DefaultTriggered',
          data: {
            partyId: 'desk1',
            reason: 'SECOND_DEADLINE',
            detail: 'margin call mc-desk1-1 unmet at its second deadline: own equity 9999.999999 below maintenance 10000.000000 USDC',
            callId: 'mc-desk1-1',
            lastSaneMarks: marks,
            at: at(29),
          },
        },
      ]);
    });

    it('cures a missed call late when the party restored its own equity by the second deadline', () => {
      expect(spec.given([opened(), issued, missed]).when(second(30, assessment(10_000, 20_000, 10_000))).events()).toEqual([
        { type: 'MarginCallCured', data: { callId: 'mc-desk1-1', partyId: 'desk1', currency: 'USDC', equity: '10000.000000', cause: 'RESTORED_BY_SECOND_DEADLINE', at: at(29) } },
      ]);
    });

    it('waits for the second deadline, and only for a missed call', () => {
      expect(spec.given([opened(), issued, missed]).when(second(28, assessment(0, 20_000, 10_000))).events()).toEqual([]);
      expect(spec.given([opened(), issued]).when(second(30, assessment(0, 20_000, 10_000))).events()).toEqual([]);
    });
  });

  describe('DeclareDefault (operator)', () => {
    const declare = { type: 'DeclareDefault' as const, partyId: 'desk1', reason: 'insolvency filed', at: at(2), lastSaneMarks: marks };

    it('triggers an OPERATOR default with the reason and the last sane marks; open calls end with it', () => {
      const events = spec.given([opened(), issued]).when(declare).events();
      expect(events).toEqual([{ type: 'DefaultTriggered', data: { partyId: 'desk1', reason: 'OPERATOR', detail: 'insolvency filed', lastSaneMarks: marks, declaredBy: 'backstop.margin.commands', at: at(2) } }]);
      expect(spec.given([opened(), issued, ...events]).when({ type: 'MissCall', partyId: 'desk1', callId: 'mc-desk1-1', now: at(7) }).events()).toEqual([]);
    });

    it('carries the close-out price per underlying the operator gave, with the actor (issue 8 defect 2)', () => {
      const withPrice = { ...declare, closeOutPrices: { 'BTC-USD': '30000' }, declaredBy: 'operator:ops-1' };
      expect(spec.given([opened()]).when(withPrice).events()[0].data).toMatchObject({ closeOutPrices: { 'BTC-USD': '30000' }, declaredBy: 'operator:ops-1', lastSaneMarks: marks });
      const bad = spec.given([opened()]).when({ ...declare, closeOutPrices: { 'BTC-USD': '-1', 'DOGE-USD': '0.1' } }).rejection();
      expect(rules(bad)).toEqual(['closeOutPrices.BTC-USD:positive', 'closeOutPrices.DOGE-USD:heldUnderlying']);
    });

    it('rejects an unknown party and a party already in default', () => {
      expect(rules(spec.given([]).when(declare).rejection())).toEqual(['partyId:knownParty']);
      const events = spec.given([opened()]).when(declare).events();
      const r = spec.given([opened(), ...events]).when(declare).rejection();
      expect(rules(r)).toEqual(['partyId:notInDefault']);
      expect(r.violations[0].message).toMatch(/already in default since 2026-01-01T02:00:00.000Z \(OPERATOR\)/);
    });
  });

  describe('ExchangeFunding (in the long party\'s stream)', () => {
    const funding = (rate: string, hours = 8) => ({ type: 'ExchangeFunding' as const, partyId: 'desk1', contractId: 'c1', fundingAt: at(hours), rate, mark: '61000' });

    it('moves rate × size × mark from the long to the short when the rate is positive, and back when negative', () => {
      expect(spec.given([opened()]).when(funding('0.0001')).events()).toEqual([
        { type: 'FundingExchanged', data: { contractId: 'c1', payerPartyId: 'desk1', receiverPartyId: 'cp1', amount: '12.200000', currency: 'USDC', rate: '0.0001', mark: '61000', at: at(8) } },
      ]);
      expect(spec.given([opened()]).when(funding('-0.0001')).events()[0].data).toMatchObject({ payerPartyId: 'cp1', receiverPartyId: 'desk1' });
    });

    it('decides each instant once, only after the position opened; a zero rate is recorded as a zero flow', () => {
      const paid = spec.given([opened()]).when(funding('0.0001')).events();
      expect(spec.given([opened(), ...paid]).when(funding('0.0001')).events()).toEqual([]);
      expect(spec.given([opened(), ...paid]).when(funding('0.0001', 16)).events()).toHaveLength(1);
      expect(spec.given([opened()]).when(funding('0.0001', 0)).events()).toEqual([]);
      const zero = spec.given([opened()]).when(funding('0')).events();
      expect(zero.map((e) => e.data)).toEqual([expect.objectContaining({ amount: '0.000000', payerPartyId: 'desk1', receiverPartyId: 'cp1', rate: '0' })]);
      expect(spec.given([opened(), ...zero]).when(funding('0.0005')).events()).toEqual([]);
    });

    it('rejects funding on a dated contract and in the short party\'s stream', () => {
      const future = { ...perp, kind: 'FUTURE' as const, expiry: at(100) };
      expect(rules(spec.given([opened(future)]).when(funding('0.0001')).rejection())).toEqual(['contractId:perpetual']);
      const short = opened({ ...perp, side: 'SHORT' }, 'cp1');
      expect(rules(spec.given([short]).when({ ...funding('0.0001'), partyId: 'cp1' }).rejection())).toEqual(['partyId:longSide']);
    });
  });

  describe('SettleContract (in the long party\'s stream)', () => {
    const settle = (reason: 'EXPIRY' | 'CLOSE', price: string, hours: number) => ({ type: 'SettleContract' as const, partyId: 'desk1', contractId: 'c1', reason, price, at: at(hours) });
    const future = { ...perp, kind: 'FUTURE' as const, expiry: at(100) };

    it('settles a close at the close price: the loser pays the winner the realised MTM', () => {
      expect(spec.given([opened()]).when(settle('CLOSE', '59000', 3)).events()).toEqual([
        { type: 'ContractSettled', data: { contractId: 'c1', reason: 'CLOSE', price: '59000', payerPartyId: 'desk1', receiverPartyId: 'cp1', amount: '2000.000000', currency: 'USDC', at: at(3) } },
      ]);
    });

    it('settles a future at expiry, and an option on its intrinsic value', () => {
      expect(spec.given([opened(future)]).when(settle('EXPIRY', '61000', 100)).events()[0].data).toMatchObject({ reason: 'EXPIRY', payerPartyId: 'cp1', receiverPartyId: 'desk1', amount: '2000.000000' });
      const call = { ...future, kind: 'OPTION' as const, optionType: 'CALL' as const, strike: '65000', entryPrice: '3500' };
      expect(spec.given([opened(call)]).when(settle('EXPIRY', '70000', 101)).events()[0].data).toMatchObject({ payerPartyId: 'cp1', amount: '3000.000000' });
    });

    it('settles once; rejects an expiry before the expiry date or on a perpetual', () => {
      const done = spec.given([opened()]).when(settle('CLOSE', '59000', 3)).events();
      expect(spec.given([opened(), ...done]).when(settle('CLOSE', '59000', 3)).events()).toEqual([]);
      expect(rules(spec.given([opened(future)]).when(settle('EXPIRY', '1', 99)).rejection())).toEqual(['at:afterExpiry']);
      expect(rules(spec.given([opened()]).when(settle('EXPIRY', '1', 99)).rejection())).toEqual(['contractId:hasExpiry']);
      expect(rules(spec.given([]).when(settle('CLOSE', '1', 1)).rejection())).toEqual(['contractId:knownPosition']);
    });
  });
});
