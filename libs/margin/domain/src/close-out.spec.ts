import { DomainRejection, HOUR_MS, iso, specFor } from '@backstop/kernel';
import { OTC_MARGIN_PARAMS } from '@backstop/margin-model';
import { AccountCommand, accountDecider, AccountEvent, PositionCloseOut } from './account';
import { MarginMonitor } from './monitor';
import { DEFAULT_MARGIN_POLICY, MarginPolicy } from './policy';
import { InMemoryMarginPort } from './testing/in-memory-port';
import { ContractRegisteredInput, MarginWorkflow, Source } from './workflow';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (hours: number) => iso(T0 + hours * HOUR_MS);
const POLICY: MarginPolicy = { ...DEFAULT_MARGIN_POLICY, defaultMarginParams: OTC_MARGIN_PARAMS };
const PARTIES = ['desk1', 'cp1', 'cp2'];

const PERP: ContractRegisteredInput = {
  contractId: 'c1',
  kind: 'PERPETUAL',
  underlying: 'BTC-USD',
  size: '2',
  entryPrice: '60000',
  currency: 'USDC',
  longPartyId: 'desk1',
  shortPartyId: 'cp1',
  at: at(0),
};

const CLOSE_OUT: PositionCloseOut = { contractId: 'c1', defaultId: 'cp1', defaulterPartyId: 'cp1', protectedPartyId: 'desk1', closeOutPrice: '64320', currency: 'USDC', at: at(3) };

function harness() {
  const monitor = new MarginMonitor(POLICY);
  const port = new InMemoryMarginPort(monitor, POLICY);
  const workflow = new MarginWorkflow(monitor, port);
  let n = 0;
  const source = (): Source => {
    n += 1;
    return { id: `msg-${n}`, correlationId: `corr-${n}` };
  };
  const mark = (price: string, hours: number) => workflow.onMark(source(), { underlying: 'BTC-USD', price, volAnnual: '0.6', at: at(hours), receivedAt: at(hours) });
  const deposit = (contractId: string, partyId: string, side: 'LONG' | 'SHORT', amount: string) =>
    workflow.onCollateral(source(), 'DEPOSIT', { contractId, partyId, side, amount, currency: 'USDC', balance: amount, at: at(0) });
  return { monitor, port, workflow, source, mark, deposit };
}

/** desk1 long c1 against cp1 and long c2 against cp2; cp1 is called on a rise, then defaults. */
async function defaulted() {
  const h = harness();
  await h.workflow.onContractRegistered(h.source(), PERP);
  await h.workflow.onContractRegistered(h.source(), { ...PERP, contractId: 'c2', size: '1', shortPartyId: 'cp2' });
  await h.deposit('c1', 'desk1', 'LONG', '30000.000000');
  await h.deposit('c1', 'cp1', 'SHORT', '10000.000000');
  await h.deposit('c2', 'cp2', 'SHORT', '30000.000000');
  await h.mark('60000', 1);
  await h.mark('64000', 2);
  expect(h.port.eventsOf('MarginCallIssued').map((e) => e.data.partyId)).toEqual(['cp1']);
  await h.workflow.declareDefault(h.source(), 'cp1', 'operator test', at(2.5));
  return h;
}

describe("margin consumes settlement's ContractClosedOut", () => {
  it('records PositionClosedOut once in the long party stream and removes the contract from both accounts and the book', async () => {
    const h = await defaulted();
    expect(h.monitor.rowCount).toBe(4);
    const closedOut = h.source();
    await h.workflow.onContractClosedOut(closedOut, CLOSE_OUT);
    await h.workflow.onContractClosedOut(closedOut, CLOSE_OUT); // redelivery
    await h.workflow.onContractClosedOut(h.source(), CLOSE_OUT); // a second message for the same contract

    const recorded = h.port.eventsOf('PositionClosedOut');
    expect(recorded.map((e) => [e.stream, e.data])).toEqual([['margin-desk1', CLOSE_OUT]]);
    expect(h.port.rejections).toEqual([]);
    expect(h.monitor.rowCount).toBe(2);
    expect(h.monitor.positions('desk1').map((p) => p.contractId)).toEqual(['c2']);
    expect(h.monitor.positions('cp1')).toEqual([]);
    expect(h.monitor.lastSaneMarks('cp1')).toEqual({});

    // The protected desk's equity now moves with c2 only; the defaulter carries no requirement.
    await h.mark('66000', 4);
    const [desk] = h.monitor.accountFigures('desk1');
    expect(desk.unrealizedPnlMinor).toBe(6_000_000_000n);
    expect(desk.equityMinor).toBe(desk.collateralMinor + 6_000_000_000n);
    const [cp1] = h.monitor.accountFigures('cp1');
    expect(cp1).toMatchObject({ unrealizedPnlMinor: 0n, initialMinor: 0n, maintenanceMinor: 0n });
  });

  it('the defaulter is never called again, nor its old call chased, and a later close or funding of the contract moves nothing', async () => {
    const h = await defaulted();
    await h.workflow.onContractClosedOut(h.source(), CLOSE_OUT);
    await h.mark('70000', 9);
    await h.workflow.onTick(at(40));
    expect(h.port.eventsOf('MarginCallIssued').map((e) => e.data.partyId)).toEqual(['cp1']);
    expect(h.port.eventsOf('MarginCallMissed')).toEqual([]);
    expect(h.monitor.openCallsOf('cp1')).toEqual([]);
    expect(h.monitor.dueDeadlines(T0 + 100 * HOUR_MS)).toEqual([]);
    // Funding instants passed (8 h, 16 h, 24 h): paid on c2 only.
    expect(new Set(h.port.eventsOf('FundingExchanged').map((e) => e.data.contractId))).toEqual(new Set(['c2']));

    await h.workflow.onContractClosed(h.source(), { contractId: 'c1', closePrice: '65000', at: at(41) });
    expect(h.port.eventsOf('ContractSettled')).toEqual([]);
    expect(h.port.rejections).toEqual([]);
  });

  it('a rebuilt monitor equals the live one', async () => {
    const h = await defaulted();
    await h.workflow.onContractClosedOut(h.source(), CLOSE_OUT);
    await h.mark('66000', 4);
    const { monitor } = h.port.restarted(POLICY);
    expect(monitor.rowCount).toBe(h.monitor.rowCount);
    for (const party of PARTIES) {
      expect(monitor.accountFigures(party)).toEqual(h.monitor.accountFigures(party));
      expect(monitor.positions(party)).toEqual(h.monitor.positions(party));
      expect(monitor.openCallsOf(party)).toEqual(h.monitor.openCallsOf(party));
      expect(monitor.accountState(party)).toEqual(h.monitor.accountState(party));
    }
  });

  it('reports a close-out of a contract margin never knew; records nothing for one settled before it arrived', async () => {
    const h = await defaulted();
    await h.workflow.onContractClosedOut(h.source(), { ...CLOSE_OUT, contractId: 'nope' });
    expect(h.port.rejections.map((r) => r.rejection.violations.map((v) => `${v.field}:${v.rule}`))).toEqual([['contractId:knownPosition']]);
    await h.workflow.onContractClosed(h.source(), { contractId: 'c1', closePrice: '64000', at: at(2.8) });
    await h.workflow.onContractClosedOut(h.source(), CLOSE_OUT);
    expect(h.port.eventsOf('ContractSettled')).toHaveLength(1);
    expect(h.port.eventsOf('PositionClosedOut')).toEqual([]);
  });
});

describe('the account decider on CloseOutPosition', () => {
  const spec = specFor(accountDecider(POLICY));
  const opened = (side: 'LONG' | 'SHORT'): AccountEvent => ({
    type: 'PositionOpened',
    data: { ...PERP, side, partyId: side === 'LONG' ? 'desk1' : 'cp1' },
  });
  const closeOut = (extra: Partial<PositionCloseOut> = {}): AccountCommand => ({ type: 'CloseOutPosition', partyId: 'desk1', ...CLOSE_OUT, ...extra });
  const rules = (r: DomainRejection) => r.violations.map((v) => `${v.field}:${v.rule}`);

  it('refuses a close-out that does not match the contract', () => {
    expect(rules(spec.given([opened('LONG')]).when(closeOut({ defaulterPartyId: 'cp9' })).rejection())).toEqual(['defaulterPartyId:contractParties']);
    expect(rules(spec.given([opened('LONG')]).when(closeOut({ protectedPartyId: 'cp1' })).rejection())).toEqual(['defaulterPartyId:contractParties']);
    expect(rules(spec.given([opened('LONG')]).when(closeOut({ currency: 'USDT' })).rejection())).toEqual(['currency:contractCurrency']);
    expect(rules(spec.given([opened('SHORT')]).when({ ...closeOut(), partyId: 'cp1' }).rejection())).toEqual(['partyId:longSide']);
  });

  it('records once, then the position takes no settlement', () => {
    const recorded: AccountEvent = { type: 'PositionClosedOut', data: CLOSE_OUT };
    expect(spec.given([opened('LONG')]).when(closeOut()).events()).toEqual([recorded]);
    expect(spec.given([opened('LONG'), recorded]).when(closeOut()).events()).toEqual([]);
    expect(spec.given([opened('LONG'), recorded]).when({ type: 'SettleContract', partyId: 'desk1', contractId: 'c1', reason: 'CLOSE', price: '1', at: at(4) }).events()).toEqual([]);
  });
});
