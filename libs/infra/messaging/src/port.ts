/**
 * The message bus port: Kafka in production (kafkajs adapter), in memory for the single-process
 * default and unit tests. Both pass one contract suite (contract-suite.ts). Values are raw bytes:
 * the envelope is parsed by the consumer runner, so a malformed message can be dead-lettered
 * with its original bytes.
 */
export interface OutgoingMessage {
  readonly key: string;
  readonly value: Buffer | string;
  readonly headers?: Record<string, string>;
}

export interface TransportMessage {
  readonly topic: string;
  readonly key: string;
  readonly value: Buffer;
  readonly headers: Record<string, string>;
  readonly partition: number;
  readonly offset: string;
  /** Set by the transport when the bytes are a batch it could not decode (value = its raw bytes): why. */
  readonly undecodable?: string;
}

/** What a batch handler may do while it works through a batch (see SubscribeOptions.handleBatch). */
export interface BatchControl {
  /** Keeps the group membership alive during a long batch (cheap: the adapter throttles it). Throws when the group rebalances. */
  heartbeat(): Promise<void>;
  /** False once the consumer is stopping or no longer owns the partition: stop, the uncommitted rest is redelivered. */
  isActive(): boolean;
  /** The first `count` messages of the batch are done (their effects durable): commit them now. */
  commit(count: number): Promise<void>;
}

export interface SubscribeOptions {
  readonly groupId: string;
  readonly topics: readonly string[];
  /** Called in order per partition (per key). Resolve = commit; throw = redelivered. */
  readonly handle?: (message: TransportMessage) => Promise<void>;
  /**
   * Instead of `handle`: the messages of one fetch from one partition, in order. Resolve = all of them
   * are done and committed; throw = what was not committed through `control.commit` is redelivered.
   * Offsets are committed only after the handler says the effects are durable.
   */
  readonly handleBatch?: (messages: readonly TransportMessage[], control: BatchControl) => Promise<void>;
  /** Start from the earliest offset when the group has none committed (default true). */
  readonly fromBeginning?: boolean;
}

export interface ConsumerStatus {
  /** running: consuming; retrying: a transient failure is being retried; stopped / crashed: consuming no more. */
  readonly state: 'running' | 'retrying' | 'stopped' | 'crashed';
  readonly detail: string;
}

export interface ConsumerHandle {
  stop(): Promise<void>;
  /** Whether the consumer still consumes (readiness); adapters that cannot tell omit it. */
  status?(): ConsumerStatus;
}

export interface MessageBus {
  /** 'kafka' or 'in-process': logged at start-up. */
  readonly kind: string;
  /** Where it talks to (brokers, or "memory"). */
  readonly location: string;
  ensureTopics(topics: readonly string[]): Promise<void>;
  publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void>;
  subscribe(options: SubscribeOptions): Promise<ConsumerHandle>;
  close(): Promise<void>;
  /** Transport problems readiness should report (e.g. a crashed consumer); empty when healthy. */
  health?(): Record<string, string>;
  /**
   * Messages on `topics` not yet committed by `groupId` (sum over partitions; a partition with no
   * committed offset counts from its low watermark). Optional: buses without consumer groups omit it.
   */
  consumerLag?(groupId: string, topics: readonly string[]): Promise<number>;
}

export const BUS_LIMITS = {
  /** Largest message value accepted by the consumer runner (bytes); larger ones are dead-lettered. */
  messageBytesMax: 262_144,
  publishBatchMax: 1_000,
  /** In-process bus: messages kept per topic before the oldest are dropped. */
  inProcessRetainMax: 200_000,
} as const;
