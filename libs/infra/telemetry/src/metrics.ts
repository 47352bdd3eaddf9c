import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics on prom-client (the standard Node client): default process and Node.js metrics
 * (CPU, memory, event-loop lag, GC, handles) plus ours, exposed as text format 0.0.4 on /metrics.
 * Labels are bounded by the callers (topic, consumer group, known command type, outcome), never ids or
 * raw caller input. One registry per runtime, so two runtimes in one test process do not collide.
 */
type Labels = Record<string, string>;

/** Seconds: from a fast in-memory command (~1 ms) to a slow store or broker (10 s). */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface CounterHandle {
  inc(labels?: Labels, by?: number): void;
}
export interface GaugeHandle {
  set(value: number, labels?: Labels): void;
}
export interface HistogramHandle {
  observe(value: number, labels?: Labels): void;
}

/** A gauge read at scrape time (lag, pool capital): each sample is one labelled value. */
export type GaugeSampler = () => Promise<readonly { labels?: Labels; value: number }[]> | readonly { labels?: Labels; value: number }[];

export class MetricsRegistry {
  readonly registry = new Registry();
  private readonly metrics = new Map<string, Counter | Gauge | Histogram>();

  constructor(options: { defaultMetrics?: boolean; prefix?: string } = {}) {
    if (options.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, ...(options.prefix ? { prefix: options.prefix } : {}) });
      // Gauges named like counters (`_total`): `promtool check metrics` rejects them, and handle counts
      // are not what anyone pages on. The event-loop, heap, GC and process metrics stay.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
        this.registry.removeSingleMetric(`${options.prefix ?? ''}${name}`);
      }
    }
  }

  /**
   * `labelNames` declares the labels; without it they are taken from the first use. A later use
   * with another label set is a programming error (prom-client refuses it) and throws.
   */
  counter(name: string, help: string, labelNames?: readonly string[]): CounterHandle {
    return {
      inc: (labels: Labels = {}, by = 1) => (this.define(name, () => new Counter({ name, help, labelNames: labelNames ?? Object.keys(labels), registers: [] })) as Counter).inc(labels, by),
    };
  }

  gauge(name: string, help: string, labelNames?: readonly string[]): GaugeHandle {
    return {
      set: (value: number, labels: Labels = {}) => (this.define(name, () => new Gauge({ name, help, labelNames: labelNames ?? Object.keys(labels), registers: [] })) as Gauge).set(labels, value),
    };
  }

  histogram(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS_SECONDS, labelNames?: readonly string[]): HistogramHandle {
    return {
      observe: (value: number, labels: Labels = {}) =>
        (this.define(name, () => new Histogram({ name, help, buckets: [...buckets], labelNames: labelNames ?? Object.keys(labels), registers: [] })) as Histogram).observe(labels, value),
    };
  }

  /**
   * A gauge whose values are read when Prometheus scrapes (consumer lag, pool capital). A sampler
   * that fails leaves the gauge without samples for that scrape rather than failing the scrape.
   */
  sampledGauge(name: string, help: string, labelNames: readonly string[], sample: GaugeSampler): void {
    this.define(
      name,
      () =>
        new Gauge({
          name,
          help,
          labelNames: [...labelNames],
          registers: [],
          async collect() {
            this.reset();
            try {
              for (const s of await sample()) this.set(s.labels ?? {}, s.value);
            } catch {
              // A store or broker that is down shows as missing samples (alert on absent()), not as a failed scrape.
            }
          },
        }),
    );
  }

  /** The text exposition format, for GET /metrics. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private define(name: string, make: () => Counter | Gauge | Histogram): Counter | Gauge | Histogram {
    let metric = this.metrics.get(name);
    if (!metric) {
      metric = make();
      this.metrics.set(name, metric);
      this.registry.registerMetric(metric);
    }
    return metric;
  }
}
