import { randomUUID } from 'node:crypto';
import { IntakeModule } from '@backstop/intake-service';
import { MarginModule } from '@backstop/margin-service';
import { PricingModule } from '@backstop/pricing-service';
import { SettlementModule } from '@backstop/settlement-service';
import { startTestBackstop, TestBackstop } from '@backstop/platform';

/**
 * POST /v1/commands is authenticated (SPEC section 9): the operator may send every command; desk and
 * provider tokens only their role's commands, and a token bound to a party only for that party. The
 * sender is recorded in the events' metadata (`actor`), so an operator's manual default is audited.
 */
describe('who may send which command over HTTP', () => {
  const TOKENS = {
    operator: 'operator-token-for-auth-spec-01',
    compliance: 'compliance-token-auth-spec-001',
    desk1: 'desk1-token-for-auth-spec-0001',
    cp1: 'cp1-token-for-auth-spec-000001',
    provider: 'provider-p1-token-auth-spec-01',
  };
  let app: TestBackstop;
  const as = (token: string) => ({ token });
  const metadataOf = async (stream: string, type: string) => (await app.runtime.store.readStream(stream)).find((e) => e.type === type)?.metadata;

  beforeAll(async () => {
    const saved = process.env.BACKSTOP_TOKENS;
    process.env.BACKSTOP_TOKENS = `${TOKENS.operator}=operator,${TOKENS.compliance}=compliance,${TOKENS.desk1}=desk:desk1,${TOKENS.cp1}=desk:cp1,${TOKENS.provider}=provider:p1`;
    try {
      app = await startTestBackstop({ modules: [IntakeModule, PricingModule, MarginModule, SettlementModule] });
    } finally {
      if (saved === undefined) delete process.env.BACKSTOP_TOKENS;
      else process.env.BACKSTOP_TOKENS = saved;
    }
    for (const [partyId, role] of [['desk1', 'DESK'], ['cp1', 'COUNTERPARTY'], ['p1', 'PROVIDER'], ['p2', 'PROVIDER']]) {
      const { status } = await app.send('RegisterParty', { partyId, name: partyId, role, credit: { rating: 'A' } }, as(TOKENS.operator));
      expect(status).toBe(200);
    }
  });
  afterAll(() => app?.close());

  it('answers 401 without a token or with an unknown one, and writes nothing', async () => {
    const id = randomUUID();
    expect((await app.send('RegisterParty', { partyId: 'x1', name: 'X', role: 'DESK', credit: { rating: 'A' } }, { id, token: null })).status).toBe(401);
    expect((await app.send('RegisterParty', { partyId: 'x1', name: 'X', role: 'DESK', credit: { rating: 'A' } }, { id, token: 'not-a-known-token-000000' })).status).toBe(401);
    expect(await app.runtime.store.readStream('party-x1')).toEqual([]);
  });

  it('records the operator as the actor of the events its commands wrote', async () => {
    expect((await metadataOf('party-desk1', 'PartyRegistered'))?.actor).toMatch(/^operator#[0-9a-f]{12}$/);
  });

  it('refuses a command outside the token\'s role with 403, naming the roles it needs', async () => {
    for (const [type, payload, token] of [
      ['RegisterParty', { partyId: 'd9', name: 'D9', role: 'DESK', credit: { rating: 'A' } }, TOKENS.desk1],
      ['DeclareDefault', { partyId: 'cp1', reason: 'desk thinks so' }, TOKENS.desk1],
      ['DepositCollateral', { contractId: 'c1', partyId: 'desk1', amount: '1' }, TOKENS.compliance],
      ['DepositCapital', { providerId: 'p1', tranche: 'JUNIOR', amount: '1000' }, TOKENS.desk1],
    ] as const) {
      const { status, reply } = await app.send(type, payload, as(token));
      expect({ type, status }).toEqual({ type, status: 403 });
      expect(reply.violations).toEqual([expect.objectContaining({ field: 'authorization', rule: 'commandRole', message: expect.stringContaining(`${type} needs the role operator`) })]);
    }
    expect(await app.runtime.store.readStream('party-d9')).toEqual([]);
  });

  it('lets a bound desk act for its own party only, and a refused attempt does not use up the command id', async () => {
    const contract = {
      contractId: 'c1', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '1', entryPrice: '60000', currency: 'USDC',
      longPartyId: 'desk1', shortPartyId: 'cp1', longInitialMargin: '6000', shortInitialMargin: '6000',
    };
    const registered = await app.send('RegisterContract', contract, as(TOKENS.desk1));
    expect(registered).toMatchObject({ status: 200, reply: { status: 'ACCEPTED', events: ['ContractProposed'] } });
    expect((await metadataOf('contract-c1', 'ContractProposed'))?.actor).toMatch(/^desk:desk1#[0-9a-f]{12}$/);
    // Live only with the other side's consent, sent with its own token.
    expect((await app.send('AcceptContract', { contractId: 'c1', partyId: 'cp1' }, as(TOKENS.cp1))).reply.events).toEqual(['ContractRegistered']);
    expect((await metadataOf('contract-c1', 'ContractRegistered'))?.actor).toMatch(/^desk:cp1#[0-9a-f]{12}$/);

    const id = randomUUID();
    const forCp = { contractId: 'c1', partyId: 'cp1', amount: '6000' };
    const refused = await app.send('DepositCollateral', forCp, { id, ...as(TOKENS.desk1) });
    expect(refused.status).toBe(403);
    expect(refused.reply.violations).toEqual([expect.objectContaining({ field: 'authorization', rule: 'ownParty', message: expect.stringContaining('acts for desk1; this DepositCollateral acts for cp1') })]);
    const byOperator = await app.send('DepositCollateral', forCp, { id, ...as(TOKENS.operator) });
    expect(byOperator).toMatchObject({ status: 200, reply: { status: 'ACCEPTED' } });

    expect((await app.send('DepositCollateral', { contractId: 'c1', partyId: 'desk1', amount: '6000' }, as(TOKENS.desk1))).status).toBe(200);
    expect((await app.send('RequestQuote', { quoteId: 'q1', contractId: 'c1', protectedPartyId: 'cp1', coverageLimit: '1000', termDays: 30 }, as(TOKENS.desk1))).status).toBe(403);
    // The party of a BindCoverage is the quote's protected party, looked up in the store.
    const bind = await app.send('BindCoverage', { coverageId: 'cov1', quoteId: 'no-such-quote' }, as(TOKENS.desk1));
    expect(bind.status).toBe(403);
    expect(bind.reply.violations).toEqual([expect.objectContaining({ rule: 'ownParty' })]);
  });

  it('lets a bound provider deposit its own capital only', async () => {
    expect((await app.send('DepositCapital', { providerId: 'p1', tranche: 'JUNIOR', amount: '1000' }, as(TOKENS.provider))).status).toBe(200);
    const other = await app.send('DepositCapital', { providerId: 'p2', tranche: 'JUNIOR', amount: '1000' }, as(TOKENS.provider));
    expect(other.status).toBe(403);
    expect(other.reply.violations).toEqual([expect.objectContaining({ rule: 'ownParty' })]);
  });

  it('audits an operator\'s manual default: DefaultTriggered names the operator token', async () => {
    const { status, reply } = await app.send('DeclareDefault', { partyId: 'cp1', reason: 'missed a payment on another venue' }, as(TOKENS.operator));
    expect(status).toBe(200);
    const trigger = (await app.runtime.store.readStream(reply.stream!)).find((e) => e.type === 'DefaultTriggered');
    expect(trigger?.metadata.actor).toMatch(/^operator#[0-9a-f]{12}$/);
  });

  it('lets a bound desk or provider read only what concerns its party (SPEC section 9)', async () => {
    expect((await app.get('/v1/parties/desk1', { token: null })).status).toBe(401);
    expect((await app.get('/v1/parties/desk1', as(TOKENS.desk1))).status).toBe(200);
    expect((await app.get('/v1/contracts/c1', as(TOKENS.desk1))).status).toBe(200);
    const other = await app.get<{ message: string }>('/v1/parties/cp1', as(TOKENS.desk1));
    expect(other.status).toBe(403);
    expect(other.body.message).toMatch(/desk token is bound to desk1 and may not read party cp1/);
    expect((await app.get('/v1/pricing/accounts/cp1', as(TOKENS.desk1))).status).toBe(403);
    expect((await app.get('/v1/parties/cp1', as(TOKENS.compliance))).status).toBe(200);
    expect((await app.get('/v1/pool/providers/p1', as(TOKENS.provider))).status).toBe(200);
    expect((await app.get('/v1/pool/providers/p2', as(TOKENS.provider))).status).toBe(403);
    expect((await app.get('/v1/stress', as(TOKENS.desk1))).status).toBe(403);
    expect((await app.get('/v1/pool', as(TOKENS.desk1))).status).toBe(200);
  });
});
