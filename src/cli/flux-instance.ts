/**
 * What the Flux instance on this node says about itself, for `install` and `doctor`: where the
 * job shell's `lua.d` is, where the prolog.d/epilog.d scripts are, which jobtap plugins the
 * job-manager has loaded and how perilog is configured. Asked through the `flux` command
 * (`flux getattr`, `flux config get|builtin`, `flux jobtap list`), each call bounded in time;
 * a question Flux cannot answer (no `flux` on PATH, no instance to talk to) answers null.
 *
 * Facts used (flux-core 0.88):
 * - the shell sources `<dirname of its initrc>/lua.d/*.lua` (src/shell/initrc.lua,
 *   `shell.source_rcpath`; rcpath is the initrc's directory, src/shell/rc.c), and takes the
 *   initrc from the broker attribute `conf.shell_initrc`, else the built-in `shell_initrc`
 *   (src/shell/shell.c shell_initrc);
 * - flux-run-system-scripts runs `<libexecdir>/flux/<prolog>.d/*` and then
 *   `<sysconfdir>/flux/system/<prolog>.d/*`, where `flux config builtin confdir` is
 *   `<sysconfdir>/flux` (etc/flux-run-system-scripts.in, src/common/libflux/conf_builtin.c).
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';

type Env = Readonly<Record<string, string | undefined>>;

/** Runs `flux ARGS`; its stdout trimmed, or null when flux is missing, fails or hangs. */
export function fluxOutput(args: string[], opts: { env?: Env; timeoutMs?: number } = {}): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('flux', args, { env: (opts.env ?? process.env) as NodeJS.ProcessEnv, timeout: opts.timeoutMs ?? 10_000, encoding: 'utf8' }, (err, stdout) => {
      resolve(err ? null : stdout.replace(/\n+$/, ''));
    });
  });
}

export interface FluxPaths {
  /** Where the shell's Lua plugins go (`<initrc dir>/lua.d`). */
  shellLuaDir: string;
  /** `<confdir>/system`: prolog.d/ and epilog.d/ live here. */
  systemDir: string;
  /** `<libexecdir>/flux` (`flux config builtin libexecdir`): the packages' prolog.d/ and epilog.d/. */
  libexecDir?: string;
  /** How each was found, for messages. */
  sources: { shellLuaDir: string; systemDir: string };
}

export const DEFAULT_FLUX_CONFDIR = '/etc/flux';
export const DEFAULT_FLUX_LIBEXECDIR = '/usr/libexec/flux';

/** The perilog command with Flux's directories written in (see libexec/flux-perilog). */
export function withFluxDirs(script: string, paths: Pick<FluxPaths, 'systemDir' | 'libexecDir'>): string {
  const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  return script
    .replace(/^libexecdir=.*$/m, `libexecdir=${sh(paths.libexecDir ?? DEFAULT_FLUX_LIBEXECDIR)}`)
    .replace(/^confdir=.*$/m, `confdir=${sh(dirname(paths.systemDir))}`);
}

/**
 * The running instance's paths (`flux getattr conf.shell_initrc`), else the installed flux's
 * built-in ones, else flux-core's defaults for a sysconfdir of /etc.
 */
export async function findFluxPaths(opts: { env?: Env; timeoutMs?: number } = {}): Promise<FluxPaths> {
  let initrc = await fluxOutput(['getattr', 'conf.shell_initrc'], opts);
  let initrcSource = 'flux getattr conf.shell_initrc';
  if (!initrc?.startsWith('/')) {
    initrc = await fluxOutput(['config', 'builtin', 'shell_initrc'], opts);
    initrcSource = 'flux config builtin shell_initrc';
  }
  if (!initrc?.startsWith('/')) {
    initrc = `${DEFAULT_FLUX_CONFDIR}/shell/initrc.lua`;
    initrcSource = 'default (no flux command answered)';
  }
  let confdir = await fluxOutput(['config', 'builtin', 'confdir'], opts);
  let confSource = 'flux config builtin confdir';
  if (!confdir?.startsWith('/')) {
    confdir = DEFAULT_FLUX_CONFDIR;
    confSource = 'default (no flux command answered)';
  }
  const libexec = await fluxOutput(['config', 'builtin', 'libexecdir'], opts);
  return {
    libexecDir: libexec?.startsWith('/') ? libexec : DEFAULT_FLUX_LIBEXECDIR,
    shellLuaDir: join(dirname(initrc), 'lua.d'),
    systemDir: join(confdir, 'system'),
    sources: { shellLuaDir: `${initrcSource}: ${initrc}`, systemDir: `${confSource}: ${confdir}` },
  };
}

/** `flux jobtap list` names (one per line; hidden builtins start with "."), or null. */
export async function jobtapPlugins(opts: { env?: Env; timeoutMs?: number } = {}): Promise<string[] | null> {
  const out = await fluxOutput(['jobtap', 'list'], opts);
  if (out === null) return null;
  return out.split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

/** perilog is listed as "perilog.so" (or by its path when loaded by path). */
export function isPerilog(name: string): boolean {
  return /(^|\/)perilog(\.so)?$/.test(name);
}

/** `flux config get --type=boolean KEY` of the live instance: true/false, or null (unset/unknown). */
export async function configBoolean(key: string, opts: { env?: Env; timeoutMs?: number } = {}): Promise<boolean | null> {
  const out = await fluxOutput(['config', 'get', '--type=boolean', key], opts);
  return out === 'true' ? true : out === 'false' ? false : null;
}

/** `flux config get KEY` as a string, or null when unset or not answered. */
export async function configString(key: string, opts: { env?: Env; timeoutMs?: number } = {}): Promise<string | null> {
  return fluxOutput(['config', 'get', key], opts);
}
