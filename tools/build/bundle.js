#!/usr/bin/env node
// Bundles one app into dist/apps/<app>/main.js: the workspace's own code (apps/ and every
// @backstop/* lib, resolved through tsconfig.base.json paths) in one file, npm packages left as
// require()s of the production node_modules (NestJS loads optional peers lazily, better-sqlite3 is
// native: neither can be bundled). esbuild bundles; swc compiles each TypeScript file first because
// NestJS dependency injection and class-validator need `emitDecoratorMetadata`, which esbuild
// does not emit (the same swc settings as tools/register.js and jest.config.js).
//
//   node tools/build/bundle.js <app>...                 -> dist/apps/<app>/main.js
//   node tools/build/bundle.js --outdir <dir> <app>...  -> <dir>/<app>/main.js (keep <dir> inside the
//     workspace: the bundle finds its npm packages in the node_modules above it)
//   or through Nx: npx nx run <app>:build, npx nx run-many -t build
const { join, relative, resolve } = require('node:path');
const { existsSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const esbuild = require('esbuild');
const swc = require('@swc/core');

const ROOT = join(__dirname, '..', '..');

const swcDecorators = {
  name: 'swc-decorator-metadata',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      const source = readFileSync(args.path, 'utf8');
      const { code, map } = await swc.transform(source, {
        filename: args.path,
        sourceMaps: true,
        jsc: {
          target: 'es2022',
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
          keepClassNames: true,
        },
        // CommonJS, as under tools/register.js: decorator metadata names imported types (design:type),
        // which are undefined at run time there; an ES-module bundle would refuse those imports.
        module: { type: 'commonjs' },
      });
      const inline = `\n//# sourceMappingURL=data:application/json;base64,${Buffer.from(map).toString('base64')}`;
      return { contents: code + inline, loader: 'js' };
    });
  },
};

async function bundle(app, outRoot) {
  const outdir = join(outRoot, app);
  rmSync(outdir, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: [join(ROOT, 'apps', app, 'src', 'main.ts')],
    outfile: join(outdir, 'main.js'),
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    tsconfig: join(ROOT, 'tsconfig.base.json'),
    // Bare imports stay external (resolved from node_modules at run time); @backstop/* path aliases
    // are resolved by esbuild from the tsconfig first, so the workspace libs are inlined.
    packages: 'external',
    // NestJS and class-validator look classes up by name; keep them.
    keepNames: true,
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
    // reflect-metadata must be loaded before any decorator runs (tools/register.js does the same).
    banner: { js: "require('reflect-metadata');" },
    plugins: [swcDecorators],
  });
  const inputs = Object.keys(result.metafile.inputs);
  const external = [...new Set(Object.values(result.metafile.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path)))].sort();
  writeFileSync(join(outdir, 'bundle.json'), JSON.stringify({ app, inputs: inputs.length, external }, null, 2) + '\n');
  const leaked = inputs.filter((i) => i.includes('node_modules'));
  if (leaked.length) throw new Error(`${app}: npm packages were bundled, expected external: ${leaked.slice(0, 5).join(', ')}`);
  console.log(`${app}: ${relative(ROOT, join(outdir, 'main.js'))} (${inputs.length} workspace files; ${external.length} external modules)`);
}

const args = process.argv.slice(2);
const at = args.indexOf('--outdir');
const outRoot = at >= 0 ? resolve(args.splice(at, 2)[1]) : join(ROOT, 'dist', 'apps');
if (args.length === 0 || args.some((a) => !existsSync(join(ROOT, 'apps', a, 'src', 'main.ts')))) {
  console.error('usage: node tools/build/bundle.js [--outdir <dir>] <app>...   (an app is a folder of apps/ with src/main.ts)');
  process.exit(2);
}
(async () => {
  for (const app of args) await bundle(app, outRoot);
})().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
