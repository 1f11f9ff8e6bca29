#!/usr/bin/env node
/**
 * Build step after tsc (`npm run build`): bundles the compiled entry src/bin/nnf-env.js into
 * src/bin/nnf-env.cjs beside it, the `nnf-env` bin, and each hot command's module
 * (CommandEntry.fast in src/bin/command-table.ts) into src/bin/nnf-env-<command>.cjs, which
 * the bin requires when that command runs (why: the header of src/bin/nnf-env.ts).
 *
 *   node scripts/bundle-cli.mjs [BUILD_DIR]     default dist (a private .build/NAME works too)
 *
 * It also writes the standalone bundles that the packages and `nnf-env install` ship, every npm
 * package inlined, nothing needed beside them but node:
 *   standalone/nnf-env.cjs            a launcher (installed as /usr/bin/nnf-env) that loads, with a
 *                                     V8 code cache (nnf-env-main.cjs.v8cache, made by this script):
 *   standalone/nnf-env-main.cjs       the entry and the hot commands
 *                                     (installed as /usr/lib/nnf-env/nnf-env-main.cjs)
 *   standalone/nnf-env-commands.cjs   every other command, required when one runs
 *                                     (installed as /usr/lib/nnf-env/nnf-env-commands.cjs)
 *   standalone/nnf-envd.cjs           the daemon (installed as /usr/sbin/nnf-envd)
 * Two files for nnf-env because V8 reads every byte of a script it loads: the prolog, on every
 * node of every job, pays for the hot commands only (one file with all of them cost the
 * `--version` path about 50 % more CPU).
 *
 * CommonJS on purpose: esbuild turns each inlined module's imports into require() calls inside
 * that module's lazy initialiser, so npm packages and node builtins load only when a path needs
 * them; an ES module bundle would hoist them all to the top. The bundle sits in the same
 * directory as the compiled entry, so every path derived from import.meta.url (the other
 * commands, package.json, node_modules) stays the same.
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const buildDir = resolve(process.argv[2] ?? 'dist');
const binDir = resolve(buildDir, 'src', 'bin');

// The one command table decides what is bundled: each hot command's module becomes its own
// CommonJS file beside the entry (nnf-env-<command>.cjs), and the entry's bundle registers them
// (registerInlined) and runs main(). One command's file is all a run compiles: V8 pre-parses a
// whole file when it loads it, and the prolog (every node of every job) need not pay for the
// code of export and get, nor they for the prolog's.
const { COMMANDS } = await import(pathToFileURL(resolve(binDir, 'command-table.js')).href);
const hot = [...new Set(COMMANDS.filter((c) => c.fast).map((c) => c.module))];
const fileOf = (module) => `nnf-env-${module.split('/').at(-1)}.cjs`;
if (new Set(hot.map(fileOf)).size !== hot.length) {
  console.error('bundle-cli: two hot command modules share a base name; their bundles would collide');
  process.exit(1);
}

const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // npm packages stay require()d from node_modules, as with the unbundled build.
  packages: 'external',
  // import.meta does not exist in CommonJS: the bundle's own URL, which is the compiled
  // entry's directory (see above).
  define: { 'import.meta.url': '__nnfEnvBundleUrl', __NNF_ENV_BUNDLED__: 'true' },
  legalComments: 'none',
  logLevel: 'warning',
};
// Modules that a hot command imports (dynamically) only on a rare path stay ES modules loaded
// from the build when that path runs, so that the common path does not parse them: the full
// config loader (a config file the light reader is unsure of) and the prolog's notice writer
// (daemon down or timed out; it brings the atomic writer and the env-file renderer).
const COLD = ['config/load.js', 'fs/prolog-notice.js'].map((m) => resolve(buildDir, 'src', m));
// A cold module that moved would be inlined without a word: the build stops instead.
for (const path of COLD) {
  if (!existsSync(path)) {
    console.error(`bundle-cli: cold module ${relative(buildDir, path)} does not exist (moved? update COLD)`);
    process.exit(1);
  }
}
const coldImports = {
  name: 'cold-imports',
  setup(b) {
    b.onResolve({ filter: /\.js$/ }, (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      const path = resolve(args.resolveDir, args.path);
      if (!COLD.includes(path)) return undefined;
      // Kept as import() (Node 20 has it in CommonJS), relative to the bundle's directory.
      return { path: './' + relative(binDir, path), external: true };
    });
  },
};
const urlLine = "const __nnfEnvBundleUrl = require('node:url').pathToFileURL(__filename).href;";

const builds = hot.map((module) => build({
  ...common,
  stdin: { contents: `export * from ${JSON.stringify(module + '.js')};`, resolveDir: binDir, sourcefile: `${fileOf(module)}-entry.js`, loader: 'js' },
  outfile: resolve(binDir, fileOf(module)),
  plugins: [coldImports],
  banner: { js: urlLine },
}));
const contents = [
  "import { main, registerInlined } from './nnf-env.js';",
  `registerInlined({ ${hot.map((m) => `${JSON.stringify(m)}: async () => require(${JSON.stringify('./' + fileOf(m))})`).join(', ')} });`,
  'void main(process.argv.slice(2));',
].join('\n');
builds.push(build({
  ...common,
  stdin: { contents, resolveDir: binDir, sourcefile: 'nnf-env-bundle-entry.js', loader: 'js' },
  outfile: resolve(binDir, 'nnf-env.cjs'),
  // The hot commands' own bundles, loaded when their command runs.
  external: hot.map((m) => './' + fileOf(m)),
  banner: { js: `#!/usr/bin/env node\n${urlLine}` },
}));
const results = await Promise.all(builds);
const warnings = results.reduce((n, r) => n + r.warnings.length, 0);

// Warnings mean the bundle may behave unlike the ES modules (e.g. an import.meta property other
// than url is undefined in CommonJS): fail the build instead of shipping that.
if (warnings > 0) {
  console.error(`bundle-cli: ${warnings} warning(s) above; the nnf-env bundles must build cleanly`);
  process.exit(1);
}

// The standalone bundles (see the header): npm packages inlined.
const standaloneDir = resolve(buildDir, 'standalone');
const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
const cold = [...new Set(COMMANDS.map((c) => c.module))].filter((m) => !hot.includes(m));

const entries = {
  // The hot commands inlined; the others from nnf-env-commands.cjs, beside it (dist/standalone)
  // or in ../lib/nnf-env (installed), loaded when one runs.
  nnfEnv: entryOf("import { main, registerInlined } from './nnf-env.js';\nimport { NnfEnvError } from '../core/errors.js';", hot, [
    `const cold = ${JSON.stringify(cold)};`,
    'function loadCold(module) {',
    "  const { dirname, join } = require('node:path');",
    "  const candidates = [join(dirname(__filename), 'nnf-env-commands.cjs'), join(dirname(__filename), '..', 'lib', 'nnf-env', 'nnf-env-commands.cjs')];",
    "  const file = candidates.find((f) => require('node:fs').existsSync(f));",
    "  if (file === undefined) throw new NnfEnvError('COMMAND_UNAVAILABLE', `this command's code is missing: none of ${candidates.join(', ')} exists`, { hint: 'reinstall nnf-env' });",
    "  return require('node:module').createRequire(__filename)(file).modules[module]();",
    '}',
    'registerInlined(Object.fromEntries(cold.map((m) => [m, () => loadCold(m)])));',
    'void main(process.argv.slice(2));',
  ].join('\n')),
  nnfEnvCommands: `export const modules = { ${cold.map((m) => `${JSON.stringify(m)}: () => import(${JSON.stringify(m + '.js')})`).join(', ')} };`,
  nnfEnvd: [
    "import { run, registerInlinedDaemon } from './nnf-envd.js';",
    "registerInlinedDaemon(() => import('../daemon/main.js'));",
    'run();',
  ].join('\n'),
};

function entryOf(head, modules, tail) {
  return [head, `registerInlined({ ${modules.map((m) => `${JSON.stringify(m)}: () => import(${JSON.stringify(m + '.js')})`).join(', ')} });`, tail].join('\n');
}

/**
 * `createRequire(import.meta.url)('pkg')` (how the ES modules load a CommonJS package only when
 * a path needs it) becomes a plain require('pkg'), which esbuild follows and inlines; the
 * require still runs only there.
 */
const literalRequires = {
  name: 'literal-requires',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('createRequire(import.meta.url)(')) return undefined;
      return { contents: text.replace(/createRequire\(import\.meta\.url\)\(/g, 'require('), loader: 'js' };
    });
  },
};

async function bundle(name, contents, outfile, standalone, mode = 0o755) {
  const result = await build({
    stdin: { contents, resolveDir: binDir, sourcefile: `${name}-bundle-entry.js`, loader: 'js' },
    outfile,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    ...(standalone
      ? {
          // ws's optional native helpers stay optional (ws falls back to JavaScript without them).
          external: ['bufferutil', 'utf-8-validate'],
          plugins: [literalRequires],
          // Smaller source for V8 to hold and pre-parse (the daemon's RSS, the prolog's start-up);
          // names are kept, so stack traces still say which function.
          minifyWhitespace: true,
          minifySyntax: true,
          define: { 'import.meta.url': '__nnfEnvBundleUrl', __NNF_ENV_BUNDLED__: 'true', __NNF_ENV_VERSION__: JSON.stringify(version) },
        }
      : {
          // npm packages stay require()d from node_modules, as with the unbundled build.
          packages: 'external',
          define: { 'import.meta.url': '__nnfEnvBundleUrl', __NNF_ENV_BUNDLED__: 'true' },
        }),
    // import.meta does not exist in CommonJS: the bundle's own URL, which for the dev bundle is
    // the compiled entry's directory (see above).
    banner: { js: "#!/usr/bin/env node\nconst __nnfEnvBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
    legalComments: 'none',
    logLevel: 'warning',
  });
  // Warnings mean the bundle may behave unlike the ES modules (e.g. an import.meta property other
  // than url is undefined in CommonJS): fail the build instead of shipping that.
  if (result.warnings.length > 0) {
    console.error(`bundle-cli: ${result.warnings.length} warning(s) above; ${outfile} must build cleanly`);
    process.exit(1);
  }
  await chmod(outfile, mode);
}

await mkdir(standaloneDir, { recursive: true });
// nnf-env is a small launcher (scripts/nnf-env-launcher.cjs) that loads the bundle
// nnf-env-main.cjs with a V8 code cache; the cache is made here with this node (the packages and
// `nnf-env install` make it again with the node that runs it).
await bundle('nnf-env', entries.nnfEnv, resolve(standaloneDir, 'nnf-env-main.cjs'), true, 0o644);
{
  // The build id the launcher matches the cache against (V8 itself checks only the length).
  const main = resolve(standaloneDir, 'nnf-env-main.cjs');
  const text = await readFile(main, 'utf8');
  const id = createHash('sha256').update(text).digest('hex').slice(0, 32);
  const nl = text.indexOf('\n') + 1;
  await writeFile(main, `${text.slice(0, nl)}// nnf-env-build ${id}\n${text.slice(nl)}`);
}
await copyFile(new URL('./nnf-env-launcher.cjs', import.meta.url), resolve(standaloneDir, 'nnf-env.cjs'));
await chmod(resolve(standaloneDir, 'nnf-env.cjs'), 0o755);
await rm(resolve(standaloneDir, 'nnf-env-main.cjs.v8cache'), { force: true });
execFileSync(process.execPath, [resolve(standaloneDir, 'nnf-env.cjs'), '--version'], { env: { ...process.env, NNF_ENV_WRITE_CODE_CACHE: '1' }, stdio: ['ignore', 'ignore', 'inherit'] });
await bundle('nnf-env-commands', entries.nnfEnvCommands, resolve(standaloneDir, 'nnf-env-commands.cjs'), true, 0o644);
await bundle('nnf-envd', entries.nnfEnvd, resolve(standaloneDir, 'nnf-envd.cjs'), true);
