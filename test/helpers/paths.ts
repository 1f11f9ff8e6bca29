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

/** ../shared/fixtures beside the checkout (CI lays shared/ next to the clone). */
export const fixturesDir = process.env.NNF_ENV_FIXTURES ?? resolve(repoRoot, '..', 'shared', 'fixtures');

export function fixture(name: string): string {
  return join(fixturesDir, name);
}

/** The built CLIs, for tests that run them as a user would. */
export const nnfEnvBin = join(buildRoot, 'src', 'cli', 'nnf-env.js');
export const nnfEnvdBin = join(buildRoot, 'src', 'cli', 'nnf-envd.js');
