/**
 * `npm run bench`: runs every bench/*.bench.ts (or the ones named: `npm run bench -- event-store`)
 * and prints figures with ratios against a baseline measured in the same run. Benchmarks print;
 * they never assert on time (that belongs nowhere near a unit test).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface BenchResult {
  readonly name: string;
  readonly opsPerSec: number;
  readonly baseline?: string;
  readonly note?: string;
}

export async function measure(name: string, ops: number, run: () => void | Promise<void>): Promise<BenchResult> {
  await run(); // warm-up pass (JIT, page cache), not measured
  const started = process.hrtime.bigint();
  await run();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { name, opsPerSec: ops / seconds };
}

export function report(title: string, results: readonly BenchResult[]): void {
  process.stdout.write(`\n${title}\n`);
  const byName = new Map(results.map((r) => [r.name, r]));
  for (const r of results) {
    const base = r.baseline ? byName.get(r.baseline) : undefined;
    const ratio = base ? `  ${(r.opsPerSec / base.opsPerSec).toFixed(2)}x of ${base.name}` : '';
    process.stdout.write(`  ${r.name.padEnd(48)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(14)} ops/s${ratio}${r.note ? `  (${r.note})` : ''}\n`);
  }
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const files = readdirSync(__dirname).filter((f) => f.endsWith('.bench.ts') && (only.length === 0 || only.some((o) => f.includes(o))));
  if (files.length === 0) throw new Error(`no benchmark matches ${only.join(', ')}`);
  for (const file of files) {
    const mod = (await import(join(__dirname, file))) as { default: () => Promise<void> };
    await mod.default();
  }
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  });
}
