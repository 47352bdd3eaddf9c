import { Partitioners } from 'kafkajs';
import { eventEnvelope } from '@backstop/platform';
import { CONSUMED_EVENT_TYPES, MarginEngine } from './margin.engine';
import { marginCommands } from './margin.commands';
import { marginInputParties, MarginOwnership, murmur2, ownsParty, partitionOfKey } from './partitioning';

/** kafkajs's own default partitioner (the producer's rule), for a topic of `partitions` partitions. */
function kafkajsPartition(key: string, partitions: number): number {
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 0, replicas: [0], isr: [0] }));
  return Partitioners.DefaultPartitioner()({ topic: 't', partitionMetadata, message: { key, value: null } });
}

const KEYS = [
  '',
  'a',
  'ab',
  'abc',
  'abcd',
  'desk1',
  'cp1',
  'party-with-a-much-longer-identifier-0123456789',
  'Zürich desk ☃',
  ...Array.from({ length: 500 }, (_, i) => `p${i * 7919}`),
];

describe('margin-monitor party partitioning', () => {
  it('hashes a key to the partition kafkajs\'s default partitioner sends it to, for 1 to 16 partitions', () => {
    for (const partitions of [1, 2, 3, 4, 6, 8, 12, 16]) {
      for (const key of KEYS) expect([key, partitions, partitionOfKey(key, partitions)]).toEqual([key, partitions, kafkajsPartition(key, partitions)]);
    }
    // Apache Kafka's Utils.murmur2 reference values (its unit test: "21" and "foobar").
    expect(murmur2('21')).toBe(-973932308);
    expect(murmur2('foobar')).toBe(-790332482);
  });

  it('keys what margin-monitor publishes and DeclareDefault by party, so a party\'s events and commands share its partition', () => {
    const [declareDefault] = marginCommands({} as MarginEngine);
    expect(declareDefault.key({ partyId: 'desk1', reason: 'x' } as never)).toBe('desk1');
    const stored = { id: 'e1', type: 'MarginCallIssued', data: {}, metadata: {}, stream: 'margin-desk1', revision: 0, position: 1n, recordedAt: '2026-01-01T00:00:00.000Z' };
    expect(eventEnvelope(stored).key).toBe('desk1');
    // A market stream is keyed by its underlying: marks are not party-keyed (every replica reads them).
    expect(eventEnvelope({ ...stored, type: 'MarkRecorded', stream: 'market-BTC-USD' }).key).toBe('BTC-USD');
  });

  it('gives every party exactly one owner when the partitions are split among replicas', () => {
    const partitions = 12;
    const replicas: MarginOwnership[] = [0, 1, 2].map((r) => ({ partitions, owned: new Set(Array.from({ length: partitions }, (_, p) => p).filter((p) => p % 3 === r)) }));
    for (const key of KEYS) expect(replicas.filter((o) => ownsParty(o, key))).toHaveLength(1);
  });

  it('names the parties (routing keys) of every input margin-monitor consumes', () => {
    const payload = { partyId: 'p', longPartyId: 'l', shortPartyId: 's', defaulterPartyId: 'd', protectedPartyId: 'q', contractId: 'c' };
    const routes = Object.fromEntries([...CONSUMED_EVENT_TYPES, 'MarkPrice', 'DeclareDefault'].map((t) => [t, marginInputParties(t, payload)]));
    expect(routes).toEqual({
      ContractRegistered: ['l', 's'],
      CollateralDeposited: ['p'],
      CollateralWithdrawn: ['p'],
      ContractClosed: 'CONTRACT',
      MarginCoveredByBackstop: ['p'],
      MarginAdvanceRepaid: ['p'],
      ContractClosedOut: ['d', 'q'],
      MarkPrice: 'ALL',
      DeclareDefault: ['p'],
    });
    expect(() => marginInputParties('QuoteIssued', payload)).toThrow(/does not consume QuoteIssued/);
  });
});
