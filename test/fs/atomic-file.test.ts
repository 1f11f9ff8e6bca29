import { execFileSync, spawnSync } from 'node:child_process';
import { lstat, mkdir, readFile, readdir, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  AtomicWriteError,
  cleanupStaleTemps,
  isPersistentDir,
  isRenameBlocked,
  readFileNoFollow,
  readFileNoFollowWithStat,
  removeFileNoFollow,
  writeFileAtomic,
  writeFileInPlace,
  writeFileNoClobber,
} from '../../src/fs/atomic-file.js';
import { builtModule, childEnv, mountNamespaceUnavailable, runInMountNamespace } from './mount-namespace.js';

async function rejectsWith(t: Test, p: Promise<unknown>, code: string, msg: string): Promise<AtomicWriteError | undefined> {
  try {
    await p;
    t.fail(`${msg}: did not throw`);
    return undefined;
  } catch (err) {
    t.ok(err instanceof AtomicWriteError && err.code === code, `${msg}: ${code} (got ${(err as Error).message})`);
    return err as AtomicWriteError;
  }
}

const tempsIn = async (dir: string) => (await readdir(dir)).filter((n) => n.endsWith('.nnf-tmp'));

// Both ways of writing: fsync through the thread pool (disk), synchronous without fsync (tmpfs).
for (const persistent of [true, false]) {
  const p = { persistent };
  const label = persistent ? 'persistent dir' : 'memory dir (tmpfs path)';

  t.test(`${label}: writes content with the exact mode and owner`, async (t) => {
    const dir = t.testdir();
    const f = join(dir, 'job.env');
    const old = process.umask(0o077);
    try {
      await writeFileAtomic(f, 'A=1\n', { ...p, mode: 0o644 });
    } finally {
      process.umask(old);
    }
    t.equal(await readFile(f, 'utf8'), 'A=1\n');
    t.equal((await stat(f)).mode & 0o7777, 0o644, 'mode set exactly despite umask 077');
    const ino = (await stat(f)).ino;
    await writeFileAtomic(f, 'C=3\n', { ...p, mode: 0o600, fsyncDir: false });
    t.not((await stat(f)).ino, ino, 'replaced by rename (new inode)');
    t.same(await tempsIn(dir), [], 'no temp file left');
  });

  t.test(`${label}: owner and group applied (as root)`, { skip: process.getuid?.() === 0 ? false : 'owner change needs root (CI runs as root)' }, async (t) => {
    const dir = t.testdir({ f: 'A=1\n' });
    const f = join(dir, 'f');
    await writeFileAtomic(f, Buffer.from('B=2\n'), { ...p, mode: 0o600, uid: 1234, gid: 5678 });
    const st = await stat(f);
    t.equal(st.uid, 1234);
    t.equal(st.gid, 5678);
    t.equal(st.mode & 0o7777, 0o600);
    t.equal(await readFile(f, 'utf8'), 'B=2\n');
    await writeFileAtomic(f, 'C=3\n', { ...p, mode: 0o6755, uid: 1234 });
    t.equal((await stat(f)).mode & 0o7777, 0o6755, 'set-id bits survive (chmod after chown)');
    t.equal((await stat(f)).gid, 0, 'gid not given: the creator\'s');
  });

  t.test(`${label}: a symlink at the target is refused, never followed or replaced`, async (t) => {
    const dir = t.testdir({ victim: 'precious\n' });
    const link = join(dir, 'job.json');
    await symlink(join(dir, 'victim'), link);
    const err = await rejectsWith(t, writeFileAtomic(link, 'evil', { ...p, mode: 0o600 }), 'SYMLINK_REFUSED', 'symlink target');
    t.ok(err?.hint, 'has a hint');
    t.equal(await readFile(join(dir, 'victim'), 'utf8'), 'precious\n', 'victim untouched');
    t.ok((await lstat(link)).isSymbolicLink(), 'link still there');
    t.same(await tempsIn(dir), [], 'no temp file left');

    // Planted between the check and the rename: refused at the last moment, temp file removed.
    const f = join(dir, 'late');
    await rejectsWith(
      t,
      writeFileAtomic(f, 'x', { ...p, mode: 0o600, beforeRename: () => symlink(join(dir, 'victim'), f) }),
      'SYMLINK_REFUSED',
      'symlink planted late',
    );
    t.equal(await readFile(join(dir, 'victim'), 'utf8'), 'precious\n');
    t.same(await tempsIn(dir), [], 'no temp file left');

    await mkdir(join(dir, 'adir'));
    await rejectsWith(t, writeFileAtomic(join(dir, 'adir'), 'x', { ...p, mode: 0o600 }), 'NOT_REGULAR_FILE', 'directory target');
  });

  t.test(`${label}: publish 'replace-any' replaces a symlink itself, never what it points to`, async (t) => {
    const dir = t.testdir({ victim: 'precious\n', outside: {} });
    const link = join(dir, 'nnf-env');
    await symlink(join(dir, 'victim'), link);
    await writeFileAtomic(link, '#!/bin/sh\n', { ...p, mode: 0o755, publish: 'replace-any' });
    const st = await lstat(link);
    t.ok(st.isFile(), 'a regular file where the symlink was');
    t.equal(st.mode & 0o7777, 0o755);
    t.equal(await readFile(link, 'utf8'), '#!/bin/sh\n');
    t.equal(await readFile(join(dir, 'victim'), 'utf8'), 'precious\n', 'what it pointed to is untouched');

    // A dangling symlink (into a directory of someone else's choosing): nothing created there.
    const dangling = join(dir, 'dangling');
    await symlink(join(dir, 'outside', 'planted'), dangling);
    await writeFileAtomic(dangling, 'x\n', { ...p, mode: 0o644, publish: 'replace-any' });
    t.ok((await lstat(dangling)).isFile(), 'the dangling link replaced');
    t.same(await readdir(join(dir, 'outside')), [], 'nothing created through it');

    // Planted between the check and the rename: rename replaces the link, still not followed.
    const late = join(dir, 'late');
    await writeFileAtomic(late, 'new\n', { ...p, mode: 0o644, publish: 'replace-any', beforeRename: () => symlink(join(dir, 'victim'), late) });
    t.ok((await lstat(late)).isFile());
    t.equal(await readFile(join(dir, 'victim'), 'utf8'), 'precious\n');

    await mkdir(join(dir, 'adir'));
    await rejectsWith(t, writeFileAtomic(join(dir, 'adir'), 'x', { ...p, mode: 0o644, publish: 'replace-any' }), 'NOT_REGULAR_FILE', 'a directory is never replaced');
    t.same(await tempsIn(dir), [], 'no temp file left');
  });

  t.test(`${label}: temp file removed on any failure; beforeRename errors pass through`, async (t) => {
    const dir = t.testdir({ target: 'old\n' });
    const f = join(dir, 'target');
    const boom = new Error('boom');
    await t.rejects(writeFileAtomic(f, 'new\n', { ...p, mode: 0o644, beforeRename: () => { throw boom; } }), boom);
    t.equal(await readFile(f, 'utf8'), 'old\n', 'target untouched');
    t.same(await tempsIn(dir), [], 'temp removed after hook failure');

    const missing = join(dir, 'no-such-dir', 'x');
    const err = await rejectsWith(t, writeFileAtomic(missing, 'x', { ...p, mode: 0o644 }), 'WRITE_FAILED', 'missing directory');
    t.equal(err?.stage, 'create-temp');
    t.equal(err?.errno, 'ENOENT');
    t.notOk(isRenameBlocked(err), 'a missing directory is not a reason to write in place');
  });

  t.test(`${label}: writeFileNoClobber never replaces anything; writeFileAtomic replaces what it wrote`, async (t) => {
    const dir = t.testdir({ 'taken.env': 'DAEMON=1\n', target: 'T\n' });
    const taken = join(dir, 'taken.env');
    const before = await stat(taken);
    t.equal(await writeFileNoClobber(taken, 'NOTICE=1\n', { ...p, mode: 0o644 }), false, 'existing target: reported as not written');
    t.equal(await readFile(taken, 'utf8'), 'DAEMON=1\n', 'content untouched');
    const after = await stat(taken);
    t.equal(after.ino, before.ino, 'same inode');
    t.equal(after.mode & 0o7777, before.mode & 0o7777, 'mode untouched');
    t.equal(after.nlink, 1, 'no extra link to it');
    t.same(await tempsIn(dir), [], 'temp file cleaned up');

    // The target appears between the check and the publish (the daemon delivers): link(2)
    // answers EEXIST, reported as not written; the newcomer untouched, the temp file removed.
    const racing = join(dir, 'racing.env');
    const raced = await writeFileNoClobber(racing, 'NOTICE=1\n', {
      ...p,
      mode: 0o600,
      beforeRename: () => writeFileAtomic(racing, 'DAEMON=1\n', { ...p, mode: 0o640 }),
    });
    t.equal(raced, false, 'EEXIST from link: not written');
    t.equal(await readFile(racing, 'utf8'), 'DAEMON=1\n', 'the file written meanwhile is untouched');
    t.equal((await stat(racing)).mode & 0o7777, 0o640);
    t.same(await tempsIn(dir), [], 'temp file cleaned up after EEXIST');

    // A symlink (even a dangling one) is something: not written, not followed.
    const link = join(dir, 'link.env');
    await symlink(join(dir, 'target'), link);
    t.equal(await writeFileNoClobber(link, 'X=1\n', { ...p, mode: 0o600 }), false, 'symlink at the target: not written');
    t.equal(await readlink(link), join(dir, 'target'), 'the symlink is left as it is');
    t.equal(await readFile(join(dir, 'target'), 'utf8'), 'T\n', 'its target untouched');
    const dangling = join(dir, 'dangling.env');
    await symlink(join(dir, 'nowhere'), dangling);
    t.equal(await writeFileNoClobber(dangling, 'X=1\n', { ...p, mode: 0o600 }), false, 'dangling symlink: not written');
    await t.rejects(lstat(join(dir, 'nowhere')), { code: 'ENOENT' }, 'nothing created through it');

    // Free target: written with the exact mode (and owner as root), one link, no temp left.
    const fresh = join(dir, 'fresh.env');
    const owner = process.getuid?.() === 0 ? { uid: 1234, gid: 5678 } : {};
    t.equal(await writeFileNoClobber(fresh, 'N=1\n', { ...p, mode: 0o600, ...owner }), true, 'written');
    const st = await stat(fresh);
    t.equal(await readFile(fresh, 'utf8'), 'N=1\n');
    t.equal(st.mode & 0o7777, 0o600);
    t.equal(st.nlink, 1, 'the temp name is gone');
    if (process.getuid?.() === 0) t.same([st.uid, st.gid], [1234, 5678]);
    t.same(await tempsIn(dir), [], 'no temp file left');

    // The later atomic write (the daemon's) replaces it.
    await writeFileAtomic(fresh, 'DAEMON=2\n', { ...p, mode: 0o600 });
    t.equal(await readFile(fresh, 'utf8'), 'DAEMON=2\n');
  });
}

t.test('disk full mid-write: error, old file intact, no temp left (tmpfs in a mount namespace)', { skip: mountNamespaceUnavailable() ?? false }, async (t) => {
  const dir = t.testdir({ small: {} });
  const small = join(dir, 'small');
  const r = await runInMountNamespace(dir, 'enospc.mjs', `
    import { execFileSync } from 'node:child_process';
    import { writeFileSync, readFileSync, readdirSync } from 'node:fs';
    const { writeFileAtomic, isPersistentDir } = await import(${JSON.stringify(builtModule('atomic-file'))});
    const dir = ${JSON.stringify(small)};
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
    writeFileSync(dir + '/f', 'old\\n');
    const outs = [];
    // 'auto' (tmpfs: the synchronous path), then the fsync path forced on the same tmpfs.
    for (const persistent of ['auto', true]) {
      let out;
      try { await writeFileAtomic(dir + '/f', Buffer.alloc(1024 * 1024, 65), { mode: 0o644, persistent }); out = { ok: true }; }
      catch (e) { out = { code: e.code, stage: e.stage, errno: e.errno }; }
      out.content = readFileSync(dir + '/f', 'utf8');
      out.files = readdirSync(dir);
      outs.push(out);
    }
    console.log(JSON.stringify({ outs, persistent: await isPersistentDir(dir) }));
  `);
  t.equal(r.code, 0, r.stderr);
  const { outs, persistent } = JSON.parse(r.stdout);
  t.equal(persistent, false, 'tmpfs is seen as not persistent');
  const full = { code: 'WRITE_FAILED', stage: 'write', errno: 'ENOSPC', content: 'old\n', files: ['f'] };
  t.same(outs, [full, full]);
});

t.test('failures after the temp file exists: old file intact, no temp left (read-only and mount-point targets)', { skip: mountNamespaceUnavailable() ?? false }, async (t) => {
  const dir = t.testdir({ ro: { f: 'old\n' }, mnt: { f: 'old\n' }, src: 'bind source\n' });
  const r = await runInMountNamespace(dir, 'faults.mjs', `
    import { execFileSync } from 'node:child_process';
    import { readFileSync, readdirSync } from 'node:fs';
    const { writeFileAtomic, isRenameBlocked } = await import(${JSON.stringify(builtModule('atomic-file'))});
    const dir = ${JSON.stringify(dir)};
    // A read-only directory (root ignores permission bits; a read-only mount it cannot).
    execFileSync('mount', ['--bind', dir + '/ro', dir + '/ro']);
    execFileSync('mount', ['-o', 'remount,bind,ro', dir + '/ro']);
    // A target that is a mount point: the temp file is made, written, synced; rename says EBUSY.
    execFileSync('mount', ['--bind', dir + '/src', dir + '/mnt/f']);
    const outs = [];
    for (const [sub, persistent] of [['ro', true], ['ro', false], ['mnt', true], ['mnt', false]]) {
      let out;
      try { await writeFileAtomic(dir + '/' + sub + '/f', 'new\\n', { mode: 0o644, persistent, publish: 'replace-any' }); out = { ok: true }; }
      catch (e) { out = { code: e.code, stage: e.stage, errno: e.errno, blocked: isRenameBlocked(e) }; }
      out.content = readFileSync(dir + '/' + sub + '/f', 'utf8');
      out.files = readdirSync(dir + '/' + sub);
      outs.push(out);
    }
    console.log(JSON.stringify(outs));
  `);
  t.equal(r.code, 0, r.stderr);
  const outs = JSON.parse(r.stdout);
  const readOnly = { code: 'WRITE_FAILED', stage: 'create-temp', errno: 'EROFS', blocked: true, content: 'old\n', files: ['f'] };
  const busy = { code: 'WRITE_FAILED', stage: 'rename', errno: 'EBUSY', blocked: true, content: 'bind source\n', files: ['f'] };
  t.same(outs, [readOnly, readOnly, busy, busy], 'both tables: the error named, the old content kept, the temp file removed');
});

/** The system calls of one child process's writes into `dir`, as strace -f -y saw them. */
async function tracedWrites(t: Test, dir: string, persistent: boolean): Promise<{ pid: number; calls: Array<{ pid: number; name: string; line: string }> }> {
  const script = join(dir, 'traced.mjs');
  await writeFile(script, `
    const { writeFileAtomic } = await import(${JSON.stringify(builtModule('atomic-file'))});
    await writeFileAtomic(${JSON.stringify(join(dir, 'out', 'job.env'))}, 'A=1\\n', { mode: 0o600, persistent: ${persistent} });
    console.log(process.pid);
  `);
  const traceFile = join(dir, `trace-${persistent}`);
  const r = spawnSync('strace', ['-f', '-y', '-qq', '-o', traceFile, '-e', 'trace=openat,fchmod,fchown,pwrite64,write,fsync,fdatasync,close,rename,renameat,renameat2,unlink,unlinkat', process.execPath, script], { encoding: 'utf8', env: childEnv(), timeout: 30_000 });
  t.equal(r.status, 0, r.stderr);
  const pid = Number(r.stdout.trim());
  const out = join(dir, 'out');
  const calls = (await readFile(traceFile, 'utf8')).split('\n')
    // A call another thread interrupts is two lines: keep the first (its arguments), not `<... resumed>`.
    .filter((line) => line.includes(out) && !line.includes(' resumed>'))
    .map((line) => {
      const m = /^(\d+)\s+(?:<\.\.\. )?(\w+)/.exec(line);
      return { pid: Number(m?.[1]), name: (m?.[2] ?? '?').replace(/^renameat2?$/, 'rename'), line };
    });
  return { pid, calls };
}

t.test('the step sequence as the kernel sees it: fsync of the file before the rename, of the directory once after; none on tmpfs', { skip: spawnSync('strace', ['-V']).status === 0 ? false : 'needs strace' }, async (t) => {
  const dir = t.testdir({ out: {} });
  const durable = await tracedWrites(t, dir, true);
  t.same(durable.calls.map((c) => c.name), ['openat', 'fchmod', 'pwrite64', 'fsync', 'close', 'rename', 'openat', 'fsync', 'close'], durable.calls.map((c) => c.line).join('\n'));
  const [create, , , fileSync, , rename, openDir, dirSync] = durable.calls;
  t.match(create?.line, /O_WRONLY\|O_CREAT\|O_EXCL\|O_NOFOLLOW/, 'temp file: exclusive, no symlink followed');
  t.match(fileSync?.line, /\.job\.env\.\w+\.nnf-tmp>\)/, 'the temp file is fsynced');
  t.match(rename?.line, /\.nnf-tmp", .*"[^"]*\/out\/job\.env"/, 'then renamed over the target');
  t.match(openDir?.line, /O_DIRECTORY/);
  // strace pads the pid column (`6032  fsync(` for a 4-digit pid): match the call, not the spacing.
  t.ok(/^\d+\s+fsync\(/.test(dirSync?.line ?? '') && dirSync?.line.includes(`<${join(dir, 'out')}>)`), 'then the directory is fsynced');
  t.ok(durable.calls.some((c) => c.pid !== durable.pid), 'the durable path runs in the thread pool');

  await rm(join(dir, 'out', 'job.env'));
  const memory = await tracedWrites(t, dir, false);
  t.same(memory.calls.map((c) => c.name), ['openat', 'fchmod', 'pwrite64', 'close', 'rename'], memory.calls.map((c) => c.line).join('\n'));
  t.ok(memory.calls.every((c) => c.pid === memory.pid), 'the memory path makes every call on the main thread');
  t.equal(await readFile(join(dir, 'out', 'job.env'), 'utf8'), 'A=1\n');
});

t.test('isPersistentDir: true on failure (the safe side) and for procfs', async (t) => {
  t.equal(await isPersistentDir(join(t.testdir(), 'no-such-dir')), true, 'statfs fails: fsync');
  t.equal(await isPersistentDir('/proc'), true);
});

t.test('readFileNoFollow', async (t) => {
  const dir = t.testdir({ f: 'hello\n', big: 'x'.repeat(5000) });
  t.equal((await readFileNoFollow(join(dir, 'f'), 100)).toString(), 'hello\n');
  const { stat: st } = await readFileNoFollowWithStat(join(dir, 'f'), 100);
  t.equal(st.size, 6n);
  await symlink(join(dir, 'f'), join(dir, 'l'));
  await rejectsWith(t, readFileNoFollow(join(dir, 'l'), 100), 'SYMLINK_REFUSED', 'symlink');
  await rejectsWith(t, readFileNoFollow(join(dir, 'big'), 4999), 'FILE_TOO_LARGE', 'too large');
  t.equal((await readFileNoFollow(join(dir, 'big'), 5000)).length, 5000, 'exactly the limit is fine');
  await rejectsWith(t, readFileNoFollow(join(dir, 'nope'), 100), 'FILE_NOT_FOUND', 'missing');
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  await rejectsWith(t, readFileNoFollow(join(dir, 'fifo'), 100), 'NOT_REGULAR_FILE', 'a FIFO does not hang the reader');
  await rejectsWith(t, readFileNoFollow(dir, 100), 'NOT_REGULAR_FILE', 'directory');
});

t.test('removeFileNoFollow', async (t) => {
  const dir = t.testdir({ f: 'x', victim: 'keep' });
  t.equal(await removeFileNoFollow(join(dir, 'f')), true);
  t.equal(await removeFileNoFollow(join(dir, 'f')), false, 'ENOENT is fine');
  await symlink(join(dir, 'victim'), join(dir, 'l'));
  t.equal(await removeFileNoFollow(join(dir, 'l')), true, 'the link itself is removed');
  t.equal(await readFile(join(dir, 'victim'), 'utf8'), 'keep', 'its target is not');
  await mkdir(join(dir, 'd'));
  await rejectsWith(t, removeFileNoFollow(join(dir, 'd')), 'REMOVE_FAILED', 'directory');
});

t.test('cleanupStaleTemps removes only our old temp files', async (t) => {
  const dir = t.testdir({
    '.hosts.0011223344556677.nnf-tmp': 'old',
    '.hosts.8899aabbccddeeff.nnf-tmp': 'fresh',
    '.other.0011223344556677.nnf-tmp': 'someone else',
    'hosts.nnf-tmp': 'not our pattern',
    hosts: 'h',
  });
  const past = new Date(Date.now() - 3600_000);
  await utimes(join(dir, '.hosts.0011223344556677.nnf-tmp'), past, past);
  await utimes(join(dir, '.other.0011223344556677.nnf-tmp'), past, past);
  t.equal(await cleanupStaleTemps(join(dir, 'hosts'), 60_000), 1);
  t.same((await readdir(dir)).sort(), ['.hosts.8899aabbccddeeff.nnf-tmp', '.other.0011223344556677.nnf-tmp', 'hosts', 'hosts.nnf-tmp']);
});

t.test('writeFileInPlace', async (t) => {
  const dir = t.testdir({ f: 'line one\nline two\n' });
  const f = join(dir, 'f');
  const ino = (await stat(f)).ino;
  const grown = Buffer.from('line one\nline two\nline three\n');
  t.same(await writeFileInPlace(f, grown, { expected: Buffer.from('line one\nline two\n') }), { bytesWritten: 11, truncated: false }, 'only the new tail is written');
  t.equal(await readFile(f, 'utf8'), 'line one\nline two\nline three\n');
  t.same(await writeFileInPlace(f, Buffer.from('line one\n')), { bytesWritten: 0, truncated: true }, 'a shrink to a prefix is a single truncate');
  t.equal(await readFile(f, 'utf8'), 'line one\n');
  await writeFileInPlace(f, Buffer.from('LINE\n'));
  t.equal(await readFile(f, 'utf8'), 'LINE\n');
  t.equal((await stat(f)).ino, ino, 'same inode throughout');

  await rejectsWith(t, writeFileInPlace(f, Buffer.from('x\n'), { expected: Buffer.from('something else\n') }), 'FILE_CHANGED', 'concurrent change detected');
  t.equal(await readFile(f, 'utf8'), 'LINE\n', 'not written');
  await rejectsWith(t, writeFileInPlace(f, Buffer.alloc(0)), 'EMPTY_WRITE_REFUSED', 'never empties a file');
  t.equal(await readFile(f, 'utf8'), 'LINE\n');
  await symlink(f, join(dir, 'l'));
  await rejectsWith(t, writeFileInPlace(join(dir, 'l'), Buffer.from('x')), 'SYMLINK_REFUSED', 'symlink');
  await rejectsWith(t, writeFileInPlace(join(dir, 'nope'), Buffer.from('x')), 'FILE_NOT_FOUND', 'never creates');
  t.equal(await readlink(join(dir, 'l')), f);
});

t.test('isRenameBlocked', async (t) => {
  const e = (stage: ConstructorParameters<typeof AtomicWriteError>[2], code: string) =>
    new AtomicWriteError('WRITE_FAILED', '/x', stage, Object.assign(new Error(code), { code }));
  t.ok(isRenameBlocked(e('rename', 'EBUSY')));
  t.ok(isRenameBlocked(e('rename', 'EXDEV')));
  t.ok(isRenameBlocked(e('create-temp', 'EROFS')));
  t.ok(isRenameBlocked(e('create-temp', 'EACCES')));
  t.ok(isRenameBlocked(e('chown', 'EPERM')));
  t.notOk(isRenameBlocked(e('write', 'ENOSPC')));
  t.notOk(isRenameBlocked(e('create-temp', 'ENOENT')));
  t.notOk(isRenameBlocked(new Error('x')));
});
