import t from 'tap';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TokenSource } from '../../src/kube/token-source.js';

t.test('static token', async (t) => {
  const ts = new TokenSource({ token: 'abc', tokenFile: '/does/not/matter' });
  t.equal(await ts.get(), 'abc');
  t.equal(ts.refreshable, false);
  t.equal(await ts.forceRefresh(), false);
  t.equal(await new TokenSource().get(), undefined, 'no token: anonymous');
});

t.test('token file is re-read after refreshMs, not before, and at once when forced', async (t) => {
  const dir = t.testdir({ token: 'one\n' });
  const file = join(dir, 'token');
  let now = 1000;
  const ts = new TokenSource({ tokenFile: file, refreshMs: 60_000, now: () => now });
  t.equal(await ts.get(), 'one', 'trimmed');
  writeFileSync(file, 'two');
  now += 59_000;
  t.equal(await ts.get(), 'one', 'cached within the interval');
  now += 2_000;
  t.equal(await ts.get(), 'two', 're-read after the interval');
  writeFileSync(file, 'three');
  t.equal(await ts.forceRefresh(), true, 'forced re-read sees the change');
  t.equal(await ts.get(), 'three');
  t.equal(await ts.forceRefresh(), false, 'unchanged');
});

t.test('a vanished or empty file keeps the last good token; without one it is an error', async (t) => {
  const dir = t.testdir({ token: 'good' });
  const file = join(dir, 'token');
  let now = 0;
  const ts = new TokenSource({ tokenFile: file, refreshMs: 10, now: () => now });
  t.equal(await ts.get(), 'good');
  rmSync(file);
  now += 100;
  t.equal(await ts.get(), 'good');
  writeFileSync(file, '  \n');
  now += 100;
  t.equal(await ts.get(), 'good');
  await t.rejects(new TokenSource({ tokenFile: join(dir, 'nope') }).get(), { code: 'KUBE_TOKEN_FILE_UNREADABLE', message: /does not exist/ });
  writeFileSync(join(dir, 'empty'), '');
  await t.rejects(new TokenSource({ tokenFile: join(dir, 'empty') }).get(), { code: 'KUBE_TOKEN_FILE_UNREADABLE', message: /is empty/ });
});

t.test('concurrent callers share one read', async (t) => {
  const dir = t.testdir({ token: 'x' });
  const ts = new TokenSource({ tokenFile: join(dir, 'token') });
  const all = await Promise.all([ts.get(), ts.get(), ts.get()]);
  t.same(all, ['x', 'x', 'x']);
});
