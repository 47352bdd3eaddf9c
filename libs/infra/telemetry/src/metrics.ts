/**
 * A small Prometheus registry (text exposition format 0.0.4) so /metrics needs no extra package.
 * Labels are bounded by the callers (topic, type, outcome), never ids.
 */
type Labels = Record<string, string>;

interface Series {
  readonly help: string;
  readonly kind: 'counter' | 'gauge' | 'histogram';
  readonly values: Map<string, number>;
  readonly buckets?: readonly number[];
}

const SERIES_MAX = 10_000;

export class MetricsRegistry {
  private readonly series = new Map<string, Series>();

  counter(name: string, help: string) {
    const s = this.define(name, help, 'counter');
    return { inc: (labels: Labels = {}, by = 1) => this.add(s, labelKey(labels), by) };
  }

  gauge(name: string, help: string) {
    const s = this.define(name, help, 'gauge');
    return { set: (value: number, labels: Labels = {}) => s.values.set(labelKey(labels), value) };
  }

  histogram(name: string, help: string, buckets: readonly number[] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5]) {
    const s = this.define(name, help, 'histogram', buckets);
    return {
      observe: (value: number, labels: Labels = {}) => {
        for (const b of buckets) if (value <= b) this.add(s, labelKey({ ...labels, le: String(b) }), 1);
        this.add(s, labelKey({ ...labels, le: '+Inf' }), 1);
        this.add(s, `sum${labelKey(labels)}`, value);
        this.add(s, `count${labelKey(labels)}`, 1);
      },
    };
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, s] of this.series) {
      lines.push(`# HELP ${name} ${s.help}`, `# TYPE ${name} ${s.kind}`);
      for (const [key, value] of s.values) {
        if (s.kind !== 'histogram') lines.push(`${name}${key} ${value}`);
        else if (key.startsWith('sum')) lines.push(`${name}_sum${key.slice(3)} ${value}`);
        else if (key.startsWith('count')) lines.push(`${name}_count${key.slice(5)} ${value}`);
        else lines.push(`${name}_bucket${key} ${value}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }

  private define(name: string, help: string, kind: Series['kind'], buckets?: readonly number[]): Series {
    const existing = this.series.get(name);
    if (existing) return existing;
    const s: Series = { help, kind, values: new Map(), buckets };
    this.series.set(name, s);
    return s;
  }

  private add(s: Series, key: string, by: number): void {
    if (!s.values.has(key) && s.values.size >= SERIES_MAX) return;
    s.values.set(key, (s.values.get(key) ?? 0) + by);
  }
}

function labelKey(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')}}`;
}
