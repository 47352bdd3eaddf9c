import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { EVENT_EFFECTS, LEDGER_EVENT_TYPES, LedgerProjection, MONEY_EVENT_TYPES } from '@backstop/ledger';

/**
 * Every event type the services declare is known to the ledger: booked, or explicitly mapped to no
 * postings. The compile-time check is the exhaustive switch over LedgerSourceEvent; this test
 * catches what the compiler cannot see: a type documented in docs/events.md, or declared in a
 * service's domain lib (`DomainEvent<'Name', …>`), that the ledger's union does not list.
 */
const ROOT = join(__dirname, '..', '..', '..', '..');

function documentedEventTypes(): string[] {
  const text = readFileSync(join(ROOT, 'docs', 'events.md'), 'utf8');
  const services = text.slice(text.indexOf('## contract-intake'));
  const bullets = services.split('\n').filter((line) => line.startsWith('- '));
  return bullets.flatMap((line) => [...line.matchAll(/`([A-Z][A-Za-z]+)`\s*(?=\{|\/|and\b)/g)].map((m) => m[1]));
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' ? [] : tsFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.spec.ts') ? [path] : [];
  });
}

/** `DomainEvent<'Name'` in the four services' domain libs (the ledger's own declarations excluded). */
function declaredEventTypes(): Map<string, string> {
  const found = new Map<string, string>();
  for (const service of ['intake', 'pricing', 'margin', 'settlement']) {
    const dir = join(ROOT, 'libs', service, 'domain', 'src');
    let files: string[] = [];
    try {
      files = tsFiles(dir);
    } catch {
      continue; // not written yet
    }
    for (const file of files) {
      for (const m of readFileSync(file, 'utf8').matchAll(/DomainEvent<\s*'([A-Za-z]+)'/g)) found.set(m[1], relative(ROOT, file));
    }
  }
  return found;
}

describe('every event type of the four services is known to the ledger', () => {
  it('knows every event type docs/events.md documents', () => {
    const documented = documentedEventTypes();
    expect(documented.length).toBeGreaterThan(30);
    expect(documented.filter((type) => !(type in EVENT_EFFECTS))).toEqual([]);
  });

  it('knows every event type a service domain lib declares', () => {
    const unknown = [...declaredEventTypes()].filter(([type]) => !(type in EVENT_EFFECTS)).map(([type, file]) => `${type} (${file})`);
    expect(unknown).toEqual([]);
  });

  it('books every money type and only those (a non-money type with a shape the ledger can read posts nothing)', () => {
    expect(MONEY_EVENT_TYPES).toEqual(expect.arrayContaining(['CollateralDeposited', 'PremiumAccountDebited', 'FundingExchanged', 'ContractSettled', 'CapitalDeposited', 'LossAllocated', 'PayoutMade', 'RecoveryAllocated']));
    const ledger = new LedgerProjection();
    let position = 0n;
    for (const type of LEDGER_EVENT_TYPES.filter((t) => EVENT_EFFECTS[t] === 'none')) {
      position += 1n;
      const data = { partyId: 'x', contractId: 'c', coverageId: 'v', poolId: 'p', defaultId: `d${position}`, currency: 'USDC', amount: '5', role: 'DESK', at: '2026-01-01T00:00:00Z' };
      expect(ledger.apply({ id: `e${position}`, type, data, stream: 's', position, recordedAt: '2026-01-01T00:00:00Z' })).toEqual([]);
    }
    expect(ledger.unmappedTypes).toEqual({});
  });
});
