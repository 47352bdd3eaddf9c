import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { ManualClock } from '@backstop/kernel';
import { SqliteEventStore, StoredEvent } from '@backstop/event-store';

export const ROOT = join(__dirname, '..', '..', '..', '..');
const at = '2026-01-01T00:00:00.000Z';

/**
 * A store file as the four services would leave it: parties, a contract and collateral (intake),
 * a premium account and a charge (pricing), funding (margin), capital and a default of cp1 run
 * down the waterfall (settlement). One event a day from 2026-01-01, so instants are easy to pick.
 */
export async function buildStore(file: string): Promise<StoredEvent[]> {
  const clock = new ManualClock(new Date('2026-01-01T00:00:00Z'));
  const store = new SqliteEventStore(file, clock);
  const append = async (stream: string, type: string, data: Record<string, unknown>) => {
    await store.append(stream, [{ id: randomUUID(), type, data: { ...data, at }, metadata: { causationId: randomUUID(), schemaVersion: 1 } }], 'any');
    clock.advanceMs(86_400_000);
  };
  await append('party-desk1', 'PartyRegistered', { partyId: 'desk1', name: 'Desk One', role: 'DESK', credit: { rating: 'A' } });
  await append('party-cp1', 'PartyRegistered', { partyId: 'cp1', name: 'CP One', role: 'COUNTERPARTY', credit: { rating: 'BB' } });
  await append('party-p1', 'PartyRegistered', { partyId: 'p1', name: 'Provider', role: 'PROVIDER', credit: { rating: 'A' } });
  await append('party-idle', 'PartyRegistered', { partyId: 'idle', name: 'Idle', role: 'DESK', credit: { rating: 'A' } });
  await append('contract-c1', 'ContractRegistered', {
    contractId: 'c1', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '2', entryPrice: '60000', currency: 'USDC',
    longPartyId: 'desk1', shortPartyId: 'cp1', longInitialMargin: '1000', shortInitialMargin: '1000',
  });
  await append('contract-c1', 'CollateralDeposited', { contractId: 'c1', partyId: 'cp1', side: 'SHORT', amount: '15000', currency: 'USDC', balance: '15000' });
  await append('contract-c1', 'CollateralDeposited', { contractId: 'c1', partyId: 'desk1', side: 'LONG', amount: '12000', currency: 'USDC', balance: '12000' });
  await append('pool-main', 'CapitalDeposited', { poolId: 'main', providerId: 'p1', tranche: 'JUNIOR', amount: '50000', shares: '50000', currency: 'USDC', cancelledShares: '0' });
  await append('coverage-cov1', 'CoverageBound', { coverageId: 'cov1', quoteId: 'q1', contractId: 'c1', protectedPartyId: 'desk1', counterpartyId: 'cp1', currency: 'USDC', coverageLimit: '20000' });
  await append('pricing-account-desk1', 'PremiumAccountFunded', { partyId: 'desk1', amount: '50', currency: 'USDC', balance: '50' });
  await append('pricing-account-desk1', 'PremiumAccountDebited', { partyId: 'desk1', coverageId: 'cov1', amount: '12.5', currency: 'USDC', balance: '37.5', periodStart: at, periodEnd: at });
  await append('margin-desk1', 'FundingExchanged', { contractId: 'c1', payerPartyId: 'desk1', receiverPartyId: 'cp1', amount: '100', currency: 'USDC', rate: '0.0001', mark: '61000' });
  const d = { defaultId: 'cp1' };
  await append('default-cp1', 'DefaultDeclared', { ...d, partyId: 'cp1', reason: 'OPERATOR', detail: 'test', lastSaneMarks: {}, triggerEventId: 'x', bookPosition: '12', currency: 'USDC' });
  await append('default-cp1', 'ContractClosedOut', { ...d, contractId: 'c1', closeOutPrice: '70000', protectedPartyId: 'desk1', lossOwed: '20000', currency: 'USDC' });
  await append('default-cp1', 'LossesAssessed', { ...d, partyId: 'cp1', currency: 'USDC', contractCollateral: '15100', parties: [{ partyId: 'desk1', lossOwed: '20000' }], excludedContracts: [] });
  await append('default-cp1', 'LossAllocated', { ...d, layer: 'DEFAULTER_CONTRACT_COLLATERAL', step: 1, available: '15100', amount: '15100', remaining: '0', perParty: { desk1: '15100' } });
  await append('default-cp1', 'LossAllocated', { ...d, layer: 'POOL_MARGIN_ADVANCE', step: 2, available: '0', amount: '0', remaining: '0', perParty: { desk1: '0' } });
  await append('default-cp1', 'LossAllocated', { ...d, layer: 'JUNIOR_TRANCHE', step: 3, available: '50000', amount: '4900', remaining: '45100', perParty: { desk1: '4900' }, perProvider: { p1: '4900' } });
  await append('default-cp1', 'PayoutMade', { ...d, partyId: 'desk1', amount: '20000', fromDefaulter: '15100', fromPool: '4900', currency: 'USDC' });
  await append('default-cp1', 'DefaultSettled', { ...d, partyId: 'cp1', currency: 'USDC', totals: { advanceUnreturned: '0' }, creditors: [] });
  const events = await store.readAll({ after: 0n, maxCount: 1_000 });
  await store.close();
  return events;
}

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The real CLI as a child process (the npm script's command), bounded by a timeout. */
export function runCli(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 20_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', join(ROOT, 'tools/register.js'), join(ROOT, 'apps/compliance-cli/src/main.ts'), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`compliance ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
