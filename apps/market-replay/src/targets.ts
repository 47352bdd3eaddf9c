import { encodeEnvelope, Envelope, KafkaBus, KafkaConnectionConfig, TOPICS, TopicNames } from '@backstop/messaging';

/** Where marks go: a running app over HTTP, a Kafka cluster, or stdout (--dry-run). */
export interface MarkTarget {
  readonly description: string;
  /** Checks the target can be reached before the replay starts (a clear error, early). */
  open(): Promise<void>;
  send(batch: readonly Envelope[]): Promise<void>;
  close(): Promise<void>;
}

export class ReplayTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayTargetError';
  }
}

/** POST /v1/market/marks on a running Backstop (the single-process app or the pricing/margin service). */
export class HttpTarget implements MarkTarget {
  readonly description: string;
  private readonly endpoint: string;

  constructor(
    baseUrl: string,
    private readonly token?: string,
    private readonly timeoutMs = 15_000,
  ) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new ReplayTargetError(`--http must be a URL such as http://127.0.0.1:3000, got "${baseUrl}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ReplayTargetError(`--http must be an http(s) URL, got "${baseUrl}"`);
    this.endpoint = new URL('/v1/market/marks', url).toString();
    this.description = this.endpoint;
  }

  async open(): Promise<void> {
    const health = new URL('/health/live', this.endpoint).toString();
    const res = await this.fetch(health, { method: 'GET' });
    if (!res.ok) throw new ReplayTargetError(`${health} answered ${res.status}: is this a Backstop app?`);
  }

  async send(batch: readonly Envelope[]): Promise<void> {
    const res = await this.fetch(this.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
      body: JSON.stringify(batch),
    });
    if (res.status !== 202) {
      const body = await res.text().catch(() => '');
      const hint = res.status === 401 || res.status === 403 ? ' (marks need an operator token: pass --token or set BACKSTOP_TOKEN)' : '';
      throw new ReplayTargetError(`${this.endpoint} refused a batch of ${batch.length} marks (first ${batch[0]?.payload.at}): ${res.status} ${body.slice(0, 500)}${hint}`);
    }
  }

  async close(): Promise<void> {
    // fetch keeps no connection open for us to close
  }

  private async fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ReplayTargetError(`cannot reach ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
  }
}

/** backstop.market.marks on Kafka, keyed by the underlying (so one underlying's marks stay in order). */
export class KafkaTarget implements MarkTarget {
  readonly description: string;
  private readonly bus: KafkaBus;
  private readonly topic: string;

  constructor(
    brokers: readonly string[],
    topicPrefix: string,
    private readonly connectTimeoutMs = 20_000,
    connection?: KafkaConnectionConfig,
  ) {
    this.topic = new TopicNames(topicPrefix).of(TOPICS.marketMarks);
    this.description = `Kafka ${brokers.join(',')} topic ${this.topic}`;
    this.bus = new KafkaBus({
      brokers,
      clientId: connection?.clientId ?? 'backstop-market-replay',
      compression: connection?.compression,
      createTopics: connection?.createTopics,
      partitions: connection?.partitions,
      replicationFactor: connection?.replicationFactor,
      tls: connection?.tls,
      sasl: connection?.sasl,
    });
  }

  async open(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ReplayTargetError(`cannot reach ${this.description} within ${this.connectTimeoutMs / 1000} s`)), this.connectTimeoutMs);
    });
    try {
      await Promise.race([this.bus.ensureTopics([this.topic]), timeout]);
    } catch (err) {
      await this.bus.close().catch(() => undefined);
      if (err instanceof ReplayTargetError) throw err;
      throw new ReplayTargetError(`cannot reach ${this.description}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  async send(batch: readonly Envelope[]): Promise<void> {
    await this.bus.publish(this.topic, batch.map((e) => encodeEnvelope(e)));
  }

  close(): Promise<void> {
    return this.bus.close();
  }
}

/** --dry-run: the envelopes as NDJSON on stdout, nothing sent. */
export class StdoutTarget implements MarkTarget {
  readonly description = 'stdout (dry run)';
  constructor(private readonly out: { write(text: string): unknown }) {}
  async open(): Promise<void> {
    // stdout is always there
  }
  async send(batch: readonly Envelope[]): Promise<void> {
    this.out.write(batch.map((e) => JSON.stringify(e)).join('\n') + '\n');
  }
  async close(): Promise<void> {
    // nothing to close
  }
}
