/**
 * Crash-safe file writes for root-owned directories that other people can name files in
 * (runtime directory, /etc, an install prefix): never follow a symlink, never show a reader a
 * partial file.
 *
 * - writeFileAtomic: the one writer. One step sequence (writeAtomically): temp file beside the
 *   target (O_EXCL|O_NOFOLLOW), owner and mode set before any content, write, fsync, rename
 *   over the target, fsync the directory. A reader sees the old file or the new one, also after
 *   SIGKILL or power loss at any instant. The steps run over one of two tables of system calls
 *   (./file-calls.ts): through libuv's thread pool with the fsyncs, or, in a directory on
 *   tmpfs/ramfs (/run), synchronously without them (see isPersistentDir).
 *   What may sit at the target is the publish mode: 'replace' (default: a regular file or
 *   nothing; a symlink is refused), 'replace-any' (anything but a directory is replaced, a
 *   symlink itself and never what it points to: install's files), 'no-clobber'
 *   (writeFileNoClobber: link(2) instead of rename, never replaces anything).
 * - writeFileInPlace: the fallback for files that cannot be renamed over (a bind-mounted
 *   /etc/hosts: EBUSY; a read-only /etc with the file itself writable: EROFS). Not atomic;
 *   ordered so the file is never empty and never shorter than the new content (see there).
 * - readFileNoFollow / removeFileNoFollow: the matching reads and removals.
 *
 * Only the last path component is protected against symlinks: Node has no openat(), so the
 * directories on the way must be trusted (root-owned, not writable by others), which is
 * what the daemon checks for its runtime directory.
 */
import { randomBytes } from 'node:crypto';
import { constants as C, type BigIntStats } from 'node:fs';
import { lstat, open, readdir, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { NnfEnvError, errnoCode } from '../core/errors.js';
import { SYNCHRONOUS, THREAD_POOL, type FileCalls } from './file-calls.js';

export type FileStage =
  | 'check-target'
  | 'create-temp'
  | 'chown'
  | 'chmod'
  | 'write'
  | 'fsync'
  | 'close'
  | 'rename'
  | 'link'
  | 'fsync-dir'
  | 'open'
  | 'read'
  | 'truncate'
  | 'verify'
  | 'remove';

export type AtomicFileCode =
  | 'SYMLINK_REFUSED'
  | 'NOT_REGULAR_FILE'
  | 'FILE_NOT_FOUND'
  | 'FILE_TOO_LARGE'
  | 'FILE_CHANGED'
  | 'EMPTY_WRITE_REFUSED'
  | 'WRITE_FAILED'
  | 'READ_FAILED'
  | 'REMOVE_FAILED';

const HINTS: Record<AtomicFileCode, string> = {
  SYMLINK_REFUSED: 'a symlink sits where a file was expected; remove it (nnf-env never writes through symlinks) or configure the real path',
  NOT_REGULAR_FILE: 'the path names a directory, device or FIFO; remove it or configure another path',
  FILE_NOT_FOUND: 'the file does not exist',
  FILE_TOO_LARGE: 'the file is larger than nnf-env accepts; check what wrote it',
  FILE_CHANGED: 'another program changed the file at the same moment; the write is retried from the new content',
  EMPTY_WRITE_REFUSED: 'nnf-env refuses to empty a non-empty file; this is a bug, please report it',
  WRITE_FAILED: 'check that the directory exists, is writable by nnf-envd and has free space',
  READ_FAILED: 'check the file\'s permissions',
  REMOVE_FAILED: 'check the directory\'s permissions',
};

export class AtomicWriteError extends NnfEnvError {
  declare readonly code: AtomicFileCode;
  readonly path: string;
  readonly stage: FileStage;
  /** The system error behind it (EBUSY, EROFS, ...), if any. */
  readonly errno: string | undefined;

  constructor(code: AtomicFileCode, path: string, stage: FileStage, cause?: unknown, detail?: string) {
    const errno = errnoCode(cause);
    const what = detail ?? (errno ? `${stage} failed with ${errno}` : `${stage} failed`);
    super(code, `${path}: ${what}`, { hint: HINTS[code], cause });
    this.path = path;
    this.stage = stage;
    this.errno = errno;
  }
}

/** Temp files end with this; `cleanupStaleTemps` removes only such names. */
const TEMP_SUFFIX = '.nnf-tmp';

function tempPrefix(target: string): string {
  // Keep the name within NAME_MAX (255) whatever the target's name.
  return `.${basename(target).slice(0, 200)}.`;
}

/**
 * Unique temp names: random per process, then a counter (O_EXCL refuses any clash anyway).
 * Not random per file: that was a measurable part of a write on tmpfs (getrandom each time).
 */
const TEMP_ID = randomBytes(6).toString('hex');
let tempSeq = 0;

function tempPathFor(target: string): string {
  return join(dirname(target), `${tempPrefix(target)}${TEMP_ID}${(tempSeq++).toString(36)}${TEMP_SUFFIX}`);
}

/**
 * What the write may replace at the target (see the file comment). 'no-clobber' is
 * writeFileNoClobber's, which says whether it wrote.
 */
export type Publish = 'replace' | 'replace-any' | 'no-clobber';

export interface WriteAtomicOptions {
  mode: number;
  uid?: number;
  gid?: number;
  /**
   * fsync the directory after the rename, so the rename itself survives power loss. Default
   * true. A caller that writes many files into few directories (install) passes false and
   * calls syncDirectory once per directory.
   */
  fsyncDir?: boolean;
  /**
   * Whether the directory's files survive a reboot. 'auto' (default): isPersistentDir. When
   * not (tmpfs), no fsync is made (it cannot make anything durable there) and the write is
   * done with synchronous system calls; the rename still makes it all-or-nothing.
   */
  persistent?: boolean | 'auto';
  /** What may be replaced at the target. Default 'replace'. */
  publish?: Exclude<Publish, 'no-clobber'>;
  /**
   * Called after the temp file is complete and synced, immediately before the rename. Throwing
   * aborts the write (temp file removed, the error passes through). The hosts writer uses it
   * to check for a concurrent editor as late as possible.
   */
  beforeRename?: () => Promise<void> | void;
}

/** The caller's beforeRename failed: its error passes through as it is, not as a write failure. */
class HookFailure {
  constructor(readonly cause: unknown) {}
}

async function runBeforeRename(opts: WriteAtomicOptions): Promise<void> {
  if (!opts.beforeRename) return;
  try {
    await opts.beforeRename();
  } catch (err) {
    throw new HookFailure(err);
  }
}

/** statfs f_type of the filesystems whose files live in memory only. */
const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;
const persistentDirs = new Map<string, Promise<boolean>>();

/**
 * Whether files in `dir` survive a reboot: false on tmpfs and ramfs (/run, /dev/shm), true
 * otherwise and when statfs fails (the safe side: fsync). Asked once per directory and cached
 * for the process's life (the daemon's directories do not change filesystem under it).
 *
 * Why it matters: on tmpfs fsync is meaningless, and every system call is a memory operation
 * that never waits for a device; made synchronously it costs microseconds, where each
 * round trip through libuv's thread pool costs the event loop far more. With 100 jobs
 * delivered at once, ~2,400 round trips made every job finish last (BENCHMARKS.md).
 */
export function isPersistentDir(dir: string): Promise<boolean> {
  let known = persistentDirs.get(dir);
  if (!known) {
    if (persistentDirs.size >= 256) persistentDirs.clear();
    known = statfs(dir).then(
      (st) => st.type !== TMPFS_MAGIC && st.type !== RAMFS_MAGIC,
      () => true,
    );
    persistentDirs.set(dir, known);
  }
  return known;
}

async function writeAll(sys: FileCalls, fd: number, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const n = await sys.write(fd, data, done, data.length - done, position + done);
    if (n <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    done += n;
  }
}

async function fsyncDirectory(sys: FileCalls, dir: string): Promise<void> {
  const fd = await sys.open(dir, C.O_RDONLY | C.O_DIRECTORY);
  try {
    await sys.fsync(fd);
  } catch (err) {
    // Some filesystems cannot fsync a directory; the rename is then as durable as they allow.
    if (errnoCode(err) !== 'EINVAL' && errnoCode(err) !== 'ENOTSUP') throw err;
  } finally {
    await sys.close(fd);
  }
}

/**
 * fsync `dir`, so that renames made in it with `fsyncDir: false` survive power loss. Nothing
 * on tmpfs (as writeFileAtomic).
 */
export async function syncDirectory(dir: string): Promise<void> {
  if (!(await isPersistentDir(dir))) return;
  try {
    await fsyncDirectory(THREAD_POOL, dir);
  } catch (err) {
    throw new AtomicWriteError('WRITE_FAILED', dir, 'fsync-dir', err);
  }
}

/**
 * Replace `path` with `data` atomically. With the default publish mode the target, if it
 * exists, must be a regular file: a symlink is refused (SYMLINK_REFUSED), never followed or
 * replaced; 'replace-any' replaces whatever is there but a directory. Between the check and
 * the rename a symlink could still be planted, but rename() replaces the link itself and never
 * writes through it, so the race cannot redirect the write.
 */
export async function writeFileAtomic(path: string, data: string | Buffer, opts: WriteAtomicOptions): Promise<void> {
  await writeAtomically(path, data, opts, opts.publish ?? 'replace');
}

/**
 * writeFileAtomic that never replaces anything: the complete temp file is published with
 * link(tmp, path), which fails with EEXIST whatever exists at `path` (file, symlink, anything;
 * never followed), then the temp name is removed. Atomic like the rename: a reader sees no file
 * or the whole new one. Returns false when something exists at `path` (nothing written, temp
 * file removed); a later writeFileAtomic replaces what this wrote, as intended.
 */
export async function writeFileNoClobber(path: string, data: string | Buffer, opts: Omit<WriteAtomicOptions, 'publish'>): Promise<boolean> {
  return writeAtomically(path, data, opts, 'no-clobber');
}

/**
 * Whether the publish mode allows the write over what is at `path` now (lstat: never
 * followed). False only for 'no-clobber' with something there; a refusal throws.
 */
async function targetAllows(sys: FileCalls, path: string, publish: Publish, stage: FileStage): Promise<boolean> {
  let st;
  try {
    st = await sys.lstat(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return true;
    throw new AtomicWriteError('WRITE_FAILED', path, stage, err);
  }
  if (publish === 'no-clobber') return false;
  if (st.isDirectory()) throw new AtomicWriteError('NOT_REGULAR_FILE', path, stage, undefined, 'is a directory');
  if (publish === 'replace-any') return true;
  if (st.isSymbolicLink()) throw new AtomicWriteError('SYMLINK_REFUSED', path, stage, undefined, 'is a symlink; refusing to replace it');
  if (!st.isFile()) throw new AtomicWriteError('NOT_REGULAR_FILE', path, stage, undefined, 'is not a regular file');
  return true;
}

/** link(tmp, path) then drop the temp name; false (temp removed) when `path` exists. */
async function linkNoClobber(sys: FileCalls, tmp: string, path: string): Promise<boolean> {
  try {
    await sys.link(tmp, path);
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
    await sys.unlink(tmp);
    return false;
  }
  try {
    await sys.unlink(tmp);
  } catch {
    // Published already; a leftover temp name is cleanupStaleTemps' business.
  }
  return true;
}

/** The one step sequence of every atomic write (see the file comment). */
async function writeAtomically(path: string, data: string | Buffer, opts: WriteAtomicOptions, publish: Publish): Promise<boolean> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const persistent = opts.persistent ?? 'auto';
  const durable = persistent === 'auto' ? await isPersistentDir(dirname(path)) : persistent;
  // Where fsync means nothing, nothing waits for a device either: no thread-pool round trips.
  const sys = durable ? THREAD_POOL : SYNCHRONOUS;
  if (!(await targetAllows(sys, path, publish, 'check-target'))) return false;

  const tmp = tempPathFor(path);
  let fd: number | undefined;
  let tempExists = false;
  let stage: FileStage = 'create-temp';
  try {
    fd = await sys.open(tmp, C.O_CREAT | C.O_EXCL | C.O_WRONLY | C.O_NOFOLLOW, 0o600);
    tempExists = true;
    if (opts.uid !== undefined || opts.gid !== undefined) {
      stage = 'chown';
      await sys.fchown(fd, opts.uid ?? -1, opts.gid ?? -1);
    }
    // After chown: chown clears set-id bits, the mode must be exactly what was asked.
    stage = 'chmod';
    await sys.fchmod(fd, opts.mode);
    stage = 'write';
    await writeAll(sys, fd, bytes, 0);
    if (durable) {
      stage = 'fsync';
      await sys.fsync(fd);
    }
    stage = 'close';
    const closing = fd;
    fd = undefined;
    await sys.close(closing);
    await runBeforeRename(opts);
    if (publish === 'no-clobber') {
      stage = 'link';
      const linked = await linkNoClobber(sys, tmp, path);
      tempExists = false; // the temp name is gone either way
      if (!linked) return false;
    } else {
      stage = 'rename';
      await targetAllows(sys, path, publish, 'rename');
      await sys.rename(tmp, path);
      tempExists = false;
    }
    if (durable && opts.fsyncDir !== false) {
      stage = 'fsync-dir';
      await fsyncDirectory(sys, dirname(path));
    }
    return true;
  } catch (err) {
    if (fd !== undefined) {
      try {
        await sys.close(fd);
      } catch {
        // Already failing; the first error is the one to report.
      }
    }
    if (tempExists) {
      try {
        await sys.unlink(tmp);
      } catch {
        // Gone already.
      }
    }
    if (err instanceof HookFailure) throw err.cause;
    if (err instanceof NnfEnvError) throw err;
    throw new AtomicWriteError('WRITE_FAILED', path, stage, err);
  }
}

/**
 * Whether a failed writeFileAtomic means "rename cannot work here" (as opposed to a full disk
 * or a missing directory), so that an in-place write is the right fallback:
 * - temp file not creatable: read-only directory (EROFS: ProtectSystem=strict with
 *   ReadWritePaths=/etc/hosts; EACCES/EPERM: directory not writable by us);
 * - owner not keepable on a new file (EPERM when not root);
 * - rename refused: EBUSY (the target is a mount point: bind-mounted /etc/hosts in
 *   containers), EXDEV, EROFS, EACCES, EPERM.
 */
export function isRenameBlocked(err: unknown): boolean {
  if (!(err instanceof AtomicWriteError) || err.code !== 'WRITE_FAILED' || !err.errno) return false;
  switch (err.stage) {
    case 'create-temp':
      return ['EROFS', 'EACCES', 'EPERM'].includes(err.errno);
    case 'chown':
      return err.errno === 'EPERM';
    case 'rename':
      return ['EBUSY', 'EXDEV', 'EROFS', 'EACCES', 'EPERM'].includes(err.errno);
    default:
      return false;
  }
}

export interface FileWithStat {
  data: Buffer;
  /** fstat of the file that was read (bigint: nanosecond mtime for change detection). */
  stat: BigIntStats;
}

async function openNoFollow(path: string, flags: number, stage: FileStage): Promise<FileHandle> {
  try {
    // O_NONBLOCK: opening a FIFO planted at the path must not hang us; no effect on files.
    return await open(path, flags | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ELOOP') throw new AtomicWriteError('SYMLINK_REFUSED', path, stage, err, 'is a symlink; refusing to follow it');
    if (code === 'ENOENT') throw new AtomicWriteError('FILE_NOT_FOUND', path, stage, err, 'does not exist');
    throw new AtomicWriteError(stage === 'open' ? 'READ_FAILED' : 'WRITE_FAILED', path, stage, err);
  }
}

async function readAllFrom(fh: FileHandle, path: string, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(buf, 0, buf.length, total));
    } catch (err) {
      throw new AtomicWriteError('READ_FAILED', path, 'read', err);
    }
    if (bytesRead === 0) break;
    total += bytesRead;
    // Checked while reading, not from fstat alone: the file may grow while we read it.
    if (total > maxBytes) throw new AtomicWriteError('FILE_TOO_LARGE', path, 'read', undefined, `is larger than ${maxBytes} bytes`);
    chunks.push(Buffer.from(buf.subarray(0, bytesRead)));
  }
  return Buffer.concat(chunks, total);
}

async function statRegular(fh: FileHandle, path: string): Promise<BigIntStats> {
  const st = await fh.stat({ bigint: true });
  if (!st.isFile()) throw new AtomicWriteError('NOT_REGULAR_FILE', path, 'open', undefined, 'is not a regular file');
  return st;
}

/** Read a regular file of at most `maxBytes`, refusing a symlink at `path`, with its fstat. */
export async function readFileNoFollowWithStat(path: string, maxBytes: number): Promise<FileWithStat> {
  const fh = await openNoFollow(path, C.O_RDONLY, 'open');
  try {
    const stat = await statRegular(fh, path);
    if (stat.size > BigInt(maxBytes)) throw new AtomicWriteError('FILE_TOO_LARGE', path, 'read', undefined, `is larger than ${maxBytes} bytes`);
    const data = await readAllFrom(fh, path, maxBytes);
    return { data, stat };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Read a regular file of at most `maxBytes`, refusing a symlink at `path`. */
export async function readFileNoFollow(path: string, maxBytes: number): Promise<Buffer> {
  return (await readFileNoFollowWithStat(path, maxBytes)).data;
}

/**
 * Remove the directory entry at `path` without following it (unlink never does: a planted
 * symlink is removed itself, its target untouched). Returns false when there was nothing.
 */
export async function removeFileNoFollow(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw new AtomicWriteError('REMOVE_FAILED', path, 'remove', err);
  }
}

/**
 * Remove temp files a killed writer left beside `target` (only our own `.name.*.nnf-tmp`
 * names, only regular files, only older than `olderThanMs` so a concurrent writer's live
 * temp file is spared). Returns how many were removed.
 */
export async function cleanupStaleTemps(target: string, olderThanMs: number, now = Date.now()): Promise<number> {
  const dir = dirname(target);
  const prefix = tempPrefix(target);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith(TEMP_SUFFIX)) continue;
    const p = join(dir, name);
    try {
      const st = await lstat(p);
      if (!st.isFile() || now - st.mtimeMs < olderThanMs) continue;
      await unlink(p);
      removed++;
    } catch {
      // Gone already or not ours to remove: nothing to clean.
    }
  }
  return removed;
}

export interface WriteInPlaceOptions {
  /** The content the caller planned from; if the file now holds anything else: FILE_CHANGED. */
  expected?: Buffer;
  /** Largest file accepted when reading it back. Default 64 MiB. */
  maxBytes?: number;
}

export interface WriteInPlaceResult {
  /** Bytes rewritten (from the first differing byte on). */
  bytesWritten: number;
  truncated: boolean;
}

function commonPrefixLength(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * Rewrite `path` in place (same inode: works on a bind-mounted file and in a read-only
 * directory) with `next`, in an order that never leaves the file empty or shorter than `next`:
 *
 *   1. open r+ (no O_TRUNC, no O_CREAT, no symlink), check the content is `expected`;
 *   2. write only from the first byte that differs (the unchanged prefix is never touched:
 *      appending a block to /etc/hosts is one write past the old end);
 *   3. ftruncate only if `next` is shorter, and only after it is completely written
 *      (removing a block at the end is one truncate and nothing else);
 *   4. fsync, read back through the same descriptor and compare; then check the path still
 *      names this inode (an editor may have renamed a new file over it meanwhile).
 *
 * The window that remains, stated honestly: this is not atomic. A reader that reads during
 * step 2 of a write larger than a page may see a mix of old and new bytes; between steps 2
 * and 3 of a shrinking rewrite, the file is the new content followed by the last
 * (old - new) bytes of the old content (a fragment of an old line, harmless in a hosts file
 * as the earlier full line wins); a crash (power loss) before the fsync may keep either or a
 * mix at page granularity. The file is never empty and never cut below the new length.
 */
export async function writeFileInPlace(path: string, next: Buffer, opts: WriteInPlaceOptions = {}): Promise<WriteInPlaceResult> {
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
  const fh = await openNoFollow(path, C.O_RDWR, 'open');
  try {
    const st = await statRegular(fh, path);
    const current = await readAllFrom(fh, path, Math.max(maxBytes, next.length));
    if (opts.expected && !current.equals(opts.expected)) {
      throw new AtomicWriteError('FILE_CHANGED', path, 'read', undefined, 'changed since it was read');
    }
    if (next.length === 0 && current.length > 0) {
      throw new AtomicWriteError('EMPTY_WRITE_REFUSED', path, 'write', undefined, 'would become empty; refused');
    }
    const from = commonPrefixLength(current, next);
    const bytesWritten = next.length - from;
    try {
      if (bytesWritten > 0) await writeAll(THREAD_POOL, fh.fd, next.subarray(from), from);
    } catch (err) {
      throw new AtomicWriteError('WRITE_FAILED', path, 'write', err);
    }
    const truncated = next.length < current.length;
    try {
      if (truncated) await fh.truncate(next.length);
    } catch (err) {
      throw new AtomicWriteError('WRITE_FAILED', path, 'truncate', err);
    }
    try {
      await fh.sync();
    } catch (err) {
      throw new AtomicWriteError('WRITE_FAILED', path, 'fsync', err);
    }
    const back = await readAllFrom(fh, path, Math.max(maxBytes, next.length));
    if (!back.equals(next)) {
      throw new AtomicWriteError('FILE_CHANGED', path, 'verify', undefined, 'content differs from what was written (a concurrent writer?)');
    }
    let now;
    try {
      now = await lstat(path, { bigint: true });
    } catch (err) {
      throw new AtomicWriteError('FILE_CHANGED', path, 'verify', err, 'vanished while being written');
    }
    if (now.ino !== st.ino || now.dev !== st.dev) {
      throw new AtomicWriteError('FILE_CHANGED', path, 'verify', undefined, 'was replaced by another file while being written');
    }
    return { bytesWritten, truncated };
  } finally {
    await fh.close().catch(() => undefined);
  }
}
