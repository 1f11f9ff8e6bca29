#!/usr/bin/env node
/**
 * Build step after tsc (`npm run build`): bundles the compiled entries into CommonJS files.
 *
 *   node scripts/bundle-cli.mjs [BUILD_DIR]     default dist (a private .build/NAME works too)
 *
 * Beside the compiled entries, npm packages left in node_modules (the dev tree's bins):
 *   src/cli/nnf-env.cjs    the hot commands (export, get, prolog, epilog); the rest goes to ./nnf-env.js
 *   src/cli/nnf-envd.cjs   the daemon, whole
 * Standalone, npm packages inlined, nothing else needed but node (what the packages ship):
 *   standalone/nnf-env.cjs   every command of nnf-env
 *   standalone/nnf-envd.cjs  the daemon (installed without the .cjs as /usr/bin/nnf-env, /usr/sbin/nnf-envd)
 *
 * CommonJS on purpose: esbuild turns each inlined module's imports into require() calls inside
 * that module's lazy initialiser, so npm packages and node builtins load only when a path needs
 * them; an ES module bundle would hoist them all to the top. The dev bundles sit in the same
 * directory as the compiled entries, so every path derived from import.meta.url (the other
 * commands, package.json, node_modules) stays the same.
 */
import { build } from 'esbuild';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';

const buildDir = resolve(process.argv[2] ?? 'dist');
const cliDir = resolve(buildDir, 'src', 'cli');
const standaloneDir = resolve(buildDir, 'standalone');
const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));

const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // import.meta does not exist in CommonJS: the bundle's own URL (see above).
  banner: { js: "const __nnfEnvBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  legalComments: 'none',
  logLevel: 'warning',
};

async function bundle(entry, outfile, opts) {
  const result = await build({
    ...common,
    entryPoints: [entry],
    outfile,
    ...(opts.standalone
      ? {
          // Shebang kept from the entry; the optional native helpers of ws stay optional.
          external: ['bufferutil', 'utf-8-validate'],
          define: { 'import.meta.url': '__nnfEnvBundleUrl', __NNF_ENV_STANDALONE__: 'true', __NNF_ENV_VERSION__: JSON.stringify(version) },
        }
      : {
          // npm packages stay require()d from node_modules, as with the unbundled build.
          packages: 'external',
          define: { 'import.meta.url': '__nnfEnvBundleUrl', __NNF_ENV_STANDALONE__: 'false' },
        }),
  });
  // Warnings mean the bundle may behave unlike the ES modules (e.g. an import.meta property other
  // than url is undefined in CommonJS): fail the build instead of shipping that.
  if (result.warnings.length > 0) {
    console.error(`bundle-cli: ${result.warnings.length} warning(s) above; ${outfile} must build cleanly`);
    process.exit(1);
  }
  await chmod(outfile, 0o755);
}

await bundle(resolve(cliDir, 'nnf-env-fast.js'), resolve(cliDir, 'nnf-env.cjs'), { standalone: false });
await bundle(resolve(cliDir, 'nnf-envd.js'), resolve(cliDir, 'nnf-envd.cjs'), { standalone: false });
await mkdir(standaloneDir, { recursive: true });
await bundle(resolve(cliDir, 'nnf-env-fast.js'), resolve(standaloneDir, 'nnf-env.cjs'), { standalone: true });
await bundle(resolve(cliDir, 'nnf-envd.js'), resolve(standaloneDir, 'nnf-envd.cjs'), { standalone: true });
