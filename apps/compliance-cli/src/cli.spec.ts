import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HELP, Io, run } from './cli';
import { buildStore } from './testing/fixture';

/** The CLI's argument handling in process (the child-process specs cover the real command). */
function io(env: NodeJS.ProcessEnv = {}): Io & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const stream = (append: (s: string) => void) => ({ write: (s: string) => (append(s), true), isTTY: false }) as unknown as NodeJS.WriteStream;
  return { stdout: stream((s) => (out += s)), stderr: stream((s) => (err += s)), env, cwd: process.cwd(), out: () => out, err: () => err };
}

describe('compliance CLI arguments', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-cli-args-'));
  const file = join(dir, 'backstop.db');
  beforeAll(() => buildStore(file));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cases: [string[], number, string | RegExp][] = [
    [['replay', '--data', file, '--position', '-1'], 2, 'error: option --position needs a value; a value that starts with "-" is written --position=<value> (see --help)\n'],
    [['replay', '--data', file, '--position=-1'], 2, /--position "-1" is not a global position: expected a non-negative integer such as 1234/],
    [['replay', '--data', file, '--position', '1', '--as-of', '2026-01-01T00:00:00Z'], 2, 'error: give --as-of or --position, not both (see --help)\n'],
    [['replay', '--data', file, '--as-of', '2026-01-31'], 2, /--as-of "2026-01-31" is not an instant: expected ISO-8601 UTC such as 2026-01-31T08:00:00Z/],
    [['replay', '--data', file, '--format', 'xml'], 2, 'error: --format "xml" is not one of table, json, csv (see --help)\n'],
    [['explain-default', 'cp1', '--data', file, '--format', 'csv'], 2, /--format "csv" is not one of table, json/],
    [['explain-default', '--data', file], 2, /explain-default needs one default id/],
    [['replay', 'extra', '--data', file], 2, 'error: replay takes no arguments (got "extra") (see --help)\n'],
    [['replay', '--data', file, '--party', 'bad id!'], 2, /--party "bad id!" is not an id/],
    [['verify', '--data', file, '--as-of', '2026-01-01T00:00:00Z'], 2, 'error: verify does not take --as-of (see --help)\n'],
    [['digest', '--data', file, '--out', 'x.csv'], 2, 'error: digest does not take --out (see --help)\n'],
    [['replay', '--data'], 2, 'error: option --data needs a value (see --help)\n'],
    [['replay', '--data', file, '--party', 'idle'], 3, /no postings for party idle \(registered, but nothing has moved money for it\) up to position 20/],
    [['replay', '--data', file, '--contract', 'c9'], 3, /no postings for contract c9 \(not a registered contract\)/],
    [['replay', '--data', file, '--out', join(dir, 'no-such-dir', 'x.txt')], 2, /cannot write --out .*no-such-dir\/x.txt: ENOENT/],
  ];

  it.each(cases)('%j exits %i with a clear message', async (argv, code, message) => {
    const streams = io();
    expect(await run(argv, streams)).toBe(code);
    if (typeof message === 'string') expect(streams.err()).toBe(message);
    else expect(streams.err()).toMatch(message);
    expect(streams.out()).toBe('');
  });

  it('prints the help with every verb and exit code; no verb is a usage error that prints it too', async () => {
    const help = io();
    expect(await run(['-h'], help)).toBe(0);
    expect(help.out()).toBe(HELP);
    const none = io();
    expect(await run([], none)).toBe(2);
    expect(none.out()).toBe(HELP);
  });

  it('reads the store named by BACKSTOP_DATA_FILE, and --data wins over it', async () => {
    const fromEnv = io({ BACKSTOP_DATA_FILE: file });
    expect(await run(['digest'], fromEnv)).toBe(0);
    expect(fromEnv.out()).toMatch(/^[0-9a-f]{64} {2}position 20 {2}all accounts\n$/);
    const both = io({ BACKSTOP_DATA_FILE: join(dir, 'nope.db') });
    expect(await run(['digest', '--data', file], both)).toBe(0);
  });
});
