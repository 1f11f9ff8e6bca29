import { access, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { errnoCode } from '../core/errors.js';
import { KubeConfigError } from './errors.js';
import { loadKubeconfig, readReferencedFile } from './kubeconfig.js';

/** Everything needed to talk to one API server. PEMs are file contents, the token file is a path (re-read). */
export interface KubeConnection {
  /** Base URL, e.g. `https://10.0.0.1:6443` (no trailing slash). */
  server: string;
  caPem?: string;
  certPem?: string;
  keyPem?: string;
  tlsServerName?: string;
  /** Allowed, but whoever uses it must log a loud warning (see `connectionWarnings`). */
  insecureSkipTlsVerify: boolean;
  token?: string;
  tokenFile?: string;
  /** Namespace of the kubeconfig context or of the in-cluster service account. */
  namespace?: string;
  /** For humans: where these settings came from, e.g. `kubeconfig /root/.kube/config context sim`. */
  source: string;
}

/**
 * The configuration keys that decide the connection (a structural subset of `Config`; spelled
 * out so that it stays precise whatever the schema's inferred value types are).
 */
export interface KubeConnectionSettings {
  readonly KUBE_CONNECTION: string;
  readonly KUBE_SERVER: string;
  readonly KUBE_TOKEN_FILE: string;
  readonly KUBE_CA_FILE: string;
  readonly KUBE_TLS_SERVER_NAME: string;
  readonly KUBE_INSECURE_SKIP_TLS_VERIFY: boolean;
  readonly KUBECONFIG: string;
  readonly KUBE_CONTEXT: string;
}

export interface ResolveOptions {
  /** Where the in-cluster service-account files live (tests point it at a temp dir). */
  serviceAccountDir?: string;
  /** Home directory for ~/.kube/config. Default: env.HOME, else os.homedir(). */
  homeDir?: string;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * `https://h:p` from what an admin writes in KUBE_SERVER: a URL, `host:port`, `[v6]:port`, a
 * bare IPv6 literal or a bare host (port 443). Pure.
 */
export function normalizeServer(value: string, setting = 'KUBE_SERVER'): string {
  const v = value.trim();
  let candidate: string;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) candidate = v;
  else if (v.startsWith('[')) candidate = `https://${v}`;
  else if ((v.match(/:/g) ?? []).length > 1) candidate = `https://[${v}]`;
  else candidate = `https://${v}`;
  let url: URL;
  try {
    url = new URL(candidate);
  } catch {
    throw new KubeConfigError('KUBE_SERVER_INVALID', `${setting}="${value}" is not a URL or host:port`, { hint: 'write https://host:port or host:port' });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new KubeConfigError('KUBE_SERVER_INVALID', `${setting}="${value}" must be http(s)`, { hint: 'write https://host:port or host:port' });
  }
  if (!url.hostname) throw new KubeConfigError('KUBE_SERVER_INVALID', `${setting}="${value}" has no host`, { hint: 'write https://host:port or host:port' });
  return trimSlash(url.toString());
}

function trimSlash(s: string): string {
  return s.endsWith('/') ? s.slice(0, -1) : s;
}

/** Lines a caller must log at warn level when it uses this connection. Never includes secrets. */
export function connectionWarnings(conn: KubeConnection): string[] {
  const out: string[] = [];
  if (conn.insecureSkipTlsVerify) {
    out.push(`INSECURE: TLS verification of the API server ${conn.server} is DISABLED (insecure-skip-tls-verify, from ${conn.source}): anyone on the path can impersonate it. Never use this in production.`);
  }
  if (conn.server.startsWith('http://')) out.push(`the API server ${conn.server} is reached over plain HTTP: credentials travel unencrypted`);
  return out;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function checkTokenFile(path: string, setting: string, file?: string): Promise<void> {
  const text = await readReferencedFile(path, 'token file', file === undefined ? { setting } : { file, setting });
  if (text.trim() === '') {
    throw new KubeConfigError('KUBE_TOKEN_FILE_EMPTY', `token file ${path} (${setting}) is empty`, {
      ...(file === undefined ? {} : { file }),
      hint: 'put the service-account token in it',
    });
  }
}

async function explicit(cfg: KubeConnectionSettings): Promise<KubeConnection> {
  const server = normalizeServer(cfg.KUBE_SERVER);
  const conn: KubeConnection = { server, insecureSkipTlsVerify: cfg.KUBE_INSECURE_SKIP_TLS_VERIFY, source: `explicit settings (KUBE_SERVER=${server})` };
  if (cfg.KUBE_CA_FILE) conn.caPem = await readReferencedFile(cfg.KUBE_CA_FILE, 'CA file', { setting: 'KUBE_CA_FILE' });
  if (cfg.KUBE_TOKEN_FILE) {
    await checkTokenFile(cfg.KUBE_TOKEN_FILE, 'KUBE_TOKEN_FILE');
    conn.tokenFile = cfg.KUBE_TOKEN_FILE;
  }
  if (cfg.KUBE_TLS_SERVER_NAME) conn.tlsServerName = cfg.KUBE_TLS_SERVER_NAME;
  return conn;
}

/** Which kubeconfig file to use, and how it was chosen; undefined when none exists. */
async function pickKubeconfig(
  cfg: KubeConnectionSettings,
  env: NodeJS.ProcessEnv,
  opts: ResolveOptions,
  tried: string[],
): Promise<{ file: string; how: string } | undefined> {
  // An explicitly configured file must exist: it is not silently skipped.
  if (cfg.KUBECONFIG) return { file: cfg.KUBECONFIG, how: 'KUBECONFIG setting' };
  if (env.KUBECONFIG) {
    // kubectl merges the list; nnf-env takes the first existing file and says so.
    const list = env.KUBECONFIG.split(':').filter((p) => p !== '');
    for (const [i, file] of list.entries()) {
      if (await exists(file)) return { file, how: list.length > 1 ? `$KUBECONFIG entry ${i + 1} of ${list.length} (not merged: only the first existing file is used)` : '$KUBECONFIG' };
      tried.push(`$KUBECONFIG entry ${file} (does not exist)`);
    }
  }
  const home = opts.homeDir ?? env.HOME ?? homedir();
  const file = join(home, '.kube', 'config');
  if (await exists(file)) return { file, how: '~/.kube/config' };
  tried.push(`${file} (does not exist)`);
  return undefined;
}

async function fromKubeconfig(cfg: KubeConnectionSettings, file: string, how: string): Promise<KubeConnection> {
  const kc = await loadKubeconfig(file, cfg.KUBE_CONTEXT ? { context: cfg.KUBE_CONTEXT } : {});
  const conn: KubeConnection = {
    server: trimSlash(new URL(kc.server).toString()),
    insecureSkipTlsVerify: kc.insecureSkipTlsVerify,
    source: `kubeconfig ${file} context ${kc.contextName}${how === 'KUBECONFIG setting' ? '' : ` (from ${how})`}`,
  };
  if (kc.caPem !== undefined) conn.caPem = kc.caPem;
  if (kc.certPem !== undefined) conn.certPem = kc.certPem;
  if (kc.keyPem !== undefined) conn.keyPem = kc.keyPem;
  if (kc.tlsServerName !== undefined) conn.tlsServerName = kc.tlsServerName;
  if (kc.token !== undefined) conn.token = kc.token;
  if (kc.tokenFile !== undefined) {
    await checkTokenFile(kc.tokenFile, `user "${kc.userName}" tokenFile`, file);
    conn.tokenFile = kc.tokenFile;
  }
  if (kc.namespace !== undefined) conn.namespace = kc.namespace;
  return conn;
}

async function inCluster(env: NodeJS.ProcessEnv, dir: string): Promise<KubeConnection> {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT || '443';
  if (!host) throw new KubeConfigError('KUBE_NOT_IN_CLUSTER', 'KUBERNETES_SERVICE_HOST is not set: not running in a cluster', { hint: 'set KUBE_SERVER or a kubeconfig' });
  const server = normalizeServer(host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`, 'KUBERNETES_SERVICE_HOST/PORT');
  const tokenFile = join(dir, 'token');
  await checkTokenFile(tokenFile, 'in-cluster service-account token');
  const conn: KubeConnection = { server, insecureSkipTlsVerify: false, tokenFile, source: `in-cluster (KUBERNETES_SERVICE_HOST, service account ${dir})` };
  conn.caPem = await readReferencedFile(join(dir, 'ca.crt'), 'in-cluster CA', { setting: 'service account' });
  try {
    const ns = (await readFile(join(dir, 'namespace'), 'utf8')).trim();
    if (ns) conn.namespace = ns;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') {
      throw new KubeConfigError('KUBE_FILE_UNREADABLE', `in-cluster namespace file ${join(dir, 'namespace')} cannot be read (${errnoCode(err) ?? String(err)})`, { hint: 'check its permissions', cause: err });
    }
  }
  return conn;
}

/**
 * Decides how to reach the API server. KUBE_CONNECTION=auto tries, in order: explicit settings
 * (when KUBE_SERVER is set), a kubeconfig (KUBECONFIG setting, $KUBECONFIG, ~/.kube/config),
 * the in-cluster service account. Reads the CA, client certificate and key; checks the token file.
 */
export async function resolveConnection(
  cfg: KubeConnectionSettings,
  env: NodeJS.ProcessEnv = process.env,
  opts: ResolveOptions = {},
): Promise<KubeConnection> {
  const saDir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  switch (cfg.KUBE_CONNECTION) {
    case 'explicit':
      if (!cfg.KUBE_SERVER) throw new KubeConfigError('KUBE_SERVER_MISSING', 'KUBE_CONNECTION=explicit but KUBE_SERVER is not set', { hint: 'set KUBE_SERVER (and KUBE_TOKEN_FILE, KUBE_CA_FILE)' });
      return explicit(cfg);
    case 'kubeconfig': {
      const tried: string[] = [];
      const picked = await pickKubeconfig(cfg, env, opts, tried);
      if (!picked) throw new KubeConfigError('KUBECONFIG_NOT_FOUND', `KUBE_CONNECTION=kubeconfig but no kubeconfig exists (tried: ${tried.join('; ')})`, { hint: 'set KUBECONFIG / --kubeconfig' });
      return fromKubeconfig(cfg, picked.file, picked.how);
    }
    case 'in-cluster':
      return inCluster(env, saDir);
    case 'auto': {
      if (cfg.KUBE_SERVER) return explicit(cfg);
      const tried = ['explicit settings (KUBE_SERVER not set)'];
      const picked = await pickKubeconfig(cfg, env, opts, tried);
      if (picked) return fromKubeconfig(cfg, picked.file, picked.how);
      if (env.KUBERNETES_SERVICE_HOST) return inCluster(env, saDir);
      tried.push('in-cluster (KUBERNETES_SERVICE_HOST not set)');
      throw new KubeConfigError('KUBE_NO_CONNECTION', `no way to reach the Kubernetes API server was found; tried: ${tried.join('; ')}`, {
        hint: 'set KUBE_SERVER with KUBE_TOKEN_FILE and KUBE_CA_FILE, or KUBECONFIG',
      });
    }
    default:
      throw new KubeConfigError('KUBE_CONNECTION_INVALID', `KUBE_CONNECTION="${String(cfg.KUBE_CONNECTION)}" is not one of auto, explicit, kubeconfig, in-cluster`);
  }
}
