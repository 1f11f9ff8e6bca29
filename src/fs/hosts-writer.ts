/**
 * Keeps the managed `local-rabbit` block of a hosts file (hosts-block.ts decides the content;
 * this file does the I/O):
 * - reads the file (no symlink followed, bounded), plans, and writes only when the content
 *   changes;
 * - writes by temp file + fsync + rename, keeping the file's mode and owner;
 * - where rename cannot work (bind-mounted file: EBUSY; read-only directory: EROFS/EACCES;
 *   EXDEV; owner not keepable), rewrites in place (atomic-file.ts writeFileInPlace: verified,
 *   never empty, never cut short);
 * - never loses a concurrent editor's change: right before the rename (or the in-place
 *   write) the file is read again and compared with what the plan was made from (inode, size,
 *   mtime, ctime, content); if it differs the plan is made again from the new content, up to
 *   `maxTries` times. What remains is the instant between that last check and the rename
 *   itself (microseconds), which no hosts editor's protocol lets us close: there is no lock
 *   that all editors of /etc/hosts take.
 *
 * Renaming replaces the inode: extended attributes, ACLs and SELinux labels of the old file
 * are not carried over (mode and owner are).
 */
import type { BigIntStats } from 'node:fs';
import { pino, type Logger } from 'pino';
import { NnfEnvError } from '../core/errors.js';
import {
  AtomicWriteError,
  cleanupStaleTemps,
  isRenameBlocked,
  readFileNoFollowWithStat,
  writeFileAtomic,
  writeFileInPlace,
} from './atomic-file.js';
import { planHostsFile, readHostsBlock, validateHostsEntry, type HostsConflict, type HostsEntry } from '../domain/hosts-block.js';

export type HostsWriteMethod = 'unchanged' | 'rename' | 'in-place';

export interface HostsApplyResult {
  changed: boolean;
  method: HostsWriteMethod;
  conflicts: HostsConflict[];
  warnings: string[];
  /** How many read-plan-write rounds it took (more than 1: a concurrent edit was merged). */
  tries: number;
}

export interface HostsWriterOptions {
  path: string;
  logger?: Logger;
  /** Largest hosts file accepted. Default 16 MiB. */
  maxBytes?: number;
  /** Read-plan-write rounds before giving up on a file that keeps changing. Default 5. */
  maxTries?: number;
  /** Our temp files older than this beside the hosts file are removed (left by a kill). Default 60 s. */
  staleTempMs?: number;
  /** For tests: runs after planning, before the final check and the write. */
  beforeWrite?: (attempt: number) => Promise<void> | void;
}

export type HostsWriteErrorCode = 'HOSTS_CONCURRENT_EDIT' | 'HOSTS_WOULD_BE_EMPTY';

export class HostsWriteError extends NnfEnvError {
  declare readonly code: HostsWriteErrorCode;
  constructor(code: HostsWriteErrorCode, message: string, hint: string) {
    super(code, message, { hint });
  }
}

interface Snapshot {
  data: Buffer;
  /** null: the file does not exist. */
  stat: BigIntStats | null;
}

function sameFile(a: Snapshot, b: Snapshot): boolean {
  if (a.stat === null || b.stat === null) return a.stat === b.stat;
  return (
    a.stat.ino === b.stat.ino &&
    a.stat.dev === b.stat.dev &&
    a.stat.size === b.stat.size &&
    a.stat.mtimeNs === b.stat.mtimeNs &&
    a.stat.ctimeNs === b.stat.ctimeNs &&
    a.data.equals(b.data)
  );
}

const changedUnderUs = (path: string) => new AtomicWriteError('FILE_CHANGED', path, 'verify', undefined, 'changed since it was read');

export class HostsWriter {
  readonly path: string;
  private readonly logger: Logger;
  private readonly maxBytes: number;
  private readonly maxTries: number;
  private readonly staleTempMs: number;
  private readonly beforeWrite: HostsWriterOptions['beforeWrite'];
  private cleanedTemps = false;
  private loggedFallback = false;
  private lastConflictKey = '';
  /** apply() calls run one at a time: two overlapping ones would each see the other as a concurrent editor. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: HostsWriterOptions) {
    this.path = opts.path;
    this.logger = opts.logger ?? pino({ level: 'silent' });
    this.maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
    this.maxTries = opts.maxTries ?? 5;
    this.staleTempMs = opts.staleTempMs ?? 60_000;
    this.beforeWrite = opts.beforeWrite;
  }

  /** Put `entry` in the managed block (null: remove the block). */
  apply(entry: HostsEntry | null): Promise<HostsApplyResult> {
    const run = this.queue.then(() => this.applyNow(entry));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async applyNow(entry: HostsEntry | null): Promise<HostsApplyResult> {
    const valid = entry === null ? null : validateHostsEntry(entry);
    if (!this.cleanedTemps) {
      this.cleanedTemps = true;
      const removed = await cleanupStaleTemps(this.path, this.staleTempMs);
      if (removed > 0) this.logger.info({ path: this.path, removed }, 'removed temp files left beside the hosts file by an interrupted write');
    }
    for (let attempt = 1; attempt <= this.maxTries; attempt++) {
      const snap = await this.read();
      const plan = planHostsFile(snap.data.toString('latin1'), valid);
      this.report(plan.conflicts, plan.warnings);
      const base = { conflicts: plan.conflicts, warnings: plan.warnings, tries: attempt };
      if (!plan.changed) return { changed: false, method: 'unchanged', ...base };
      const next = Buffer.from(plan.content, 'latin1');
      if (next.length === 0 && snap.data.length > 0) {
        throw new HostsWriteError('HOSTS_WOULD_BE_EMPTY', `${this.path}: removing the managed block would leave the file empty; not written`,
          'the file holds nothing but the nnf-env block; remove it by hand if that is really wanted');
      }
      if (this.beforeWrite) await this.beforeWrite(attempt);
      try {
        const method = await this.write(snap, next);
        this.logger.info({ path: this.path, method, entry: valid, tries: attempt }, valid ? 'hosts entry written' : 'hosts entry removed');
        return { changed: true, method, ...base };
      } catch (err) {
        if (err instanceof AtomicWriteError && err.code === 'FILE_CHANGED') {
          this.logger.info({ path: this.path, attempt }, 'hosts file changed while we were writing it; planning again from the new content');
          continue;
        }
        throw err;
      }
    }
    throw new HostsWriteError('HOSTS_CONCURRENT_EDIT', `${this.path}: the file changed ${this.maxTries} times while nnf-envd tried to update it; not written`,
      'something rewrites the hosts file continuously; stop it, nnf-envd tries again on the next change');
  }

  /** Remove the managed block (only on an explicit admin command, never at shutdown). */
  remove(): Promise<HostsApplyResult> {
    return this.apply(null);
  }

  /** The entry currently in the file's block, or null (no file, no block). */
  async current(): Promise<HostsEntry | null> {
    return readHostsBlock((await this.read()).data.toString('latin1'));
  }

  private async read(): Promise<Snapshot> {
    try {
      return await readFileNoFollowWithStat(this.path, this.maxBytes);
    } catch (err) {
      if (err instanceof AtomicWriteError && err.code === 'FILE_NOT_FOUND') return { data: Buffer.alloc(0), stat: null };
      throw err;
    }
  }

  private async assertUnchanged(snap: Snapshot): Promise<void> {
    if (!sameFile(snap, await this.read())) throw changedUnderUs(this.path);
  }

  private async write(snap: Snapshot, next: Buffer): Promise<'rename' | 'in-place'> {
    const st = snap.stat;
    try {
      await writeFileAtomic(this.path, next, {
        mode: st ? Number(st.mode & 0o7777n) : 0o644,
        ...(st ? { uid: Number(st.uid), gid: Number(st.gid) } : {}),
        beforeRename: () => this.assertUnchanged(snap),
      });
      return 'rename';
    } catch (err) {
      if (!st || !isRenameBlocked(err)) throw err;
      if (!this.loggedFallback) {
        this.loggedFallback = true;
        const e = err as AtomicWriteError;
        this.logger.info({ path: this.path, stage: e.stage, errno: e.errno },
          'hosts file cannot be replaced by rename here (bind mount or read-only directory); writing it in place');
      }
    }
    await this.assertUnchanged(snap);
    await writeFileInPlace(this.path, next, { expected: snap.data, maxBytes: this.maxBytes });
    return 'in-place';
  }

  private report(conflicts: HostsConflict[], warnings: string[]): void {
    const key = JSON.stringify([conflicts, warnings]);
    if (key === this.lastConflictKey) return;
    this.lastConflictKey = key;
    for (const c of conflicts) {
      this.logger.warn({ path: this.path, line: c.line, name: c.name, address: c.address, text: Buffer.from(c.text, 'latin1').toString('utf8') },
        'a line outside the nnf-env block already maps this name; it is left alone (the first line wins in the resolver)');
    }
    for (const w of warnings) this.logger.warn({ path: this.path }, `hosts file: ${w}`);
  }
}
