#!/usr/bin/env node
/**
 * The `nnf-env` bin as shipped: scripts/bundle-cli.mjs bundles this file, with the hot commands
 * (`export`, `get`, `prolog`, `epilog`) and everything they import, into one CommonJS file,
 * dist/src/cli/nnf-env.cjs. On Node 20 every ES module costs about half a millisecond to load
 * and the hot path of these commands needs some twenty of them; one CommonJS file loads
 * in about the time of one, and its npm packages are required only when a path really needs
 * them (see docs/ADMIN-FLUX.md, "Speed").
 *
 * Only the plain invocations that a command's fastPath() accepts run here. Everything else
 * (help, other commands, anything the fast path declines) goes to the ES module entry
 * ./nnf-env.js, unchanged, so that the two never mix module instances: errors thrown here are
 * this bundle's NnfEnvError and are reported here.
 */
import { exitWithError, isMainModule } from './exit.js';

interface FastModule {
  fastPath?: (args: string[]) => Promise<boolean>;
}

// Literal imports, so that the bundler inlines these modules.
const HOT: Readonly<Record<string, () => Promise<FastModule>>> = {
  export: () => import('./commands/export.js'),
  get: () => import('./commands/get.js'),
  prolog: () => import('./commands/prolog.js'),
  epilog: () => import('./commands/epilog.js'),
};

/** Defined (true) by scripts/bundle-cli.mjs in the standalone bundle, which has everything in one file. */
declare const __NNF_ENV_STANDALONE__: boolean | undefined;

/**
 * The ES module entry's main(); imported by URL so that the bundler leaves it outside. The
 * standalone bundle (packages: no node_modules, no ES module tree) includes it instead.
 */
async function delegate(argv: string[]): Promise<void> {
  if (typeof __NNF_ENV_STANDALONE__ !== 'undefined' && __NNF_ENV_STANDALONE__) {
    const { main } = await import('./nnf-env.js');
    return main(argv);
  }
  const entry = new URL('./nnf-env.js', import.meta.url).href;
  const { main } = (await import(entry)) as typeof import('./nnf-env.js');
  await main(argv);
}

export async function fastMain(argv: string[]): Promise<void> {
  const name = argv[0];
  const load = name !== undefined && Object.prototype.hasOwnProperty.call(HOT, name) ? HOT[name] : undefined;
  if (load) {
    try {
      const mod = await load();
      if (typeof mod.fastPath === 'function' && (await mod.fastPath(argv.slice(1)))) return;
    } catch (err) {
      // As ./nnf-env.ts reports a command's error: `nnf-env <command>: message (hint)`.
      exitWithError(`nnf-env ${name}`, err);
    }
  }
  await delegate(argv);
}

// Run when executed (the bundle as the bin, or this file), not when a test imports fastMain().
if (isMainModule(import.meta.url)) void fastMain(process.argv.slice(2));
