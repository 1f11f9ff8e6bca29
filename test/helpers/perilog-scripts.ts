/**
 * The shipped Flux prolog.d / epilog.d scripts, made runnable from a temp dir: the absolute
 * paths `nnf-env install --prefix` rewrites (the nnf-env bin, the shared perilog-lib.sh) point
 * at a stand-in bin and at the repository's own lib, as an install would point them.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

export type PerilogWhich = 'prolog' | 'epilog';

/** The script's text as shipped. */
export function shippedPerilogSource(which: PerilogWhich): Promise<string> {
  return readFile(join(repoRoot, 'etc', 'flux', 'system', `${which}.d`, 'nnf-env'), 'utf8');
}

/** The path the scripts source the shared functions from (absent in a copy: see `lib`). */
export const SHIPPED_LIB = '/usr/local/libexec/nnf-env/perilog-lib.sh';

/**
 * Writes the script to `path` (0755) with NNF_ENV = `nnfEnv` and the lib from the repository
 * (or `lib`, e.g. a path that does not exist). Returns `path`.
 */
export async function writePerilogScript(which: PerilogWhich, path: string, nnfEnv: string, lib = join(repoRoot, 'libexec', 'perilog-lib.sh')): Promise<string> {
  const source = await shippedPerilogSource(which);
  const text = source.replace('/usr/local/bin/nnf-env', nnfEnv).replace(SHIPPED_LIB, lib);
  await writeFile(path, text, { mode: 0o755 });
  return path;
}
