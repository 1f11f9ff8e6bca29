/**
 * The packages installed by their own package managers, as a compute image's build would, into
 * a scratch root (dpkg --root, rpm --root; never this machine's /): the Node.js dependency is
 * enforced, every file lands with its mode, a site's edit of nnf-env.conf survives a
 * reinstall, and removal leaves only what each manager keeps of an edited config file.
 *
 * Both managers chroot into the scratch root to run the scriptlets, so the root gets a /bin/sh
 * (this machine's, with the libraries it links) and nothing else; the scriptlets' daemon-reload
 * then sees no running systemd there and does nothing. Node.js itself is a stand-in entry: a
 * status stanza for dpkg, an empty package built here with rpmbuild for rpm (with RHEL's epoch,
 * 1, which a requirement without one compares wrongly).
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile, appendFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t from 'tap';
import { buildRoot, repoRoot } from '../helpers/paths.js';
import { CONFIG, expectedFiles } from './expected-files.js';

const missing = ['dpkg', 'dpkg-deb', 'dpkg-query', 'rpmbuild', 'rpm', 'ldd'].filter((tool) => spawnSync(tool, ['--version']).error !== undefined);
const isRoot = process.getuid?.() === 0;
if (missing.length > 0 || !isRoot) {
  const why = missing.length > 0 ? `needs ${missing.join(', ')} (apt-get install dpkg rpm; .ci/run installs them)` : 'needs root (the package managers chroot into the scratch root to run scriptlets)';
  t.test('packages installed by dpkg and rpm', { skip: why }, () => undefined);
} else {
  await installTests();
}

interface Run { status: number | null; stdout: string; stderr: string }

function runAny(cmd: string, args: string[]): Run {
  // stdin closed: a manager that wanted to ask (a conffile prompt) gets EOF, never hangs the test.
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function run(cmd: string, args: string[]): string {
  const r = runAny(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** /bin/sh and the libraries it links (from ldd), copied into root for the chrooted scriptlets. */
async function giveShell(root: string): Promise<void> {
  const sh = '/bin/sh';
  const libs = run('ldd', [sh]).split('\n').map((l) => /(\/\S+) \(0x/.exec(l)?.[1]).filter((p): p is string => p !== undefined);
  for (const file of [sh, ...libs]) {
    await mkdir(join(root, dirname(file)), { recursive: true });
    await copyFile(file, join(root, file));
  }
  await stat(join(root, sh)).then((s) => s.mode & 0o111 || Promise.reject(new Error('/bin/sh copied without its x bits')));
}

async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o7777;
}

/** The files of ours that are left under root (the shell we put there aside). */
async function oursLeft(root: string, expected: Record<string, number>): Promise<string[]> {
  return Object.keys(expected).filter((p) => existsSync(join(root, p))).sort();
}

async function installTests(): Promise<void> {
  const out = await mkdtemp(join(tmpdir(), 'nnf-env-pkginstall-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const version = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  run(process.execPath, [join(repoRoot, 'scripts', 'package.mjs'), '--out', out, '--build', buildRoot]);
  const deb = join(out, `nnf-env_${version}_all.deb`);
  const rpm = join(out, `nnf-env-${version}-1.noarch.rpm`);
  const expected = await expectedFiles();
  const siteEdit = '# site edit: kept by the package manager\nNODE_NAME=compute-site\n';

  t.test('dpkg --root: needs nodejs >= 20, installs every file, keeps an edited conffile, purge removes it', async (t) => {
    const root = join(out, 'deb-root');
    const admin = join(root, 'var', 'lib', 'dpkg');
    await mkdir(join(admin, 'info'), { recursive: true });
    await mkdir(join(admin, 'updates'), { recursive: true });
    await writeFile(join(admin, 'available'), '');
    await writeFile(join(admin, 'info', 'nodejs.list'), '');
    await giveShell(root);
    const nodejs = (v: string): string =>
      `Package: nodejs\nStatus: install ok installed\nPriority: optional\nVersion: ${v}\nArchitecture: amd64\nMaintainer: stand-in <nobody@example.invalid>\nDescription: stand-in for the dependency check\n\n`;
    const status = (): string => run('dpkg-query', [`--root=${root}`, '-W', '-f', '${Status}', 'nnf-env']);

    // Debian 12's own nodejs is 18: the package must not configure on it.
    await writeFile(join(admin, 'status'), nodejs('18.19.0+dfsg-6~deb12u2'));
    const old = runAny('dpkg', [`--root=${root}`, '-i', deb]);
    t.not(old.status, 0, 'dpkg -i fails with nodejs 18');
    t.match(old.stderr, /nnf-env depends on nodejs \(>= 20\)/, `dpkg names the dependency: ${old.stderr}`);
    t.equal(status(), 'install ok unpacked', 'left unconfigured (apt would not have unpacked it at all)');

    // The stand-in is now 20 (as from a backport or NodeSource): configuring succeeds.
    const stanzas = (await readFile(join(admin, 'status'), 'utf8')).replace(/^Version: 18\.19\.0\+dfsg-6~deb12u2$/m, 'Version: 20.19.2+dfsg-1');
    await writeFile(join(admin, 'status'), stanzas);
    run('dpkg', [`--root=${root}`, '--configure', '-a']);
    t.equal(status(), 'install ok installed');
    for (const [path, mode] of Object.entries(expected)) t.equal(await modeOf(join(root, path)), mode, `${path} ${mode.toString(8)}`);
    t.match(run('dpkg-query', [`--root=${root}`, '-W', '-f', '${Conffiles}', 'nnf-env']), new RegExp(`^ ${CONFIG} [0-9a-f]{32}$`, 'm'), 'the config is a registered conffile');
    t.same(run('dpkg-query', [`--root=${root}`, '-L', 'nnf-env']).split('\n').filter((p) => p.includes('node_modules')), [], 'no node_modules installed');

    const shipped = await readFile(join(root, CONFIG), 'utf8');
    await appendFile(join(root, CONFIG), siteEdit);
    const again = runAny('dpkg', [`--root=${root}`, '-i', deb]);
    t.equal(again.status, 0, `reinstall: ${again.stderr}`);
    t.equal(await readFile(join(root, CONFIG), 'utf8'), shipped + siteEdit, 'the edited config is kept, without a question');
    t.notOk(existsSync(join(root, `${CONFIG}.dpkg-new`)) || existsSync(join(root, `${CONFIG}.dpkg-dist`)), 'no .dpkg-new or .dpkg-dist beside it');

    run('dpkg', [`--root=${root}`, '--remove', 'nnf-env']);
    t.same(await oursLeft(root, expected), [CONFIG], 'remove: only the config is left');
    t.equal(await readFile(join(root, CONFIG), 'utf8'), shipped + siteEdit, 'remove keeps the site edit');
    run('dpkg', [`--root=${root}`, '--purge', 'nnf-env']);
    t.same(await oursLeft(root, expected), [], 'purge: nothing of nnf-env is left');
  });

  t.test('rpm --root: needs nodejs >= 20 with RHEL\'s epoch, installs every file, %config(noreplace) keeps the edit', async (t) => {
    const root = join(out, 'rpm-root');
    await giveShell(root);
    run('rpm', ['--root', root, '--initdb']);
    // Empty stand-ins for RHEL's nodejs (Epoch 1) that also provide /bin/sh (the scriptlets').
    const top = join(out, 'rpm-stub');
    await mkdir(join(top, 'SPECS'), { recursive: true });
    const stub = async (epoch: number, v: string): Promise<string> => {
      const spec = join(top, 'SPECS', `nodejs-${epoch}-${v}.spec`);
      await writeFile(spec, ['Name: nodejs', `Epoch: ${epoch}`, `Version: ${v}`, 'Release: 1', 'Summary: stand-in', 'License: MIT', 'BuildArch: noarch', 'Provides: /bin/sh', '%description', 'stand-in for the dependency check', '%files', ''].join('\n'));
      run('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${top}`, spec]);
      return join(top, 'RPMS', 'noarch', `nodejs-${v}-1.noarch.rpm`);
    };
    const rpmq = (...args: string[]): Run => runAny('rpm', ['--root', root, ...args]);

    // RHEL 9's nodejs:18 module stream (Epoch 1), then NodeSource's 18 (Epoch 2): both refused.
    for (const [epoch, v] of [[1, '18.20.8'], [2, '18.20.8']] as const) {
      run('rpm', ['--root', root, '-U', '--oldpackage', await stub(epoch, v)]);
      const old = rpmq('-i', rpm);
      t.not(old.status, 0, `rpm -i fails with nodejs ${epoch}:${v}`);
      t.match(old.stderr, /nodejs .* is needed by nnf-env/, `rpm names the dependency: ${old.stderr}`);
      t.not(rpmq('-q', 'nnf-env').status, 0, 'nothing installed');
    }

    run('rpm', ['--root', root, '-U', '--oldpackage', await stub(1, '20.19.5')]);
    const ok = rpmq('-i', rpm);
    t.equal(ok.status, 0, `rpm -i with nodejs 1:20 (RHEL's nodejs:20): ${ok.stderr}`);
    for (const [path, mode] of Object.entries(expected)) t.equal(await modeOf(join(root, path)), mode, `${path} ${mode.toString(8)}`);
    t.equal(rpmq('-q', '--configfiles', 'nnf-env').stdout.trim(), CONFIG);
    t.equal(rpmq('-V', 'nnf-env').stdout, '', 'rpm -V: every installed file as packaged');

    const shipped = await readFile(join(root, CONFIG), 'utf8');
    await appendFile(join(root, CONFIG), siteEdit);
    t.match(rpmq('-V', 'nnf-env').stdout, new RegExp(`^S\\.5.* c ${CONFIG}$`, 'm'), 'rpm -V sees the edited config');
    const again = rpmq('-U', '--replacepkgs', rpm);
    t.equal(again.status, 0, `reinstall: ${again.stderr}`);
    t.equal(await readFile(join(root, CONFIG), 'utf8'), shipped + siteEdit, 'the edited config is kept');
    t.notOk(existsSync(join(root, `${CONFIG}.rpmnew`)), 'no .rpmnew (the packaged file did not change)');

    const erase = rpmq('-e', 'nnf-env');
    t.equal(erase.status, 0, `rpm -e: ${erase.stderr}`);
    t.same(await oursLeft(root, expected), [], 'erase: no file of the package is left');
    t.equal(await readFile(join(root, `${CONFIG}.rpmsave`), 'utf8'), shipped + siteEdit, 'the site edit is saved as .rpmsave');
    t.same((await readdir(join(root, 'etc', 'nnf-env'))).sort(), ['nnf-env.conf.rpmsave']);
  });
}
