import { execFileSync, spawn } from 'node:child_process';
import { chmod, chown, readFile, readdir, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { AtomicWriteError } from '../../src/fs/atomic-file.js';
import { renderHostsBlock, type HostsEntry } from '../../src/domain/hosts-block.js';
import { HostsWriteError, HostsWriter } from '../../src/fs/hosts-writer.js';
import { builtModule, childEnv, mountNamespaceUnavailable, runInMountNamespace } from './mount-namespace.js';

const BASE = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n# admin comment\n';
const A: HostsEntry = { address: '10.0.0.1', names: ['local-rabbit'] };
const B: HostsEntry = { address: 'fd00::abcd:1234', names: ['local-rabbit', 'rabbit-node-1'] };
const A2: HostsEntry = { address: '10.0.0.2', names: ['local-rabbit'] }; // same length as A
const withBlock = (base: string, e: HostsEntry) => base + renderHostsBlock(e);
const mountWhy = mountNamespaceUnavailable();
async function rejectsCode(t: Test, p: Promise<unknown>, cls: Function, code: string): Promise<void> {
  try {
    await p;
    t.fail(`expected ${code}`);
  } catch (err) {
    t.ok(err instanceof cls && (err as { code?: string }).code === code, `${code} (got ${(err as Error).message})`);
  }
}
const tempsIn = async (dir: string) => (await readdir(dir)).filter((n) => n.endsWith('.nnf-tmp'));

t.test('rename path keeps mode and owner, writes only on change', async (t) => {
  const dir = t.testdir({ hosts: BASE });
  const path = join(dir, 'hosts');
  await chmod(path, 0o640);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await chown(path, 1234, 5678);
  const before = await stat(path);
  const w = new HostsWriter({ path });

  const r1 = await w.apply(A);
  t.same({ changed: r1.changed, method: r1.method, tries: r1.tries }, { changed: true, method: 'rename', tries: 1 });
  t.equal(await readFile(path, 'utf8'), withBlock(BASE, A));
  const after = await stat(path);
  t.not(after.ino, before.ino, 'replaced by rename (new inode)');
  t.equal(after.mode & 0o7777, 0o640, 'mode kept');
  if (asRoot) t.same([after.uid, after.gid], [1234, 5678], 'owner kept');
  else t.comment('owner check skipped: needs root (CI runs as root)');

  const r2 = await w.apply(A);
  t.same({ changed: r2.changed, method: r2.method }, { changed: false, method: 'unchanged' });
  t.equal((await stat(path)).ino, after.ino, 'unchanged: same inode');
  t.equal((await stat(path)).mtimeMs, after.mtimeMs, 'unchanged: not written');

  t.same((await w.apply(B)).method, 'rename');
  t.equal(await readFile(path, 'utf8'), withBlock(BASE, B));
  t.same(await w.current(), B);
  t.same((await w.remove()).method, 'rename');
  t.equal(await readFile(path, 'utf8'), BASE, 'remove restores the original bytes');
  t.equal(await w.current(), null);
  t.same(await tempsIn(dir), []);
});

t.test('missing file is created (0644); removing from a missing file does nothing', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'hosts');
  const w = new HostsWriter({ path });
  t.same((await w.remove()).method, 'unchanged');
  await t.rejects(stat(path), { code: 'ENOENT' });
  t.same((await w.apply(A)).method, 'rename');
  t.equal(await readFile(path, 'utf8'), renderHostsBlock(A));
  t.equal((await stat(path)).mode & 0o7777, 0o644);
});

t.test('refusals: symlink, file that would become empty, invalid entry', async (t) => {
  const dir = t.testdir({ real: BASE, only: renderHostsBlock(A) });
  await symlink(join(dir, 'real'), join(dir, 'hosts'));
  await rejectsCode(t, new HostsWriter({ path: join(dir, 'hosts') }).apply(A), AtomicWriteError, 'SYMLINK_REFUSED');
  t.equal(await readFile(join(dir, 'real'), 'utf8'), BASE, 'link target untouched');

  await rejectsCode(t, new HostsWriter({ path: join(dir, 'only') }).remove(), HostsWriteError, 'HOSTS_WOULD_BE_EMPTY');
  t.equal(await readFile(join(dir, 'only'), 'utf8'), renderHostsBlock(A), 'not emptied');

  await t.rejects(new HostsWriter({ path: join(dir, 'real') }).apply({ address: 'nope', names: ['x'] }), { code: 'INVALID_HOSTS_ADDRESS' });
});

t.test('bytes outside the block survive exactly: binary junk, CRLF, no final newline, 1 MB', async (t) => {
  const junk = Buffer.concat([
    Buffer.from([0xef, 0xbb, 0xbf]),
    Buffer.from('127.0.0.1 localhost\r\n# caf\u00e9 \u2615\r\n'),
    Buffer.from([0x23, 0x20, 0xff, 0xfe, 0x80, 0x0d, 0x0a]), // invalid UTF-8 in a comment
    Buffer.from('10.1.2.3 filler-host # padding line\r\n'.repeat(30_000)), // ~1 MB
    Buffer.from('10.9.9.9 local-rabbit'), // admin entry for our name, no final newline
  ]);
  const dir = t.testdir({});
  const path = join(dir, 'hosts');
  await writeFile(path, junk);
  const w = new HostsWriter({ path });
  const r = await w.apply(A);
  t.equal(r.conflicts.length, 1, 'the admin entry is reported');
  t.equal(r.conflicts[0]?.address, '10.9.9.9');
  const written = await readFile(path);
  t.ok(written.subarray(0, junk.length).equals(junk), 'every original byte kept');
  t.match(written.subarray(junk.length).toString(), /^\r\n# BEGIN nnf-env managed block .*\r\n10\.0\.0\.1\tlocal-rabbit\r\n# END nnf-env managed block .*\r\n$/);
  await w.remove();
  t.ok((await readFile(path)).equals(junk), 'remove gives back the exact bytes');
});

t.test('a concurrent editor between read and write is never lost', async (t) => {
  const dir = t.testdir({ hosts: BASE });
  const path = join(dir, 'hosts');
  const w = new HostsWriter({
    path,
    beforeWrite: (attempt) => {
      // Another process edits the file after we planned, before we write.
      if (attempt === 1) execFileSync('sh', ['-c', `printf '10.5.5.5 admin-added\\n' >> '${path}'`]);
      if (attempt === 2) execFileSync('sed', ['-i', 's/admin comment/admin comment, edited by sed -i/', path]); // replaces the inode
      return undefined;
    },
  });
  const r = await w.apply(A);
  t.equal(r.tries, 3, 'planned again twice');
  t.equal(await readFile(path, 'utf8'), withBlock(BASE.replace('admin comment', 'admin comment, edited by sed -i') + '10.5.5.5 admin-added\n', A));

  const always = new HostsWriter({
    path,
    maxTries: 3,
    beforeWrite: (attempt) => {
      execFileSync('sh', ['-c', `printf '# edit ${attempt}\\n' >> '${path}'`]);
    },
  });
  await rejectsCode(t, always.apply(B), HostsWriteError, 'HOSTS_CONCURRENT_EDIT');
  const content = await readFile(path, 'utf8');
  t.ok(content.endsWith('# edit 1\n# edit 2\n# edit 3\n'), 'every edit kept');
  t.ok(content.includes('10.0.0.1\tlocal-rabbit'), 'our previous entry kept, B not written over the edits');
});

t.test('overlapping apply() calls of one writer run one after the other', async (t) => {
  const dir = t.testdir({ hosts: BASE });
  const w = new HostsWriter({ path: join(dir, 'hosts') });
  const results = await Promise.all([w.apply(A), w.apply(B), w.apply(A2)]);
  t.same(results.map((r) => [r.method, r.tries]), [['rename', 1], ['rename', 1], ['rename', 1]]);
  t.equal(await readFile(join(dir, 'hosts'), 'utf8'), withBlock(BASE, A2), 'the last call wins');
  await t.rejects(w.apply({ address: 'bad', names: ['x'] }), { code: 'INVALID_HOSTS_ADDRESS' });
  t.same((await w.apply(A2)).method, 'unchanged', 'a failed call does not block the queue');
});

t.test('stale temp files of a killed writer are removed on the first apply', async (t) => {
  const dir = t.testdir({ hosts: BASE, '.hosts.0123456789abcdef.nnf-tmp': 'partial' });
  const past = new Date(Date.now() - 3600_000);
  await utimes(join(dir, '.hosts.0123456789abcdef.nnf-tmp'), past, past);
  await new HostsWriter({ path: join(dir, 'hosts') }).apply(A);
  t.same(await tempsIn(dir), []);
});

t.test('conflicts and broken blocks are logged once', async (t) => {
  const lines: Array<{ msg: string; level: number }> = [];
  const sink = new Writable({ write(chunk, _e, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
  const dir = t.testdir({ hosts: BASE + '10.7.7.7 local-rabbit\n# BEGIN nnf-env managed block\n' });
  const w = new HostsWriter({ path: join(dir, 'hosts'), logger: pino({ level: 'info' }, sink) });
  await w.apply(A);
  await w.apply(A);
  await new Promise((r) => setImmediate(r));
  const warns = lines.filter((l) => l.level === 40);
  t.equal(warns.length, 2, JSON.stringify(warns.map((l) => l.msg)));
});

t.test('bind-mounted file (rename gives EBUSY): written in place', { skip: mountWhy ?? false }, async (t) => {
  const dir = t.testdir({ real: BASE, hosts: 'placeholder\n' });
  const r = await runInMountNamespace(dir, 'ebusy.mjs', `
    import { execFileSync } from 'node:child_process';
    import { readFileSync } from 'node:fs';
    const { HostsWriter } = await import(${JSON.stringify(builtModule('hosts-writer'))});
    const dir = ${JSON.stringify(dir)};
    execFileSync('mount', ['--bind', dir + '/real', dir + '/hosts']);
    const w = new HostsWriter({ path: dir + '/hosts' });
    const out = [];
    for (const e of [${JSON.stringify(A)}, ${JSON.stringify(B)}, ${JSON.stringify(B)}, null]) {
      const r = await w.apply(e);
      out.push({ method: r.method, content: readFileSync(dir + '/hosts', 'utf8') });
    }
    console.log(JSON.stringify(out));
  `);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Array<{ method: string; content: string }>;
  t.same(out.map((o) => o.method), ['in-place', 'in-place', 'unchanged', 'in-place']);
  t.equal(out[0]?.content, withBlock(BASE, A));
  t.equal(out[1]?.content, withBlock(BASE, B));
  t.equal(out[3]?.content, BASE);
  t.equal(await readFile(join(dir, 'real'), 'utf8'), BASE, 'the bind source (same inode) holds the result');
  t.equal(await readFile(join(dir, 'hosts'), 'utf8'), 'placeholder\n', 'the file under the mount was never touched');
  t.same(await tempsIn(dir), [], 'no temp file left behind');
});

t.test('read-only directory with the file writable (ProtectSystem=strict + ReadWritePaths): written in place', { skip: mountWhy ?? false }, async (t) => {
  const dir = t.testdir({ etc: { hosts: BASE } });
  const etc = join(dir, 'etc');
  const r = await runInMountNamespace(dir, 'rodir.mjs', `
    import { execFileSync } from 'node:child_process';
    import { readFileSync, writeFileSync } from 'node:fs';
    const { HostsWriter } = await import(${JSON.stringify(builtModule('hosts-writer'))});
    const etc = ${JSON.stringify(etc)};
    const sh = (...a) => execFileSync('mount', a);
    sh('--bind', etc, etc); sh('-o', 'remount,bind,ro', etc);
    sh('--bind', etc + '/hosts', etc + '/hosts'); sh('-o', 'remount,bind,rw', etc + '/hosts');
    let roCheck; try { writeFileSync(etc + '/probe', 'x'); roCheck = 'writable'; } catch (e) { roCheck = e.code; }
    const w = new HostsWriter({ path: etc + '/hosts' });
    const r1 = await w.apply(${JSON.stringify(A)});
    const c1 = readFileSync(etc + '/hosts', 'utf8');
    const r2 = await w.apply(${JSON.stringify(A2)});
    const c2 = readFileSync(etc + '/hosts', 'utf8');
    console.log(JSON.stringify({ roCheck, m1: r1.method, c1, m2: r2.method, c2 }));
  `);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.equal(out.roCheck, 'EROFS', 'the directory really is read-only');
  t.same([out.m1, out.m2], ['in-place', 'in-place']);
  t.equal(out.c1, withBlock(BASE, A));
  t.equal(out.c2, withBlock(BASE, A2));
  t.equal(await readFile(join(etc, 'hosts'), 'utf8'), withBlock(BASE, A2));
  t.same(await readdir(etc), ['hosts']);
});

/** Kill a child that applies entries in a loop, 20 times at random moments; the file must always be one whole version. */
async function crashLoop(t: Test, opts: { label: string; check: string; valid: string[]; spawnArgs: () => [string, string[]]; kills: number }) {
  const seen = new Map<string, number>();
  let midWrite = 0; // kills that left a temp file: they landed between temp creation and rename
  for (let i = 0; i < opts.kills; i++) {
    const [cmd, args] = opts.spawnArgs();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: childEnv() });
    // Wait until it is looping, then a random moment more.
    const started = await new Promise<boolean>((resolve) => {
      child.stdout.once('data', () => resolve(true));
      child.once('exit', () => resolve(false));
    });
    if (!started) {
      t.fail(`${opts.label}, kill ${i}: the writer loop died before it started`);
      return;
    }
    await new Promise((r) => setTimeout(r, Math.random() * 40));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const content = await readFile(opts.check, 'latin1');
    const which = opts.valid.indexOf(content);
    if (which < 0 || content.length === 0) {
      t.fail(`${opts.label}, kill ${i}: file is not a whole version`, { content: JSON.stringify(content) });
      return;
    }
    seen.set(String(which), (seen.get(String(which)) ?? 0) + 1);
    if ((await tempsIn(dirname(opts.check))).length > 0) midWrite++;
  }
  t.pass(`${opts.label}: ${opts.kills} kills, file always whole; versions seen at kill time: ${JSON.stringify(Object.fromEntries(seen))}; ${midWrite} kills left a temp file (killed mid-write)`);
}

const loopScript = (path: string, entries: Array<HostsEntry | null>, setup = '') => `
  import { execFileSync } from 'node:child_process';
  const { HostsWriter } = await import(${JSON.stringify(builtModule('hosts-writer'))});
  ${setup}
  const w = new HostsWriter({ path: ${JSON.stringify(path)}, staleTempMs: 0 });
  const entries = ${JSON.stringify(entries)};
  let told = false;
  for (let i = 0; ; i++) {
    await w.apply(entries[i % entries.length]);
    if (!told && i >= 1) { told = true; process.stdout.write('looping\\n'); }
  }
`;

async function renameCrashes(t: Test, dir: string): Promise<void> {
  const path = join(dir, 'rename', 'hosts');
  const script = join(dir, 'rename', 'loop.mjs');
  await writeFile(script, loopScript(path, [A, B, null]));
  await crashLoop(t, {
    label: 'rename',
    check: path,
    valid: [BASE, withBlock(BASE, A), withBlock(BASE, B)],
    spawnArgs: () => [process.execPath, [script]],
    kills: 20,
  });
  // The next writer converges and sweeps the temp files the kills left.
  const r = await new HostsWriter({ path, staleTempMs: 0 }).apply(A);
  t.ok(['rename', 'unchanged'].includes(r.method));
  t.equal(await readFile(path, 'utf8'), withBlock(BASE, A));
  t.same(await tempsIn(join(dir, 'rename')), [], 'temp files of killed writers swept');
}

async function inPlaceCrashes(t: Test, dir: string): Promise<void> {
  const sub = join(dir, 'inplace');
  const script = join(dir, 'loop-inplace.mjs');
  // Transitions: append a block, same-length rewrite, remove at the end (one write or one truncate each).
  await writeFile(script, loopScript(join(sub, 'hosts'), [A, A2, null], `execFileSync('mount', ['--bind', ${JSON.stringify(join(sub, 'real'))}, ${JSON.stringify(join(sub, 'hosts'))}]);`));
  await crashLoop(t, {
    label: 'in-place (bind mount)',
    check: join(sub, 'real'),
    valid: [BASE, withBlock(BASE, A), withBlock(BASE, A2)],
    spawnArgs: () => ['unshare', ['-m', '--propagation', 'private', process.execPath, script]],
    kills: 20,
  });
}

// Both crash loops at once: each spends most of its time starting processes and in fsync.
t.test('SIGKILL at random moments (20 times each): the file is always whole', async (t) => {
  const dir = t.testdir({ rename: { hosts: BASE }, inplace: { real: BASE, hosts: 'placeholder\n' } });
  const loops = [renameCrashes(t, dir)];
  if (mountWhy) t.comment(`in-place crash loop skipped: ${mountWhy}`);
  else loops.push(inPlaceCrashes(t, dir));
  await Promise.all(loops);
});
