import { readFile } from 'node:fs/promises';
import { pino, type Logger } from 'pino';
import { errnoCode } from '../core/errors.js';
import { KubeConfigError } from './errors.js';

export interface TokenSourceOptions {
  /** A static token (kubeconfig `token`). Wins over tokenFile. */
  token?: string;
  /** A token file (projected service-account tokens rotate, so it is re-read). */
  tokenFile?: string;
  /** Re-read the file at most this often. Default 60 s. */
  refreshMs?: number;
  now?: () => number;
  logger?: Logger;
}

/**
 * The bearer token for requests: static, or a file re-read at most every `refreshMs` and on
 * demand (after a 401). The token itself is never logged.
 */
export class TokenSource {
  private current: string | undefined;
  private readAt = -Infinity;
  private pending: Promise<string | undefined> | undefined;
  private readonly refreshMs: number;
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly file: string | undefined;

  constructor(opts: TokenSourceOptions = {}) {
    this.refreshMs = opts.refreshMs ?? 60_000;
    if (!(this.refreshMs >= 0)) throw new RangeError(`refreshMs must be >= 0 (got ${opts.refreshMs})`);
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger ?? pino({ level: 'silent' });
    this.current = opts.token;
    this.file = opts.token === undefined ? opts.tokenFile : undefined;
  }

  /** Whether a forced re-read can produce a different token. */
  get refreshable(): boolean {
    return this.file !== undefined;
  }

  /** The token to send now; undefined for anonymous access. */
  async get(): Promise<string | undefined> {
    if (this.file === undefined) return this.current;
    if (this.current !== undefined && this.now() - this.readAt < this.refreshMs) return this.current;
    return this.read();
  }

  /** Re-reads the token file now (after a 401). Resolves true when the token changed. */
  async forceRefresh(): Promise<boolean> {
    if (this.file === undefined) return false;
    const before = this.current;
    const after = await this.read();
    return after !== before;
  }

  /** One read at a time; concurrent callers share it. */
  private read(): Promise<string | undefined> {
    this.pending ??= this.readFile().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async readFile(): Promise<string | undefined> {
    const file = this.file!;
    let problem: string;
    let cause: unknown;
    try {
      const token = (await readFile(file, 'utf8')).trim();
      if (token !== '') {
        if (this.current !== undefined && token !== this.current) this.logger.info({ tokenFile: file }, 'token file changed: using the new token');
        this.current = token;
        this.readAt = this.now();
        return token;
      }
      problem = 'is empty';
    } catch (err) {
      cause = err;
      problem = errnoCode(err) === 'ENOENT' ? 'does not exist' : `cannot be read (${errnoCode(err) ?? String(err)})`;
    }
    if (this.current !== undefined) {
      // A rotation in progress or a transient glitch: keep the last good token, try again soon.
      this.logger.warn({ tokenFile: file }, `token file ${problem}; keeping the previous token`);
      this.readAt = this.now();
      return this.current;
    }
    throw new KubeConfigError('KUBE_TOKEN_FILE_UNREADABLE', `token file ${file} ${problem}`, { hint: 'check KUBE_TOKEN_FILE / tokenFile and its permissions', cause });
  }
}
