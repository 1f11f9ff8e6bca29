import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import type { Test } from 'tap';
import { MANIFEST_NAME, relocate, runInstall, runUninstall } from '../../src/cli/commands/install.js';
import type { InstallOptions, Manifest } from '../../src/cli/commands/install.js';
import { buildRoot, nnfEnvBin } from '../helpers/paths.js';
import { mountNamespaceUnavailable, runInMountNamespace } from '../fs/mount-namespace.js';

const EXAMPLE = '# example config\n#NODE_NAME=\n';
const NODE = '/opt/node/bin/node';

async function put(path: string, content: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content);
  await chmod(path, mode);
}

/** A small package with the layout of nnf-env: etc/, systemd/, libexec/, the standalone bundles, node_modules. */
async function fakePackage(t: Test): Promise<{ packageRoot: string; bundleDir: string; env: Record<string, string> }> {
  const root = await mkdtemp(join(tmpdir(), 'nnf-env-pkg-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const pkg = join(root, 'pkg');
  await put(join(pkg, 'package.json'), JSON.stringify({ name: 'nnf-env', version: '9.9.9', type: 'module', dependencies: { 'dep-a': '1' } }));
  // The bundles inline every npm package: node_modules is never installed.
  await put(join(pkg, 'node_modules/dep-a/package.json'), JSON.stringify({ name: 'dep-a' }));
  await put(join(pkg, 'etc/nnf-env/nnf-env.conf'), EXAMPLE);
  await put(join(pkg, 'etc/nnf-env/flux-job-manager.toml'), 'command = [ "/usr/local/libexec/nnf-env/flux-perilog", "prolog" ]\n');
  await put(join(pkg, 'etc/kubernetes/nnf-env-rbac.yaml'), 'kind: ClusterRole\n');
  await put(join(pkg, 'etc/kubernetes/crds/workflows.yaml'), 'kind: CustomResourceDefinition\n');
  await put(join(pkg, 'etc/flux/system/prolog.d/nnf-env'), '#!/bin/sh\nexec /usr/local/bin/nnf-env prolog\n', 0o755);
  await put(join(pkg, 'etc/flux/shell/lua.d/nnf-env.lua'), '-- plugin\n');
  await put(join(pkg, 'systemd/nnf-envd.service'), '[Service]\nExecStart=/usr/local/sbin/nnf-envd\n');
  const bundleDir = join(root, 'build', 'standalone');
  await put(join(bundleDir, 'nnf-env.cjs'), '#!/usr/bin/env node\nconsole.log("nnf-env");\n');
  await put(join(bundleDir, 'nnf-envd.cjs'), '#!/usr/bin/env node\nconsole.log("nnf-envd");\n');
  await put(join(bundleDir, 'nnf-env-commands.cjs'), '#!/usr/bin/env node\nexports.modules = {};\n');
  await put(join(bundleDir, 'nnf-env-main.cjs'), '#!/usr/bin/env node\nconsole.log("nnf-env main");\n');
  await put(join(pkg, 'libexec/flux-perilog'), '#!/bin/sh\n# /usr/local/libexec/nnf-env/flux-perilog\n', 0o755);
  // No flux command: install falls back to flux-core's default paths for a sysconfdir of /etc.
  return { packageRoot: pkg, bundleDir, env: { PATH: join(root, 'no-flux-here') } };
}

/** Path -> mode, hash and mtime of everything under dir, to prove nothing changed. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(d: string): Promise<void> {
    for (const name of await readdir(d)) {
      const p = join(d, name);
      const st = await stat(p);
      if (st.isDirectory()) {
        out[p.slice(dir.length)] = `dir ${st.mode.toString(8)}`;
        await walk(p);
      } else {
        out[p.slice(dir.length)] = `${st.mode.toString(8)} ${st.mtimeMs} ${createHash('sha256').update(await readFile(p)).digest('hex')}`;
      }
    }
  }
  await walk(dir);
  return out;
}

/** The per-file lines of a report (not the header, where Flux's paths came from, or next steps). */
const fileLines = (lines: string[]): string[] => lines.slice(1).filter((l) => !l.startsWith('flux: ') && !l.startsWith('next: '));

const modeOf = async (p: string): Promise<number> => (await stat(p)).mode & 0o7777;

t.test('install into a destdir: every part in place, the bundles as the bins, no node_modules', async (t) => {
  const src = await fakePackage(t);
  const dest = t.testdir({});
  const opts: InstallOptions = { ...src, prefix: '/opt/nnf', destdir: dest, nodePath: NODE };
  const report = await runInstall(opts);
  t.ok(report.files.every((f) => f.action === 'create'), 'all created');
  t.same(report.lines, [
    `nnf-env install: prefix /opt/nnf, destdir ${dest}`,
    'flux: scripts in /etc/flux/system (default (no flux command answered): /etc/flux), shell plugin in /etc/flux/shell/lua.d (default (no flux command answered): /etc/flux/shell/initrc.lua)',
    `created      ${dest}/opt/nnf/bin/nnf-env`,
    `created      ${dest}/opt/nnf/sbin/nnf-envd`,
    `created      ${dest}/opt/nnf/lib/nnf-env/nnf-env-commands.cjs`,
    `created      ${dest}/opt/nnf/lib/nnf-env/nnf-env-main.cjs`,
    `created      ${dest}/opt/nnf/share/nnf-env/crds/workflows.yaml`,
    `created      ${dest}/opt/nnf/share/nnf-env/nnf-env-rbac.yaml`,
    `created      ${dest}/opt/nnf/share/nnf-env/flux-job-manager.toml`,
    `created      ${dest}/etc/systemd/system/nnf-envd.service`,
    `created      ${dest}/opt/nnf/libexec/nnf-env/flux-perilog`,
    `created      ${dest}/etc/flux/system/prolog.d/nnf-env`,
    `created      ${dest}/etc/flux/shell/lua.d/nnf-env.lua`,
    `created      ${dest}/etc/nnf-env/nnf-env.conf`,
    'next: merge /opt/nnf/share/nnf-env/flux-job-manager.toml into the instance\'s [job-manager] configuration (keep the site\'s plugins), flux config reload, then nnf-env doctor',
    'next: systemctl daemon-reload && systemctl enable --now nnf-envd',
  ]);
  t.equal(await readFile(join(dest, 'opt/nnf/libexec/nnf-env/flux-perilog'), 'utf8'), '#!/bin/sh\n# /opt/nnf/libexec/nnf-env/flux-perilog\n', 'the perilog command, relocated');
  t.equal(await readFile(join(dest, 'opt/nnf/share/nnf-env/flux-job-manager.toml'), 'utf8'), 'command = [ "/opt/nnf/libexec/nnf-env/flux-perilog", "prolog" ]\n', 'the merge snippet, relocated');
  t.notOk(await stat(join(dest, 'etc/flux/system/conf.d')).catch(() => null), 'no Flux configuration written: a conf.d file would replace the site\'s plugins array');

  t.equal(await readFile(join(dest, 'opt/nnf/bin/nnf-env'), 'utf8'), `#!${NODE}\nconsole.log("nnf-env");\n`, 'the bundle, run by this node (no PATH needed)');
  t.equal(await readFile(join(dest, 'opt/nnf/sbin/nnf-envd'), 'utf8'), `#!${NODE}\nconsole.log("nnf-envd");\n`);
  t.equal(await modeOf(join(dest, 'opt/nnf/bin/nnf-env')), 0o755);
  t.equal(await modeOf(join(dest, 'opt/nnf/sbin/nnf-envd')), 0o755);
  t.equal(await modeOf(join(dest, 'opt/nnf/share/nnf-env/nnf-env-rbac.yaml')), 0o644);
  t.equal(await readFile(join(dest, 'etc/systemd/system/nnf-envd.service'), 'utf8'), '[Service]\nExecStart=/opt/nnf/sbin/nnf-envd\n', 'unit points at the prefix');
  t.equal(await readFile(join(dest, 'etc/flux/system/prolog.d/nnf-env'), 'utf8'), '#!/bin/sh\nexec /opt/nnf/bin/nnf-env prolog\n');
  t.equal(await modeOf(join(dest, 'etc/flux/system/prolog.d/nnf-env')), 0o755, 'scripts stay executable');
  t.equal(await modeOf(join(dest, 'etc/flux/shell/lua.d/nnf-env.lua')), 0o644);
  t.equal(await readFile(join(dest, 'etc/nnf-env/nnf-env.conf'), 'utf8'), EXAMPLE);

  const lib = join(dest, 'opt/nnf/lib/nnf-env');
  t.same((await readdir(lib)).sort(), [MANIFEST_NAME, 'nnf-env-commands.cjs', 'nnf-env-main.cjs'], 'lib/nnf-env: the manifest, the cold commands\' bundle and the hot ones\' (loaded by bin/nnf-env); no app copy, no node_modules');
  t.equal(await readFile(join(lib, 'nnf-env-commands.cjs'), 'utf8'), '#!/usr/bin/env node\nexports.modules = {};\n', 'required, not run: copied as it is');
  t.equal(await modeOf(join(lib, 'nnf-env-commands.cjs')), 0o644);
  const manifest = JSON.parse(await readFile(join(lib, MANIFEST_NAME), 'utf8')) as Manifest;
  t.equal(manifest.prefix, '/opt/nnf');
  t.equal(manifest.packageVersion, '9.9.9');
  t.equal(manifest.files.length, 12);
  t.ok(manifest.files.some((f) => f.path === '/etc/nnf-env/nnf-env.conf' && f.kind === 'config' && f.sha256 !== null));
  t.ok(manifest.files.every((f) => !f.path.startsWith(dest)), 'manifest paths are final paths, without destdir');
  t.ok(manifest.dirs.includes('/etc/nnf-env') && manifest.dirs.includes('/opt/nnf/lib/nnf-env'));
});

t.test('an upgrade from a node_modules install removes the old app copy that is unchanged', async (t) => {
  const src = await fakePackage(t);
  const dest = t.testdir({});
  const opts: InstallOptions = { ...src, prefix: '/opt/nnf', destdir: dest, nodePath: NODE };
  await runInstall(opts);
  const lib = join(dest, 'opt/nnf/lib/nnf-env');
  const manifest = JSON.parse(await readFile(join(lib, MANIFEST_NAME), 'utf8')) as Manifest;
  const old = ['dist/src/bin/nnf-env.js', 'node_modules/pino/package.json', 'node_modules/ws/index.js'];
  for (const rel of old) {
    await put(join(lib, rel), `old ${rel}\n`);
    manifest.files.push({ path: `/opt/nnf/lib/nnf-env/${rel}`, kind: 'app', mode: '0644', sha256: createHash('sha256').update(`old ${rel}\n`).digest('hex') });
  }
  manifest.dirs.push(...['dist', 'dist/src', 'dist/src/bin', 'node_modules', 'node_modules/pino', 'node_modules/ws'].map((d) => `/opt/nnf/lib/nnf-env/${d}`));
  await writeFile(join(lib, MANIFEST_NAME), JSON.stringify(manifest));
  const report = await runInstall(opts);
  t.ok(report.lines.includes(`removed      ${lib} (3 files)`), report.lines.join('\n'));
  t.same((await readdir(lib)).sort(), [MANIFEST_NAME, 'nnf-env-commands.cjs', 'nnf-env-main.cjs']);
  t.same(await readdir(join(dest, 'opt/nnf/lib')), ['nnf-env']);
});

t.test('a second run changes nothing and says unchanged for every file', async (t) => {
  const src = await fakePackage(t);
  const dest = t.testdir({});
  const opts: InstallOptions = { ...src, prefix: '/opt/nnf', destdir: dest, nodePath: NODE };
  await runInstall(opts);
  const before = await snapshot(dest);
  const again = await runInstall(opts);
  t.ok(again.files.length > 0);
  t.same(again.files.filter((f) => f.action !== 'unchanged').map((f) => f.path), [], 'every file unchanged');
  t.ok(fileLines(again.lines).every((l) => l.startsWith('unchanged ')), again.lines.join('\n'));
  t.same(await snapshot(dest), before, 'not a byte, mode or mtime changed (manifest included)');
});

t.test('an edited config is never overwritten: the new example goes to .new', async (t) => {
  const src = await fakePackage(t);
  const dest = t.testdir({});
  const opts: InstallOptions = { ...src, prefix: '/usr/local', destdir: dest, nodePath: NODE };
  await runInstall(opts);
  const conf = join(dest, 'etc/nnf-env/nnf-env.conf');
  await writeFile(conf, 'NODE_NAME=edited\n');
  const second = await runInstall(opts);
  t.equal(await readFile(conf, 'utf8'), 'NODE_NAME=edited\n', 'kept');
  t.equal(await readFile(conf + '.new', 'utf8'), EXAMPLE, 'example beside it');
  t.ok(second.lines.includes(`kept         ${conf} (edited; the new example is in /etc/nnf-env/nnf-env.conf.new)`), second.lines.join('\n'));
  t.ok(second.lines.includes(`created      ${conf}.new`));
  const third = await runInstall(opts);
  t.ok(third.lines.includes(`unchanged    ${conf}.new`), 'idempotent with an edited config too');
  t.equal(await readFile(conf, 'utf8'), 'NODE_NAME=edited\n');
  t.equal(await readFile(join(dest, 'etc/flux/system/prolog.d/nnf-env'), 'utf8'), '#!/bin/sh\nexec /usr/local/bin/nnf-env prolog\n', 'default prefix: not rewritten');

  // The admin takes the new example: the .new file is no longer needed.
  await writeFile(conf, EXAMPLE);
  const fourth = await runInstall(opts);
  t.ok(fourth.lines.includes(`unchanged    ${conf}`));
  t.ok(fourth.lines.includes(`removed      ${conf}.new (no longer needed)`), fourth.lines.join('\n'));
});

t.test('an unedited config follows a new example; files no longer shipped are removed', async (t) => {
  const src = await fakePackage(t);
  const dest = t.testdir({});
  const opts: InstallOptions = { ...src, prefix: '/opt/nnf', destdir: dest, nodePath: NODE };
  await runInstall(opts);
  await writeFile(join(src.packageRoot, 'etc/nnf-env/nnf-env.conf'), EXAMPLE + '#NEW_KEY=1\n');
  await rm(join(src.packageRoot, 'etc/flux/shell/lua.d/nnf-env.lua'));
  await chmod(join(dest, 'opt/nnf/bin/nnf-env'), 0o700);
  const report = await runInstall(opts);
  const conf = join(dest, 'etc/nnf-env/nnf-env.conf');
  t.equal(await readFile(conf, 'utf8'), EXAMPLE + '#NEW_KEY=1\n');
  t.ok(report.lines.includes(`updated      ${conf}`));
  t.ok(report.lines.includes(`updated      ${dest}/opt/nnf/bin/nnf-env`), 'a wrong mode is repaired');
  t.equal(await modeOf(join(dest, 'opt/nnf/bin/nnf-env')), 0o755);
  t.ok(report.lines.includes(`removed      ${dest}/etc/flux/shell/lua.d/nnf-env.lua (no longer shipped)`), report.lines.join('\n'));
  t.notOk(fileLines(report.lines).some((l) => l.includes('share/nnf-env') && !l.startsWith('unchanged ')), 'the shared files did not change');
  t.notOk(await stat(join(dest, 'etc/flux/shell/lua.d/nnf-env.lua')).catch(() => null));
});

t.test('a config that was there before install is kept and never removed', async (t) => {
  const src = await fakePackage(t);
  const dest = t.testdir({ etc: { 'nnf-env': { 'nnf-env.conf': 'NODE_NAME=site\n' } } });
  const opts: InstallOptions = { ...src, prefix: '/opt/nnf', destdir: dest, nodePath: NODE };
  const report = await runInstall(opts);
  t.ok(report.files.some((f) => f.path === '/etc/nnf-env/nnf-env.conf' && f.action === 'keep'));
  t.equal(await readFile(join(dest, 'etc/nnf-env/nnf-env.conf.new'), 'utf8'), EXAMPLE);
  const un = await runUninstall(opts);
  t.ok(un.lines.includes(`kept         ${dest}/etc/nnf-env/nnf-env.conf (was there before install)`), un.lines.join('\n'));
  t.equal(await readFile(join(dest, 'etc/nnf-env/nnf-env.conf'), 'utf8'), 'NODE_NAME=site\n');
  t.notOk(await stat(join(dest, 'etc/nnf-env/nnf-env.conf.new')).catch(() => null), '.new removed');
});

t.test('--dry-run prints the plan and changes nothing', async (t) => {
  const src = await fakePackage(t);
  const dest = t.testdir({});
  const opts: InstallOptions = { ...src, prefix: '/opt/nnf', destdir: dest, nodePath: NODE };
  const dry = await runInstall({ ...opts, dryRun: true });
  t.same(await readdir(dest), [], 'nothing written on a fresh destdir');
  t.equal(dry.lines[0], `nnf-env install: prefix /opt/nnf, destdir ${dest} (dry run: nothing is changed)`);
  t.ok(dry.lines.includes(`would create ${dest}/etc/nnf-env/nnf-env.conf`));
  await runInstall(opts);
  await writeFile(join(dest, 'etc/nnf-env/nnf-env.conf'), 'EDITED=1\n');
  await writeFile(join(src.bundleDir, 'nnf-env.cjs'), '#!/usr/bin/env node\nchanged\n');
  const before = await snapshot(dest);
  const dry2 = await runInstall({ ...opts, dryRun: true });
  t.ok(dry2.lines.includes(`would keep   ${dest}/etc/nnf-env/nnf-env.conf (edited; the new example is in /etc/nnf-env/nnf-env.conf.new)`));
  t.ok(dry2.lines.includes(`would create ${dest}/etc/nnf-env/nnf-env.conf.new`));
  t.ok(dry2.lines.includes(`would update ${dest}/opt/nnf/bin/nnf-env`), dry2.lines.join('\n'));
  const dryUn = await runUninstall({ ...opts, dryRun: true });
  t.ok(dryUn.lines.includes(`would remove ${dest}/opt/nnf/bin/nnf-env`));
  t.same(await snapshot(dest), before, 'dry runs of install and uninstall changed nothing');
});

t.test('uninstall removes what install put, keeps an edited config, and is idempotent', async (t) => {
  const src = await fakePackage(t);
  const dest = t.testdir({ opt: { 'other-file': 'not ours\n' } });
  const opts: InstallOptions = { ...src, prefix: '/opt/nnf', destdir: dest, nodePath: NODE };
  await runInstall(opts);
  await writeFile(join(dest, 'etc/nnf-env/nnf-env.conf'), 'NODE_NAME=edited\n');
  await writeFile(join(dest, 'etc/systemd/system/nnf-envd.service'), '[Service]\n# local change\n');
  const un = await runUninstall(opts);
  t.ok(un.lines.includes(`kept         ${dest}/etc/nnf-env/nnf-env.conf (edited)`), un.lines.join('\n'));
  t.ok(un.lines.includes(`kept         ${dest}/etc/systemd/system/nnf-envd.service (changed since install)`));
  t.ok(un.lines.includes(`removed      ${dest}/opt/nnf/bin/nnf-env`));
  t.ok(un.lines.includes(`removed      ${dest}/opt/nnf/share/nnf-env/crds/workflows.yaml`));
  const left = Object.keys(await snapshot(dest)).sort();
  t.same(left, ['/etc', '/etc/nnf-env', '/etc/nnf-env/nnf-env.conf', '/etc/systemd', '/etc/systemd/system', '/etc/systemd/system/nnf-envd.service', '/opt', '/opt/other-file'],
    'only the changed files, their directories and what was there before');
  const again = await runUninstall(opts);
  t.same(again.lines.slice(1), [`nothing to do: ${dest}/opt/nnf/lib/nnf-env/${MANIFEST_NAME} does not exist (not installed here)`]);
});

t.test('path rewriting; bad prefix, missing bundle and unusable node are clear errors', async (t) => {
  const src = await fakePackage(t);
  t.equal(relocate('ExecStart=/usr/local/sbin/nnf-envd --x\nA=/usr/local/bin/nnf-env-other /usr/local/bin/nnf-env /usr/local/share/nnf-env/x\n', '/opt/n'),
    'ExecStart=/opt/n/sbin/nnf-envd --x\nA=/usr/local/bin/nnf-env-other /opt/n/bin/nnf-env /opt/n/share/nnf-env/x\n');
  await t.rejects(runInstall({ ...src, prefix: 'relative', destdir: t.testdir({}) }), { code: 'INSTALL_BAD_PREFIX' });
  await t.rejects(runInstall({ ...src, prefix: '/opt/nnf', destdir: t.testdir({}), nodePath: '/opt/my node/bin/node' }), { code: 'INSTALL_BAD_NODE', message: /cannot be named in a #! line/ });
  await rm(join(src.bundleDir, 'nnf-envd.cjs'));
  await t.rejects(runInstall({ ...src, prefix: '/opt/nnf', destdir: t.testdir({}), nodePath: NODE }), { code: 'INSTALL_NO_BUNDLE', message: `${join(src.bundleDir, 'nnf-envd.cjs')} is missing` });
});

t.test('the real package through the built CLI: install, again, run the installed bins, uninstall', async (t) => {
  const dest = await mkdtemp(join(tmpdir(), 'nnf-env-destdir-'));
  t.teardown(() => rm(dest, { recursive: true, force: true }));
  const cli = (args: string[]): { status: number | null; stdout: string; stderr: string } => {
    const r = spawnSync(process.execPath, [nnfEnvBin, ...args], { encoding: 'utf8', timeout: 120_000, env: { PATH: process.env.PATH } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const first = cli(['install', '--destdir', dest, '--prefix', '/opt/nnf-env-test']);
  t.equal(first.status, 0, first.stderr);
  t.match(first.stdout, /^created {6}.*\/opt\/nnf-env-test\/sbin\/nnf-envd$/m);
  t.match(first.stdout, /^created {6}.*\/etc\/nnf-env\/nnf-env\.conf$/m);
  const created = fileLines(first.stdout.trimEnd().split('\n'));
  t.ok(created.length < 40, `a few files, not a node_modules tree (${created.length})`);
  t.notOk(created.some((l) => l.includes('node_modules')));
  const second = cli(['install', '--destdir', dest, '--prefix', '/opt/nnf-env-test']);
  t.equal(second.status, 0, second.stderr);
  const lines = fileLines(second.stdout.trimEnd().split('\n'));
  t.ok(lines.length >= 4 && lines.every((l) => l.startsWith('unchanged ')), second.stdout);

  // The installed bins run on their own, by their #! line (this node), with nothing beside them.
  const env = { PATH: '/usr/bin:/bin' };
  const printed = spawnSync(join(dest, 'opt/nnf-env-test/sbin/nnf-envd'), ['--print-config', '--node-name', 'copy'], { encoding: 'utf8', env });
  t.equal(printed.status, 0, printed.stderr);
  t.match(printed.stdout, /^NODE_NAME\s+copy\s+--node-name$/m);
  const viaBin = spawnSync(join(dest, 'opt/nnf-env-test/bin/nnf-env'), ['jobid', '--to', 'dec', 'f2'], { encoding: 'utf8', env });
  t.same({ status: viaBin.status, stdout: viaBin.stdout, stderr: viaBin.stderr }, { status: 0, stdout: '1\n', stderr: '' }, 'the installed nnf-env runs');
  t.equal((await readFile(join(dest, 'opt/nnf-env-test/bin/nnf-env'), 'utf8')).split('\n')[0], `#!${process.execPath}`);

  const un = cli(['uninstall', '--destdir', dest, '--prefix', '/opt/nnf-env-test']);
  t.equal(un.status, 0, un.stderr);
  t.same(await readdir(dest), [], 'everything install created is gone');
});
t.test('without permission to write: a clear error, not a crash', {
  skip: process.getuid?.() !== 0 ? 'needs root to drop to nobody' : spawnSync('setpriv', ['--version']).status !== 0 ? 'no setpriv' : false,
}, async (t) => {
  const dest = await mkdtemp(join(tmpdir(), 'nnf-env-rootonly-'));
  t.teardown(() => rm(dest, { recursive: true, force: true }));
  await chmod(dest, 0o755);
  const r = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', process.execPath, nnfEnvBin, 'install', '--destdir', dest], { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH } });
  if (/cannot (open|find)|EACCES.*nnf-env\.js|Cannot find module/.test(r.stderr)) {
    t.pass(`skipped: nobody cannot read the build: ${r.stderr.split("\n")[0]}`);
    return;
  }
  t.equal(r.status, 1, r.stderr);
  // Only the first line: under tap, its process-tracking hook (which nobody cannot write) may add more.
  t.equal(r.stderr.split('\n')[0], `nnf-env install: cannot create directory ${dest}/usr: permission denied (run as root, or stage the files with --destdir DIR)`);
  t.same(await readdir(dest), []);
});

t.test('Flux paths come from the instance; an old conf.d drop-in is kept, not removed', async (t) => {
  const src = await fakePackage(t);
  const dest = t.testdir({});
  // Stand-in flux answering as flux-core 0.88 does for an instance built with
  // --sysconfdir=/opt/flux/etc: `flux getattr conf.shell_initrc` (broker attribute) and
  // `flux config builtin confdir` (<sysconfdir>/flux) print one path each.
  const bin = join(dest, '..', `flux-bin-${process.pid}`);
  t.teardown(() => rm(bin, { recursive: true, force: true }));
  await put(join(bin, 'flux'), [
    '#!/bin/sh',
    'case "$*" in',
    '  "getattr conf.shell_initrc") echo /opt/flux/etc/flux/shell/initrc.lua ;;',
    '  "config builtin confdir") echo /opt/flux/etc/flux ;;',
    '  *) echo "flux: $*: unexpected" >&2; exit 1 ;;',
    'esac',
    '',
  ].join('\n'), 0o755);
  const opts: InstallOptions = { ...src, prefix: '/opt/nnf', destdir: dest, nodePath: NODE, env: { PATH: `${bin}:/usr/bin:/bin` } };
  const report = await runInstall(opts);
  t.ok(report.lines.includes('flux: scripts in /opt/flux/etc/flux/system (flux config builtin confdir: /opt/flux/etc/flux), shell plugin in /opt/flux/etc/flux/shell/lua.d (flux getattr conf.shell_initrc: /opt/flux/etc/flux/shell/initrc.lua)'), report.lines.join('\n'));
  t.ok(await stat(join(dest, 'opt/flux/etc/flux/system/prolog.d/nnf-env')), 'prolog.d under the instance\'s confdir');
  t.ok(await stat(join(dest, 'opt/flux/etc/flux/shell/lua.d/nnf-env.lua')), 'the plugin where the shell sources lua.d');
  t.notOk(await stat(join(dest, 'etc/flux')).catch(() => null), 'nothing in /etc/flux');

  // An earlier version installed conf.d/nnf-env-perilog.toml; removing it would unload
  // perilog.so at the next reload, so it stays, with what to do.
  const lib = join(dest, 'opt/nnf/lib/nnf-env');
  const manifest = JSON.parse(await readFile(join(lib, MANIFEST_NAME), 'utf8')) as Manifest;
  const old = '/opt/flux/etc/flux/system/conf.d/nnf-env-perilog.toml';
  const oldText = '[job-manager]\nplugins = [ { load = "perilog.so" } ]\n';
  await put(join(dest, old), oldText);
  manifest.files.push({ path: old, kind: 'flux', mode: '0644', sha256: createHash('sha256').update(oldText).digest('hex') });
  await writeFile(join(lib, MANIFEST_NAME), JSON.stringify(manifest));
  const again = await runInstall(opts);
  t.ok(again.lines.some((l) => l.startsWith(`kept         ${dest}${old} (no longer shipped: its \`plugins\` array replaces the site's`)), again.lines.join('\n'));
  t.equal(await readFile(join(dest, old), 'utf8'), oldText, 'left in place');
  const after = JSON.parse(await readFile(join(lib, MANIFEST_NAME), 'utf8')) as Manifest;
  t.notOk(after.files.some((f) => f.path === old), 'no longer tracked: uninstall leaves it to the admin');
});

t.test('a symlink at a target is replaced by the file, never written through; a symlinked config is left as it is', async (t) => {
  const src = await fakePackage(t);
  const dest = t.testdir({ victim: 'precious\n', 'site.conf': '# the site\'s config\n' });
  const opts: InstallOptions = { ...src, prefix: '/opt/nnf', destdir: dest, nodePath: NODE };
  const wrapper = join(dest, 'opt/nnf/bin/nnf-env');
  await mkdir(dirname(wrapper), { recursive: true });
  await symlink(join(dest, 'victim'), wrapper);
  const conf = join(dest, 'etc/nnf-env/nnf-env.conf');
  await mkdir(dirname(conf), { recursive: true });
  await symlink(join(dest, 'site.conf'), conf);

  const report = await runInstall(opts);
  const { lstat } = await import('node:fs/promises');
  t.ok((await lstat(wrapper)).isFile(), 'the bin is a file where the symlink was');
  t.equal(await modeOf(wrapper), 0o755);
  t.equal(await readFile(wrapper, 'utf8'), `#!${NODE}\nconsole.log("nnf-env");\n`);
  t.equal(await readFile(join(dest, 'victim'), 'utf8'), 'precious\n', 'what the symlink pointed to is untouched');
  t.ok(report.lines.some((l) => /^updated +/.test(l) && l.endsWith(`${wrapper} (replaces a symlink)`)), report.lines.join('\n'));
  t.ok((await lstat(conf)).isSymbolicLink(), 'the symlinked config stays a symlink');
  t.equal(await readFile(join(dest, 'site.conf'), 'utf8'), '# the site\'s config\n');
  t.ok(report.lines.some((l) => /^kept +/.test(l) && l.endsWith(`${conf} (a symlink; left as it is)`)), report.lines.join('\n'));
  t.notOk(Object.keys(await snapshot(dest)).some((p) => p.endsWith('.nnf-tmp')), 'no temp file left');

  const again = await runInstall(opts);
  t.ok(again.files.filter((f) => f.path === '/opt/nnf/bin/nnf-env').every((f) => f.action === 'unchanged'), 'the second run finds the file in place');
});

t.test('a read-only destination: INSTALL_PERMISSION, the installed files as they were, no temp file left', { skip: mountNamespaceUnavailable() ?? false }, async (t) => {
  const src = await fakePackage(t);
  const dest = t.testdir({});
  const opts: InstallOptions = { ...src, prefix: '/opt/nnf', destdir: dest, nodePath: NODE };
  await runInstall(opts);
  const before = await snapshot(dest);
  await put(join(src.bundleDir, 'nnf-env.cjs'), '#!/usr/bin/env node\nconsole.log("nnf-env 2");\n');
  const scripts = await mkdtemp(join(tmpdir(), 'nnf-env-ro-install-'));
  t.teardown(() => rm(scripts, { recursive: true, force: true }));
  const installModule = pathToFileURL(join(buildRoot, 'src', 'cli', 'commands', 'install.js')).href;
  const r = await runInMountNamespace(scripts, 'ro-install.mjs', `
    import { execFileSync } from 'node:child_process';
    const { runInstall } = await import(${JSON.stringify(installModule)});
    const dest = ${JSON.stringify(dest)};
    execFileSync('mount', ['--bind', dest, dest]);
    execFileSync('mount', ['-o', 'remount,bind,ro', dest]);
    try { await runInstall(${JSON.stringify(opts)}); console.log(JSON.stringify({ ok: true })); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
  `);
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(r.stdout), { code: 'INSTALL_PERMISSION', message: `cannot write ${dest}/opt/nnf/bin/nnf-env: read-only file system` });
  t.same(await snapshot(dest), before, 'every installed file as it was, nothing added (no temp file)');
});

t.test('a destdir that does not exist yet is created (as make DESTDIR staging does), and uninstall keeps it', async (t) => {
  const src = await fakePackage(t);
  const parent = t.testdir({});
  const dest = join(parent, 'stage', 'root');
  const opts: InstallOptions = { ...src, prefix: '/opt/nnf', destdir: dest, nodePath: NODE };
  const report = await runInstall(opts);
  t.ok(report.lines[0]?.includes(`destdir ${dest}`), report.lines[0] ?? '(no lines)');
  t.equal((await stat(join(dest, 'opt/nnf/bin/nnf-env'))).mode & 0o777, 0o755, 'the bin is in place under the new destdir');
  const manifest = JSON.parse(await readFile(join(dest, 'opt/nnf/lib/nnf-env', MANIFEST_NAME), 'utf8')) as Manifest;
  t.notOk(manifest.dirs.some((d) => d === dest || d.startsWith(parent)), 'the staging root is not one of the install\'s directories');
  await runUninstall(opts);
  t.ok((await stat(dest)).isDirectory(), 'uninstall leaves the staging root in place');
});
