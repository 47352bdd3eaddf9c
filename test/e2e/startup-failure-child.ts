/**
 * An app whose Nest modules cannot start, run as a process the way every app runs (runMain).
 * argv[2] picks the failure:
 *   missing-provider  a provider injects a token no module provides (Nest's "can't resolve dependencies")
 *   undefined-import  a module imports `undefined` (a circular file import): Nest throws a bare TypeError
 *   never-settles     an async provider factory that never resolves (a connection that never answers)
 */
import { Inject, Injectable, Module } from '@nestjs/common';
import { runMain, SERVICE_NAMES } from '@backstop/platform';

@Injectable()
class NeedsAClock {
  constructor(@Inject('WALL_CLOCK') readonly clock: unknown) {}
}

@Module({ providers: [NeedsAClock] })
class MissingProviderModule {}

@Module({ imports: [undefined as never] })
class UndefinedImportModule {}

@Module({ providers: [{ provide: 'SLOW', useFactory: () => new Promise<never>(() => undefined) }] })
class NeverSettlesModule {}

const modules: Record<string, unknown> = {
  'missing-provider': MissingProviderModule,
  'undefined-import': UndefinedImportModule,
  'never-settles': NeverSettlesModule,
};
const chosen = modules[process.argv[2] ?? ''];
if (!chosen) {
  process.stderr.write(`usage: startup-failure-child <${Object.keys(modules).join('|')}>\n`);
  process.exit(64);
}
void runMain({ services: SERVICE_NAMES, modules: [chosen as never] });
