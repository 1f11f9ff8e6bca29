#!/usr/bin/env node
/**
 * `npm run package` (after `npm run build`): the RPM and the .deb for compute-node images.
 *
 *   node scripts/package.mjs [--out DIR] [--build BUILD_DIR] [--only rpm|deb]
 *
 * Both are staged by `nnf-env install` itself (prefix /usr, Flux's default /etc/flux paths,
 * node at /usr/bin/node as the distributions' nodejs packages put it), so a package holds
 * exactly the files install would put on a node: the standalone bundles (the two bins and
 * /usr/lib/nnf-env/nnf-env-commands.cjs, the commands that are not hot), the systemd unit
 * (moved to /usr/lib/systemd/system, where packaged units go), the Flux prolog/epilog scripts
 * and shell plugin, the perilog command, CRDs, RBAC example and merge snippet under
 * /usr/share/nnf-env, and /etc/nnf-env/nnf-env.conf as a configuration file the package
 * manager never overwrites. No node_modules. Scriptlets only `systemctl daemon-reload` (a
 * package does not enable or start services; the admin does, after configuring).
 *
 * Tools: dpkg-deb (dpkg) and rpmbuild (Debian's `rpm` package builds RPMs too).
 */
import { spawnSync } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const repo = resolve(new URL('..', import.meta.url).pathname);
const { values: args } = parseArgs({ options: { out: { type: 'string' }, build: { type: 'string' }, only: { type: 'string' } } });
const buildDir = resolve(args.build ?? join(repo, 'dist'));
const outDir = resolve(args.out ?? join(buildDir, 'packages'));
const pkg = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8'));
const NAME = 'nnf-env';
const VERSION = pkg.version;
const CONFIG = '/etc/nnf-env/nnf-env.conf';
const NODE_MIN = (/>=\s*(\d+)/.exec(pkg.engines?.node ?? '') ?? [])[1] ?? '20';
const NODE_REQUIRES_RPM = `((nodejs >= ${NODE_MIN} with nodejs < 1:0) or (nodejs >= 1:${NODE_MIN} with nodejs < 2:0) or nodejs >= 2:${NODE_MIN})`;
const SUMMARY = 'Compute-node integration for HPE Rabbit (NNF) storage on Flux systems';
const DESCRIPTION = pkg.description;
const RELOAD = 'if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || :; fi';

function fail(message) {
  console.error(`package: ${message}`);
  process.exit(1);
}

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', ...opts });
  if (r.error) fail(`${cmd}: ${r.error.code === 'ENOENT' ? 'not installed' : r.error.message}${cmd === 'rpmbuild' ? ' (apt-get install rpm)' : ''}`);
  if (r.status !== 0) fail(`${cmd} ${argv.join(' ')} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Every path under root (files and directories), relative with a leading /, sorted. */
async function listTree(root, dir = root, out = []) {
  for (const name of (await readdir(dir)).sort()) {
    const abs = join(dir, name);
    const st = await stat(abs);
    out.push({ path: abs.slice(root.length), dir: st.isDirectory(), mode: st.mode & 0o7777 });
    if (st.isDirectory()) await listTree(root, abs, out);
  }
  return out;
}

/** The file tree both packages hold, staged by `nnf-env install` (see the header). */
async function stage(root) {
  const installJs = join(buildDir, 'src', 'cli', 'commands', 'install.js');
  const { runInstall, MANIFEST_NAME } = await import(pathToFileURL(installJs).href).catch((err) => fail(`${installJs}: ${err.message} (run npm run build first)`));
  await runInstall({
    prefix: '/usr',
    destdir: root,
    packageRoot: repo,
    bundleDir: join(buildDir, 'standalone'),
    nodePath: '/usr/bin/node',
    fluxPaths: { systemDir: '/etc/flux/system', shellLuaDir: '/etc/flux/shell/lua.d', sources: { systemDir: 'package default', shellLuaDir: 'package default' } },
  });
  // The package manager tracks the files: no install manifest.
  await rm(join(root, 'usr', 'lib', 'nnf-env', MANIFEST_NAME));
  await mkdir(join(root, 'usr', 'lib', 'systemd', 'system'), { recursive: true });
  await rename(join(root, 'etc', 'systemd', 'system', 'nnf-envd.service'), join(root, 'usr', 'lib', 'systemd', 'system', 'nnf-envd.service'));
  await rm(join(root, 'etc', 'systemd'), { recursive: true });
  const tree = await listTree(root);
  const bad = tree.filter((e) => e.path.includes('node_modules'));
  if (bad.length > 0) fail(`staged tree holds node_modules: ${bad[0].path}`);
  return tree;
}

/** Directories the package owns: its own, not the system's (/usr, /etc/flux, ...). */
function ownedDirs(tree) {
  return tree.filter((e) => e.dir && /\/nnf-env(\/|$)/.test(e.path)).map((e) => e.path);
}

async function buildDeb(root, tree) {
  const deb = await mkdtemp(join(tmpdir(), 'nnf-env-deb-'));
  try {
    await cp(root, deb, { recursive: true, preserveTimestamps: true });
    await chmod(deb, 0o755); // the archive's ./ (mkdtemp made it 0700)
    await mkdir(join(deb, 'DEBIAN'), { mode: 0o755 });
    let size = 0;
    for (const e of tree) if (!e.dir) size += (await stat(join(root, e.path))).size;
    const control = [
      `Package: ${NAME}`,
      `Version: ${VERSION}`,
      'Architecture: all',
      'Maintainer: nnf-env maintainers <nnf-env@localhost>',
      `Depends: nodejs (>= ${NODE_MIN})`,
      'Section: admin',
      'Priority: optional',
      `Installed-Size: ${Math.ceil(size / 1024)}`,
      `Description: ${SUMMARY}`,
      ` ${DESCRIPTION}`,
      '',
    ].join('\n');
    await writeFile(join(deb, 'DEBIAN', 'control'), control);
    await writeFile(join(deb, 'DEBIAN', 'conffiles'), `${CONFIG}\n`);
    for (const script of ['postinst', 'postrm']) {
      await writeFile(join(deb, 'DEBIAN', script), `#!/bin/sh\nset -e\n# Only what a package should do: systemd reads the unit; enabling is the admin's.\n${RELOAD}\n`);
      await chmod(join(deb, 'DEBIAN', script), 0o755);
    }
    const file = join(outDir, `${NAME}_${VERSION}_all.deb`);
    run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', deb, file]);
    return file;
  } finally {
    await rm(deb, { recursive: true, force: true });
  }
}

async function buildRpm(root, tree) {
  const top = await mkdtemp(join(tmpdir(), 'nnf-env-rpm-'));
  try {
    for (const d of ['BUILD', 'RPMS', 'SOURCES', 'SPECS', 'SRPMS', 'BUILDROOT']) await mkdir(join(top, d));
    const files = [];
    for (const d of ownedDirs(tree)) files.push(`%dir %attr(0755,root,root) ${d}`);
    for (const e of tree.filter((x) => !x.dir)) {
      const attr = `%attr(${e.mode.toString(8).padStart(4, '0')},root,root)`;
      files.push(e.path === CONFIG ? `%config(noreplace) ${attr} ${e.path}` : `${attr} ${e.path}`);
    }
    const spec = [
      `Name: ${NAME}`,
      `Version: ${VERSION}`,
      'Release: 1',
      `Summary: ${SUMMARY}`,
      `License: ${pkg.license}`,
      'BuildArch: noarch',
      // RPM compares the epoch first and reads a requirement without one as epoch 0, so a plain
      // `nodejs >= 20` is met by RHEL's nodejs-1:18 and NodeSource's nodejs-2:18. One range per
      // epoch in use (0: plain builds, 1: RHEL/Fedora, 2: NodeSource); rich dependencies need
      // rpm >= 4.13 (RHEL 8 and later).
      `Requires: ${NODE_REQUIRES_RPM}`,
      // The bundles need node and nothing else; rpm's scan would add /usr/bin/node from their #! line.
      'AutoReqProv: no',
      '',
      '%description',
      DESCRIPTION,
      '',
      '%install',
      `cp -a ${root}/. %{buildroot}/`,
      '',
      '%post',
      RELOAD,
      '',
      '%postun',
      RELOAD,
      '',
      '%files',
      ...files,
      '',
    ].join('\n');
    const specFile = join(top, 'SPECS', `${NAME}.spec`);
    await writeFile(specFile, spec);
    run('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${top}`, '--define', '_build_id_links none', '--define', '__os_install_post %{nil}', specFile]);
    const rpmDir = join(top, 'RPMS', 'noarch');
    const [built] = await readdir(rpmDir);
    const file = join(outDir, built);
    await cp(join(rpmDir, built), file);
    return file;
  } finally {
    await rm(top, { recursive: true, force: true });
  }
}

await mkdir(outDir, { recursive: true });
const root = await mkdtemp(join(tmpdir(), 'nnf-env-stage-'));
try {
  await chmod(root, 0o755);
  const tree = await stage(root);
  const built = [];
  if (args.only !== 'rpm') built.push(await buildDeb(root, tree));
  if (args.only !== 'deb') built.push(await buildRpm(root, tree));
  for (const f of built) console.log(f);
} finally {
  await rm(root, { recursive: true, force: true });
}
