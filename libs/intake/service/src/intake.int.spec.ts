import { randomUUID } from 'node:crypto';
import { startTestBackstop, TestBackstop } from '@backstop/platform';
import { IntakeModule } from './intake.module';

describe('contract-intake over HTTP (real app, store file)', () => {
  let app: TestBackstop;
  beforeAll(async () => {
    app = await startTestBackstop({ modules: [IntakeModule] });
    await app.send('RegisterParty', { partyId: 'desk1', name: 'Desk One', role: 'DESK', credit: { rating: 'A' } });
    await app.send('RegisterParty', { partyId: 'cp1', name: 'CP One', role: 'COUNTERPARTY', credit: { pdAnnual: '0.02' } });
  });
  afterAll(() => app.close());

  const contract = (contractId: string) => ({
    contractId,
    kind: 'OPTION',
    underlying: 'BTC-USD',
    size: '2',
    entryPrice: '3500',
    optionType: 'CALL',
    strike: '65000',
    expiry: '2026-06-26T08:00:00Z',
    currency: 'USDC',
    longPartyId: 'desk1',
    shortPartyId: 'cp1',
    longInitialMargin: '0',
    shortInitialMargin: '20000.5',
  });

  it('registers a contract, takes collateral and reports it', async () => {
    const { status, reply } = await app.send('RegisterContract', contract('opt1'));
    expect(status).toBe(200);
    expect(reply).toMatchObject({ status: 'ACCEPTED', stream: 'contract-opt1', revision: 0, ids: { contractId: 'opt1' }, events: ['ContractRegistered'] });
    const deposit = await app.send('DepositCollateral', { contractId: 'opt1', partyId: 'cp1', amount: '25000' });
    expect(deposit.reply).toMatchObject({ status: 'ACCEPTED', revision: 1 });
    const read = await app.get<{ collateral: Record<string, string>; status: string }>('/v1/contracts/opt1');
    expect(read.body).toMatchObject({ status: 'OPEN', collateral: { LONG: '0.000000', SHORT: '25000.000000' } });
    expect((await app.get('/v1/contracts/nope')).status).toBe(404);
  });

  it('replies the same to a retried command and rejects the same id with another body as a conflict', async () => {
    const id = '8f7e3c1a-6b1d-4c2e-9f00-0a0b0c0d0e01';
    const first = await app.send('DepositCollateral', { contractId: 'opt1', partyId: 'cp1', amount: '10' }, { id });
    const retry = await app.send('DepositCollateral', { contractId: 'opt1', partyId: 'cp1', amount: '10' }, { id });
    expect(retry.reply).toEqual(first.reply);
    const read = await app.get<{ collateral: Record<string, string> }>('/v1/contracts/opt1');
    expect(read.body.collateral.SHORT).toBe('25010.000000');
    const conflict = await app.send('DepositCollateral', { contractId: 'opt1', partyId: 'cp1', amount: '11' }, { id });
    expect(conflict.status).toBe(409);
    expect(conflict.reply.violations?.[0]).toMatchObject({ field: 'id', rule: 'idempotencyConflict' });
  });

  it('rejects domain rule breaks with the field and rule', async () => {
    const self = await app.send('RegisterContract', { ...contract('x1'), shortPartyId: 'desk1' });
    expect(self.status).toBe(422);
    expect(self.reply.violations).toEqual([expect.objectContaining({ field: 'payload.shortPartyId', rule: 'distinctParties' })]);
    const unknown = await app.send('RegisterContract', { ...contract('x2'), shortPartyId: 'ghost' });
    expect(unknown.reply.violations).toEqual([expect.objectContaining({ field: 'payload.shortPartyId', rule: 'knownParty' })]);
    const past = await app.send('RegisterContract', { ...contract('x3'), expiry: '2025-12-31T00:00:00Z' });
    expect(past.reply.violations).toEqual([expect.objectContaining({ field: 'payload.expiry', rule: 'inFuture' })]);
    const below = await app.send('WithdrawCollateral', { contractId: 'opt1', partyId: 'cp1', amount: '5010' });
    expect(below.reply.violations).toEqual([expect.objectContaining({ field: 'payload.amount', rule: 'aboveRequirement' })]);
  });

  describe('every field of every command, with bad values', () => {
    const valid: Record<string, Record<string, unknown>> = {
      RegisterParty: { partyId: 'p-new', name: 'New', role: 'DESK', credit: { rating: 'BBB' } },
      UpdateCreditProfile: { partyId: 'cp1', credit: { rating: 'B' }, reason: 'downgrade' },
      RegisterContract: contract('c-new'),
      DepositCollateral: { contractId: 'opt1', partyId: 'cp1', amount: '1' },
      WithdrawCollateral: { contractId: 'opt1', partyId: 'cp1', amount: '1' },
      CloseContract: { contractId: 'opt1', partyId: 'cp1', closePrice: '1' },
    };
    const optional = new Set(['optionType', 'strike', 'expiry']);
    const decimalFields = new Set(['size', 'entryPrice', 'strike', 'longInitialMargin', 'shortInitialMargin', 'amount', 'closePrice']);

    for (const [type, payload] of Object.entries(valid)) {
      for (const field of Object.keys(payload)) {
        it(`${type}.${field}: wrong type, missing, float for a decimal string`, async () => {
          const wrongType = await app.send(type, { ...payload, [field]: field === 'credit' ? 'AAA' : { nested: true } });
          expect(wrongType.status).toBe(422);
          expect(wrongType.reply.violations?.map((v) => v.field)).toContain(`payload.${field}`);
          if (!optional.has(field)) {
            const { [field]: _dropped, ...without } = payload;
            const missing = await app.send(type, without);
            expect(missing.reply.violations?.map((v) => v.field)).toContain(`payload.${field}`);
          }
          if (decimalFields.has(field)) {
            const float = await app.send(type, { ...payload, [field]: 12.5 });
            expect(float.reply.violations?.find((v) => v.field === `payload.${field}`)?.message).toMatch(/decimal string/);
          }
        });
      }
    }

    it('out-of-range values: a PD above 1, a negative amount, too many digits, an unknown enum, an unknown field', async () => {
      const pd = await app.send('RegisterParty', { ...valid.RegisterParty, credit: { pdAnnual: '1.5' } });
      expect(pd.reply.violations?.[0]).toMatchObject({ field: 'payload.credit.pdAnnual', rule: 'isDecimalInRange' });
      const negative = await app.send('RegisterContract', { ...contract('c-neg'), shortInitialMargin: '-1' });
      expect(negative.reply.violations?.[0]).toMatchObject({ field: 'payload.shortInitialMargin', rule: 'isAmount', message: expect.stringMatching(/negative/) });
      const digits = await app.send('RegisterContract', { ...contract('c-dig'), longInitialMargin: '1.1234567' });
      expect(digits.reply.violations?.[0].message).toMatch(/at most 6 digits/);
      const role = await app.send('RegisterParty', { ...valid.RegisterParty, role: 'BANK' });
      expect(role.reply.violations?.[0]).toMatchObject({ field: 'payload.role', rule: 'isIn' });
      const extra = await app.send('RegisterParty', { ...valid.RegisterParty, surprise: 1 });
      expect(extra.reply.violations?.[0]).toMatchObject({ field: 'payload.surprise', rule: 'whitelistValidation' });
      const size = await app.send('RegisterContract', { ...contract('c-size'), size: '0' });
      expect(size.reply.violations?.[0]).toMatchObject({ field: 'payload.size', rule: 'positive' });
    });

    it('keeps serving after all of that', async () => {
      expect((await app.get('/health/ready')).status).toBe(200);
      expect((await app.send('DepositCollateral', { contractId: 'opt1', partyId: 'cp1', amount: '1' })).reply.status).toBe('ACCEPTED');
    });
  });

  it("marks a contract DEFAULTED on settlement's close-out and refuses to move it (issue 8 defect 4)", async () => {
    const at = app.clock.now().toISOString();
    const fact = async (stream: string, type: string, data: Record<string, unknown>) => {
      await app.runtime.store.append(stream, [{ id: randomUUID(), type, data: { ...data, at }, metadata: { causationId: randomUUID(), correlationId: 'test' } }], 'any');
      await app.settle();
    };
    await fact('contract-d1', 'ContractRegistered', { ...contract('d1'), kind: 'PERPETUAL', optionType: undefined, strike: undefined, expiry: undefined, contractId: 'd1' });
    expect((await app.send('DepositCollateral', { contractId: 'd1', partyId: 'cp1', amount: '7000' })).reply.status).toBe('ACCEPTED');
    expect((await app.send('DepositCollateral', { contractId: 'd1', partyId: 'desk1', amount: '5000' })).reply.status).toBe('ACCEPTED');
    await fact('default-cp1', 'ContractClosedOut', { defaultId: 'cp1', contractId: 'd1', defaulterPartyId: 'cp1', defaulterSide: 'SHORT', protectedPartyId: 'desk1', closeOutPrice: '75375', currency: 'USDC' });
    const read = await app.get<{ collateral: Record<string, string>; status: string }>('/v1/contracts/d1');
    expect(read.body).toMatchObject({ status: 'DEFAULTED', collateral: { LONG: '5000.000000', SHORT: '0.000000' } });
    const withdraw = await app.send('WithdrawCollateral', { contractId: 'd1', partyId: 'cp1', amount: '1' });
    expect(withdraw.reply.violations).toEqual([expect.objectContaining({ field: 'payload.contractId', rule: 'notDefaulted' })]);
    const close = await app.send('CloseContract', { contractId: 'd1', partyId: 'desk1', closePrice: '70000' });
    expect(close.reply.violations).toEqual([expect.objectContaining({ field: 'payload.contractId', rule: 'notDefaulted' })]);
    expect((await app.send('WithdrawCollateral', { contractId: 'd1', partyId: 'desk1', amount: '5000' })).reply.status).toBe('ACCEPTED');
  });

  it("lets collateral go only down to the requirement after mark-to-market at margin's accepted mark (issue 8 defect 8)", async () => {
    const at = app.clock.now().toISOString();
    const fact = async (stream: string, type: string, data: Record<string, unknown>) => {
      await app.runtime.store.append(stream, [{ id: randomUUID(), type, data: { ...data, at }, metadata: { causationId: randomUUID(), correlationId: 'test' } }], 'any');
      await app.settle();
    };
    await fact('contract-m1', 'ContractRegistered', { ...contract('m1'), kind: 'PERPETUAL', optionType: undefined, strike: undefined, expiry: undefined, entryPrice: '60000', longInitialMargin: '1000', contractId: 'm1' });
    expect((await app.send('DepositCollateral', { contractId: 'm1', partyId: 'desk1', amount: '5000' })).reply.status).toBe('ACCEPTED');
    // margin-monitor accepted 58 500: desk1, long 2 from 60 000, is 3 000 down.
    await fact('market-BTC-USD', 'MarkRecorded', { underlying: 'BTC-USD', price: '58500', volAnnual: '0.6', sane: true, receivedAt: at });
    const refused = await app.send('WithdrawCollateral', { contractId: 'm1', partyId: 'desk1', amount: '4000' });
    expect(refused.reply.violations).toEqual([expect.objectContaining({ field: 'payload.amount', rule: 'aboveRequirement', message: expect.stringMatching(/at most 1000.000000 USDC is available/) })]);
    expect((await app.send('WithdrawCollateral', { contractId: 'm1', partyId: 'desk1', amount: '1000' })).reply.status).toBe('ACCEPTED');
  });
});
