import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfigError } from '../../src/kube/errors.js';
import { loadKubeconfig, parseKubeconfig } from '../../src/kube/kubeconfig.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN EC PRIVATE KEY-----\nMHcfake\n-----END EC PRIVATE KEY-----\n';
const b64 = (s: string) => Buffer.from(s).toString('base64');

function kubeconfig(opts: { user?: string; cluster?: string; context?: string; current?: string; extra?: string } = {}): string {
  return `apiVersion: v1
kind: Config
current-context: ${opts.current ?? 'sim'}
clusters:
- name: sim
  cluster:
${opts.cluster ?? '    server: https://127.0.0.1:6443\n    certificate-authority: ca.crt'}
contexts:
- name: sim
  context:
${opts.context ?? '    cluster: sim\n    user: node\n    namespace: dws'}
- name: other
  context:
    cluster: sim
users:
- name: node
  user:
${opts.user ?? '    tokenFile: secrets/token'}
${opts.extra ?? ''}`;
}

async function expectConfigError(t: Test, p: Promise<unknown>, code: string, file: string, problem: RegExp): Promise<KubeConfigError> {
  try {
    await p;
  } catch (err) {
    t.ok(err instanceof KubeConfigError, `a KubeConfigError (got ${String(err)})`);
    const e = err as KubeConfigError;
    t.equal(e.code, code);
    t.equal(e.file, file);
    t.match(e.problem, problem);
    t.ok(e.message.startsWith(`${file}: `), 'the message starts with the file');
    return e;
  }
  t.fail(`expected ${code}`);
  throw new Error('unreachable');
}

t.test('missing file', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'nope');
  await expectConfigError(t, loadKubeconfig(file), 'KUBECONFIG_NOT_FOUND', file, /^kubeconfig file does not exist$/);
});

t.test('bad YAML names the line', async (t) => {
  const dir = t.testdir({ kc: 'apiVersion: v1\nclusters:\n- name: x\n  cluster: {server: "https://a\n' });
  const file = join(dir, 'kc');
  await expectConfigError(t, loadKubeconfig(file), 'KUBECONFIG_BAD_YAML', file, /^not valid YAML at line \d+, column \d+: /);
});

t.test('empty file and non-mapping', async (t) => {
  const dir = t.testdir({ empty: '', list: '- a\n- b\n' });
  await expectConfigError(t, loadKubeconfig(join(dir, 'empty')), 'KUBECONFIG_INVALID', join(dir, 'empty'), /the file is empty/);
  await expectConfigError(t, loadKubeconfig(join(dir, 'list')), 'KUBECONFIG_INVALID', join(dir, 'list'), /top level is not a mapping/);
});

t.test('relative paths resolve against the kubeconfig directory', async (t) => {
  const dir = t.testdir({ kube: { 'config': kubeconfig({ user: '    tokenFile: secrets/token\n    client-certificate: ../pki/client.crt\n    client-key: /abs/client.key' }) } });
  const file = join(dir, 'kube', 'config');
  const sel = parseKubeconfig(readFileSync(file, 'utf8'), file);
  t.equal(sel.caFile, join(dir, 'kube', 'ca.crt'));
  t.equal(sel.tokenFile, join(dir, 'kube', 'secrets', 'token'));
  t.equal(sel.certFile, join(dir, 'pki', 'client.crt'));
  t.equal(sel.keyFile, '/abs/client.key');
  t.equal(sel.namespace, 'dws');
  t.equal(sel.contextName, 'sim');
  t.equal(sel.server, 'https://127.0.0.1:6443');
});

t.test('loadKubeconfig reads referenced files, and names a missing one', async (t) => {
  const dir = t.testdir({ 'config': kubeconfig({ user: '    token: abc\n    client-certificate: c.crt\n    client-key: c.key' }), 'ca.crt': CA, 'c.crt': CA, 'c.key': KEY });
  const file = join(dir, 'config');
  const kc = await loadKubeconfig(file);
  t.equal(kc.caPem, CA);
  t.equal(kc.certPem, CA);
  t.equal(kc.keyPem, KEY);
  t.equal(kc.token, 'abc');
  const dir2 = t.testdir({ 'config': kubeconfig() });
  const file2 = join(dir2, 'config');
  await expectConfigError(t, loadKubeconfig(file2), 'KUBE_FILE_UNREADABLE', file2, new RegExp(`certificate-authority ${join(dir2, 'ca.crt').replace(/[/.]/g, '\\$&')} does not exist`));
});

t.test('-data fields are decoded and win over files', async (t) => {
  const cluster = `    server: https://kube.example:6443\n    certificate-authority-data: ${b64(CA)}\n    certificate-authority: ignored.crt\n    tls-server-name: kube.test`;
  const user = `    client-certificate-data: ${b64(CA)}\n    client-key-data: ${b64(KEY)}\n    client-certificate: ignored.crt`;
  const dir = t.testdir({ config: kubeconfig({ cluster, user }) });
  const kc = await loadKubeconfig(join(dir, 'config'));
  t.equal(kc.caPem, CA);
  t.equal(kc.caFile, undefined);
  t.equal(kc.certPem, CA);
  t.equal(kc.keyPem, KEY);
  t.equal(kc.tlsServerName, 'kube.test');
});

t.test('bad -data fields', async (t) => {
  const file = '/x/config';
  t.throws(() => parseKubeconfig(kubeconfig({ cluster: '    server: https://a\n    certificate-authority-data: "not base64!!"' }), file), { code: 'KUBECONFIG_BAD_DATA', message: /certificate-authority-data is not valid base64/ });
  t.throws(() => parseKubeconfig(kubeconfig({ cluster: `    server: https://a\n    certificate-authority-data: ${b64('hello')}` }), file), { code: 'KUBECONFIG_BAD_DATA', message: /does not decode to PEM/ });
});

t.test('exec and auth-provider users are not supported, with a pointer to token files', async (t) => {
  const file = '/x/config';
  const exec = kubeconfig({ user: '    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws' });
  const e = t.throws(() => parseKubeconfig(exec, file), { code: 'KUBECONFIG_EXEC_UNSUPPORTED', file }) as unknown as KubeConfigError;
  t.match(String((e as KubeConfigError | undefined)?.message), 'user "node" uses an exec credential plugin, which is not supported');
  t.match(String((e as KubeConfigError | undefined)?.hint), /token file/);
  t.throws(() => parseKubeconfig(kubeconfig({ user: '    auth-provider:\n      name: oidc' }), file), { code: 'KUBECONFIG_AUTH_PROVIDER_UNSUPPORTED', hint: /token file/ });
  t.throws(() => parseKubeconfig(kubeconfig({ user: '    username: a\n    password: b' }), file), { code: 'KUBECONFIG_BASIC_AUTH_UNSUPPORTED' });
});

t.test('context selection: current-context, override, missing context/cluster/user', async (t) => {
  const file = '/x/config';
  t.equal(parseKubeconfig(kubeconfig(), file, { context: 'other' }).contextName, 'other');
  t.equal(parseKubeconfig(kubeconfig(), file, { context: 'other' }).namespace, undefined);
  t.equal(parseKubeconfig(kubeconfig(), file, { context: 'other' }).userName, undefined, 'a context without a user is anonymous');
  t.throws(() => parseKubeconfig(kubeconfig(), file, { context: 'prod' }), { code: 'KUBECONFIG_NO_CONTEXT', message: '/x/config: context "prod" not found (contexts: "sim", "other")' });
  t.throws(() => parseKubeconfig(kubeconfig({ current: '""' }), file), { code: 'KUBECONFIG_NO_CONTEXT', message: /no current-context is set/ });
  t.throws(() => parseKubeconfig(kubeconfig({ context: '    cluster: gone\n    user: node' }), file), { code: 'KUBECONFIG_NO_CLUSTER', message: '/x/config: cluster "gone" of context "sim" not found (clusters: "sim")' });
  t.throws(() => parseKubeconfig(kubeconfig({ context: '    cluster: sim\n    user: ghost' }), file), { code: 'KUBECONFIG_NO_USER', message: '/x/config: user "ghost" of context "sim" not found (users: "node")' });
  t.throws(() => parseKubeconfig(kubeconfig({ cluster: '    certificate-authority: ca.crt' }), file), { code: 'KUBECONFIG_NO_SERVER' });
  t.throws(() => parseKubeconfig(kubeconfig({ cluster: '    server: ftp://a' }), file), { code: 'KUBECONFIG_BAD_SERVER' });
});

t.test('token wins over tokenFile; certificate needs a key; insecure flag', async (t) => {
  const file = '/x/config';
  const sel = parseKubeconfig(kubeconfig({ user: '    token: t0k\n    tokenFile: f', cluster: '    server: https://a\n    insecure-skip-tls-verify: true' }), file);
  t.equal(sel.token, 't0k');
  t.equal(sel.tokenFile, undefined);
  t.equal(sel.insecureSkipTlsVerify, true);
  t.throws(() => parseKubeconfig(kubeconfig({ user: '    client-certificate: c.crt' }), file), { code: 'KUBECONFIG_INVALID', message: /certificate without a key/ });
});

t.test('a JSON kubeconfig works too (YAML superset)', async (t) => {
  const json = JSON.stringify({ 'current-context': 'c', clusters: [{ name: 'k', cluster: { server: 'http://127.0.0.1:1' } }], contexts: [{ name: 'c', context: { cluster: 'k' } }] });
  t.equal(parseKubeconfig(json, '/x/c.json').server, 'http://127.0.0.1:1');
});

