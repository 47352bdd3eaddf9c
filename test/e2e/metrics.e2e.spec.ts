import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntakeModule } from '@backstop/intake-service';
import { LedgerModule } from '@backstop/ledger-service';
import { MarginModule } from '@backstop/margin-service';
import { PricingModule } from '@backstop/pricing-service';
import { SettlementModule } from '@backstop/settlement-service';
import { startTestBackstop, TestBackstop } from '@backstop/platform';
const parsePrometheusTextFormat = require('parse-prometheus-text-format') as (text: string) => Family[];

interface Sample {
  labels?: Record<string, string>;
  value?: string;
  buckets?: Record<string, string>;
  count?: string;
  sum?: string;
}
interface Family {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  metrics: Sample[];
}

/**
 * promtool: on the PATH, or where tools/promtool/fetch.sh puts it (.ci/run runs that script: it takes
 * the binary out of Debian's `prometheus` package into $BACKSTOP_CACHE_DIR/bin or ~/.cache/backstop/bin).
 */
function promtool(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  if (found.status === 0) return found.stdout.trim();
  const cached = join(process.env.BACKSTOP_CACHE_DIR ?? join(homedir(), '.cache', 'backstop'), 'bin', 'promtool');
  return existsSync(cached) ? cached : undefined;
}

/**
 * Issue 12 item 4: /metrics after a mixed load (accepted, rejected, junk types) parses with a real
 * Prometheus text-format parser (and `promtool check metrics` where installed); junk command types do
 * not create series; histograms have their buckets; default process metrics and the operator's
 * gauges are there.
 */
describe('/metrics after a mixed load', () => {
  let app: TestBackstop;
  let text: string;
  let families: Map<string, Family>;

  beforeAll(async () => {
    app = await startTestBackstop({ modules: [IntakeModule, PricingModule, MarginModule, SettlementModule, LedgerModule] });
    expect((await app.send('RegisterParty', { partyId: 'desk1', name: 'Desk', role: 'DESK', credit: { rating: 'A' } })).reply.status).toBe('ACCEPTED');
    expect((await app.send('RegisterParty', { partyId: 'cp1', name: 'CP', role: 'COUNTERPARTY', credit: { rating: 'BB' } })).reply.status).toBe('ACCEPTED');
    expect((await app.send('RegisterParty', { partyId: '', name: 5, role: 'BANK' })).status).toBe(422);
    // 300 junk types from a caller: each is rejected, and none may become a label value.
    for (let i = 0; i < 300; i += 1) expect((await app.send(`Junk${i}`, { x: i })).status).toBe(422);
    await app.settle();
    const res = await fetch(`${app.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain;.*version=0\.0\.4/);
    text = await res.text();
    families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
  }, 60_000);
  afterAll(() => app?.close());

  it('labels commands only with known types (junk is "unknown") and counts every outcome', () => {
    const commands = families.get('backstop_commands_total')!;
    expect(commands.type).toBe('COUNTER');
    const byLabels = new Map(commands.metrics.map((m) => [`${m.labels!.type}/${m.labels!.status}`, Number(m.value)]));
    expect(byLabels.get('RegisterParty/ACCEPTED')).toBe(2);
    expect(byLabels.get('RegisterParty/REJECTED')).toBe(1);
    expect(byLabels.get('unknown/REJECTED')).toBe(300);
    expect(commands.metrics.every((m) => m.labels!.type === 'RegisterParty' || m.labels!.type === 'unknown')).toBe(true);
    expect(text).not.toMatch(/Junk/);
  });

  it('has histograms with every bucket, +Inf equal to the count', () => {
    const latency = families.get('backstop_command_seconds')!;
    expect(latency.type).toBe('HISTOGRAM');
    // The parser package drops a histogram's labels, so read the accepted RegisterParty series off the text.
    const series = (suffix: string) =>
      text.split('\n').filter((l) => l.startsWith(`backstop_command_seconds_${suffix}{`) && l.includes('status="ACCEPTED"') && l.includes('type="RegisterParty"'));
    const buckets = series('bucket').map((l) => ({ le: /le="([^"]+)"/.exec(l)![1], count: Number(l.split(' ').at(-1)) }));
    expect(buckets.map((b) => b.le)).toEqual(['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']);
    const count = Number(series('count')[0].split(' ').at(-1));
    expect(count).toBe(2);
    expect(buckets.at(-1)!.count).toBe(count);
    expect(buckets.map((b) => b.count)).toEqual([...buckets.map((b) => b.count)].sort((a, b) => a - b));
    expect(Number(series('sum')[0].split(' ').at(-1))).toBeGreaterThan(0);
    const append = families.get('backstop_event_store_append_seconds')!;
    expect(append.type).toBe('HISTOGRAM');
    expect(text).toContain(`backstop_event_store_append_seconds_count{store="${app.runtime.store.kind}",outcome="ok"}`);
  });

  it('exports the default process metrics and the gauges an operator pages on', () => {
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(families.has(name)).toBe(true);
    }
    expect(families.get('backstop_defaults_in_progress')!.metrics).toEqual([{ value: '0' }]);
    for (const name of ['backstop_margin_calls_open', 'backstop_pool_capital', 'backstop_pool_cover2_headroom', 'backstop_consumer_lag']) {
      expect(families.get(name)?.type ?? text.includes(`# TYPE ${name} gauge`)).toBeTruthy();
    }
  });

  const tool = promtool();
  (tool ? it : it.skip)(`passes promtool check metrics${tool ? '' : ' (skipped: promtool not found; bash tools/promtool/fetch.sh)'}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'backstop-metrics-'));
    try {
      const file = join(dir, 'scrape.txt');
      writeFileSync(file, text);
      const run = spawnSync('sh', ['-c', `${tool} check metrics < "${file}"`], { encoding: 'utf8' });
      expect({ status: run.status, output: `${run.stdout}${run.stderr}` }).toEqual({ status: 0, output: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
