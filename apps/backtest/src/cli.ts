import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import type { Side } from '@backstop/kernel';
import { BacktestBook, BacktestInputError, formatReport, parsePriceCsv, runBacktest } from '@backstop/margin-model';

export const USAGE = `backtest: run the margin model through a daily price series and test its breaches (Kupiec POF)

Usage:
  npm run backtest -- --file <prices.csv> [--underlying NAME] [--side long|short] [--book perpetual|options]
                      [--mpor-days 5] [--confidence 0.995]

  --file <path>         CoinGecko daily CSV: snapped_at,price,market_cap,total_volume (any coin's export)
  --underlying <name>   label, e.g. BTC-USD (default: from the file name, btc-usd-daily.csv → BTC-USD)
  --side <long|short>   one side only (default: both)
  --book <name>         perpetual (one unit) or options (a 30-day ±10% strangle); default: both
  --mpor-days <n>       margin period of risk, calendar days (default 5)
  --confidence <p>      one-sided confidence of the margin (default 0.995)
  --help                this text

Exit codes: 0 no side rejects the target at 95% (too many breaches), 1 one does, 2 bad arguments or input.`;

export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

const FILE_BYTES_MAX = 64 * 1024 * 1024;

class UsageError extends Error {}

function number(text: string | undefined, name: string, fallback: number, check: (x: number) => boolean, rule: string): number {
  if (text === undefined) return fallback;
  const x = Number(text);
  if (text.trim() === '' || !Number.isFinite(x) || !check(x)) throw new UsageError(`--${name} "${text}" must be ${rule}`);
  return x;
}

export function runCli(argv: readonly string[], io: CliIo): number {
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        file: { type: 'string' },
        underlying: { type: 'string' },
        side: { type: 'string' },
        book: { type: 'string' },
        'mpor-days': { type: 'string' },
        confidence: { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (!values.file) throw new UsageError('--file is required');
    if (!existsSync(values.file) || !statSync(values.file).isFile()) throw new UsageError(`--file ${values.file}: no such file`);
    if (statSync(values.file).size > FILE_BYTES_MAX) throw new UsageError(`--file ${values.file}: larger than ${FILE_BYTES_MAX} bytes`);
    const side = values.side?.toUpperCase();
    if (side !== undefined && side !== 'LONG' && side !== 'SHORT') throw new UsageError(`--side "${values.side}" must be long or short`);
    const book = values.book?.toLowerCase();
    if (book !== undefined && book !== 'perpetual' && book !== 'options') throw new UsageError(`--book "${values.book}" must be perpetual or options`);
    const mporDays = number(values['mpor-days'], 'mpor-days', 5, (x) => Number.isInteger(x) && x >= 1 && x <= 365, 'an integer in [1, 365]');
    const confidence = number(values.confidence, 'confidence', 0.995, (x) => x > 0.5 && x < 1, 'in (0.5, 1)');
    const underlying = values.underlying ?? underlyingFromFile(values.file);
    const series = parsePriceCsv(readFileSync(values.file, 'utf8'));
    const books: BacktestBook[] = book === undefined ? ['PERPETUAL', 'OPTIONS'] : [book === 'perpetual' ? 'PERPETUAL' : 'OPTIONS'];
    const sides: Side[] = side === undefined ? ['LONG', 'SHORT'] : [side];
    const report = runBacktest(series, { underlying, mporDays, confidence, books, sides });
    if (report.results.every((r) => r.days === 0)) {
      throw new BacktestInputError(`${values.file}: ${series.observations.length} prices are too few to test a ${mporDays}-day horizon after the 30-day warm-up`);
    }
    io.stdout.write(`${formatReport(report)}\n`);
    return report.results.some((r) => r.rejected) ? 1 : 0;
  } catch (error) {
    if (error instanceof UsageError || error instanceof BacktestInputError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`backtest: ${(error as Error).message}\n\n${USAGE}\n`);
      return 2;
    }
    throw error;
  }
}

function underlyingFromFile(file: string): string {
  const match = /^([a-z0-9]+)-([a-z]+)/i.exec(basename(file));
  return match ? `${match[1]}-${match[2]}`.toUpperCase() : basename(file);
}
