/**
 * How both entry points end on an error: an NnfEnvError is one line (`<prefix>: message (hint)`)
 * and its exitCode (default 1); anything else is a bug: message, stack, exit 70.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isNnfEnvError } from '../core/errors.js';

/** sysexits.h EX_SOFTWARE: a bug, not a problem the user can fix. */
export const EXIT_INTERNAL = 70;

export function exitCodeOf(err: unknown): number | undefined {
  const code = (err as { exitCode?: unknown } | null)?.exitCode;
  return typeof code === 'number' && Number.isInteger(code) && code >= 0 && code < 256 ? code : undefined;
}

export function exitWithError(prefix: string, err: unknown): never {
  if (isNnfEnvError(err)) {
    process.stderr.write(`${prefix}: ${err.describe()}\n`);
    process.exit(exitCodeOf(err) ?? 1);
  }
  const message = err instanceof Error ? err.message : String(err);
  const stack = err instanceof Error && err.stack ? err.stack.split('\n').slice(1).join('\n') : '';
  process.stderr.write(`${prefix}: internal error: ${message}\n${stack ? stack + '\n' : ''}`);
  process.exit(EXIT_INTERNAL);
}

/** True when `moduleUrl` is the script node was started with (also through npm's bin symlink). */
export function isMainModule(moduleUrl: string): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
