import { EventStore } from '@backstop/event-store';
import { Logger, MetricsRegistry } from '@backstop/telemetry';

/**
 * What an operator pages on, read from this service's own events (each service's store holds its
 * own facts, so each deployment exports the gauges of what it owns): pool capital and Cover-2
 * headroom (CapacityAssessed, default-settlement), open margin calls (margin-monitor), defaults in
 * progress (default-settlement). An in-memory projection rebuilt from the store at start and kept up
 * to date from appends; no checkpoint, so a restart never shows stale figures. Money in major units
 * as a float: a gauge is for dashboards and alerts, never for bookkeeping.
 */
export interface OperatorGauges {
  stop(): void;
}

interface StoredLike {
  readonly position: bigint;
  readonly type: string;
  readonly stream: string;
  readonly data: unknown;
}

const PAGE = 1_024;
const POLL_MS = 1_000;

export function startOperatorGauges(store: EventStore, metrics: MetricsRegistry, logger: Logger): OperatorGauges {
  const openCalls = new Map<string, { currency: string; amount: number }>();
  const defaultsOpen = new Set<string>();
  const pools = new Map<string, { currency: string; capital: number; headroom: number; requirement: number }>();
  const apply = (event: StoredLike) => {
    const data = (event.data ?? {}) as Record<string, unknown>;
    switch (event.type) {
      case 'MarginCallIssued':
        openCalls.set(String(data.callId), { currency: String(data.currency), amount: Number(data.amount) });
        return;
      case 'MarginCallCured':
      case 'MarginCallMissed':
        openCalls.delete(String(data.callId));
        return;
      case 'DefaultDeclared':
        defaultsOpen.add(event.stream);
        return;
      case 'DefaultSettled':
        defaultsOpen.delete(event.stream);
        return;
      case 'CapacityAssessed':
        pools.set(String(data.poolId), {
          currency: String(data.currency),
          capital: Number(data.capital),
          headroom: Number(data.headroom),
          requirement: Number(data.cover2Requirement),
        });
        return;
      default:
        return;
    }
  };

  const sumByCurrency = (pick: (c: { currency: string; amount: number }) => number) => {
    const by = new Map<string, number>();
    for (const call of openCalls.values()) by.set(call.currency, (by.get(call.currency) ?? 0) + pick(call));
    return [...by].map(([currency, value]) => ({ labels: { currency }, value }));
  };
  metrics.sampledGauge('backstop_margin_calls_open', 'Margin calls issued and neither cured nor missed yet, by currency', ['currency'], () => sumByCurrency(() => 1));
  metrics.sampledGauge('backstop_margin_calls_open_amount', 'Amount of the open margin calls (major units), by currency', ['currency'], () => sumByCurrency((c) => c.amount));
  metrics.sampledGauge('backstop_defaults_in_progress', 'Defaults declared and not yet settled', [], () => [{ value: defaultsOpen.size }]);
  metrics.sampledGauge('backstop_pool_capital', 'Pool capital that can absorb a loss at the last capacity assessment (major units)', ['pool', 'currency'], () =>
    [...pools].map(([pool, p]) => ({ labels: { pool, currency: p.currency }, value: p.capital })),
  );
  metrics.sampledGauge('backstop_pool_cover2_requirement', 'Cover-2 stress loss at the last capacity assessment (major units)', ['pool', 'currency'], () =>
    [...pools].map(([pool, p]) => ({ labels: { pool, currency: p.currency }, value: p.requirement })),
  );
  metrics.sampledGauge('backstop_pool_cover2_headroom', 'Capital minus the Cover-2 requirement (major units); below zero new coverage is refused', ['pool', 'currency'], () =>
    [...pools].map(([pool, p]) => ({ labels: { pool, currency: p.currency }, value: p.headroom })),
  );

  let after = 0n;
  let stopped = false;
  let wake: (() => void) | undefined;
  const unsubscribe = store.onAppend(() => wake?.());
  const loop = async () => {
    while (!stopped) {
      try {
        const page = (await store.readAll({ after, maxCount: PAGE })) as unknown as StoredLike[];
        for (const event of page) apply(event);
        if (page.length > 0) after = page[page.length - 1].position;
        if (page.length === PAGE) continue;
      } catch (err) {
        logger.warn('operator gauges: reading the store failed; retrying', { error: (err as Error).message });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, POLL_MS);
        timer.unref();
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  void loop();
  return {
    stop: () => {
      stopped = true;
      unsubscribe();
      wake?.();
    },
  };
}

/** Event-store append latency and outcome (ok, conflict: a wrong expected revision, error), by store kind. */
export function withStoreMetrics(store: EventStore, metrics: MetricsRegistry): EventStore {
  const original = store.append.bind(store);
  const histogram = metrics.histogram('backstop_event_store_append_seconds', 'Event-store append latency, by store kind and outcome', undefined, ['store', 'outcome']);
  store.append = async (stream, events, expected) => {
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    try {
      const result = await original(stream, events, expected);
      histogram.observe(seconds(), { store: store.kind, outcome: 'ok' });
      return result;
    } catch (err) {
      histogram.observe(seconds(), { store: store.kind, outcome: /WrongExpectedRevision/.test((err as Error).name) ? 'conflict' : 'error' });
      throw err;
    }
  };
  return store;
}
