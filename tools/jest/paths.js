const path = require('path');
const tsconfig = require('../../tsconfig.base.json');

/** Maps the @backstop/* aliases of tsconfig.base.json for jest (one source of truth for aliases). */
function pathsToModuleNameMapper() {
  const root = path.join(__dirname, '..', '..');
  const mapper = {};
  for (const [alias, [target]] of Object.entries(tsconfig.compilerOptions.paths)) {
    mapper[`^${alias.replace(/[/\\^$*+?.()|[\]{}-]/g, '\\$&')}$`] = path.join(root, target);
  }
  return mapper;
}

module.exports = { pathsToModuleNameMapper };
