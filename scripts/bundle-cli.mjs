#!/usr/bin/env node
/**
 * Build step after tsc (`npm run build`): bundles the compiled src/cli/nnf-env-fast.js into
 * src/cli/nnf-env.cjs beside it, the `nnf-env` bin (why: src/cli/nnf-env-fast.ts).
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

const buildDir = resolve(process.argv[2] ?? 'dist');
const cliDir = resolve(buildDir, 'src', 'cli');

const result = await build({
  entryPoints: [resolve(cliDir, 'nnf-env-fast.js')],
  outfile: resolve(cliDir, 'nnf-env.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // npm packages stay require()d from node_modules, as with the unbundled build.
  packages: 'external',
  // import.meta does not exist in CommonJS: the bundle's own URL, which is the compiled
  // entry's directory (see above).
  define: { 'import.meta.url': '__nnfEnvBundleUrl' },
  banner: { js: "const __nnfEnvBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  legalComments: 'none',
  logLevel: 'warning',
});

// Warnings mean the bundle may behave unlike the ES modules (e.g. an import.meta property other
// than url is undefined in CommonJS): fail the build instead of shipping that.
if (result.warnings.length > 0) {
  console.error(`bundle-cli: ${result.warnings.length} warning(s) above; the nnf-env bundle must build cleanly`);
  process.exit(1);
}
