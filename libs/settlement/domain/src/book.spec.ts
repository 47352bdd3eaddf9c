import { ExposureBook } from './book';
import { after, T0 } from './testing/fixtures';

const registered = (contractId: string, long: string, short: string, extra: Record<string, unknown> = {}) => ({
  type: 'ContractRegistered',
  stream: `contract-${contractId}`,
  revision: 0,
  data: {
    contractId,
    kind: 'PERPETUAL',
    underlying: 'BTC-USD',
    size: '1',
    entryPrice: '100000',
    currency: 'USDC',
    longPartyId: long,
    shortPartyId: short,
    longInitialMargin: '0',
    shortInitialMargin: '0',
    at: T0,
    ...extra,
  },
});
const bound = (coverageId: string, contractId: string, protectedPartyId: string, counterpartyId: string, limit: string, end = after(30)) => ({
  type: 'CoverageBound',
  stream: `coverage-${coverageId}`,
  revision: 0,
  data: { coverageId, contractId, protectedPartyId, counterpartyId, currency: 'USDC', coverageLimit: limit, start: T0, end, at: T0 },
});

describe('exposure book', () => {
  it('tracks collateral from intake plus funding from margin, once per stream revision', () => {
    const book = new ExposureBook();
    book.apply(registered('c1', 'desk1', 'cp1'));
    const deposit = { type: 'CollateralDeposited', stream: 'contract-c1', revision: 1, data: { contractId: 'c1', partyId: 'cp1', side: 'SHORT', amount: '500', currency: 'USDC', balance: '500', at: T0 } };
    expect(book.apply(deposit)).toBe(true);
    expect(book.apply(deposit)).toBe(false);
    book.apply({ type: 'FundingExchanged', stream: 'margin-c1', revision: 0, data: { contractId: 'c1', payerPartyId: 'cp1', receiverPartyId: 'desk1', amount: '20', currency: 'USDC', at: T0 } });
    const contract = book.contract('c1')!;
    expect(book.collateralOf(contract, 'SHORT')).toBe(480_000_000n);
    expect(book.collateralOf(contract, 'LONG')).toBe(20_000_000n);
    expect(book.apply({ type: 'PartyRegistered', data: {} })).toBe(false);
  });

  it('lists a defaulter\'s open contracts with the coverages in force on them', () => {
    const book = new ExposureBook();
    [
      registered('c1', 'desk1', 'cp1'),
      registered('c2', 'cp1', 'desk2'),
      registered('c3', 'desk3', 'cp1'),
      registered('c4', 'desk1', 'cp2'),
      bound('cov1', 'c1', 'desk1', 'cp1', '1000'),
      bound('cov2', 'c2', 'desk2', 'cp1', '2000'),
      bound('cov3', 'c1', 'desk1', 'cp1', '3000', T0),
      { type: 'CoverageLimitReduced', stream: 'coverage-cov2', revision: 1, data: { coverageId: 'cov2', oldLimit: '2000', newLimit: '1500', reason: 'capacity', at: T0 } },
      { type: 'ContractClosed', stream: 'contract-c3', revision: 1, data: { contractId: 'c3', closePrice: '1', at: T0 } },
      bound('cov4', 'c4', 'desk1', 'cp2', '1000'),
      { type: 'CoverageEnded', stream: 'coverage-cov4', revision: 1, data: { coverageId: 'cov4', reason: 'EXPIRED', at: T0 } },
    ].forEach((e) => book.apply(e));
    const contracts = book.defaultedContracts('cp1', after(1));
    expect(contracts.map((c) => [c.contractId, c.defaulterSide, c.protectedPartyId, c.coverages])).toEqual([
      ['c1', 'SHORT', 'desk1', [{ coverageId: 'cov1', limit: '1000.000000' }]],
      ['c2', 'LONG', 'desk2', [{ coverageId: 'cov2', limit: '1500.000000' }]],
    ]);
    expect(book.activeCoverages(Date.parse(after(1))).map((c) => c.coverageId)).toEqual(['cov1', 'cov2']);
  });

  it('closes out at the trigger\'s mark, else the last sane mark, else the contract\'s own price', () => {
    const book = new ExposureBook();
    book.apply(registered('c1', 'desk1', 'cp1'));
    book.apply(registered('c2', 'desk1', 'cp1', { underlying: 'ETH-USD', entryPrice: '3000' }));
    book.apply(registered('c3', 'desk1', 'cp1', { underlying: 'SOL-USD', entryPrice: '150' }));
    book.apply({ type: 'MarkRecorded', stream: 'market-ETH-USD', revision: 0, data: { underlying: 'ETH-USD', price: '3100', volAnnual: '0.7', sane: true, at: T0 } });
    book.apply({ type: 'MarkRecorded', stream: 'market-ETH-USD', revision: 1, data: { underlying: 'ETH-USD', price: '9999', sane: false, flag: 'JUMP', at: T0 } });
    const marks = book.closeOutMarks(book.defaultedContracts('cp1', T0), { 'BTC-USD': '95000' }, 0.8);
    expect(marks).toEqual({
      'BTC-USD': { price: '95000', source: 'TRIGGER', volAnnual: '0.8' },
      'ETH-USD': { price: '3100', source: 'LAST_SANE_MARK', volAnnual: '0.7' },
      'SOL-USD': { price: '150', source: 'CONTRACT_FALLBACK', volAnnual: '0.8' },
    });
  });

  it('treats a zero vol on an accepted mark as unknown: the last real vol stays, else the default (issue 8 defect 9)', () => {
    const book = new ExposureBook();
    book.apply(registered('c1', 'desk1', 'cp1', { underlying: 'ETH-USD', entryPrice: '3000' }));
    book.apply(registered('c2', 'desk1', 'cp1'));
    book.apply({ type: 'MarkRecorded', stream: 'market-ETH-USD', revision: 0, data: { underlying: 'ETH-USD', price: '3100', volAnnual: '0.7', sane: true, at: T0 } });
    book.apply({ type: 'MarkRecorded', stream: 'market-ETH-USD', revision: 1, data: { underlying: 'ETH-USD', price: '3050', volAnnual: '0', sane: true, at: T0 } });
    book.apply({ type: 'MarkRecorded', stream: 'market-BTC-USD', revision: 0, data: { underlying: 'BTC-USD', price: '95000', volAnnual: '0', sane: true, at: T0 } });
    const marks = book.closeOutMarks(book.defaultedContracts('cp1', T0), {}, 0.8);
    expect(marks).toEqual({
      'ETH-USD': { price: '3050', source: 'LAST_SANE_MARK', volAnnual: '0.7' },
      'BTC-USD': { price: '95000', source: 'LAST_SANE_MARK', volAnnual: '0.8' },
    });
  });

  it("closes out at an operator's price before any mark (issue 8 defect 2)", () => {
    const book = new ExposureBook();
    book.apply(registered('c1', 'desk1', 'cp1'));
    book.apply(registered('c2', 'desk1', 'cp1', { underlying: 'ETH-USD', entryPrice: '3000' }));
    const marks = book.closeOutMarks(book.defaultedContracts('cp1', T0), { 'BTC-USD': '95000', 'ETH-USD': '3100' }, 0.8, { 'BTC-USD': '40000' });
    expect(marks).toEqual({
      'BTC-USD': { price: '40000', source: 'OPERATOR', volAnnual: '0.8' },
      'ETH-USD': { price: '3100', source: 'TRIGGER', volAnnual: '0.8' },
    });
  });

  it('builds one stress exposure per counterparty: covered contracts, its collateral on them and the pool\'s advance', () => {
    const book = new ExposureBook();
    book.apply(registered('c1', 'desk1', 'cp1'));
    book.apply(registered('c2', 'desk2', 'cp1'));
    book.apply({ type: 'CollateralDeposited', stream: 'contract-c1', revision: 1, data: { contractId: 'c1', partyId: 'cp1', side: 'SHORT', amount: '5', currency: 'USDC', balance: '5', at: T0 } });
    book.apply(bound('cov1', 'c1', 'desk1', 'cp1', '1000'));
    const exposures = book.counterpartyExposures(T0, 'USDC', new Map([['cp1', 2_000_000n]]));
    expect(exposures).toEqual([{ counterpartyId: 'cp1', collateral: 7, coverages: [{ terms: expect.objectContaining({ kind: 'PERPETUAL', size: 1 }), protectedSide: 'LONG', coverageLimit: 1000 }] }]);
    expect(book.stressMarket(T0, exposures, 0.8).underlyings).toEqual({ 'BTC-USD': { mark: 100000, volAnnual: 0.8 } });
  });
});
