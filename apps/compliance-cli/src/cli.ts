import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isIsoUtc } from '@backstop/kernel';
import { EventIntegrityError, EventStore, verifyChains } from '@backstop/event-store';
import {
  balancesReport,
  emptyScopeReason,
  explainDefault,
  LedgerInvariantViolation,
  LedgerProjection,
  PageReader,
  replay,
  Scope,
  Until,
} from '@backstop/ledger';
import { CliError, EXIT, usage } from './errors';
import { balancesCsv, balancesTable, defaultTable, describeScope, Format, FORMATS, json } from './format';
import { progressBar } from './progress';
import { openStoreFor } from './store';

export const HELP = `Backstop compliance CLI: replay the ledger to any instant, verify the hash chains, explain a default.

Usage: npm run compliance -- <verb> [options]

Verbs:
  replay                 Balances of every account (or one party / one contract) as of a position or an instant,
                         rebuilt from an empty ledger, with the digest of the balance sheet.
                         --as-of <ISO-8601 UTC> | --position <n>   default: everything in the store
                         --party <id>  --contract <id>             scope (both: accounts of the party on the contract)
                         --format table|json|csv                   default: table (csv: the digest goes to stderr)
                         --out <file>                              write there instead of stdout
  digest                 Only the digest (one line: compare it with GET /v1/ledger/digest or another replay).
                         Same --as-of / --position / --party / --contract.
  verify                 Recompute every stream's hash chain; print OK with the counts, or name the first broken link.
  explain-default <id>   The waterfall of one default, layer by layer, with the event behind each line, and totals.
                         --as-of / --position, --format table|json, --out <file>

Options for every verb:
  --data <file>          The embedded event store (SQLite file). Without it: --postgres-url, else BACKSTOP_POSTGRES_URL
                         (PostgreSQL), else EVENTSTORE_CONNECTION_STRING (EventStoreDB), else BACKSTOP_DATA_FILE,
                         else ./data/backstop.db. A missing file is an error, never created.
  --postgres-url <url>   A PostgreSQL event store (e.g. postgres://postgres@127.0.0.1:5432/ledger); overrides
                         BACKSTOP_POSTGRES_URL. Its tables must exist (the CLI never creates a store).
  --postgres-schema <s>  The schema of that store's tables; overrides BACKSTOP_POSTGRES_SCHEMA (default: search_path).
  --quiet                No progress line on stderr (it is drawn only on a terminal anyway).
  -h, --help             This text.

Instants are the store's recordedAt: "as of T" is the state after the last event, in position order, before the first
event recorded after T. Account names and the digest are described in docs/ledger.md.

Exit codes:
  0  done
  1  verify: a hash link is broken (an event was altered, removed or reordered, or its row is not readable JSON);
     the first one is named with its stream, revision and position. Any verb: an event cannot be decoded
  2  usage: unknown verb or option, a missing or malformed value
  3  nothing to show: no postings for that party / contract, no such default
  4  the store cannot be read: missing data file, not a database, PostgreSQL or EventStoreDB unreachable, no events table
  5  the ledger cannot book an event (unbalanced, or a floored account below zero): the event is named

Examples:
  npm run compliance -- replay --as-of 2026-03-01T00:00:00Z --party desk1
  npm run compliance -- replay --position 1200 --format csv --out balances.csv
  npm run compliance -- verify --data ./data/backstop.db
  npm run compliance -- digest --postgres-url postgres://postgres@127.0.0.1:5432/ledger --postgres-schema ledger
  npm run compliance -- explain-default cp1 --format json
`;

export interface Io {
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

const VERBS = ['replay', 'digest', 'verify', 'explain-default'] as const;
type Verb = (typeof VERBS)[number];

const OPTIONS = {
  data: { type: 'string' },
  'postgres-url': { type: 'string' },
  'postgres-schema': { type: 'string' },
  'as-of': { type: 'string' },
  position: { type: 'string' },
  party: { type: 'string' },
  contract: { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Which options each verb takes (besides --data, --quiet, --help). */
const VERB_OPTIONS: Readonly<Record<Verb, readonly string[]>> = {
  replay: ['as-of', 'position', 'party', 'contract', 'format', 'out'],
  digest: ['as-of', 'position', 'party', 'contract'],
  verify: [],
  'explain-default': ['as-of', 'position', 'format', 'out'],
};

const ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

type Flags = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

function parse(argv: readonly string[]): { verb?: Verb; positionals: string[]; flags: Flags } {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    const message = (err as Error).message;
    const unknown = /Unknown option '([^']+)'/.exec(message);
    if (unknown) throw usage(`unknown option ${unknown[1]}`);
    const missing = /Option '(--[a-z-]+)[^']*' argument missing/.exec(message);
    if (missing) throw usage(`option ${missing[1]} needs a value`);
    const ambiguous = /Option '(--[a-z-]+)' argument is ambiguous/.exec(message);
    if (ambiguous) throw usage(`option ${ambiguous[1]} needs a value; a value that starts with "-" is written ${ambiguous[1]}=<value>`);
    throw usage(message.split('. ')[0]);
  }
  const flags = parsed.values as Flags;
  const [first, ...rest] = parsed.positionals;
  if (first === undefined) return { positionals: [], flags };
  if (!(VERBS as readonly string[]).includes(first)) throw usage(`unknown verb "${first}"; the verbs are ${VERBS.join(', ')}`);
  const verb = first as Verb;
  for (const name of Object.keys(flags)) {
    if (['data', 'postgres-url', 'postgres-schema', 'quiet', 'help'].includes(name)) continue;
    if (!VERB_OPTIONS[verb].includes(name)) throw usage(`${verb} does not take --${name}`);
  }
  return { verb, positionals: rest, flags };
}

/** --as-of <ISO> or --position <n>: the replay's end, with the flag named in any error. */
function untilFrom(flags: Flags): { until?: Until; asked?: string; target?: bigint } {
  const asOf = flags['as-of'];
  const position = flags.position;
  if (asOf !== undefined && position !== undefined) throw usage('give --as-of or --position, not both');
  if (asOf !== undefined) {
    if (!isIsoUtc(asOf)) throw usage(`--as-of "${asOf}" is not an instant: expected ISO-8601 UTC such as 2026-01-31T08:00:00Z (for a position use --position)`);
    return { until: { kind: 'instant', at: asOf }, asked: asOf };
  }
  if (position !== undefined) {
    if (!/^\d{1,19}$/.test(position)) throw usage(`--position "${position}" is not a global position: expected a non-negative integer such as 1234`);
    return { until: { kind: 'position', position: BigInt(position) }, asked: `position ${position}`, target: BigInt(position) };
  }
  return {};
}

function scopeFrom(flags: Flags): Scope {
  for (const name of ['party', 'contract'] as const) {
    const value = flags[name];
    if (value !== undefined && !ID.test(value)) throw usage(`--${name} "${value}" is not an id: 1-64 letters, digits, _ . : - (starting with a letter or digit)`);
  }
  return { ...(flags.party !== undefined ? { party: flags.party } : {}), ...(flags.contract !== undefined ? { contract: flags.contract } : {}) };
}

function formatFrom(flags: Flags, allowed: readonly Format[]): Format {
  const format = flags.format ?? 'table';
  if (!(allowed as readonly string[]).includes(format)) throw usage(`--format "${format}" is not one of ${allowed.join(', ')}`);
  return format as Format;
}

function reader(store: EventStore): PageReader {
  return (after, maxCount) => store.readAll({ after, maxCount });
}

export async function run(argv: readonly string[], io: Io): Promise<number> {
  let store: EventStore | undefined;
  try {
    const { verb, positionals, flags } = parse(argv);
    if (flags.help || verb === undefined) {
      io.stdout.write(HELP);
      return verb === undefined && !flags.help ? EXIT.usage : EXIT.ok;
    }
    if (verb !== 'explain-default' && positionals.length > 0) throw usage(`${verb} takes no arguments (got "${positionals.join(' ')}")`);
    // Validate every flag before touching the store: a typo is a usage error, whatever the store.
    const { until, asked, target } = untilFrom(flags);
    const scope = scopeFrom(flags);
    const format = verb === 'replay' ? formatFrom(flags, FORMATS) : verb === 'explain-default' ? formatFrom(flags, ['table', 'json']) : 'table';
    let defaultId: string | undefined;
    if (verb === 'explain-default') {
      if (positionals.length !== 1) throw usage('explain-default needs one default id, e.g. explain-default cp1');
      defaultId = positionals[0];
      if (!ID.test(defaultId)) throw usage(`"${defaultId}" is not a default id: 1-64 letters, digits, _ . : -`);
    }
    store = await openStoreFor({ data: flags.data, postgresUrl: flags['postgres-url'], postgresSchema: flags['postgres-schema'] }, io.env, io.cwd);
    const progress = progressBar(io.stderr, !flags.quiet, verb, target);
    const output = (text: string, summary: string) => {
      if (flags.out === undefined) return io.stdout.write(text);
      const path = resolve(io.cwd, flags.out);
      try {
        writeFileSync(path, text);
      } catch (err) {
        throw new CliError(EXIT.usage, `cannot write --out ${path}: ${(err as Error).message}`);
      }
      io.stdout.write(`wrote ${path}: ${summary}\n`);
    };
    switch (verb) {
      case 'verify': {
        const result = await verifyChains(store, (checked) => progress.update(checked, BigInt(checked)));
        progress.done();
        if (!result.firstBreak) {
          io.stdout.write(`OK: ${result.eventsChecked} events in ${result.streamsChecked} streams verified; every hash link holds (${store.kind} ${store.location})\n`);
          return EXIT.ok;
        }
        const b = result.firstBreak;
        io.stdout.write(`BROKEN: the first broken link is event ${b.eventId} (stream ${b.stream}, revision ${b.revision}, position ${b.position}): ${b.problem} — ${b.detail}\n`);
        io.stdout.write(`checked ${result.eventsChecked} events in ${result.streamsChecked} streams before it\n`);
        return EXIT.tampered;
      }
      case 'replay':
      case 'digest': {
        const projection = await replayed(store, until, progress);
        const empty = scope.party !== undefined || scope.contract !== undefined ? emptyScopeReason(projection, scope) : undefined;
        if (empty) throw new CliError(EXIT.notFound, empty);
        warnUnmapped(projection, io);
        const report = balancesReport(projection, scope);
        if (verb === 'digest') {
          io.stdout.write(`${report.digest}  position ${report.position}  ${describeScope(scope)}\n`);
          return EXIT.ok;
        }
        const summary = `${report.balances.length} balances as of position ${report.position}, digest ${report.digest}`;
        if (format === 'json') output(json({ ...(asked ? { asOf: asked } : {}), ...report }), summary);
        else if (format === 'csv') {
          output(balancesCsv(report), summary);
          io.stderr.write(`digest ${report.digest} (position ${report.position}, ${describeScope(scope)})\n`);
        } else output(balancesTable(report, asked), summary);
        return EXIT.ok;
      }
      case 'explain-default': {
        const report = await explainDefault(reader(store), defaultId!, { until, onProgress: (n, p) => progress.update(n, p) });
        progress.done();
        if (!report) throw new CliError(EXIT.notFound, `default ${defaultId} was never declared${asked ? ` as of ${asked}` : ''} (no DefaultDeclared with that defaultId)`);
        const summary = `default ${defaultId}, ${report.layers.length} waterfall lines`;
        output(format === 'json' ? json(report) : defaultTable(report), summary);
        return EXIT.ok;
      }
      default: {
        const _exhaustive: never = verb;
        return _exhaustive;
      }
    }
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr.write(`error: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof EventIntegrityError) {
      const { at } = err;
      io.stderr.write(`error: event ${at.eventId} (stream ${at.stream}, revision ${at.revision}, position ${at.position}) cannot be read: ${err.problem} — ${err.detail}; run verify\n`);
      return EXIT.tampered;
    }
    if (err instanceof LedgerInvariantViolation) {
      io.stderr.write(`error: the ledger cannot book ${err.detail}\n`);
      return EXIT.ledgerInvariant;
    }
    if (/Unavailable/.test((err as Error).name)) {
      io.stderr.write(`error: ${(err as Error).message}\n`);
      return EXIT.storeUnavailable;
    }
    throw err;
  } finally {
    await store?.close().catch(() => undefined);
  }
}

async function replayed(store: EventStore, until: Until | undefined, progress: ReturnType<typeof progressBar>): Promise<LedgerProjection> {
  try {
    return await replay(reader(store), { until, onProgress: (n, p) => progress.update(n, p) });
  } finally {
    progress.done();
  }
}

function warnUnmapped(projection: LedgerProjection, io: Io): void {
  const unmapped = Object.entries(projection.unmappedTypes);
  if (unmapped.length === 0) return;
  io.stderr.write(`warning: event types the ledger does not know were skipped: ${unmapped.map(([t, n]) => `${t} (${n})`).join(', ')}\n`);
}
