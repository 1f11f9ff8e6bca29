/**
 * `nnf-env doctor [--json]`: checks what nnf-envd needs on this node, in the order things
 * depend on each other, and prints each failure with its fix. Exit 1 when any check fails
 * (warnings do not fail). Checks: configuration; how to reach the API server; that it answers
 * and accepts our credentials (DWS discovery); the permissions nnf-envd needs (get, list, watch
 * on workflows, computes, systemconfigurations; optionally nodes, secrets and nnfcontainerprofiles), by
 * SelfSubjectAccessReview, or by trying a list where the server does not serve that; this
 * node's rabbit and its address; the hosts entry; the control socket and jobs directory; the
 * Flux prolog/epilog scripts, the shell plugin, and the live job-manager (perilog.so loaded with
 * the site's plugins, per-rank prolog and epilog).
 */
import { Command } from 'commander';

export type CheckState = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  check: string;
  state: CheckState;
  detail: string;
  fix?: string;
}

/** One resource nnf-envd reads, and whether the daemon works (degraded) without it. */
export interface PermissionNeed {
  group: string;
  resource: string;
  verbs: string[];
  namespace?: string;
  optional: boolean;
  why: string;
}

export function permissionNeeds(cfg: { WORKFLOW_NAMESPACE: string; WORKFLOW_TOKEN: boolean; RABBIT_ADDRESS: string; ENV_SOURCE?: string }): PermissionNeed[] {
  if (cfg.ENV_SOURCE === 'flux') return [];
  const dws = 'dataworkflowservices.github.io';
  const needs: PermissionNeed[] = [
    { group: dws, resource: 'workflows', verbs: ['get', 'list', 'watch'], namespace: cfg.WORKFLOW_NAMESPACE, optional: false, why: 'the jobs\' workflows' },
    { group: dws, resource: 'computes', verbs: ['get', 'list', 'watch'], namespace: cfg.WORKFLOW_NAMESPACE, optional: false, why: 'which nodes a workflow runs on' },
    { group: dws, resource: 'systemconfigurations', verbs: ['get', 'list', 'watch'], namespace: 'default', optional: false, why: 'this node\'s rabbit' },
  ];
  // Optional: the profile list nnf-envd caches for `nnf-env profiles` (job users have no credentials).
  needs.push({ group: 'nnf.cray.hpe.com', resource: 'nnfcontainerprofiles', verbs: ['get', 'list', 'watch'], namespace: 'nnf-system', optional: true, why: '`nnf-env profiles` for job authors' });
  if (!cfg.RABBIT_ADDRESS) needs.push({ group: '', resource: 'nodes', verbs: ['get', 'list', 'watch'], optional: true, why: 'the rabbit\'s address (else DNS)' });
  if (cfg.WORKFLOW_TOKEN) needs.push({ group: '', resource: 'secrets', verbs: ['get'], namespace: cfg.WORKFLOW_NAMESPACE, optional: true, why: 'DW_WORKFLOW_TOKEN for jobs that ask for it' });
  return needs;
}

function rbacName(n: PermissionNeed): string {
  return n.group ? `${n.resource}.${n.group}` : n.resource;
}

export function renderChecks(results: readonly CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.check.length));
  let out = '';
  for (const r of results) {
    const tag = { ok: 'ok  ', warn: 'warn', fail: 'FAIL', skip: 'skip' }[r.state];
    out += `${tag}  ${r.check.padEnd(width)}  ${r.detail}\n`;
    if (r.fix && r.state !== 'ok') out += `      ${' '.repeat(width)}  fix: ${r.fix}\n`;
  }
  const failed = results.filter((r) => r.state === 'fail').length;
  const warned = results.filter((r) => r.state === 'warn').length;
  out += failed ? `\n${failed} check${failed > 1 ? 's' : ''} failed${warned ? `, ${warned} warning${warned > 1 ? 's' : ''}` : ''}\n` : `\nall checks passed${warned ? ` (${warned} warning${warned > 1 ? 's' : ''})` : ''}\n`;
  return out;
}

function describe(err: unknown): { detail: string; fix?: string } {
  const e = err as { message?: string; hint?: string } | null;
  return { detail: e?.message ?? String(err), ...(e?.hint ? { fix: e.hint } : {}) };
}

export interface DoctorOptions {
  env: NodeJS.ProcessEnv;
  configFile?: string;
  /** Where the Flux scripts are expected. Default: asked of the instance (`flux config builtin confdir`/system). */
  fluxDir?: string;
  /** Bound of each API request. */
  timeoutMs: number;
}

export async function runDoctor(opts: DoctorOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const add = (r: CheckResult) => results.push(r);

  // 1. Configuration.
  const { loadConfig, shortHostname } = await import('../../config/load.js');
  let loaded;
  try {
    loaded = await loadConfig({ argvFlags: {}, env: opts.env, configFile: opts.configFile });
  } catch (err) {
    add({ check: 'config', state: 'fail', ...describe(err) });
    return results;
  }
  const config = loaded.config as unknown as Record<string, unknown> & {
    NODE_NAME: string; RABBIT_NAME: string; RABBIT_ADDRESS: string; RABBIT_MAPPING_FILE: string; HOSTS_FILE: string; HOSTS_ALIASES: string[];
    RUNTIME_DIR: string; SOCKET_PATH: string; WORKFLOW_NAMESPACE: string; WORKFLOW_TOKEN: boolean; DWS_API_VERSION: string; KUBE_REQUEST_TIMEOUT: number;
    ENV_SOURCE: string;
  };
  const fluxMode = config.ENV_SOURCE === 'flux';
  const nodeName = config.NODE_NAME || shortHostname();
  add({ check: 'config', state: 'ok', detail: `${loaded.file ?? 'no config file (defaults and NNF_ENV_* environment)'}; node ${nodeName}` });

  // 2. How to reach the API server.
  const { resolveConnection, connectionWarnings } = await import('../../kube/connection.js');
  let connection;
  try {
    connection = await resolveConnection(config as never, opts.env);
    if (fluxMode) {
      // Credentials nnf-envd never uses are only something a root shell on this node can take.
      add({ check: 'connection', state: 'warn', detail: `ENV_SOURCE=flux needs no Kubernetes access, yet credentials are configured here (${connection.source})`, fix: 'remove them from this node (KUBE_TOKEN_FILE, the kubeconfig) unless something else needs them' });
      connection = undefined;
    } else {
      add({ check: 'connection', state: 'ok', detail: `${connection.server} (${connection.source})` });
      for (const w of connectionWarnings(connection)) add({ check: 'connection', state: 'warn', detail: w, fix: 'use https with KUBE_CA_FILE' });
    }
  } catch (err) {
    if (fluxMode) add({ check: 'connection', state: 'ok', detail: 'ENV_SOURCE=flux: no Kubernetes credentials on this node, none needed' });
    else add({ check: 'connection', state: 'fail', ...describe(err) });
  }

  // 3. Reachability, authentication, DWS.
  let client: import('../../kube/client.js').KubeClient | undefined;
  let dwsVersion: string | undefined;
  let apiOk = false;
  if (connection) {
    const { KubeClient } = await import('../../kube/client.js');
    const { discoverDwsVersion } = await import('../../kube/discovery.js');
    client = new KubeClient({ connection, requestTimeoutMs: Math.min(opts.timeoutMs, config.KUBE_REQUEST_TIMEOUT), userAgent: `nnf-env-doctor (${nodeName})` });
    try {
      dwsVersion = await discoverDwsVersion(client, config.DWS_API_VERSION as never);
      apiOk = true;
      add({ check: 'api', state: 'ok', detail: `reachable and authenticated; DWS ${dwsVersion}` });
    } catch (err) {
      const status = (err as { status?: number }).status;
      const what = status === 401 ? 'authentication failed: ' : status === 403 ? 'authenticated, but discovery is forbidden: ' : '';
      const d = describe(err);
      add({ check: 'api', state: 'fail', detail: what + d.detail, fix: d.fix ?? (status === 401 ? 'check KUBE_TOKEN_FILE (or the kubeconfig user) and that the token is not expired' : 'check the connection settings') });
    }
  } else {
    add({ check: 'api', state: 'skip', detail: fluxMode ? 'ENV_SOURCE=flux: environments come from job eventlogs' : 'no connection settings' });
  }

  try {
    // 4. Permissions.
    if (client && apiOk) {
      for (const r of await checkPermissions(client, permissionNeeds(config), connection!.source)) add(r);
      const { checkExcessPrivileges } = await import('./doctor-privileges.js');
      for (const r of await checkExcessPrivileges(client, config)) add(r);
    } else if (fluxMode) {
      add({ check: 'permissions', state: 'skip', detail: 'ENV_SOURCE=flux: no Kubernetes permissions needed' });
    } else {
      add({ check: 'permissions', state: 'skip', detail: 'the API server is not usable' });
    }

    // 5. This node's rabbit.
    let rabbit: string | undefined;
    const rabbitCheck = await checkRabbit(client && apiOk ? client : undefined, dwsVersion, config, nodeName);
    add(rabbitCheck.result);
    rabbit = rabbitCheck.rabbit;

    // 6. Its address.
    if (config.RABBIT_ADDRESS) add({ check: 'rabbit address', state: 'ok', detail: `${config.RABBIT_ADDRESS} (RABBIT_ADDRESS)` });
    else if (rabbit) add(await checkRabbitAddress(client && apiOk ? client : undefined, rabbit));
    else add({ check: 'rabbit address', state: 'skip', detail: 'no rabbit' });
  } finally {
    await client?.close();
  }

  // 7. The hosts entry.
  if (!config.HOSTS_FILE) add({ check: 'hosts', state: 'skip', detail: 'HOSTS_FILE is empty: no hosts entry is managed' });
  else {
    const { checkHosts } = await import('./hosts.js');
    const h = await checkHosts(config.HOSTS_FILE, config.HOSTS_ALIASES);
    if (h.problems.length === 0 && h.entry) add({ check: 'hosts', state: 'ok', detail: `${config.HOSTS_FILE}: ${h.entry.address} ${h.entry.names.join(' ')}; resolves` });
    else for (const p of h.problems) add({ check: 'hosts', state: 'fail', detail: p, fix: h.entry ? 'see nnf-env hosts' : 'start nnf-envd (systemctl start nnf-envd); nnf-env status shows why it writes no entry' });
  }

  // 8. The control socket and the jobs directory.
  const { socketPathOf } = await import('../../contract/job-paths.js');
  const socketPath = config.SOCKET_PATH || socketPathOf(config.RUNTIME_DIR);
  const { health } = await import('../../api/client.js');
  try {
    const ok = await health(socketPath, { timeoutMs: opts.timeoutMs });
    add(ok ? { check: 'socket', state: 'ok', detail: `nnf-envd is serving on ${socketPath}` } : { check: 'socket', state: 'fail', detail: `nnf-envd on ${socketPath} is not healthy yet`, fix: 'journalctl -u nnf-envd' });
  } catch (err) {
    const d = describe(err);
    add({ check: 'socket', state: 'fail', detail: d.detail, fix: (err as { code?: string }).code === 'DAEMON_UNAVAILABLE' ? 'systemctl enable --now nnf-envd; journalctl -u nnf-envd' : d.fix ?? 'journalctl -u nnf-envd' });
  }
  add(await checkJobsDir(`${config.RUNTIME_DIR.replace(/\/+$/, '')}/jobs`));

  // 9. Flux: the scripts, the shell plugin and the job-manager, as the live instance has them.
  const { findFluxPaths } = await import('../flux-instance.js');
  const paths = await findFluxPaths();
  add(await checkFluxScripts(opts.fluxDir ?? paths.systemDir, opts.fluxDir ? '--flux-dir' : paths.sources.systemDir));
  for (const r of await checkFluxInstance(paths.shellLuaDir, paths.sources.shellLuaDir)) add(r);
  return results;
}

async function checkPermissions(client: import('../../kube/client.js').KubeClient, needs: PermissionNeed[], identity: string): Promise<CheckResult[]> {
  const { KubeApiError } = await import('../../kube/errors.js');
  const out: CheckResult[] = [];
  let ssar = true;
  for (const need of needs) {
    const denied: string[] = [];
    let note = '';
    if (ssar) {
      try {
        for (const verb of need.verbs) {
          const review = await client.request<{ status?: { allowed?: boolean; reason?: string } }>({
            method: 'POST',
            path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
            body: {
              apiVersion: 'authorization.k8s.io/v1',
              kind: 'SelfSubjectAccessReview',
              spec: { resourceAttributes: { group: need.group, resource: need.resource, verb, ...(need.namespace !== undefined ? { namespace: need.namespace } : {}) } },
            },
            context: { verb: 'create', resource: 'selfsubjectaccessreviews.authorization.k8s.io' },
          });
          if (review?.status?.allowed !== true) denied.push(verb);
        }
      } catch (err) {
        // Not served (a simulator, a trimmed API server): try the list itself instead.
        if (err instanceof KubeApiError && (err.status === 404 || err.status === 405 || err.status === 403)) ssar = false;
        else throw err;
      }
    }
    if (!ssar) {
      denied.length = 0;
      note = ' (tried; the server does not serve SelfSubjectAccessReview, so get and watch are not checked)';
      const path = need.group ? `/apis/${need.group}` : '/api/v1';
      try {
        const version = need.group ? await groupVersion(client, need.group) : 'v1';
        const ns = need.namespace !== undefined ? `/namespaces/${encodeURIComponent(need.namespace)}` : '';
        const base = need.group ? `/apis/${need.group}/${version}` : path;
        await client.request({ method: 'GET', path: `${base}${ns}/${need.resource}`, query: { limit: 1 }, context: { verb: 'list', resource: rbacName(need) } });
      } catch (err) {
        if (err instanceof KubeApiError && (err.status === 403 || err.status === 401)) denied.push('list');
        else if (err instanceof KubeApiError && err.status === 404) denied.push('list (not served)');
        else throw err;
      }
    }
    const where = need.namespace !== undefined ? ` in namespace ${need.namespace}` : '';
    if (denied.length === 0) {
      out.push({ check: 'permissions', state: 'ok', detail: `${ssar ? need.verbs.join(', ') : 'list'} ${rbacName(need)}${where}${note}` });
    } else {
      out.push({
        check: 'permissions',
        state: need.optional ? 'warn' : 'fail',
        detail: `${denied.join(', ')} on ${rbacName(need)}${where} is not allowed: ${need.optional ? 'optional, for ' : 'needed for '}${need.why}${note}`,
        fix: `grant the identity of ${identity} ${need.verbs.join(', ')} on ${rbacName(need)}${where} (a Role/ClusterRole and a binding)`,
      });
    }
  }
  return out;
}

async function groupVersion(client: import('../../kube/client.js').KubeClient, group: string): Promise<string> {
  const g = await client.request<{ preferredVersion?: { version?: string } }>({ method: 'GET', path: `/apis/${group}` });
  return g?.preferredVersion?.version ?? 'v1';
}

async function checkRabbit(
  client: import('../../kube/client.js').KubeClient | undefined,
  dwsVersion: string | undefined,
  config: { RABBIT_NAME: string; RABBIT_MAPPING_FILE: string },
  nodeName: string,
): Promise<{ result: CheckResult; rabbit?: string }> {
  if (config.RABBIT_NAME) return { result: { check: 'rabbit', state: 'ok', detail: `${config.RABBIT_NAME} (RABBIT_NAME)` }, rabbit: config.RABBIT_NAME };
  const ra = await import('../../domain/rabbit-assignment.js');
  const reasons: string[] = [];
  if (client && dwsVersion) {
    const { dwsResource } = await import('../../kube/resource.js');
    try {
      const sc = await client.tryGet(dwsResource('systemconfigurations', dwsVersion), 'default', 'default');
      const a = ra.rabbitFromSystemConfiguration(sc as never, nodeName);
      if (a.kind === 'rabbit') return { result: { check: 'rabbit', state: 'ok', detail: `${a.rabbit} (SystemConfiguration default/default)` }, rabbit: a.rabbit };
      if (a.kind === 'none') return { result: { check: 'rabbit', state: 'warn', detail: `${a.reason}: no local-rabbit entry is written`, fix: 'nothing, if this node really has no rabbit' } };
      reasons.push(a.reason);
    } catch (err) {
      reasons.push(`SystemConfiguration default/default: ${describe(err).detail}`);
    }
  }
  if (config.RABBIT_MAPPING_FILE) {
    const { readFile } = await import('node:fs/promises');
    try {
      const a = ra.rabbitFromMapping(ra.parseRabbitMapping(await readFile(config.RABBIT_MAPPING_FILE, 'utf8'), config.RABBIT_MAPPING_FILE), nodeName);
      if (a.kind === 'rabbit') return { result: { check: 'rabbit', state: 'ok', detail: `${a.rabbit} (${config.RABBIT_MAPPING_FILE})` }, rabbit: a.rabbit };
      reasons.push(`${a.reason} (${config.RABBIT_MAPPING_FILE})`);
    } catch (err) {
      reasons.push(describe(err).detail);
    }
  }
  return {
    result: {
      check: 'rabbit',
      state: 'fail',
      detail: `no rabbit found for node ${nodeName}: ${reasons.join('; ') || 'no source'}`,
      fix: 'set NODE_NAME to the name DWS uses for this compute node, or RABBIT_NAME',
    },
  };
}

async function checkRabbitAddress(client: import('../../kube/client.js').KubeClient | undefined, rabbit: string): Promise<CheckResult> {
  let note = '';
  if (client) {
    const { NODES } = await import('../../kube/resource.js');
    const { addressFromNode, lookupHost } = await import('../../net/host-address.js');
    try {
      const node = await client.tryGet(NODES, undefined, rabbit);
      const address = addressFromNode(node as never);
      if (address) return { check: 'rabbit address', state: 'ok', detail: `${address} (Node ${rabbit})` };
      note = node ? `Node ${rabbit} has no InternalIP; ` : `no Node ${rabbit}; `;
    } catch (err) {
      note = (err as { status?: number }).status === 403 ? 'reading nodes is forbidden; ' : `${describe(err).detail}; `;
    }
    try {
      return { check: 'rabbit address', state: note.includes('forbidden') ? 'warn' : 'ok', detail: `${await lookupHost(rabbit)} (${note}DNS)` };
    } catch (err) {
      return { check: 'rabbit address', state: 'fail', detail: `${note}${rabbit} does not resolve: ${describe(err).detail}`, fix: 'set RABBIT_ADDRESS, or allow reading nodes, or make the name resolve' };
    }
  }
  const { lookupHost } = await import('../../net/host-address.js');
  try {
    return { check: 'rabbit address', state: 'ok', detail: `${await lookupHost(rabbit)} (DNS)` };
  } catch (err) {
    return { check: 'rabbit address', state: 'fail', detail: `${rabbit} does not resolve: ${describe(err).detail}`, fix: 'set RABBIT_ADDRESS' };
  }
}

async function checkJobsDir(dir: string): Promise<CheckResult> {
  const { stat } = await import('node:fs/promises');
  try {
    const st = await stat(dir);
    const mode = st.mode & 0o7777;
    if (!st.isDirectory()) return { check: 'jobs dir', state: 'fail', detail: `${dir} is not a directory`, fix: 'remove it and restart nnf-envd' };
    if (mode !== 0o711) return { check: 'jobs dir', state: 'warn', detail: `${dir} has mode ${mode.toString(8)}, expected 711 (traversable, not listable)`, fix: 'restart nnf-envd (it sets the mode)' };
    return { check: 'jobs dir', state: 'ok', detail: `${dir} (mode 711)` };
  } catch (err) {
    return { check: 'jobs dir', state: 'fail', detail: `${dir}: ${describe(err).detail}`, fix: 'start nnf-envd (it creates the directory)' };
  }
}

async function checkFluxScripts(fluxDir: string, source: string): Promise<CheckResult> {
  const { access, constants } = await import('node:fs/promises');
  const missing: string[] = [];
  for (const p of [`${fluxDir}/prolog.d/nnf-env`, `${fluxDir}/epilog.d/nnf-env`]) {
    try {
      await access(p, constants.X_OK);
    } catch {
      missing.push(p);
    }
  }
  if (missing.length === 0) {
    // What the scripts name by absolute path (`nnf-env install --prefix` writes them): a missing
    // bin makes them skip nnf-env, a missing lib sends every #DW job the slow Node way.
    const absent = await missingScriptTargets([`${fluxDir}/prolog.d/nnf-env`, `${fluxDir}/epilog.d/nnf-env`]);
    if (absent.length > 0) {
      return {
        check: 'flux',
        state: 'warn',
        detail: `${fluxDir}/prolog.d/nnf-env and epilog.d/nnf-env name files that are not there: ${absent.join(', ')}`,
        fix: 'nnf-env install again with the same --prefix (or reinstall the package)',
      };
    }
    return { check: 'flux', state: 'ok', detail: `${fluxDir}/prolog.d/nnf-env and epilog.d/nnf-env are in place (${source})` };
  }
  return {
    check: 'flux',
    state: 'warn',
    detail: `missing or not executable: ${missing.join(', ')} (${source}; jobs are not tracked unless DISCOVERY=computes)`,
    fix: 'nnf-env install; and enable perilog.so with per-rank = true (docs/ADMIN-FLUX.md)',
  };
}

/** The NNF_ENV= and PERILOG_LIB= paths of the installed scripts that do not exist (or cannot be read). */
async function missingScriptTargets(scripts: string[]): Promise<string[]> {
  const { access, constants, readFile } = await import('node:fs/promises');
  const absent = new Set<string>();
  for (const script of scripts) {
    const text = await readFile(script, 'utf8').catch(() => '');
    for (const m of text.matchAll(/^(NNF_ENV|PERILOG_LIB)=(\/\S+)$/gm)) {
      const target = m[2]!;
      await access(target, m[1] === 'NNF_ENV' ? constants.X_OK : constants.R_OK).catch(() => absent.add(`${target} (${m[1]})`));
    }
  }
  return [...absent];
}

/**
 * The live instance (../flux-instance.ts): perilog.so loaded next to every plugin the site
 * configured, per-rank for prolog and epilog, and the shell plugin where the shell sources
 * lua.d. A `plugins` array in more than one config file is reported: Flux merges the files
 * but the array of the file read last replaces the others (flux-core src/common/libflux/conf.c).
 */
async function checkFluxInstance(luaDir: string, luaSource: string): Promise<CheckResult[]> {
  const fi = await import('../flux-instance.js');
  const out: CheckResult[] = [];
  const { access, constants, readdir, readFile } = await import('node:fs/promises');
  const plugin = `${luaDir}/nnf-env.lua`;
  try {
    await access(plugin, constants.R_OK);
    out.push({ check: 'flux shell', state: 'ok', detail: `${plugin} is in place (${luaSource})` });
  } catch {
    out.push({ check: 'flux shell', state: 'fail', detail: `${plugin} is missing (${luaSource}): jobs get no variables in their environment`, fix: 'nnf-env install (it asks the instance where lua.d is)' });
  }

  const loaded = await fi.jobtapPlugins();
  if (loaded === null) {
    out.push({ check: 'flux jobtap', state: 'warn', detail: 'could not ask the instance (flux jobtap list failed): perilog.so and per-rank not checked', fix: 'run nnf-env doctor where flux can reach the instance (as root on a node of the system instance, or with FLUX_URI set)' });
    return out;
  }
  const configured = await configuredPlugins(fi);
  const others = loaded.filter((n) => !fi.isPerilog(n));
  const lost = configured.filter((c) => !loaded.some((l) => l === c || l === c.replace(/^.*\//, '')));
  if (!loaded.some(fi.isPerilog)) {
    out.push({ check: 'flux jobtap', state: 'fail', detail: `perilog.so is not loaded (flux jobtap list: ${loaded.join(', ') || 'none'}): no prolog or epilog runs`, fix: 'merge etc/nnf-env/flux-job-manager.toml into the [job-manager] config (add perilog.so to the existing plugins array), then flux config reload' });
  } else {
    out.push({ check: 'flux jobtap', state: 'ok', detail: `perilog.so loaded${others.length ? `, with ${others.join(', ')}` : ''}` });
  }
  if (configured.length > 0 && loaded.some(fi.isPerilog) && !configured.some(fi.isPerilog)) {
    // A reload does not unload plugins: the instance runs perilog until it restarts.
    out.push({ check: 'flux jobtap', state: 'fail', detail: `perilog.so is loaded but not in the config in use (job-manager.plugins: ${configured.join(', ')}): the next restart runs no prolog`, fix: 'add { load = "perilog.so" } to the site\'s plugins array (etc/nnf-env/flux-job-manager.toml)' });
  }
  if (lost.length > 0) {
    out.push({ check: 'flux jobtap', state: 'fail', detail: `configured but not loaded: ${lost.join(', ')}`, fix: 'flux dmesg | grep job-manager; flux jobtap load <plugin>' });
  }
  const arrays = await pluginArrayFiles(fi, readdir, readFile);
  if (arrays.length > 1) {
    out.push({
      check: 'flux config',
      state: 'fail',
      detail: `${arrays.length} files set [job-manager] plugins (${arrays.join(', ')}): Flux replaces the array, only ${arrays.at(-1)} counts`,
      fix: 'keep one plugins array with every entry (perilog.so and the site\'s), remove the others, flux config reload',
    });
  }
  for (const which of ['prolog', 'epilog'] as const) {
    const perRank = await fi.configBoolean(`job-manager.${which}.per-rank`);
    if (perRank === true) out.push({ check: `flux ${which}`, state: 'ok', detail: `[job-manager.${which}] per-rank = true` });
    else out.push({
      check: `flux ${which}`,
      state: 'fail',
      detail: `[job-manager.${which}] per-rank is ${perRank === false ? 'false' : 'not set'}: perilog runs the ${which} on broker rank 0 only, not on the job's nodes`,
      fix: `set per-rank = true in [job-manager.${which}] (etc/nnf-env/flux-job-manager.toml), flux config reload`,
    });
  }
  out.push(...(await perilogCommandChecks(fi)));
  return out;
}

/**
 * With `exec.imp` set, the perilog must go through the IMP (root): a `command` with `--no-imp`,
 * or one that runs nnf-env's scripts itself, runs them as the instance owner, who may not track
 * jobs, write job files or use nnf-envd's root-only spool (docs/ADMIN-FLUX.md "command").
 */
async function perilogCommandChecks(fi: typeof import('../flux-instance.js')): Promise<CheckResult[]> {
  const imp = (await fi.configString('exec.imp'))?.replace(/^"|"$/g, '');
  if (!imp) return [];
  const out: CheckResult[] = [];
  for (const which of ['prolog', 'epilog'] as const) {
    const text = await fi.configString(`job-manager.${which}.command`);
    let argv: unknown;
    try {
      argv = text === null ? null : JSON.parse(text);
    } catch {
      argv = null;
    }
    if (!Array.isArray(argv)) continue;
    const words = argv.filter((w): w is string => typeof w === 'string');
    const direct = words[0] !== undefined && /(^|\/)(prolog|epilog)\.d\/nnf-env$/.test(words[0]);
    if (!words.includes('--no-imp') && !direct) continue;
    out.push({
      check: `flux ${which}`,
      state: 'warn',
      detail: `[job-manager.${which}] command ${JSON.stringify(words)} ${direct ? 'runs the script itself' : 'has --no-imp'} although exec.imp is set (${imp}): the ${which} runs as the instance owner, not as root through the IMP`,
      fix: `remove command from [job-manager.${which}] (perilog then runs "${imp} run ${which}"), or drop --no-imp; flux config reload`,
    });
  }
  return out;
}

/** `load` names of the config in use (`flux config get job-manager.plugins`). */
async function configuredPlugins(fi: typeof import('../flux-instance.js')): Promise<string[]> {
  const text = await fi.configString('job-manager.plugins');
  if (text === null) return [];
  try {
    const arr = JSON.parse(text) as unknown;
    if (!Array.isArray(arr)) return [];
    return arr.map((e) => (e as { load?: unknown } | null)?.load).filter((l): l is string => typeof l === 'string');
  } catch {
    return [];
  }
}

/** Files of the instance's config directory (`flux getattr config.path`) with a [job-manager] plugins key, in the order Flux reads them. */
async function pluginArrayFiles(
  fi: typeof import('../flux-instance.js'),
  readdir: typeof import('node:fs/promises').readdir,
  readFile: typeof import('node:fs/promises').readFile,
): Promise<string[]> {
  const dir = await fi.fluxOutput(['getattr', 'config.path']);
  if (dir === null || !dir.startsWith('/')) return [];
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.toml')).sort();
  } catch {
    return []; // a single file, or unreadable: nothing to compare
  }
  const out: string[] = [];
  for (const name of names) {
    const text = await readFile(`${dir}/${name}`, 'utf8').catch(() => '');
    let table = '';
    for (const line of text.split('\n')) {
      const header = /^\s*\[\s*([^\]]+?)\s*\]/.exec(line);
      if (header && !line.trim().startsWith('[[')) table = header[1]!;
      else if (table === 'job-manager' && /^\s*plugins\s*=/.test(line)) out.push(`${dir}/${name}`);
      else if (table === '' && /^\s*job-manager\.plugins\s*=/.test(line)) out.push(`${dir}/${name}`);
    }
  }
  return out;
}

export function command(): Command {
  return new Command('doctor')
    .description('check configuration, API access and permissions, rabbit mapping, hosts entry, socket; print fixes')
    .option('--config <file>', 'configuration file (default /etc/nnf-env/nnf-env.conf)')
    .option('--flux-dir <dir>', 'where prolog.d/ and epilog.d/ are (default: `flux config builtin confdir`/system)')
    .option('--timeout <duration>', 'bound of each request', '10s')
    .option('--json', 'print the checks as JSON')
    .action(async (opts: { config?: string; fluxDir?: string; timeout: string; json?: boolean }) => {
      const { parseDurationMs } = await import('../job-context.js');
      const results = await runDoctor({ env: process.env, configFile: opts.config, fluxDir: opts.fluxDir, timeoutMs: await parseDurationMs(opts.timeout) });
      process.stdout.write(opts.json ? JSON.stringify(results, null, 2) + '\n' : renderChecks(results));
      if (results.some((r) => r.state === 'fail')) process.exitCode = 1;
    });
}
