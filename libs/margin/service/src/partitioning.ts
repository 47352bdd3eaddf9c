/**
 * Party partitioning for margin-monitor replicas (issue 10, scale-out): a party's margin work
 * belongs to the replica that owns the Kafka partition its party id hashes to, with the producer's
 * own rule (kafkajs's default partitioner, the Java client's: murmur2 of the key, positive, modulo
 * the partition count), so "which replica owns party P" and "which partition a message keyed by P
 * lands on" are one function. Marks are per underlying and reach every replica (see README,
 * "Scaling margin-monitor out").
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** murmur2 of the key's UTF-8 bytes, as Apache Kafka's Utils.murmur2 (32-bit, signed). */
export function murmur2(key: string): number {
  const data = Buffer.from(key, 'utf8');
  const length = data.length;
  let h = (SEED ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  // The last 1–3 bytes (the Java switch falls through from case 3 to case 1).
  const tail = length & ~3;
  const rest = length % 4;
  if (rest >= 3) h ^= data[tail + 2] << 16;
  if (rest >= 2) h ^= data[tail + 1] << 8;
  if (rest >= 1) {
    h ^= data[tail];
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition a message keyed by `key` lands on (kafkajs DefaultPartitioner, keyed messages). */
export function partitionOfKey(key: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError(`partitions must be an integer ≥ 1, got ${partitions}`);
  return (murmur2(key) & 0x7fffffff) % partitions;
}

/** What one replica owns: the partitions of the party-keyed topics assigned to it. */
export interface MarginOwnership {
  readonly partitions: number;
  readonly owned: ReadonlySet<number>;
}

export function ownsParty(ownership: MarginOwnership, partyId: string): boolean {
  return ownership.owned.has(partitionOfKey(partyId, ownership.partitions));
}

/**
 * The parties an input of margin-monitor concerns, i.e. the keys it must be routed by so each
 * party's work lands on its owner: a contract concerns both its sides; `ALL` = every replica
 * (marks are per underlying and re-value every party holding it); `CONTRACT` = the parties of a
 * contract the replica already knows (a close names only the contract).
 */
export function marginInputParties(type: string, payload: Readonly<Record<string, unknown>>): readonly string[] | 'ALL' | 'CONTRACT' {
  const party = (field: string): string[] => (typeof payload[field] === 'string' ? [payload[field] as string] : []);
  switch (type) {
    case 'MarkPrice':
      return 'ALL';
    case 'ContractRegistered':
      return [...party('longPartyId'), ...party('shortPartyId')];
    case 'ContractClosed':
      return 'CONTRACT';
    case 'ContractClosedOut':
      return [...party('defaulterPartyId'), ...party('protectedPartyId')];
    case 'CollateralDeposited':
    case 'CollateralWithdrawn':
    case 'MarginCoveredByBackstop':
    case 'MarginAdvanceRepaid':
    case 'DeclareDefault':
      return party('partyId');
    default:
      throw new RangeError(`margin-monitor does not consume ${type}`);
  }
}
