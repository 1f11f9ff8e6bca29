import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the compiled tree this test runs from (dist/ or a private .build/<name>/). */
export const buildRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src'))) return dir;
    if (dirname(dir) === dir) return process.cwd();
  }
}

/** The checkout (where package.json, etc/ and systemd/ live). */
export const repoRoot = findRepoRoot(buildRoot);

/** The repository's own fixtures (test/fixtures/, read from the checkout, not the build). */
export const fixturesDir = join(repoRoot, 'test', 'fixtures');

export function fixture(name: string): string {
  return join(fixturesDir, name);
}

/**
 * The built CLIs, for tests that run them as a user would. nnf-env's bin is the bundle that
 * `npm run build` makes after tsc (scripts/bundle-cli.mjs); a tsc-only build (a private
 * .build/<name>/) has just the ES module entry, which behaves the same.
 */
export const nnfEnvEsmEntry = join(buildRoot, 'src', 'bin', 'nnf-env.js');
export const nnfEnvBundle = join(buildRoot, 'src', 'bin', 'nnf-env.cjs');

/**
 * NNF_ENV_TEST_INSTALLED_ROOT: a directory a package was unpacked into (test/package/ sets it
 * for the full-path e2e test): the bins and the shell plugin are then the package's, not the
 * dev tree's.
 */
export const installedRoot: string | undefined = process.env.NNF_ENV_TEST_INSTALLED_ROOT || undefined;

export const nnfEnvBin = installedRoot ? join(installedRoot, 'usr', 'bin', 'nnf-env') : existsSync(nnfEnvBundle) ? nnfEnvBundle : nnfEnvEsmEntry;
export const nnfEnvdBin = installedRoot ? join(installedRoot, 'usr', 'sbin', 'nnf-envd') : join(buildRoot, 'src', 'bin', 'nnf-envd.js');
/** The standalone bundles (scripts/bundle-cli.mjs) that the packages and `nnf-env install` ship. */
export const standaloneDir = join(buildRoot, 'standalone');
