import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { IntakeModule } from '@backstop/intake-service';
import { MarginModule } from '@backstop/margin-service';
import { PricingModule } from '@backstop/pricing-service';
import { SettlementModule } from '@backstop/settlement-service';
import { startTestBackstop, TestBackstop } from '@backstop/platform';

/**
 * Issue 9: a desk cannot put another party into a contract (defect 2), a bound token reads only its
 * own figures of a default and no other desk's coverages (defect 9), a malformed command from a bound
 * token is refused before validation details leak and uses up no id, /health/ready shows no data
 * path to anonymous callers, and `npm run start:service` starts a real entry (defect 11).
 */
describe('consent, read scope and refusals of bound tokens', () => {
  const TOKENS = {
    operator: 'operator-token-consent-spec-01',
    deskA: 'deskA-token-consent-spec-00001',
    deskB: 'deskB-token-consent-spec-00001',
  };
  const as = (token: string) => ({ token });
  let app: TestBackstop;
  const typesOf = async (stream: string) => (await app.runtime.store.readStream(stream)).map((e) => e.type);
  const contract = (contractId: string, shortPartyId: string) => ({
    // The short side sells BTC at 1 USDC with no margin: any real mark is a ruinous loss for it.
    contractId, kind: 'PERPETUAL', underlying: 'BTC-USD', size: '1', entryPrice: '1', currency: 'USDC',
    longPartyId: 'deskA', shortPartyId, longInitialMargin: '0', shortInitialMargin: '0',
  });
  const markAt = async (iso: string, price: string) => {
    await app.tickAt(iso);
    expect(await app.input('MarkPrice', { underlying: 'BTC-USD', price, volAnnual: '0.6', at: iso }, 'BTC-USD')).toBe(202);
    await app.settle();
  };

  beforeAll(async () => {
    const saved = process.env.BACKSTOP_TOKENS;
    process.env.PRICING_MC_PATHS ??= '200';
    process.env.BACKSTOP_TOKENS = `${TOKENS.operator}=operator,${TOKENS.deskA}=desk:deskA,${TOKENS.deskB}=desk:deskB`;
    try {
      app = await startTestBackstop({ modules: [IntakeModule, PricingModule, MarginModule, SettlementModule] });
    } finally {
      if (saved === undefined) delete process.env.BACKSTOP_TOKENS;
      else process.env.BACKSTOP_TOKENS = saved;
    }
    for (const [partyId, role] of [['deskA', 'DESK'], ['deskB', 'DESK'], ['cpC', 'COUNTERPARTY']]) {
      expect((await app.send('RegisterParty', { partyId, name: partyId, role, credit: { rating: 'A' } }, as(TOKENS.operator))).status).toBe(200);
    }
  }, 60_000);
  afterAll(() => app?.close());

  it('does not default deskB on a contract deskA registered against it without its consent (defect 2)', async () => {
    const proposed = await app.send('RegisterContract', contract('forced', 'deskB'), as(TOKENS.deskA));
    expect(proposed).toMatchObject({ status: 200, reply: { status: 'ACCEPTED', events: ['ContractProposed'] } });
    // The control: the same terms against cpC, registered live by the operator.
    expect((await app.send('RegisterContract', contract('live', 'cpC'), as(TOKENS.operator))).reply.events).toEqual(['ContractRegistered']);
    await app.settle();
    for (const [i, iso] of ['2026-01-01T01:00:00.000Z', '2026-01-02T01:00:00.000Z', '2026-01-03T01:00:00.000Z', '2026-01-05T01:00:00.000Z'].entries()) {
      await markAt(iso, String(60_000 + i));
    }
    expect(await typesOf('margin-cpC')).toContain('DefaultTriggered');
    expect(await typesOf('margin-deskB')).not.toContain('DefaultTriggered');
    expect(await typesOf('margin-deskB')).not.toContain('MarginCallIssued');
    expect((await app.get<{ status: string }>('/v1/contracts/forced', as(TOKENS.deskB))).body.status).toBe('PROPOSED');
    // Neither a quote nor collateral on a contract that is not live.
    const quote = await app.send('RequestQuote', { quoteId: 'qF', contractId: 'forced', protectedPartyId: 'deskA', coverageLimit: '1000', termDays: 30 }, as(TOKENS.deskA));
    expect(quote.reply.violations).toEqual([expect.objectContaining({ field: 'payload.contractId', rule: 'openContract' })]);
  }, 120_000);

  it('lets only the other side accept or decline; the proposer may withdraw', async () => {
    const own = await app.send('AcceptContract', { contractId: 'forced', partyId: 'deskA' }, as(TOKENS.deskA));
    expect(own.reply.violations).toEqual([expect.objectContaining({ rule: 'otherSide' })]);
    expect((await app.send('AcceptContract', { contractId: 'forced', partyId: 'deskB' }, as(TOKENS.deskA))).status).toBe(403);
    const declined = await app.send('DeclineContract', { contractId: 'forced', partyId: 'deskB' }, as(TOKENS.deskB));
    expect(declined.reply).toMatchObject({ status: 'ACCEPTED', events: ['ContractProposalDeclined'] });
    expect((await app.get<{ status: string }>('/v1/contracts/forced', as(TOKENS.deskA))).body.status).toBe('DECLINED');

    await app.send('RegisterContract', { ...contract('agreed', 'deskB'), entryPrice: '60000', longInitialMargin: '100', shortInitialMargin: '100' }, as(TOKENS.deskA));
    const accepted = await app.send('AcceptContract', { contractId: 'agreed', partyId: 'deskB' }, as(TOKENS.deskB));
    expect(accepted.reply).toMatchObject({ status: 'ACCEPTED', events: ['ContractRegistered'] });
    expect((await app.runtime.store.readStream('contract-agreed')).find((e) => e.type === 'ContractRegistered')?.metadata.actor).toMatch(/^desk:deskB#/);
  });

  it('shows a bound desk only its own part of a default, and refuses one that does not concern it (defect 9)', async () => {
    await app.settle();
    const full = await app.get<{ partyId: string; closeOuts: unknown[]; totals: unknown }>('/v1/defaults/cpC', as(TOKENS.operator));
    expect(full.status).toBe(200);
    expect(full.body.closeOuts).toHaveLength(1);
    const other = await app.get<{ message: string }>('/v1/defaults/cpC', as(TOKENS.deskB));
    expect(other.status).toBe(403);
    expect(other.body.message).toMatch(/bound to deskB and may not read default cpC/);
    const mine = await app.get<Record<string, unknown>>('/v1/defaults/cpC', as(TOKENS.deskA));
    expect(mine.status).toBe(200);
    expect(mine.body).toMatchObject({ partyId: 'cpC', scope: 'only what concerns deskA' });
    expect(mine.body).not.toHaveProperty('totals');
    expect(mine.body).not.toHaveProperty('outstanding');
    expect(JSON.stringify(mine.body)).not.toMatch(/deskB/);
  });

  it('hides the open coverages and their counterparties of the capacity book from bound tokens (defect 9)', async () => {
    const ok = async (type: string, payload: Record<string, unknown>, token = TOKENS.operator) => {
      const { reply } = await app.send(type, payload, as(token));
      expect({ type, status: reply.status, violations: reply.violations }).toEqual({ type, status: 'ACCEPTED', violations: undefined });
    };
    await ok('RegisterParty', { partyId: 'prov1', name: 'prov1', role: 'PROVIDER', credit: { rating: 'A' } });
    await ok('DepositCapital', { providerId: 'prov1', tranche: 'JUNIOR', amount: '1000000' });
    await ok('FundPremiumAccount', { partyId: 'deskA', amount: '10000', currency: 'USDC' }, TOKENS.deskA);
    await markAt('2026-01-05T02:00:00.000Z', '60000');
    await ok('RequestQuote', { quoteId: 'qA', contractId: 'agreed', protectedPartyId: 'deskA', coverageLimit: '1000', termDays: 30 }, TOKENS.deskA);
    await ok('BindCoverage', { coverageId: 'covA', quoteId: 'qA' }, TOKENS.deskA);
    type Book = { openCoverages: { coverageId: string; counterpartyId: string }[] };
    const operator = await app.get<Book>('/v1/pricing/capacity', as(TOKENS.operator));
    expect(operator.body.openCoverages).toEqual([expect.objectContaining({ coverageId: 'covA', counterpartyId: 'deskB' })]);
    for (const token of [TOKENS.deskA, TOKENS.deskB]) {
      const desk = await app.get<Book>('/v1/pricing/capacity', as(token));
      expect(desk.status).toBe(200);
      expect(desk.body.openCoverages).toEqual([]);
    }
  }, 60_000);

  it('refuses a malformed command for another party before validation, without using up its id (defect 11)', async () => {
    const id = randomUUID();
    const bad = await app.send('DepositCollateral', { contractId: 'agreed', partyId: 'deskB', amount: 'lots', extra: { $where: 1 } }, { id, ...as(TOKENS.deskA) });
    expect(bad.status).toBe(403);
    expect(bad.reply.violations).toEqual([expect.objectContaining({ field: 'authorization', rule: 'ownParty' })]);
    expect(JSON.stringify(bad.reply)).not.toMatch(/payload\.amount|extra/);
    const unreadable = await app.send('DepositCollateral', { contractId: 'agreed', partyId: { $ne: 'deskA' }, amount: '5' }, as(TOKENS.deskA));
    expect(unreadable.status).toBe(403);
    const rightful = await app.send('DepositCollateral', { contractId: 'agreed', partyId: 'deskB', amount: '5' }, { id, ...as(TOKENS.deskB) });
    expect(rightful).toMatchObject({ status: 200, reply: { status: 'ACCEPTED' } });
  });

  it('does not spend the id of a rejected command: the same id may carry the corrected body (defect 11)', async () => {
    const id = randomUUID();
    const bad = await app.send('DepositCollateral', { contractId: 'agreed', partyId: 'deskA', amount: 'lots' }, { id, ...as(TOKENS.deskA) });
    expect(bad.status).toBe(422);
    expect((await app.send('DepositCollateral', { contractId: 'agreed', partyId: 'deskA', amount: 'lots' }, { id, ...as(TOKENS.deskA) })).reply).toEqual(bad.reply);
    const fixed = await app.send('DepositCollateral', { contractId: 'agreed', partyId: 'deskA', amount: '5' }, { id, ...as(TOKENS.deskA) });
    expect(fixed).toMatchObject({ status: 200, reply: { status: 'ACCEPTED' } });
  });

  it('shows no data location to anonymous /health/ready callers, and the whole picture to the operator (defect 11)', async () => {
    const anonymous = await fetch(`${app.url}/health/ready`);
    const text = await anonymous.text();
    expect(anonymous.status).toBe(200);
    expect(text).not.toContain(app.runtime.store.location);
    expect(text).not.toMatch(/location/);
    const operator = await app.get<{ store: { location: string } }>('/health/ready', as(TOKENS.operator));
    expect(operator.body.store.location).toBe(app.runtime.store.location);
  });

  it('npm run start:service runs a real entry: usage without a name, the service itself with one (defect 11)', () => {
    const root = join(__dirname, '..', '..');
    const run = (args: string[]) =>
      spawnSync(process.execPath, ['-r', join(root, 'tools/register.js'), join(root, 'tools/start-service.ts'), ...args], {
        cwd: root,
        env: { ...process.env, KAFKA_BROKERS: '', BACKSTOP_SERVICE: '' },
        encoding: 'utf8',
        timeout: 60_000,
      });
    const usage = run([]);
    expect(usage.status).toBe(64);
    expect(usage.stderr).toMatch(/usage: npm run start:service -- <service>.*margin-monitor/);
    // The real margin-monitor main runs, and stops at its first check: a service alone needs Kafka.
    const alone = run(['margin-monitor']);
    expect(alone.stdout + alone.stderr).toMatch(/KAFKA_BROKERS must be set to run margin-monitor/);
    // The ledger service too (apps/ledger), by its own name.
    const ledger = run(['ledger']);
    expect(ledger.status).toBe(1);
    expect(ledger.stdout + ledger.stderr).toMatch(/KAFKA_BROKERS must be set to run ledger as its own service/);
  }, 90_000);
});
