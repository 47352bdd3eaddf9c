// Lint with Nx module boundaries enforced by tags (STYLE.md):
//   type:domain  pure: may import only type:domain (no Nest, Kafka, store, clock)
//   type:infra   adapters (event store, messaging, telemetry): domain + infra
//   type:service Nest modules of a capability: domain, infra, service
//   type:app     bootstraps: anything but another app
//   type:testing test helpers: domain, infra, testing
//   type:tooling generators (tools/): anything but apps
// and by scope (SPEC section 1: services talk only through Kafka; each keeps its own read models):
//   scope:intake|pricing|margin|settlement  itself + scope:shared (kernel, platform, infra,
//                contracts = the published event/command types, and the pure *-model math libs)
//   scope:shared     only scope:shared
//   scope:ledger     itself + shared + the four services' domain libs: it books every service's
//                    events and switches over their unions exhaustively (type-only imports; moving
//                    those unions into @backstop/contracts is the next step, see README)
//   scope:composition  the single-process app, the e2e suite, the AsyncAPI generator: anything
// Integration specs (*.int.spec.ts) compose several services' modules in one runtime, as
// apps/backstop does: only the type rules apply to them.
const nx = require('@nx/eslint-plugin');
const tseslint = require('typescript-eslint');

const PURE_FORBIDDEN = ['@nestjs/*', 'kafkajs', '@eventstore/*', '@kurrent/*', 'pg', 'better-sqlite3', 'class-validator', 'class-transformer', 'node:fs', 'fs', 'node:net', 'node:child_process'];

const TYPE_CONSTRAINTS = [
  { sourceTag: 'type:domain', onlyDependOnLibsWithTags: ['type:domain'], bannedExternalImports: PURE_FORBIDDEN },
  { sourceTag: 'type:infra', onlyDependOnLibsWithTags: ['type:domain', 'type:infra', 'type:testing'] },
  { sourceTag: 'type:service', onlyDependOnLibsWithTags: ['type:domain', 'type:infra', 'type:service', 'type:testing'] },
  { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:domain', 'type:infra', 'type:service', 'type:testing', 'type:tooling'] },
  { sourceTag: 'type:tooling', onlyDependOnLibsWithTags: ['type:domain', 'type:infra', 'type:service', 'type:testing'] },
  { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:domain', 'type:infra', 'type:testing'] },
];

const SERVICE_SCOPES = ['intake', 'pricing', 'margin', 'settlement'];
const SCOPE_CONSTRAINTS = [
  ...SERVICE_SCOPES.map((scope) => ({ sourceTag: `scope:${scope}`, onlyDependOnLibsWithTags: [`scope:${scope}`, 'scope:shared'] })),
  { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
  { sourceTag: 'scope:ledger', onlyDependOnLibsWithTags: ['scope:ledger', 'scope:shared', ...SERVICE_SCOPES.map((s) => `scope:${s}`)] },
  { allSourceTags: ['scope:ledger', 'type:service'], onlyDependOnLibsWithTags: ['scope:ledger', 'scope:shared', 'type:domain'] },
];

const boundaries = (depConstraints) => [
  'error',
  { enforceBuildableLibDependency: false, allow: [], banTransitiveDependencies: false, depConstraints },
];

module.exports = [
  { ignores: ['**/node_modules/**', '**/dist/**', 'tmp/**', 'coverage/**', '.nx/**', '**/*.js'] },
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  {
    files: ['**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': boundaries([...TYPE_CONSTRAINTS, ...SCOPE_CONSTRAINTS]),
      '@typescript-eslint/no-explicit-any': 'warn',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // Pure domain code never reads the wall clock or a random source: time and ids arrive in commands.
    files: ['libs/kernel/src/**/*.ts', 'libs/*/model/src/**/*.ts', 'libs/*/domain/src/**/*.ts', 'libs/ledger/domain/src/**/*.ts'],
    ignores: ['**/*.spec.ts', '**/testing/**', 'libs/kernel/src/time.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'domain code gets time from the command, not Date.now()' },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'domain code gets time from the command, not new Date()' },
        { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: 'domain code uses a seeded generator, not Math.random()' },
      ],
    },
  },
  {
    files: ['**/*.int.spec.ts'],
    rules: { '@nx/enforce-module-boundaries': boundaries(TYPE_CONSTRAINTS) },
  },
];
