/**
 * `/etc/local-rabbit.conf`: the compute node's rabbit hostname and a newline, the upstream
 * convention that the nnf-dm copy-offload clients read. Written atomically (mode 0644) and
 * only when the name changes; in place when the directory forbids a rename (the same
 * read-only /etc as for the hosts file). An empty path means the file is not managed.
 */
import { pino, type Logger } from 'pino';
import { NnfEnvError } from '../core/errors.js';
import { isValidHostname } from '../contract/address.js';
import { AtomicWriteError, isRenameBlocked, readFileNoFollow, removeFileNoFollow, writeFileAtomic, writeFileInPlace } from './atomic-file.js';

export interface LocalRabbitConfResult {
  /** The path is '' (LOCAL_RABBIT_CONF empty): nothing done. */
  disabled: boolean;
  changed: boolean;
  method: 'unchanged' | 'rename' | 'in-place' | 'disabled';
}

export class LocalRabbitConfError extends NnfEnvError {
  constructor(message: string) {
    super('INVALID_RABBIT_NAME', message, { hint: 'set RABBIT_NAME to the rabbit\'s host name (letters, digits, inner hyphens, dots)' });
  }
}

/** Larger than any valid host name line; a larger file is not ours and is replaced. */
const MAX_READ = 4096;

/** Make `path` hold `rabbitName` + "\n". */
export async function writeLocalRabbitConf(path: string, rabbitName: string, logger: Logger = pino({ level: 'silent' })): Promise<LocalRabbitConfResult> {
  if (path === '') return { disabled: true, changed: false, method: 'disabled' };
  if (!isValidHostname(rabbitName)) throw new LocalRabbitConfError(`not a valid rabbit host name: ${JSON.stringify(rabbitName)}`);
  const next = Buffer.from(rabbitName + '\n', 'utf8');
  let current: Buffer | null = null;
  try {
    current = await readFileNoFollow(path, MAX_READ);
  } catch (err) {
    // Missing or oversized: (re)write it. A symlink or a directory: refuse (the write says so).
    if (!(err instanceof AtomicWriteError && (err.code === 'FILE_NOT_FOUND' || err.code === 'FILE_TOO_LARGE'))) throw err;
  }
  if (current?.equals(next)) return { disabled: false, changed: false, method: 'unchanged' };
  try {
    await writeFileAtomic(path, next, { mode: 0o644 });
    logger.info({ path, rabbit: rabbitName }, 'local-rabbit.conf written');
    return { disabled: false, changed: true, method: 'rename' };
  } catch (err) {
    if (current === null || !isRenameBlocked(err)) throw err;
  }
  await writeFileInPlace(path, next, { expected: current, maxBytes: MAX_READ });
  logger.info({ path, rabbit: rabbitName, method: 'in-place' }, 'local-rabbit.conf written in place (directory does not allow a rename)');
  return { disabled: false, changed: true, method: 'in-place' };
}

/** Remove the file (explicit admin command only). False when there was none or it is disabled. */
export async function removeLocalRabbitConf(path: string): Promise<boolean> {
  if (path === '') return false;
  return removeFileNoFollow(path);
}
