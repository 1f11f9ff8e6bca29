/**
 * Where the running nnf-env package lives (a checkout, an npm install, or the copy that
 * `nnf-env install` made) and its version. Found by walking up from the compiled file, which
 * works from dist/, a private build directory and an installed lib/nnf-env alike.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PackageInfo {
  root: string;
  name: string;
  version: string;
}

/** The nearest directory above `fromFile` holding nnf-env's package.json. */
export function findPackageInfo(fromFile: string = fileURLToPath(import.meta.url)): PackageInfo | null {
  for (let dir = dirname(fromFile); ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
        if (pkg.name === 'nnf-env') return { root: dir, name: pkg.name, version: String(pkg.version ?? '0.0.0') };
      } catch {
        // not ours or unreadable: keep looking further up
      }
    }
    if (dirname(dir) === dir) return null;
  }
}

/** Defined by scripts/bundle-cli.mjs in the standalone bundles, which have no package.json beside them. */
declare const __NNF_ENV_VERSION__: string | undefined;

export function packageVersion(): string {
  if (typeof __NNF_ENV_VERSION__ === 'string') return __NNF_ENV_VERSION__;
  return findPackageInfo()?.version ?? 'unknown';
}
