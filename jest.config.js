// One jest run over the whole workspace (faster on two cores than one jest per Nx project).
// *.spec.ts: unit; *.int.spec.ts: real broker/store; test/**/*.e2e.spec.ts: end-to-end scenarios.
const { pathsToModuleNameMapper } = require('./tools/jest/paths');

/** @type {import('jest').Config} */
module.exports = {
  rootDir: __dirname,
  testEnvironment: 'node',
  roots: ['<rootDir>/libs', '<rootDir>/apps', '<rootDir>/test', '<rootDir>/tools'],
  testMatch: ['**/*.spec.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: {
          target: 'es2022',
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
        },
        module: { type: 'commonjs' },
        sourceMaps: 'inline',
      },
    ],
  },
  moduleNameMapper: pathsToModuleNameMapper(),
  setupFiles: ['reflect-metadata', '<rootDir>/tools/jest/fast-check-seed.js'],
  globalSetup: '<rootDir>/test/support/global-setup.js',
  globalTeardown: '<rootDir>/test/support/global-teardown.js',
  testTimeout: 30_000,
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/tools/jest/summary-reporter.js'],
};
