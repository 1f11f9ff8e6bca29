/**
 * `npm run package` (scripts/package.mjs): builds the .deb and the RPM from this build's
 * standalone bundles, lists both with their own tools, checks modes, owners, the config file,
 * the dependency and the scriptlets, then unpacks the .deb into a temp root and runs the
 * full-path e2e test (test/e2e/full-path.test.ts) against the unpacked bins and shell plugin.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildRoot, repoRoot } from '../helpers/paths.js';
import { CONFIG, expectedFiles } from './expected-files.js';

const missing = ['dpkg-deb', 'rpmbuild', 'rpm'].filter((tool) => spawnSync(tool, ['--version']).error !== undefined);
if (missing.length > 0) {
  t.test('packages', { skip: `needs ${missing.join(', ')} (apt-get install dpkg rpm; .ci/run installs them)` }, () => undefined);
} else {
  await packageTests();
}

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...(env ? { env } : {}) });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

async function packageTests(): Promise<void> {
  const out = await mkdtemp(join(tmpdir(), 'nnf-env-packages-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const version = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const built = run(process.execPath, [join(repoRoot, 'scripts', 'package.mjs'), '--out', out, '--build', buildRoot]).trim().split('\n');
  const deb = join(out, `nnf-env_${version}_all.deb`);
  const rpm = join(out, `nnf-env-${version}-1.noarch.rpm`);
  const expected = await expectedFiles();

  t.test('both packages are built', async (t) => {
    t.same(built.sort(), [rpm, deb].sort());
  });

  t.test('.deb: files, modes, owners, conffiles, Depends, scriptlets', async (t) => {
    // dpkg-deb -c: `-rwxr-xr-x root/root 2662441 2026-12-03 13:02 ./usr/bin/nnf-env`
    const entries = run('dpkg-deb', ['-c', deb]).trim().split('\n').map((l) => {
      const [perm, owner, , , , path] = l.split(/\s+/);
      return { perm: perm as string, owner: owner as string, path: (path as string).replace(/^\./, '').replace(/\/$/, '') || '/' };
    });
    t.ok(entries.every((e) => e.owner === 'root/root'), 'everything owned by root/root');
    t.ok(entries.every((e) => !e.path.includes('node_modules') && !e.path.endsWith('package.json')), 'no node_modules');
    const files = Object.fromEntries(entries.filter((e) => !e.perm.startsWith('d')).map((e) => [e.path, e.perm]));
    t.same(Object.keys(files).sort(), Object.keys(expected).sort(), 'exactly the expected files');
    for (const [path, mode] of Object.entries(expected)) t.equal(files[path], mode === 0o755 ? '-rwxr-xr-x' : '-rw-r--r--', `${path} ${mode.toString(8)}`);
    t.ok(entries.filter((e) => e.perm.startsWith('d')).every((e) => e.perm === 'drwxr-xr-x'), 'directories 0755');

    t.equal(run('dpkg-deb', ['-f', deb, 'Depends']).trim(), 'nodejs (>= 20)');
    t.equal(run('dpkg-deb', ['-f', deb, 'Architecture']).trim(), 'all');
    const ctl = await mkdtemp(join(tmpdir(), 'nnf-env-debctl-'));
    t.teardown(() => rm(ctl, { recursive: true, force: true }));
    run('dpkg-deb', ['-e', deb, ctl]);
    t.equal(await readFile(join(ctl, 'conffiles'), 'utf8'), `${CONFIG}\n`, 'the config is a conffile: never overwritten once edited');
    t.same((await readdir(ctl)).sort(), ['conffiles', 'control', 'postinst', 'postrm']);
    for (const script of ['postinst', 'postrm']) {
      const text = await readFile(join(ctl, script), 'utf8');
      t.match(text, /systemctl daemon-reload/, `${script} reloads systemd`);
      t.notMatch(text, /enable|start|restart/, `${script} does not enable or start anything`);
    }
    t.match(await readFile(join(ctl, 'postinst'), 'utf8'), /^NNF_ENV_WRITE_CODE_CACHE=1 \/usr\/bin\/nnf-env --version >\/dev\/null 2>&1 \|\| :$/m, 'postinst makes the code cache with the node installed, never failing');
    t.match(await readFile(join(ctl, 'postrm'), 'utf8'), /^case "\$1" in remove\|purge\) rm -f \/usr\/lib\/nnf-env\/nnf-env-main\.cjs\.v8cache \|\| : ;; esac$/m, 'postrm removes it on remove and purge');
  });

  t.test('RPM: files, modes, owners, %config(noreplace), Requires, scriptlets; same bytes as the .deb', async (t) => {
    // --dump: path size mtime digest mode owner group isconfig isdoc rdev symlink
    const dump = run('rpm', ['-qp', '--dump', rpm]).trim().split('\n').map((l) => {
      const f = l.split(' ');
      return { path: f[0] as string, digest: f[3] as string, mode: Number.parseInt(f[4] as string, 8), owner: f[5], group: f[6], config: f[7] === '1' };
    });
    // The code cache is %ghost: owned (removed with the package), made by %post, not shipped.
    const ghosts = run('rpm', ['-qp', '--qf', '[%{FILENAMES} %{FILEFLAGS:fflags}\\n]', rpm]).trim().split('\n').filter((l) => / \S*g\S*$/.test(l)).map((l) => l.split(' ')[0]);
    t.same(ghosts, ['/usr/lib/nnf-env/nnf-env-main.cjs.v8cache'], 'the code cache is the one %ghost file');
    const files = dump.filter((e) => (e.mode & 0o170000) === 0o100000 && !ghosts.includes(e.path));
    t.same(files.map((e) => e.path).sort(), Object.keys(expected).sort(), 'exactly the expected files');
    for (const e of files) t.equal(e.mode & 0o7777, expected[e.path], `${e.path} ${(e.mode & 0o7777).toString(8)}`);
    t.ok(dump.every((e) => e.owner === 'root' && e.group === 'root'), 'everything owned by root:root');
    t.same(dump.filter((e) => e.config).map((e) => e.path), [CONFIG]);
    t.equal(run('rpm', ['-qp', '--configfiles', rpm]).trim(), CONFIG);
    // rpm's %config(noreplace) is file flag 0x10 besides %config's 0x1.
    const flags = run('rpm', ['-qp', '--qf', '[%{FILENAMES} %{FILEFLAGS}\\n]', rpm]).trim().split('\n');
    t.ok(flags.includes(`${CONFIG} 17`), 'the config file is %config(noreplace)');
    t.same(dump.filter((e) => (e.mode & 0o170000) === 0o040000).map((e) => e.path).sort(),
      ['/etc/nnf-env', '/usr/lib/nnf-env', '/usr/libexec/nnf-env', '/usr/share/nnf-env', '/usr/share/nnf-env/crds'], 'owns its own directories, not /usr or /etc/flux');
    t.ok(run('rpm', ['-qlp', rpm]).split('\n').every((p) => !p.includes('node_modules')), 'rpm -qlp: no node_modules');
    const requires = run('rpm', ['-qp', '--requires', rpm]).trim().split('\n').filter((r) => !r.startsWith('rpmlib('));
    t.same([...new Set(requires)].sort(), ['((nodejs >= 20 with nodejs < 1:0) or (nodejs >= 1:20 with nodejs < 2:0) or nodejs >= 2:20)', '/bin/sh']);
    t.equal(run('rpm', ['-qp', '--qf', '%{ARCH}', rpm]), 'noarch');
    const scripts = run('rpm', ['-qp', '--scripts', rpm]);
    t.match(scripts, /postinstall scriptlet[^\n]*\n[^\n]*systemctl daemon-reload[^\n]*\nNNF_ENV_WRITE_CODE_CACHE=1 \/usr\/bin\/nnf-env --version >\/dev\/null 2>&1 \|\| :/);
    t.match(scripts, /postuninstall scriptlet[^\n]*\n[^\n]*systemctl daemon-reload/);
    t.notMatch(scripts, /enable|start|preinstall|preuninstall/, 'nothing but daemon-reload');

    const root = await mkdtemp(join(tmpdir(), 'nnf-env-debx-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    run('dpkg-deb', ['-x', deb, root]);
    for (const e of files) {
      const sha = createHash('sha256').update(await readFile(join(root, e.path))).digest('hex');
      t.equal(sha, e.digest, `${e.path}: the same bytes in both packages`);
    }
  });

  t.test('the unpacked .deb: bins stand alone, and the full-path e2e test passes on them', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'nnf-env-installed-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    run('dpkg-deb', ['-x', deb, root]);
    t.equal((await readFile(join(root, 'usr/bin/nnf-env'), 'utf8')).split('\n')[0], '#!/usr/bin/node');
    t.equal(run(process.execPath, [join(root, 'usr/bin/nnf-env'), '--version']).trim(), version, 'version from the bundle (no package.json beside it)');
    t.equal(run(process.execPath, [join(root, 'usr/sbin/nnf-envd'), '--version']).trim(), version);
    t.equal(run(process.execPath, [join(root, 'usr/bin/nnf-env'), 'jobid', '--to', 'dec', 'f2']), '1\n', 'a command from /usr/lib/nnf-env/nnf-env-commands.cjs');
    for (const which of ['prolog', 'epilog']) {
      const script = await readFile(join(root, `etc/flux/system/${which}.d/nnf-env`), 'utf8');
      t.match(script, /^NNF_ENV=\/usr\/bin\/nnf-env$/m, `the ${which} script runs the packaged bin`);
      t.match(script, /^PERILOG_LIB=\/usr\/libexec\/nnf-env\/perilog-lib\.sh$/m, `the ${which} script sources the packaged functions`);
    }
    t.match(await readFile(join(root, 'usr/lib/systemd/system/nnf-envd.service'), 'utf8'), /^ExecStart=\/usr\/sbin\/nnf-envd$/m);
    t.match(await readFile(join(root, 'usr/share/nnf-env/flux-job-manager.toml'), 'utf8'), /"\/usr\/libexec\/nnf-env\/flux-perilog"/);

    // Run as a plain node script (its own TAP output), not as a child of this tap run.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAP') && !k.startsWith('_TAPJS')));
    // The simulator from the package finds the packaged CRDs (/usr/share/nnf-env/crds).
    const sim = spawn(process.execPath, [join(root, 'usr/bin/nnf-env'), 'sim', '--listen', '127.0.0.1:0', '--no-user-containers'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let simOut = '';
    const listening = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 30_000);
      sim.stdout.on('data', (b: Buffer) => { simOut += b.toString('utf8'); if (simOut.includes('listening on')) { clearTimeout(timer); resolve(true); } });
      sim.stderr.on('data', (b: Buffer) => { simOut += b.toString('utf8'); });
      sim.once('exit', () => { clearTimeout(timer); resolve(false); });
    });
    sim.kill('SIGTERM');
    t.ok(listening, `the packaged simulator starts on the packaged CRDs: ${simOut}`);
    t.match(simOut, /^nnf-env sim: listening on http:\/\/127\.0\.0\.1:\d+$/m);

    const e2e = spawnSync(process.execPath, [join(buildRoot, 'test', 'e2e', 'full-path.test.js')], {
      encoding: 'utf8', timeout: 120_000, env: { ...env, NNF_ENV_TEST_INSTALLED_ROOT: root, TAP_TIMEOUT: '170' },
    });
    const summary = /^# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?/m.exec(e2e.stdout);
    t.equal(e2e.status, 0, `full-path e2e on the unpacked package:\n${e2e.stdout.split('\n').filter((l) => /not ok|# \{/.test(l)).join('\n')}\n${e2e.stderr}`);
    t.ok(summary && Number(summary[2]) > 50 && summary[3] === undefined, `its assertions passed: ${summary?.[0]}`);
  });
}
