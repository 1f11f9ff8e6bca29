#!/usr/bin/env node
/**
 * Build step after tsc (`npm run build`): bundles the compiled entry src/bin/nnf-env.js and the
 * modules of the hot commands (CommandEntry.fast in src/bin/command-table.ts) into
 * src/bin/nnf-env.cjs beside it, the `nnf-env` bin (why: the header of src/bin/nnf-env.ts).
 *
 *   node scripts/bundle-cli.mjs [BUILD_DIR]     default dist (a private .build/NAME works too)
 *
 * CommonJS on purpose: esbuild turns each inlined module's imports into require() calls inside
 * that module's lazy initialiser, so npm packages and node builtins load only when a path needs
 * them; an ES module bundle would hoist them all to the top. The bundle sits in the same
 * directory as the compiled entry, so every path derived from import.meta.url (the other
 * commands, package.json, node_modules) stays the same.
 */
import { build } from 'esbuild';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const buildDir = resolve(process.argv[2] ?? 'dist');
const binDir = resolve(buildDir, 'src', 'bin');

// The one command table decides what is inlined: the bundle's entry registers the hot modules
// (literal imports, so that esbuild inlines them) and runs main().
const { COMMANDS } = await import(pathToFileURL(resolve(binDir, 'command-table.js')).href);
const hot = [...new Set(COMMANDS.filter((c) => c.fast).map((c) => c.module))];
const contents = [
  "import { main, registerInlined } from './nnf-env.js';",
  `registerInlined({ ${hot.map((m) => `${JSON.stringify(m)}: () => import(${JSON.stringify(m + '.js')})`).join(', ')} });`,
  'void main(process.argv.slice(2));',
].join('\n');

const result = await build({
  stdin: { contents, resolveDir: binDir, sourcefile: 'nnf-env-bundle-entry.js', loader: 'js' },
  outfile: resolve(binDir, 'nnf-env.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // npm packages stay require()d from node_modules, as with the unbundled build.
  packages: 'external',
  // import.meta does not exist in CommonJS: the bundle's own URL, which is the compiled
  // entry's directory (see above).
  define: { 'import.meta.url': '__nnfEnvBundleUrl', __NNF_ENV_BUNDLED__: 'true' },
  banner: { js: "#!/usr/bin/env node\nconst __nnfEnvBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  legalComments: 'none',
  logLevel: 'warning',
});

// Warnings mean the bundle may behave unlike the ES modules (e.g. an import.meta property other
// than url is undefined in CommonJS): fail the build instead of shipping that.
if (result.warnings.length > 0) {
  console.error(`bundle-cli: ${result.warnings.length} warning(s) above; the nnf-env bundle must build cleanly`);
  process.exit(1);
}
