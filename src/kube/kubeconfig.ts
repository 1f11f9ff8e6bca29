import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { errnoCode } from '../core/errors.js';
import { KubeConfigError } from './errors.js';

/**
 * What one kubeconfig context says about reaching the API server, with file paths already
 * resolved against the kubeconfig's directory and `-data` fields decoded. Pure result of
 * `parseKubeconfig`; `loadKubeconfig` then reads the referenced files.
 */
export interface KubeconfigSelection {
  file: string;
  contextName: string;
  clusterName: string;
  userName: string | undefined;
  server: string;
  /** PEM from certificate-authority-data, which wins over certificate-authority (as in client-go). */
  caData?: string;
  caFile?: string;
  tlsServerName?: string;
  insecureSkipTlsVerify: boolean;
  /** A static token wins over tokenFile (as in client-go). */
  token?: string;
  tokenFile?: string;
  certData?: string;
  certFile?: string;
  keyData?: string;
  keyFile?: string;
  namespace?: string;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(file: string, where: string, v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new KubeConfigError('KUBECONFIG_INVALID', `${where} must be a string`, { file });
  return v;
}

/** Finds `{name, <field>: {...}}` in a named list (clusters, contexts, users). */
function named(file: string, root: Obj, list: string, field: string, name: string): Obj | undefined {
  const items = root[list];
  if (items === undefined || items === null) return undefined;
  if (!Array.isArray(items)) throw new KubeConfigError('KUBECONFIG_INVALID', `"${list}" must be a list`, { file });
  for (const item of items) {
    if (isObj(item) && item.name === name) {
      const inner = item[field];
      if (inner === undefined || inner === null) return {};
      if (!isObj(inner)) throw new KubeConfigError('KUBECONFIG_INVALID', `${list} entry "${name}": "${field}" must be a mapping`, { file });
      return inner;
    }
  }
  return undefined;
}

function names(root: Obj, list: string): string {
  const items = root[list];
  const all = Array.isArray(items) ? items.filter(isObj).map((i) => String(i.name)) : [];
  return all.length ? all.map((n) => `"${n}"`).join(', ') : 'none';
}

/** base64 -> PEM text, checked: Buffer.from silently skips junk, so verify the alphabet and the PEM marker. */
function decodePem(file: string, field: string, b64: string, marker: RegExp): string {
  const compact = b64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length === 0) {
    throw new KubeConfigError('KUBECONFIG_BAD_DATA', `${field} is not valid base64`, { file, hint: `${field} holds the base64 of a PEM file (base64 -w0 < file.pem)` });
  }
  const text = Buffer.from(compact, 'base64').toString('utf8');
  if (!marker.test(text)) {
    throw new KubeConfigError('KUBECONFIG_BAD_DATA', `${field} does not decode to PEM (${marker.source.replace(/\\/g, '')} not found)`, {
      file,
      hint: `${field} holds the base64 of a PEM file (base64 -w0 < file.pem)`,
    });
  }
  return text;
}

const CERT_MARK = /-----BEGIN CERTIFICATE-----/;
const KEY_MARK = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/**
 * Parses kubeconfig text and selects one context (`context`, else current-context). Relative
 * paths resolve against the kubeconfig's own directory, as kubectl does. Pure: no file reads.
 */
export function parseKubeconfig(text: string, file: string, opts: { context?: string } = {}): KubeconfigSelection {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    const at = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
    throw new KubeConfigError('KUBECONFIG_BAD_YAML', `not valid YAML${at}: ${e.message.split('\n')[0]}`, { file, hint: 'fix the YAML syntax', cause: e });
  }
  const root = doc.toJS() as unknown;
  if (root === null || root === undefined) throw new KubeConfigError('KUBECONFIG_INVALID', 'the file is empty', { file, hint: 'point KUBECONFIG at a kubeconfig (kind: Config)' });
  if (!isObj(root)) throw new KubeConfigError('KUBECONFIG_INVALID', 'the top level is not a mapping', { file, hint: 'a kubeconfig is a YAML mapping with clusters, users and contexts' });

  const base = dirname(resolve(file));
  const path = (v: string | undefined) => (v === undefined ? undefined : isAbsolute(v) ? v : resolve(base, v));

  const contextName = opts.context || str(file, 'current-context', root['current-context']);
  if (!contextName) {
    throw new KubeConfigError('KUBECONFIG_NO_CONTEXT', `no current-context is set (contexts: ${names(root, 'contexts')})`, {
      file,
      hint: 'set current-context in the file or KUBE_CONTEXT / --kube-context',
    });
  }
  const context = named(file, root, 'contexts', 'context', contextName);
  if (!context) {
    throw new KubeConfigError('KUBECONFIG_NO_CONTEXT', `context "${contextName}" not found (contexts: ${names(root, 'contexts')})`, {
      file,
      hint: 'use one of the listed contexts',
    });
  }

  const clusterName = str(file, `context "${contextName}" cluster`, context.cluster);
  if (!clusterName) throw new KubeConfigError('KUBECONFIG_NO_CLUSTER', `context "${contextName}" names no cluster`, { file, hint: 'set context.cluster' });
  const cluster = named(file, root, 'clusters', 'cluster', clusterName);
  if (!cluster) {
    throw new KubeConfigError('KUBECONFIG_NO_CLUSTER', `cluster "${clusterName}" of context "${contextName}" not found (clusters: ${names(root, 'clusters')})`, {
      file,
      hint: 'add the cluster or fix the context',
    });
  }

  const where = `cluster "${clusterName}"`;
  const server = str(file, `${where} server`, cluster.server);
  if (!server) throw new KubeConfigError('KUBECONFIG_NO_SERVER', `${where} has no server`, { file, hint: 'set clusters[].cluster.server to https://host:port' });
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new KubeConfigError('KUBECONFIG_BAD_SERVER', `${where} server "${server}" is not a URL`, { file, hint: 'write it as https://host:port' });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new KubeConfigError('KUBECONFIG_BAD_SERVER', `${where} server "${server}" is not http(s)`, { file, hint: 'write it as https://host:port' });
  }
  if (cluster['proxy-url'] !== undefined) {
    throw new KubeConfigError('KUBECONFIG_UNSUPPORTED', `${where} uses proxy-url, which nnf-env does not support`, { file, hint: 'reach the API server directly' });
  }

  const sel: KubeconfigSelection = {
    file,
    contextName,
    clusterName,
    userName: undefined,
    server,
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
  };
  const caData = str(file, `${where} certificate-authority-data`, cluster['certificate-authority-data']);
  if (caData !== undefined) sel.caData = decodePem(file, `${where} certificate-authority-data`, caData, CERT_MARK);
  else {
    const caFile = path(str(file, `${where} certificate-authority`, cluster['certificate-authority']));
    if (caFile !== undefined) sel.caFile = caFile;
  }
  const tlsServerName = str(file, `${where} tls-server-name`, cluster['tls-server-name']);
  if (tlsServerName !== undefined) sel.tlsServerName = tlsServerName;

  const namespace = str(file, `context "${contextName}" namespace`, context.namespace);
  if (namespace !== undefined) sel.namespace = namespace;

  const userName = str(file, `context "${contextName}" user`, context.user);
  if (userName !== undefined) {
    const user = named(file, root, 'users', 'user', userName);
    if (!user) {
      throw new KubeConfigError('KUBECONFIG_NO_USER', `user "${userName}" of context "${contextName}" not found (users: ${names(root, 'users')})`, {
        file,
        hint: 'add the user or fix the context',
      });
    }
    sel.userName = userName;
    readUser(file, userName, user, sel, path);
  }
  return sel;
}

function readUser(file: string, userName: string, user: Obj, sel: KubeconfigSelection, path: (v: string | undefined) => string | undefined): void {
  const where = `user "${userName}"`;
  const tokenFileHint = 'nnf-env does not run credential plugins: give the node a service-account token file instead (kubeconfig users[].user.tokenFile, or KUBE_TOKEN_FILE with KUBE_SERVER and KUBE_CA_FILE)';
  if (user.exec !== undefined && user.exec !== null) {
    throw new KubeConfigError('KUBECONFIG_EXEC_UNSUPPORTED', `${where} uses an exec credential plugin, which is not supported`, { file, hint: tokenFileHint });
  }
  if (user['auth-provider'] !== undefined && user['auth-provider'] !== null) {
    throw new KubeConfigError('KUBECONFIG_AUTH_PROVIDER_UNSUPPORTED', `${where} uses an auth-provider, which is not supported`, { file, hint: tokenFileHint });
  }
  if (user.username !== undefined || user.password !== undefined) {
    throw new KubeConfigError('KUBECONFIG_BASIC_AUTH_UNSUPPORTED', `${where} uses username/password, which is not supported`, { file, hint: tokenFileHint });
  }
  const token = str(file, `${where} token`, user.token);
  if (token !== undefined) sel.token = token;
  else {
    const tokenFile = path(str(file, `${where} tokenFile`, user.tokenFile));
    if (tokenFile !== undefined) sel.tokenFile = tokenFile;
  }
  const certData = str(file, `${where} client-certificate-data`, user['client-certificate-data']);
  if (certData !== undefined) sel.certData = decodePem(file, `${where} client-certificate-data`, certData, CERT_MARK);
  else {
    const certFile = path(str(file, `${where} client-certificate`, user['client-certificate']));
    if (certFile !== undefined) sel.certFile = certFile;
  }
  const keyData = str(file, `${where} client-key-data`, user['client-key-data']);
  if (keyData !== undefined) sel.keyData = decodePem(file, `${where} client-key-data`, keyData, KEY_MARK);
  else {
    const keyFile = path(str(file, `${where} client-key`, user['client-key']));
    if (keyFile !== undefined) sel.keyFile = keyFile;
  }
  const hasCert = sel.certData !== undefined || sel.certFile !== undefined;
  const hasKey = sel.keyData !== undefined || sel.keyFile !== undefined;
  if (hasCert !== hasKey) {
    throw new KubeConfigError('KUBECONFIG_INVALID', `${where} has a client ${hasCert ? 'certificate without a key' : 'key without a certificate'}`, {
      file,
      hint: 'give both client-certificate(-data) and client-key(-data)',
    });
  }
}

/** A kubeconfig selection with every referenced file read: what a connection needs. */
export interface LoadedKubeconfig extends KubeconfigSelection {
  caPem?: string;
  certPem?: string;
  keyPem?: string;
}

/** Reads a file the kubeconfig (or a setting) points at, with an error that names both. */
export async function readReferencedFile(path: string, what: string, from: { file?: string; setting?: string }): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : `cannot be read (${code ?? String(err)})`;
    const by = from.setting ? ` (${from.setting})` : '';
    throw new KubeConfigError('KUBE_FILE_UNREADABLE', `${what} ${path}${by} ${why}`, {
      ...(from.file === undefined ? {} : { file: from.file }),
      hint: `check the path${from.file ? ' (relative paths are relative to the kubeconfig\'s directory)' : ''} and permissions`,
      cause: err,
    });
  }
}

/** Reads and parses a kubeconfig, then reads the CA, client certificate and key it references. */
export async function loadKubeconfig(file: string, opts: { context?: string } = {}): Promise<LoadedKubeconfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') throw new KubeConfigError('KUBECONFIG_NOT_FOUND', 'kubeconfig file does not exist', { file, hint: 'check KUBECONFIG / --kubeconfig', cause: err });
    throw new KubeConfigError('KUBECONFIG_UNREADABLE', `kubeconfig cannot be read (${code ?? String(err)})`, { file, hint: 'check the permissions', cause: err });
  }
  const sel: LoadedKubeconfig = parseKubeconfig(text, file, opts);
  const from = { file };
  if (sel.caData !== undefined) sel.caPem = sel.caData;
  else if (sel.caFile !== undefined) sel.caPem = await readReferencedFile(sel.caFile, `cluster "${sel.clusterName}" certificate-authority`, from);
  if (sel.certData !== undefined) sel.certPem = sel.certData;
  else if (sel.certFile !== undefined) sel.certPem = await readReferencedFile(sel.certFile, `user "${sel.userName}" client-certificate`, from);
  if (sel.keyData !== undefined) sel.keyPem = sel.keyData;
  else if (sel.keyFile !== undefined) sel.keyPem = await readReferencedFile(sel.keyFile, `user "${sel.userName}" client-key`, from);
  return sel;
}
