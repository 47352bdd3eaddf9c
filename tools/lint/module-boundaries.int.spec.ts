/**
 * The service boundaries are enforced by lint (eslint.config.js, @nx/enforce-module-boundaries
 * with scope:* tags): a service may depend only on itself and scope:shared (kernel, platform,
 * infra, contracts, the pure model libs). This lints probe sources placed in service projects
 * with the workspace's real config and project graph: a cross-service import must fail.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const RULE = '@nx/enforce-module-boundaries';
const ENV = { ...process.env, NX_DAEMON: 'false' };

/** ESLint's CLI on a source given on stdin as if it were `projectFile` (the CLI, as `npm run lint` uses it). */
async function boundaryErrors(projectFile: string, source: string): Promise<string[]> {
  const run = spawnSync(process.execPath, [join(ROOT, 'node_modules/eslint/bin/eslint.js'), '--format', 'json', '--stdin', '--stdin-filename', join(ROOT, projectFile)], {
    cwd: ROOT,
    env: ENV,
    input: source,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (run.error) throw run.error;
  const [result] = JSON.parse(run.stdout) as { messages: { ruleId: string | null; severity: number; message: string }[] }[];
  // A skipped rule (no project graph) would pass everything: fail loudly instead.
  const skipped = result.messages.find((m) => m.ruleId === RULE && m.severity === 1 && /ProjectGraph/.test(m.message));
  if (skipped) throw new Error(`the boundary rule was skipped: ${skipped.message}`);
  return result.messages.filter((m) => m.ruleId === RULE && m.severity === 2).map((m) => m.message);
}

describe('lint enforces service boundaries (scope:* tags)', () => {
  beforeAll(() => {
    // The rule reads the cached project graph; build it so the rule is never silently skipped.
    const graph = spawnSync(process.execPath, [join(ROOT, 'node_modules/nx/bin/nx.js'), 'show', 'projects'], { cwd: ROOT, env: ENV, encoding: 'utf8', timeout: 120_000 });
    if (graph.status !== 0) throw new Error(`nx show projects failed: ${graph.stderr}`);
  }, 120_000);

  it.each([
    ['pricing reading intake\'s decider', 'libs/pricing/service/src/probe.ts', "import { partyDecider } from '@backstop/intake';\nexport const probe = partyDecider;\n", 'scope:pricing'],
    ['settlement importing intake\'s service lib', 'libs/settlement/service/src/probe.ts', "import { IntakeModule } from '@backstop/intake-service';\nexport const probe = IntakeModule;\n", 'scope:settlement'],
    ['intake reading margin\'s streams', 'libs/intake/service/src/probe.ts', "import { marginStream } from '@backstop/margin';\nexport const probe = marginStream;\n", 'scope:intake'],
    ['the ledger service importing another service\'s Nest module', 'libs/ledger/service/src/probe.ts', "import { IntakeModule } from '@backstop/intake-service';\nexport const probe = IntakeModule;\n", 'scope:ledger'],
  ])('fails on %s', async (_what, file, source, scope) => {
    const errors = await boundaryErrors(file, source);
    expect(errors).toEqual([expect.stringMatching(new RegExp(`A project tagged with "${scope}".* can only depend on libs tagged with`))]);
  }, 60_000);

  it('passes the same service importing only shared libs (contracts, platform, a pure model lib)', async () => {
    const source = [
      "import { NOT_YET_KNOWN } from '@backstop/contracts';",
      "import { notYetKnown } from '@backstop/platform';",
      "import { markToMarket } from '@backstop/margin-model';",
      'export const probe = [NOT_YET_KNOWN, notYetKnown, markToMarket];',
      '',
    ].join('\n');
    expect(await boundaryErrors('libs/pricing/service/src/probe.ts', source)).toEqual([]);
  }, 60_000);
});
