/**
 * `nnf-env install` / `nnf-env uninstall`: put nnf-env in place on a node, what nnf-dm's
 * `install` target does, done so it can be run again at any time:
 *
 *   <prefix>/bin/nnf-env           the standalone bundles (scripts/bundle-cli.mjs: one file each,
 *   <prefix>/sbin/nnf-envd         every npm package inlined), run by this node binary (#! line)
 *   <prefix>/lib/nnf-env/nnf-env-commands.cjs   the commands that are not hot (required by the bin)
 *   <prefix>/share/nnf-env/        CRDs, the RBAC example, the Flux job-manager merge snippet
 *   /etc/systemd/system/*          whatever systemd/ holds (nnf-envd.service)
 *   <prefix>/libexec/nnf-env/flux-perilog   the perilog `command` (with and without the IMP)
 *   <prefix>/libexec/nnf-env/perilog-lib.sh the functions the prolog.d and epilog.d scripts share
 *   <flux confdir>/system/{prolog,epilog}.d/nnf-env   where flux-run-system-scripts runs them
 *   <shell initrc dir>/lua.d/nnf-env.lua              where the job shell sources plugins
 *                                  (both asked of the instance: ../flux-instance.ts)
 *   /etc/nnf-env/nnf-env.conf      the commented example config, never over an edited one
 *
 * all under --destdir when given (staging for packages). Every file is compared before it is
 * written (a second run reports "unchanged" for all), written atomically by the one writer
 * (fs/atomic-file.ts: temp file, fsync, rename; a symlink at the target is replaced, never
 * written through; each directory fsynced once before the manifest), and recorded with its hash
 * in <prefix>/lib/nnf-env/install-manifest.json; uninstall removes only files still as
 * installed. No node_modules: an older install's copy of the app there is removed on upgrade.
 * The packages (scripts/package.mjs) are staged by this same code, so they hold the same files.
 * The plan is a pure function of what is on disk; --dry-run prints it and changes nothing.
 *
 * No Flux configuration is written: the job-manager's `plugins` array belongs to the site, and a
 * conf.d file of ours would replace it whole (etc/nnf-env/flux-job-manager.toml says what to
 * merge; `nnf-env doctor` checks the live instance).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir, realpath, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { NnfEnvError, errnoCode, isNnfEnvError } from '../../core/errors.js';
import { findPackageInfo } from '../../core/package-info.js';
import { syncDirectory, writeFileAtomic, type AtomicWriteError } from '../../fs/atomic-file.js';
import type { FluxPaths } from '../flux-instance.js';

export class InstallError extends NnfEnvError {
  readonly exitCode = 1;
}

export const DEFAULT_PREFIX = '/usr/local';
export const MANIFEST_NAME = 'install-manifest.json';
const CONFIG_PATH = '/etc/nnf-env/nnf-env.conf';

/** 'app': the node_modules-era copy under lib/nnf-env, only found in older manifests now. */
export type FileKind = 'app' | 'bin' | 'data' | 'systemd' | 'flux' | 'config';

export interface InstallOptions {
  prefix?: string;
  destdir?: string;
  dryRun?: boolean;
  /** List every app file, not one summary line. */
  verbose?: boolean;
  /** Where package.json, etc/, systemd/ and libexec/ are. Default: found above this file. */
  packageRoot?: string;
  /** Where the standalone bundles nnf-env.cjs and nnf-envd.cjs are. Default: the build's standalone/. */
  bundleDir?: string;
  /** Node binary the bins run (their #! line). Default: the one running now. */
  nodePath?: string;
  /** Where Flux wants the scripts and the shell plugin. Default: asked of flux (../flux-instance.ts). */
  fluxPaths?: FluxPaths;
  /** Environment of the `flux` commands asked (PATH, FLUX_URI). Default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** One installed file as the manifest records it. Paths are final (without destdir). */
export interface ManifestFile {
  path: string;
  kind: FileKind;
  mode: string;
  /** Hash of what install wrote; null for a file install found and kept (not ours to remove). */
  sha256: string | null;
}

export interface Manifest {
  version: 1;
  package: string;
  packageVersion: string;
  prefix: string;
  files: ManifestFile[];
  /** Directories install created, removed by uninstall when empty. */
  dirs: string[];
}

export type Action = 'create' | 'update' | 'unchanged' | 'keep' | 'remove' | 'absent';

export interface PlannedFile {
  path: string;
  kind: FileKind;
  mode: number;
  action: Action;
  note?: string;
  /** New content; absent for removals and kept files. */
  content?: Buffer;
  sha256: string | null;
  /** False for a file install leaves alone from now on (not recorded in the manifest). */
  track?: boolean;
}

export interface InstallReport {
  root: string;
  prefix: string;
  dryRun: boolean;
  files: PlannedFile[];
  lines: string[];
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function modeText(mode: number): string {
  return '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}

/** `path` (absolute, final) under destdir. */
function under(destdir: string, path: string): string {
  return destdir === '' ? path : join(destdir, path);
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Paths in shipped unit/Flux files name the default prefix; point them at the real one. */
export function relocate(text: string, prefix: string): string {
  if (prefix === DEFAULT_PREFIX) return text;
  return text.replace(/\/usr\/local\/(bin\/nnf-env|sbin\/nnf-envd|lib\/nnf-env|libexec\/nnf-env|share\/nnf-env)(?![\w.-])/g, (_m, rest: string) => `${prefix}/${rest}`);
}

async function readIfExists(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return null;
    throw err;
  }
}

/** Regular files under `dir` (following symlinks, so the copy has none), relative paths sorted. */
async function walkFiles(dir: string, skip: (rel: string, name: string) => boolean = () => false): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  async function walk(abs: string, rel: string): Promise<void> {
    const real = await realpath(abs);
    if (seen.has(real)) return; // a symlink loop
    seen.add(real);
    for (const entry of (await readdir(abs)).sort()) {
      const childRel = rel === '' ? entry : `${rel}/${entry}`;
      if (skip(childRel, entry)) continue;
      const childAbs = join(abs, entry);
      let st;
      try {
        st = await stat(childAbs);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue; // a dangling symlink
        throw err;
      }
      if (st.isDirectory()) await walk(childAbs, childRel);
      else if (st.isFile()) out.push(childRel);
    }
  }
  if (existsSync(dir)) await walk(dir, '');
  return out;
}

interface Source {
  path: string;
  kind: FileKind;
  mode: number;
  content: Buffer;
}

/**
 * The standalone bundles install ships, where under the prefix: the two bins, and the commands
 * that are not hot, which the nnf-env bin requires from ../lib/nnf-env when one runs.
 */
export const BUNDLES: ReadonlyArray<{ path: string; file: string; bin: boolean }> = [
  // A launcher that loads lib/nnf-env/nnf-env-main.cjs with a V8 code cache (scripts/nnf-env-launcher.cjs).
  { path: 'bin/nnf-env', file: 'nnf-env.cjs', bin: true },
  { path: 'sbin/nnf-envd', file: 'nnf-envd.cjs', bin: true },
  { path: 'lib/nnf-env/nnf-env-commands.cjs', file: 'nnf-env-commands.cjs', bin: false },
  { path: 'lib/nnf-env/nnf-env-main.cjs', file: 'nnf-env-main.cjs', bin: false },
];

/** The V8 code cache the nnf-env launcher reads beside the bundle (made on the node, not shipped). */
export const CODE_CACHE = 'nnf-env-main.cjs.v8cache';

/** `NNF_ENV_WRITE_CODE_CACHE=1 nnf-env --version`: the launcher writes the cache for this node. */
function writeCodeCache(nodePath: string, bin: string, lines: string[]): void {
  try {
    execFileSync(nodePath, [bin, '--version'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NNF_ENV_WRITE_CODE_CACHE: '1' }, stdio: 'ignore', timeout: 30_000 });
    lines.push(`code cache written for ${nodePath}`);
  } catch (err) {
    // Without it nnf-env only starts a few ms slower.
    lines.push(`warning: no code cache written (${(err as Error).message}); nnf-env works without it`);
  }
}

/** A bundle with its `#!/usr/bin/env node` line replaced: systemd and the Flux prolog may have no node on PATH. */
function withInterpreter(bundle: Buffer, nodePath: string, from: string): Buffer {
  const text = bundle.toString('utf8');
  if (!text.startsWith('#!')) throw new InstallError('INSTALL_BAD_BUNDLE', `${from} does not start with a #! line`, { hint: 'rebuild with npm run build' });
  if (/\s/.test(nodePath) || !isAbsolute(nodePath)) {
    throw new InstallError('INSTALL_BAD_NODE', `node binary ${JSON.stringify(nodePath)} cannot be named in a #! line (it must be an absolute path without spaces)`, { hint: 'run install with a node installed at such a path' });
  }
  return Buffer.from(`#!${nodePath}${text.slice(text.indexOf('\n'))}`, 'utf8');
}

/** Everything install would write: final paths, modes and contents. */
export async function collectSources(opts: Required<Pick<InstallOptions, 'prefix' | 'packageRoot' | 'bundleDir' | 'nodePath' | 'fluxPaths'>>): Promise<Source[]> {
  const { prefix, packageRoot, bundleDir, nodePath, fluxPaths } = opts;
  const share = `${prefix}/share/nnf-env`;
  const sources: Source[] = [];
  const add = async (path: string, kind: FileKind, from: string, transform?: (b: Buffer) => Buffer): Promise<void> => {
    const st = await stat(from);
    const raw = await readFile(from);
    sources.push({ path, kind, mode: (st.mode & 0o111) !== 0 ? 0o755 : 0o644, content: transform ? transform(raw) : raw });
  };
  const relocated = (b: Buffer): Buffer => Buffer.from(relocate(b.toString('utf8'), prefix), 'utf8');

  for (const b of BUNDLES) {
    const from = join(bundleDir, b.file);
    const raw = await readIfExists(from);
    if (raw === null) throw new InstallError('INSTALL_NO_BUNDLE', `${from} is missing`, { hint: 'run npm run build (it writes the standalone bundles), then install again' });
    sources.push(b.bin
      ? { path: `${prefix}/${b.path}`, kind: 'bin', mode: 0o755, content: withInterpreter(raw, nodePath, from) }
      : { path: `${prefix}/${b.path}`, kind: 'data', mode: 0o644, content: raw });
  }
  // What the admin reads or applies, and what `nnf-env sim` serves (src/sim/crds.ts finds it there).
  for (const rel of await walkFiles(join(packageRoot, 'etc', 'kubernetes', 'crds'))) await add(`${share}/crds/${rel}`, 'data', join(packageRoot, 'etc', 'kubernetes', 'crds', rel));
  for (const [rel, from] of [['nnf-env-rbac.yaml', 'etc/kubernetes/nnf-env-rbac.yaml'], ['flux-job-manager.toml', 'etc/nnf-env/flux-job-manager.toml'], ['README.md', 'README.md']] as const) {
    // The merge snippet names the perilog command's path: the real prefix.
    if (existsSync(join(packageRoot, from))) await add(`${share}/${rel}`, 'data', join(packageRoot, from), rel === 'flux-job-manager.toml' ? relocated : undefined);
  }

  for (const rel of await walkFiles(join(packageRoot, 'systemd'))) {
    await add(`/etc/systemd/system/${rel}`, 'systemd', join(packageRoot, 'systemd', rel), relocated);
  }
  const { withFluxDirs } = await import('../flux-instance.js');
  for (const rel of await walkFiles(join(packageRoot, 'libexec'))) {
    await add(`${prefix}/libexec/nnf-env/${rel}`, 'bin', join(packageRoot, 'libexec', rel), (b) => Buffer.from(withFluxDirs(relocate(b.toString('utf8'), prefix), fluxPaths), 'utf8'));
  }
  // Flux's directories as the instance has them, not /etc/flux by assumption.
  for (const rel of await walkFiles(join(packageRoot, 'etc', 'flux', 'system'))) {
    await add(`${fluxPaths.systemDir}/${rel}`, 'flux', join(packageRoot, 'etc', 'flux', 'system', rel), relocated);
  }
  for (const rel of await walkFiles(join(packageRoot, 'etc', 'flux', 'shell', 'lua.d'))) {
    await add(`${fluxPaths.shellLuaDir}/${rel}`, 'flux', join(packageRoot, 'etc', 'flux', 'shell', 'lua.d', rel), relocated);
  }
  const exampleConfig = join(packageRoot, 'etc', 'nnf-env', 'nnf-env.conf');
  if (existsSync(exampleConfig)) {
    sources.push({ path: CONFIG_PATH, kind: 'config', mode: 0o644, content: await readFile(exampleConfig) });
  }
  return sources;
}

async function readManifest(path: string): Promise<Manifest | null> {
  const raw = await readIfExists(path);
  if (raw === null) return null;
  try {
    const m = JSON.parse(raw.toString('utf8')) as Manifest;
    if (m.version !== 1 || !Array.isArray(m.files) || !Array.isArray(m.dirs)) throw new Error('unexpected layout');
    return m;
  } catch (err) {
    throw new InstallError('INSTALL_MANIFEST_INVALID', `${path} is not an nnf-env install manifest: ${(err as Error).message}`, {
      hint: 'move it away and run install again; files it listed will then be overwritten or left in place',
    });
  }
}

/** Decide, for every file, what install does. Pure apart from reading the destination. */
async function planInstall(destdir: string, sources: Source[], previous: Manifest | null): Promise<PlannedFile[]> {
  const before = new Map((previous?.files ?? []).map((f) => [f.path, f]));
  const plan: PlannedFile[] = [];
  const wanted = new Set<string>();
  for (const src of sources) {
    const target = under(destdir, src.path);
    const hash = sha256(src.content);
    wanted.add(src.path);
    if (await isSymlink(target)) {
      // Written over, never through (see writeInstalled); a symlinked config is the site's.
      if (src.kind === 'config') plan.push({ path: src.path, kind: 'config', mode: src.mode, action: 'keep', note: 'a symlink; left as it is', sha256: null });
      else plan.push({ ...src, action: 'update', note: 'replaces a symlink', sha256: hash });
      continue;
    }
    const current = await readIfExists(target);
    if (current === null) {
      plan.push({ ...src, action: 'create', sha256: hash });
      continue;
    }
    const currentHash = sha256(current);
    const currentMode = (await stat(target)).mode & 0o7777;
    if (src.kind === 'config' && currentHash !== hash) {
      const ours = before.get(src.path)?.sha256;
      if (ours === currentHash) {
        // Still exactly what an earlier install wrote: not edited, so it may follow the new example.
        plan.push({ ...src, action: 'update', sha256: hash });
        continue;
      }
      plan.push({ path: src.path, kind: 'config', mode: currentMode, action: 'keep', note: `edited; the new example is in ${src.path}.new`, sha256: ours ?? null });
      const newPath = src.path + '.new';
      wanted.add(newPath);
      const existingNew = await readIfExists(under(destdir, newPath));
      const newAction: Action = existingNew === null ? 'create' : sha256(existingNew) === hash ? 'unchanged' : 'update';
      plan.push({ ...src, path: newPath, action: newAction, sha256: hash });
      continue;
    }
    const same = currentHash === hash && (src.kind === 'config' || currentMode === src.mode);
    plan.push({ ...src, action: same ? 'unchanged' : 'update', sha256: hash });
  }
  // Files an earlier install wrote that this version no longer has.
  for (const old of previous?.files ?? []) {
    if (wanted.has(old.path) || old.sha256 === null) continue;
    const current = await readIfExists(under(destdir, old.path));
    if (current === null) continue;
    if (old.path.endsWith('/conf.d/nnf-env-perilog.toml')) {
      // Earlier versions dropped this in; removing it would unload perilog.so on the next reload.
      plan.push({ path: old.path, kind: old.kind, mode: Number.parseInt(old.mode, 8), action: 'keep', sha256: null, track: false,
        note: 'no longer shipped: its `plugins` array replaces the site\'s; merge etc/nnf-env/flux-job-manager.toml into the site\'s [job-manager] config, then remove it' });
      continue;
    }
    const mode = Number.parseInt(old.mode, 8);
    const why = old.path.endsWith('.new') ? 'no longer needed' : 'no longer shipped';
    if (sha256(current) === old.sha256) plan.push({ path: old.path, kind: old.kind, mode, action: 'remove', note: why, sha256: old.sha256 });
    else plan.push({ path: old.path, kind: old.kind, mode, action: 'keep', note: `${why}, but changed since install; left in place`, sha256: null, track: false });
  }
  return plan;
}

const VERB: Record<Action, [string, string]> = {
  create: ['created', 'would create'],
  update: ['updated', 'would update'],
  unchanged: ['unchanged', 'unchanged'],
  keep: ['kept', 'would keep'],
  remove: ['removed', 'would remove'],
  absent: ['absent', 'absent'],
};

function describePlan(plan: PlannedFile[], opts: { destdir: string; lib: string; dryRun: boolean; verbose: boolean }): string[] {
  const verb = (a: Action): string => VERB[a][opts.dryRun ? 1 : 0].padEnd(12);
  const lines: string[] = [];
  const app = plan.filter((f) => f.kind === 'app');
  if (opts.verbose) {
    for (const f of app) lines.push(`${verb(f.action)} ${under(opts.destdir, f.path)}`);
  } else if (app.length > 0) {
    const count = (a: Action): number => app.filter((f) => f.action === a).length;
    const [create, update, remove, keep, absent] = (['create', 'update', 'remove', 'keep', 'absent'] as const).map(count) as [number, number, number, number, number];
    const libPath = under(opts.destdir, opts.lib);
    let summary: Action;
    let parts: string[];
    if (create === app.length) {
      summary = 'create';
      parts = [`${create} files`];
    } else if (create + update === 0 && remove > 0) {
      summary = 'remove';
      parts = [`${remove} files`];
    } else if (create + update + remove > 0) {
      summary = 'update';
      parts = [`${app.length - remove - absent} files`, `${create} new, ${update} changed, ${remove} removed`];
    } else {
      summary = absent === app.length ? 'absent' : 'unchanged';
      parts = [`${app.length - absent} files`];
    }
    if (keep > 0) parts.push(`${keep} kept because they changed since install`);
    lines.push(`${verb(summary)} ${libPath} (${parts.join('; ')})`);
  }
  for (const f of plan.filter((x) => x.kind !== 'app')) {
    lines.push(`${verb(f.action)} ${under(opts.destdir, f.path)}${f.note ? ` (${f.note})` : ''}`);
  }
  return lines;
}

/** Permission problems are the admin's to fix, not a crash: say which path and what to do. */
async function explained<T>(path: string, what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    // The writer's errors carry the system error as errno (theirs `code` says what failed).
    const code = isNnfEnvError(err) ? (err as Partial<AtomicWriteError>).errno : errnoCode(err);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new InstallError('INSTALL_PERMISSION', `cannot ${what} ${path}: ${code === 'EROFS' ? 'read-only file system' : 'permission denied'}`, {
        hint: 'run as root, or stage the files with --destdir DIR',
      });
    }
    throw err;
  }
}

async function isSymlink(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isSymbolicLink();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return false;
    throw err;
  }
}

/**
 * Write one file with the one atomic writer: whatever but a directory sits at `path` (a
 * symlink too) is replaced, never written through; the mode is exact (no umask). The
 * directory is fsynced later, once for all its files (syncWritten).
 */
async function writeInstalled(path: string, content: Buffer, mode: number, written: Set<string>): Promise<void> {
  await explained(path, 'write', () => writeFileAtomic(path, content, { mode, publish: 'replace-any', fsyncDir: false }));
  written.add(dirname(path));
}

/** fsync each directory install renamed files into, once, so the renames survive power loss. */
async function syncWritten(written: Set<string>): Promise<void> {
  for (const dir of [...written].sort()) await explained(dir, 'sync', () => syncDirectory(dir));
  written.clear();
}

/** Create the missing parents of `dir` (under destdir); returns those created, as final paths. */
async function ensureDir(destdir: string, dir: string, created: Set<string>): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; d !== dirname(d); d = dirname(d)) {
    if (existsSync(under(destdir, d))) break;
    missing.push(d);
  }
  for (const d of missing.reverse()) {
    await explained(under(destdir, d), 'create directory', () => mkdir(under(destdir, d), { mode: 0o755 }));
    created.add(d);
  }
}

function resolveOptions(opts: InstallOptions): { prefix: string; destdir: string; lib: string; manifestPath: string } {
  if (!isAbsolute(opts.prefix ?? DEFAULT_PREFIX)) {
    throw new InstallError('INSTALL_BAD_PREFIX', `--prefix ${opts.prefix} is not an absolute path`, { hint: 'use e.g. --prefix /usr/local or --prefix /opt/nnf-env' });
  }
  const prefix = resolve(opts.prefix ?? DEFAULT_PREFIX);
  const destdir = opts.destdir === undefined || opts.destdir === '' ? '' : resolve(opts.destdir);
  const lib = `${prefix === '/' ? '' : prefix}/lib/nnf-env`;
  return { prefix, destdir, lib, manifestPath: under(destdir, `${lib}/${MANIFEST_NAME}`) };
}

function defaultSources(opts: InstallOptions): { packageRoot: string; bundleDir: string } {
  const here = fileURLToPath(import.meta.url);
  // This file is either the compiled dist/src/cli/commands/install.js or inlined in
  // dist/standalone/nnf-env.cjs itself.
  const bundleDir = opts.bundleDir ?? [dirname(here), resolve(dirname(here), '..', '..', '..', 'standalone')].find((d) => existsSync(join(d, 'nnf-envd.cjs'))) ?? resolve(dirname(here), '..', '..', '..', 'standalone');
  const packageRoot = opts.packageRoot ?? findPackageInfo(here)?.root;
  if (packageRoot === undefined) {
    throw new InstallError('INSTALL_NO_PACKAGE', `cannot find nnf-env's package.json above ${here}`, { hint: 'run install from a built checkout (an installed system takes the nnf-env package instead)' });
  }
  return { packageRoot, bundleDir };
}

export async function runInstall(opts: InstallOptions = {}): Promise<InstallReport> {
  const { prefix, destdir, lib, manifestPath } = resolveOptions(opts);
  const { packageRoot, bundleDir } = defaultSources(opts);
  const dryRun = opts.dryRun === true;
  const info = findPackageInfo(join(packageRoot, 'package.json'));
  const fluxPaths = opts.fluxPaths ?? await (await import('../flux-instance.js')).findFluxPaths({ env: opts.env });
  const sources = await collectSources({ prefix: prefix === '/' ? '' : prefix, packageRoot, bundleDir, nodePath: opts.nodePath ?? process.execPath, fluxPaths });
  const previous = await readManifest(manifestPath);
  const plan = await planInstall(destdir, sources, previous);

  const header = `nnf-env install: prefix ${prefix}${destdir ? `, destdir ${destdir}` : ''}${dryRun ? ' (dry run: nothing is changed)' : ''}`;
  const lines = [header, `flux: scripts in ${fluxPaths.systemDir} (${fluxPaths.sources.systemDir}), shell plugin in ${fluxPaths.shellLuaDir} (${fluxPaths.sources.shellLuaDir})`,
    ...describePlan(plan, { destdir, lib, dryRun, verbose: opts.verbose === true })];
  lines.push(`next: merge ${prefix === '/' ? '' : prefix}/share/nnf-env/flux-job-manager.toml into the instance's [job-manager] configuration (keep the site's plugins), flux config reload, then nnf-env doctor`);
  if (!dryRun) {
    // A staging root is the packager's (like make's DESTDIR): create it, and never record or
    // remove it as one of the install's own directories.
    if (destdir !== '') await explained(destdir, 'create directory', () => mkdir(destdir, { recursive: true, mode: 0o755 }));
    const created = new Set<string>(previous?.dirs.filter((d) => existsSync(under(destdir, d))) ?? []);
    const written = new Set<string>();
    for (const f of plan) {
      const target = under(destdir, f.path);
      if ((f.action === 'create' || f.action === 'update') && f.content) {
        await ensureDir(destdir, dirname(f.path), created);
        await writeInstalled(target, f.content, f.mode, written);
      } else if (f.action === 'remove') {
        await unlink(target).catch((err: unknown) => { if (errnoCode(err) !== 'ENOENT') throw err; });
      }
    }
    // Directories an earlier install made that are empty now (an older version's app copy).
    for (const d of [...created].sort((a, b) => b.length - a.length)) {
      if (await rmdir(under(destdir, d)).then(() => true, () => false)) created.delete(d);
    }
    await ensureDir(destdir, lib, created);
    const manifest: Manifest = {
      version: 1,
      package: 'nnf-env',
      packageVersion: info?.version ?? 'unknown',
      prefix,
      files: plan
        .filter((f) => f.action !== 'remove' && f.track !== false)
        .map((f) => ({ path: f.path, kind: f.kind, mode: modeText(f.mode), sha256: f.sha256 }))
        .sort((a, b) => a.path.localeCompare(b.path)),
      dirs: [...created].sort(),
    };
    const text = JSON.stringify(manifest, null, 2) + '\n';
    // The files first, durably; then the manifest that says they are there.
    await syncWritten(written);
    const old = await readIfExists(manifestPath);
    if (old === null || old.toString('utf8') !== text) {
      await writeInstalled(manifestPath, Buffer.from(text), 0o644, written);
      await syncWritten(written);
    }
    // The code cache of the installed node (a cache V8 rejects is only slower, never wrong).
    if (destdir === '') writeCodeCache(opts.nodePath ?? process.execPath, join(lib, '..', '..', 'bin', 'nnf-env'), lines);
    if (plan.some((f) => f.kind === 'systemd' && f.action !== 'unchanged')) {
      lines.push('next: systemctl daemon-reload && systemctl enable --now nnf-envd');
    }
  }
  return { root: destdir, prefix, dryRun, files: plan, lines };
}

export async function runUninstall(opts: InstallOptions = {}): Promise<InstallReport> {
  const { prefix, destdir, lib, manifestPath } = resolveOptions(opts);
  const dryRun = opts.dryRun === true;
  const header = `nnf-env uninstall: prefix ${prefix}${destdir ? `, destdir ${destdir}` : ''}${dryRun ? ' (dry run: nothing is changed)' : ''}`;
  const manifest = await readManifest(manifestPath);
  if (manifest === null) {
    return { root: destdir, prefix, dryRun, files: [], lines: [header, `nothing to do: ${manifestPath} does not exist (not installed here)`] };
  }
  const plan: PlannedFile[] = [];
  for (const f of manifest.files) {
    const mode = Number.parseInt(f.mode, 8);
    const current = await readIfExists(under(destdir, f.path));
    if (current === null) plan.push({ path: f.path, kind: f.kind, mode, action: 'absent', sha256: f.sha256 });
    else if (f.sha256 === null) plan.push({ path: f.path, kind: f.kind, mode, action: 'keep', note: 'was there before install', sha256: null });
    else if (sha256(current) !== f.sha256) plan.push({ path: f.path, kind: f.kind, mode, action: 'keep', note: f.kind === 'config' ? 'edited' : 'changed since install', sha256: null });
    else plan.push({ path: f.path, kind: f.kind, mode, action: 'remove', sha256: f.sha256 });
  }
  const lines = [header, ...describePlan(plan, { destdir, lib, dryRun, verbose: opts.verbose === true })];
  if (!dryRun) {
    for (const f of plan) {
      if (f.action === 'remove') await explained(under(destdir, f.path), 'remove', () => rm(under(destdir, f.path), { force: true }));
    }
    await rm(manifestPath, { force: true });
    await rm(under(destdir, `${lib}/${CODE_CACHE}`), { force: true });
    // Directories install created, deepest first, if nothing else lives in them.
    for (const d of [...manifest.dirs].sort((a, b) => b.length - a.length)) {
      try {
        await rmdir(under(destdir, d));
      } catch (err) {
        const code = errnoCode(err);
        if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      }
    }
    if (plan.some((f) => f.kind === 'systemd' && f.action === 'remove')) lines.push('next: systemctl daemon-reload');
  }
  return { root: destdir, prefix, dryRun, files: plan, lines };
}

function addCommonOptions(cmd: Command): Command {
  return cmd
    .option('--prefix <dir>', 'installation prefix for bin/, sbin/, share/ and libexec/', DEFAULT_PREFIX)
    .option('--destdir <dir>', 'stage everything under this directory (for packaging); /etc paths too')
    .option('--dry-run', 'print what would be done, change nothing')
    .option('--verbose', 'list every file of the app, not a summary line')
    .option('--flux-system-dir <dir>', 'where prolog.d/ and epilog.d/ go (default: `flux config builtin confdir`/system)')
    .option('--flux-lua-dir <dir>', 'the job shell\'s lua.d (default: beside `flux getattr conf.shell_initrc`)');
}

type CliOptions = { prefix: string; destdir?: string; dryRun?: boolean; verbose?: boolean; fluxSystemDir?: string; fluxLuaDir?: string };

async function toInstallOptions(o: CliOptions): Promise<InstallOptions> {
  const opts: InstallOptions = { prefix: o.prefix, dryRun: o.dryRun === true, verbose: o.verbose === true };
  if (o.destdir !== undefined) opts.destdir = o.destdir;
  if (o.fluxSystemDir !== undefined || o.fluxLuaDir !== undefined) {
    for (const [flag, v] of [['--flux-system-dir', o.fluxSystemDir], ['--flux-lua-dir', o.fluxLuaDir]] as const) {
      if (v !== undefined && !isAbsolute(v)) throw new InstallError('INSTALL_BAD_FLUX_DIR', `${flag} ${v} is not an absolute path`, { hint: 'give the directory as the instance has it, e.g. /etc/flux/system' });
    }
    const found = await (await import('../flux-instance.js')).findFluxPaths();
    opts.fluxPaths = {
      systemDir: o.fluxSystemDir ?? found.systemDir,
      shellLuaDir: o.fluxLuaDir ?? found.shellLuaDir,
      sources: {
        systemDir: o.fluxSystemDir !== undefined ? '--flux-system-dir' : found.sources.systemDir,
        shellLuaDir: o.fluxLuaDir !== undefined ? '--flux-lua-dir' : found.sources.shellLuaDir,
      },
    };
  }
  return opts;
}

export function command(): Command {
  return addCommonOptions(new Command('install'))
    .description('install nnf-env: PREFIX/bin/nnf-env, PREFIX/sbin/nnf-envd (one file each), PREFIX/share/nnf-env, the systemd unit, the Flux files and /etc/nnf-env/nnf-env.conf (an edited config is never overwritten)')
    .action(async (o: CliOptions) => {
      const report = await runInstall(await toInstallOptions(o));
      process.stdout.write(report.lines.join('\n') + '\n');
    });
}

export function uninstallCommand(): Command {
  return addCommonOptions(new Command('uninstall'))
    .description('remove what `nnf-env install` put in place (from its manifest); files changed since, and an edited config, stay')
    .action(async (o: CliOptions) => {
      const report = await runUninstall(await toInstallOptions(o));
      process.stdout.write(report.lines.join('\n') + '\n');
    });
}
