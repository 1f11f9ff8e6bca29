/**
 * The kubeconfig the simulator writes for its clients (kubectl, nnf-envd): one cluster, one
 * user (with the bearer token when one is required), one context. With TLS the CA goes into a
 * file beside the kubeconfig, referenced as `certificate-authority`.
 */
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import YAML from 'yaml';
import { writeFileAtomic } from '../fs/atomic-file.js';

export interface KubeconfigInput {
  server: string;
  caPem?: string;
  token?: string;
  namespace?: string;
  name?: string;
}

/** Where the CA of the kubeconfig at `kubeconfigPath` goes. */
export function caPathFor(kubeconfigPath: string): string {
  const abs = resolve(kubeconfigPath);
  return join(dirname(abs), `${basename(abs)}.ca.crt`);
}

export function kubeconfigDocument(input: KubeconfigInput, caFile?: string): object {
  const name = input.name ?? 'nnf-env-sim';
  const cluster: Record<string, string> = { server: input.server };
  if (caFile) cluster['certificate-authority'] = caFile;
  const user: Record<string, string> = {};
  if (input.token !== undefined) user.token = input.token;
  return {
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: [{ name, cluster }],
    users: [{ name, user }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: input.namespace ?? 'default' } }],
    'current-context': name,
  };
}

/** Write the kubeconfig (0600: it may hold a token) and, with TLS, its CA file (0644). */
export async function writeKubeconfigFile(path: string, input: KubeconfigInput): Promise<{ kubeconfig: string; caFile?: string }> {
  const abs = resolve(path);
  // `--kubeconfig-out /tmp/new-dir/kubeconfig` should just work, as kubectl's own writes do.
  await mkdir(dirname(abs), { recursive: true, mode: 0o700 });
  let caFile: string | undefined;
  if (input.caPem) {
    caFile = caPathFor(abs);
    await writeFileAtomic(caFile, input.caPem, { mode: 0o644 });
  }
  await writeFileAtomic(abs, YAML.stringify(kubeconfigDocument(input, caFile)), { mode: 0o600 });
  return caFile ? { kubeconfig: abs, caFile } : { kubeconfig: abs };
}
