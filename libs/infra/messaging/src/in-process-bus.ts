import { BUS_LIMITS, ConsumerHandle, MessageBus, OutgoingMessage, SubscribeOptions, TransportMessage } from './port';

interface TopicLog {
  /** Offset of messages[0]; grows as the oldest are dropped past the retention limit. */
  base: number;
  messages: TransportMessage[];
}

interface Group {
  /** Committed offset per topic: the next offset to deliver. */
  readonly committed: Map<string, number>;
  active: boolean;
}

/**
 * Kafka's semantics in memory, for the single-process default and unit tests: one partition per
 * topic (so per-key order holds trivially), committed offsets per consumer group, redelivery of a
 * message whose handler threw (for a batch handler: of what it had not committed). Nothing survives the process: durable state lives in the event store.
 */
export class InProcessBus implements MessageBus {
  readonly kind = 'in-process';
  readonly location = 'memory';
  private readonly topics = new Map<string, TopicLog>();
  private readonly groups = new Map<string, Group>();
  private readonly wakers = new Set<() => void>();
  private closed = false;

  constructor(
    private readonly retainMax: number = BUS_LIMITS.inProcessRetainMax,
    private readonly redeliveryMs = 50,
    /** Messages handed to a `handleBatch` subscriber at once (Kafka's fetch is bounded by bytes instead). */
    private readonly batchMax = 500,
  ) {}

  async ensureTopics(topics: readonly string[]): Promise<void> {
    topics.forEach((t) => this.log(t));
  }

  async publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.closed) throw new Error('in-process bus is closed');
    if (messages.length > BUS_LIMITS.publishBatchMax) {
      throw new RangeError(`publish of ${messages.length} messages; the limit is ${BUS_LIMITS.publishBatchMax}`);
    }
    const log = this.log(topic);
    for (const m of messages) {
      log.messages.push({
        topic,
        key: m.key,
        value: Buffer.isBuffer(m.value) ? m.value : Buffer.from(m.value),
        headers: { ...(m.headers ?? {}) },
        partition: 0,
        offset: String(log.base + log.messages.length),
      });
    }
    const overflow = log.messages.length - this.retainMax;
    if (overflow > 0) {
      log.messages.splice(0, overflow);
      log.base += overflow;
    }
    this.wakers.forEach((wake) => wake());
  }

  async subscribe(options: SubscribeOptions): Promise<ConsumerHandle> {
    if (!options.handle === !options.handleBatch) throw new Error(`subscribe of ${options.groupId}: give either handle or handleBatch`);
    const group = this.group(options.groupId);
    if (group.active) throw new Error(`consumer group ${options.groupId} already has an active consumer in this process`);
    group.active = true;
    for (const topic of options.topics) {
      const log = this.log(topic);
      if (!group.committed.has(topic)) {
        group.committed.set(topic, options.fromBeginning === false ? log.base + log.messages.length : log.base);
      }
    }
    let stopped = false;
    let wake: (() => void) | undefined;
    const waker = () => wake?.();
    this.wakers.add(waker);
    const idle = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          wake = undefined;
          resolve();
        }, ms);
        wake = () => {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        };
      });

    const loop = (async () => {
      while (!stopped) {
        const batch = this.batchFor(group, options.topics, options.handleBatch ? this.batchMax : 1);
        if (batch.length === 0) {
          await idle(1_000);
          continue;
        }
        const topic = batch[0].topic;
        const commit = async (count: number) => {
          if (count > batch.length) throw new RangeError(`commit of ${count} messages; the batch has ${batch.length}`);
          if (count > 0) group.committed.set(topic, Math.max(group.committed.get(topic) ?? 0, Number(batch[count - 1].offset) + 1));
        };
        try {
          if (options.handleBatch) await options.handleBatch(batch, { heartbeat: async () => undefined, isActive: () => !stopped, commit });
          else await options.handle!(batch[0]);
          await commit(batch.length);
        } catch {
          await idle(this.redeliveryMs);
        }
      }
    })();

    return {
      status: () => (stopped ? { state: 'stopped', detail: 'stopped' } : { state: 'running', detail: 'ok' }),
      stop: async () => {
        stopped = true;
        wake?.();
        this.wakers.delete(waker);
        await loop;
        group.active = false;
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wakers.forEach((wake) => wake());
  }

  /** Up to `max` uncommitted messages of the first topic that has any (a batch is one topic, as on Kafka). */
  private batchFor(group: Group, topics: readonly string[], max: number): TransportMessage[] {
    for (const topic of topics) {
      const log = this.log(topic);
      const committed = Math.max(group.committed.get(topic) ?? log.base, log.base);
      const index = committed - log.base;
      if (index < log.messages.length) return log.messages.slice(index, index + max);
    }
    return [];
  }

  private log(topic: string): TopicLog {
    let log = this.topics.get(topic);
    if (!log) {
      log = { base: 0, messages: [] };
      this.topics.set(topic, log);
    }
    return log;
  }

  private group(groupId: string): Group {
    let group = this.groups.get(groupId);
    if (!group) {
      group = { committed: new Map(), active: false };
      this.groups.set(groupId, group);
    }
    return group;
  }
}
