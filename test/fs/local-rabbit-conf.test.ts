import { readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { AtomicWriteError } from '../../src/fs/atomic-file.js';
import { LocalRabbitConfError, removeLocalRabbitConf, writeLocalRabbitConf } from '../../src/fs/local-rabbit-conf.js';
import { builtModule, mountNamespaceUnavailable, runInMountNamespace } from './mount-namespace.js';

t.test('written atomically when changed, 0644, untouched otherwise', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'local-rabbit.conf');
  t.same(await writeLocalRabbitConf(path, 'rabbit-node-1'), { disabled: false, changed: true, method: 'rename' });
  t.equal(await readFile(path, 'utf8'), 'rabbit-node-1\n');
  t.equal((await stat(path)).mode & 0o7777, 0o644);
  const st = await stat(path);
  t.same(await writeLocalRabbitConf(path, 'rabbit-node-1'), { disabled: false, changed: false, method: 'unchanged' });
  t.equal((await stat(path)).ino, st.ino, 'not rewritten');
  t.equal((await stat(path)).mtimeMs, st.mtimeMs);
  await writeLocalRabbitConf(path, 'rabbit-node-2');
  t.equal(await readFile(path, 'utf8'), 'rabbit-node-2\n');
  await writeFile(path, 'rabbit-node-2'); // hand-edited without the newline
  t.equal((await writeLocalRabbitConf(path, 'rabbit-node-2')).changed, true, 'normalised');
  t.equal(await readFile(path, 'utf8'), 'rabbit-node-2\n');
  t.equal(await removeLocalRabbitConf(path), true);
  t.equal(await removeLocalRabbitConf(path), false);
});

t.test('disabled with an empty path', async (t) => {
  t.same(await writeLocalRabbitConf('', 'rabbit-node-1'), { disabled: true, changed: false, method: 'disabled' });
  t.equal(await removeLocalRabbitConf(''), false);
});

t.test('refuses bad names and symlinks', async (t) => {
  const dir = t.testdir({ victim: 'keep\n' });
  for (const bad of ['', 'rabbit node', 'rabbit\n', '../etc', 'x_y']) {
    await t.rejects(writeLocalRabbitConf(join(dir, 'c'), bad), LocalRabbitConfError, JSON.stringify(bad));
  }
  await symlink(join(dir, 'victim'), join(dir, 'link'));
  try {
    await writeLocalRabbitConf(join(dir, 'link'), 'rabbit-node-1');
    t.fail('wrote through a symlink');
  } catch (err) {
    t.ok(err instanceof AtomicWriteError && err.code === 'SYMLINK_REFUSED');
  }
  t.equal(await readFile(join(dir, 'victim'), 'utf8'), 'keep\n');
});

t.test('read-only directory, file writable: written in place', { skip: mountNamespaceUnavailable() ?? false }, async (t) => {
  const dir = t.testdir({ etc: { 'local-rabbit.conf': 'rabbit-old\n' } });
  const etc = join(dir, 'etc');
  const r = await runInMountNamespace(dir, 'ro.mjs', `
    import { execFileSync } from 'node:child_process';
    const { writeLocalRabbitConf } = await import(${JSON.stringify(builtModule('local-rabbit-conf'))});
    const etc = ${JSON.stringify(etc)}, f = etc + '/local-rabbit.conf';
    const m = (...a) => execFileSync('mount', a);
    m('--bind', etc, etc); m('-o', 'remount,bind,ro', etc); m('--bind', f, f); m('-o', 'remount,bind,rw', f);
    console.log(JSON.stringify([await writeLocalRabbitConf(f, 'rabbit-node-7'), await writeLocalRabbitConf(f, 'r1')]));
  `);
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(r.stdout).map((x: { method: string }) => x.method), ['in-place', 'in-place']);
  t.equal(await readFile(join(etc, 'local-rabbit.conf'), 'utf8'), 'r1\n', 'shrunk correctly');
});
