/**
 * The system calls an atomic write makes, as two tables with one shape: THREAD_POOL (libuv's
 * thread pool, the event loop never waits for a device) and SYNCHRONOUS (made on the calling
 * thread: for tmpfs, where a call is a memory operation and the round trip through the pool
 * would cost more than the call). atomic-file.ts runs its one step sequence over either.
 *
 * File descriptors, not FileHandles: the same numbers in both tables, and the steps are the
 * system calls themselves (open, fchown, fchmod, write, fsync, close, rename, link, unlink).
 */
import {
  close,
  closeSync,
  fchmod,
  fchmodSync,
  fchown,
  fchownSync,
  fsync,
  fsyncSync,
  link,
  linkSync,
  lstat,
  lstatSync,
  open,
  openSync,
  rename,
  renameSync,
  unlink,
  unlinkSync,
  write,
  writeSync,
  type Stats,
} from 'node:fs';

/** A result now (SYNCHRONOUS) or later (THREAD_POOL); the steps await either. */
type Result<T> = T | Promise<T>;

export interface FileCalls {
  lstat(path: string): Result<Stats>;
  open(path: string, flags: number, mode?: number): Result<number>;
  fchown(fd: number, uid: number, gid: number): Result<void>;
  fchmod(fd: number, mode: number): Result<void>;
  /** Bytes written (may be fewer than asked). */
  write(fd: number, data: Buffer, offset: number, length: number, position: number): Result<number>;
  fsync(fd: number): Result<void>;
  close(fd: number): Result<void>;
  rename(from: string, to: string): Result<void>;
  link(existing: string, newPath: string): Result<void>;
  unlink(path: string): Result<void>;
}

type Callback<T> = (err: NodeJS.ErrnoException | null, value: T) => void;

/** One callback-style call as a promise. */
function pooled<T>(call: (done: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => call((err, value) => (err ? reject(err) : resolve(value))));
}

export const THREAD_POOL: FileCalls = {
  lstat: (path) => pooled((done) => lstat(path, done)),
  open: (path, flags, mode) => pooled((done) => open(path, flags, mode, done)),
  fchown: (fd, uid, gid) => pooled<void>((done) => fchown(fd, uid, gid, (err) => done(err, undefined))),
  fchmod: (fd, mode) => pooled<void>((done) => fchmod(fd, mode, (err) => done(err, undefined))),
  write: (fd, data, offset, length, position) => pooled((done) => write(fd, data, offset, length, position, (err, n) => done(err, n))),
  fsync: (fd) => pooled<void>((done) => fsync(fd, (err) => done(err, undefined))),
  close: (fd) => pooled<void>((done) => close(fd, (err) => done(err, undefined))),
  rename: (from, to) => pooled<void>((done) => rename(from, to, (err) => done(err, undefined))),
  link: (existing, newPath) => pooled<void>((done) => link(existing, newPath, (err) => done(err, undefined))),
  unlink: (path) => pooled<void>((done) => unlink(path, (err) => done(err, undefined))),
};

export const SYNCHRONOUS: FileCalls = {
  lstat: (path) => lstatSync(path),
  open: (path, flags, mode) => openSync(path, flags, mode),
  fchown: fchownSync,
  fchmod: fchmodSync,
  write: (fd, data, offset, length, position) => writeSync(fd, data, offset, length, position),
  fsync: fsyncSync,
  close: closeSync,
  rename: renameSync,
  link: linkSync,
  unlink: unlinkSync,
};
