import t, { type Test } from 'tap';
import { join } from 'node:path';
import { connectionWarnings, normalizeServer, resolveConnection } from '../../src/kube/connection.js';
import { KubeConfigError } from '../../src/kube/errors.js';
import { kubeSettings } from './fixtures.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';

function kc(server: string, ns = 'sim-ns', user = '    token: kc-token'): string {
  return `current-context: sim
clusters:
- name: sim
  cluster:
    server: ${server}
    certificate-authority: ca.crt
contexts:
- name: sim
  context: {cluster: sim, user: u, namespace: ${ns}}
- name: alt
  context: {cluster: sim, user: u}
users:
- name: u
  user:
${user}
`;
}

/** A home, a kubeconfig dir and a service-account dir, all in one temp tree. */
function tree(t: Test, extra: Record<string, unknown> = {}) {
  const dir = t.testdir({
    home: { '.kube': { config: kc('https://home:6443', 'home-ns'), 'ca.crt': CA } },
    emptyhome: {},
    kc: { config: kc('https://from-kc:6443'), 'ca.crt': CA, 'token': 'file-token\n' },
    sa: { token: 'sa-token\n', 'ca.crt': CA, namespace: 'nnf-system\n' },
    explicit: { 'service.token': 'explicit-token\n', 'service.cert': CA, empty: '' },
    ...extra,
  });
  return {
    dir,
    home: join(dir, 'home'),
    emptyHome: join(dir, 'emptyhome'),
    kc: join(dir, 'kc', 'config'),
    sa: join(dir, 'sa'),
    tokenFile: join(dir, 'explicit', 'service.token'),
    caFile: join(dir, 'explicit', 'service.cert'),
    emptyFile: join(dir, 'explicit', 'empty'),
  };
}

t.test('normalizeServer', async (t) => {
  t.equal(normalizeServer('10.0.0.1:6443'), 'https://10.0.0.1:6443');
  t.equal(normalizeServer('kube.example'), 'https://kube.example');
  t.equal(normalizeServer('https://kube.example:6443/'), 'https://kube.example:6443');
  t.equal(normalizeServer('http://127.0.0.1:8080'), 'http://127.0.0.1:8080');
  t.equal(normalizeServer('[fd00::1]:6443'), 'https://[fd00::1]:6443');
  t.equal(normalizeServer('fd00::1'), 'https://[fd00::1]');
  t.throws(() => normalizeServer('ftp://x'), { code: 'KUBE_SERVER_INVALID' });
  t.throws(() => normalizeServer('https://'), { code: 'KUBE_SERVER_INVALID' });
});

t.test('auto: explicit settings win when KUBE_SERVER is set', async (t) => {
  const p = tree(t);
  const conn = await resolveConnection(
    kubeSettings({ KUBE_SERVER: '10.1.2.3:6443', KUBE_TOKEN_FILE: p.tokenFile, KUBE_CA_FILE: p.caFile, KUBE_TLS_SERVER_NAME: 'kube.test', KUBECONFIG: p.kc }),
    { KUBERNETES_SERVICE_HOST: '10.0.0.1', HOME: p.home },
    { serviceAccountDir: p.sa },
  );
  t.equal(conn.server, 'https://10.1.2.3:6443');
  t.equal(conn.tokenFile, p.tokenFile);
  t.equal(conn.token, undefined, 'the token is not read into the connection: it is re-read');
  t.equal(conn.caPem, CA);
  t.equal(conn.tlsServerName, 'kube.test');
  t.equal(conn.insecureSkipTlsVerify, false);
  t.match(conn.source, /^explicit settings/);
});

t.test('auto: explicit settings with a missing CA or empty token file fail naming the file and the setting', async (t) => {
  const p = tree(t);
  await t.rejects(resolveConnection(kubeSettings({ KUBE_SERVER: 'a:1', KUBE_CA_FILE: join(p.dir, 'missing.crt') }), {}), {
    code: 'KUBE_FILE_UNREADABLE',
    message: `CA file ${join(p.dir, 'missing.crt')} (KUBE_CA_FILE) does not exist`,
  });
  await t.rejects(resolveConnection(kubeSettings({ KUBE_SERVER: 'a:1', KUBE_TOKEN_FILE: p.emptyFile }), {}), { code: 'KUBE_TOKEN_FILE_EMPTY' });
});

t.test('auto: the KUBECONFIG setting comes before $KUBECONFIG and ~/.kube/config', async (t) => {
  const p = tree(t);
  const conn = await resolveConnection(kubeSettings({ KUBECONFIG: p.kc }), { KUBECONFIG: join(p.home, '.kube', 'config'), HOME: p.home }, { serviceAccountDir: p.sa });
  t.equal(conn.server, 'https://from-kc:6443');
  t.equal(conn.token, 'kc-token');
  t.equal(conn.namespace, 'sim-ns');
  t.equal(conn.caPem, CA);
  t.equal(conn.source, `kubeconfig ${p.kc} context sim`);
});

t.test('auto: a configured KUBECONFIG that does not exist is an error, not skipped', async (t) => {
  const p = tree(t);
  const missing = join(p.dir, 'nope');
  await t.rejects(resolveConnection(kubeSettings({ KUBECONFIG: missing }), { HOME: p.home }), { code: 'KUBECONFIG_NOT_FOUND', file: missing });
});

t.test('auto: $KUBECONFIG list uses the first existing file and says so; KUBE_CONTEXT overrides', async (t) => {
  const p = tree(t);
  const conn = await resolveConnection(kubeSettings({ KUBE_CONTEXT: 'alt' }), { KUBECONFIG: `${join(p.dir, 'nope')}:${p.kc}:${join(p.home, '.kube', 'config')}`, HOME: p.home });
  t.equal(conn.server, 'https://from-kc:6443');
  t.equal(conn.namespace, undefined);
  t.match(conn.source, `kubeconfig ${p.kc} context alt`);
  t.match(conn.source, /entry 2 of 3 \(not merged/);
});

t.test('auto: ~/.kube/config when nothing else is set', async (t) => {
  const p = tree(t);
  const conn = await resolveConnection(kubeSettings(), { HOME: p.home, KUBERNETES_SERVICE_HOST: '10.0.0.1' }, { serviceAccountDir: p.sa });
  t.equal(conn.server, 'https://home:6443');
  t.equal(conn.namespace, 'home-ns');
  t.match(conn.source, /from ~\/.kube\/config/);
});

t.test('auto: kubeconfig tokenFile is checked and kept as a path', async (t) => {
  const p = tree(t, { kc2: { config: kc('https://x:1', 'n', '    tokenFile: token'), 'ca.crt': CA, token: 'tok\n' } });
  const conn = await resolveConnection(kubeSettings({ KUBECONFIG: join(p.dir, 'kc2', 'config') }), {});
  t.equal(conn.tokenFile, join(p.dir, 'kc2', 'token'));
  const p2 = tree(t, { kc3: { config: kc('https://x:1', 'n', '    tokenFile: gone'), 'ca.crt': CA } });
  await t.rejects(resolveConnection(kubeSettings({ KUBECONFIG: join(p2.dir, 'kc3', 'config') }), {}), { code: 'KUBE_FILE_UNREADABLE', file: join(p2.dir, 'kc3', 'config') });
});

t.test('auto: in-cluster when there is no kubeconfig', async (t) => {
  const p = tree(t);
  const conn = await resolveConnection(kubeSettings(), { HOME: p.emptyHome, KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, { serviceAccountDir: p.sa });
  t.equal(conn.server, 'https://10.96.0.1');
  t.equal(conn.tokenFile, join(p.sa, 'token'));
  t.equal(conn.caPem, CA);
  t.equal(conn.namespace, 'nnf-system');
  t.match(conn.source, /^in-cluster/);
  const v6 = await resolveConnection(kubeSettings(), { HOME: p.emptyHome, KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }, { serviceAccountDir: p.sa });
  t.equal(v6.server, 'https://[fd00::1]:6443');
});

t.test('in-cluster without the token file is an error naming it', async (t) => {
  const p = tree(t);
  await t.rejects(resolveConnection(kubeSettings({ KUBE_CONNECTION: 'in-cluster' }), { KUBERNETES_SERVICE_HOST: '10.96.0.1' }, { serviceAccountDir: join(p.dir, 'nosa') }), {
    code: 'KUBE_FILE_UNREADABLE',
    message: new RegExp(`token file ${join(p.dir, 'nosa', 'token')}.* does not exist`),
  });
  await t.rejects(resolveConnection(kubeSettings({ KUBE_CONNECTION: 'in-cluster' }), {}, { serviceAccountDir: p.sa }), { code: 'KUBE_NOT_IN_CLUSTER' });
});

t.test('nothing found lists what was tried', async (t) => {
  const p = tree(t);
  const err = await resolveConnection(kubeSettings(), { HOME: p.emptyHome, KUBECONFIG: join(p.dir, 'nope') }).catch((e: unknown) => e);
  t.ok(err instanceof KubeConfigError);
  t.equal((err as KubeConfigError).code, 'KUBE_NO_CONNECTION');
  const msg = (err as KubeConfigError).message;
  t.match(msg, 'explicit settings (KUBE_SERVER not set)');
  t.match(msg, `$KUBECONFIG entry ${join(p.dir, 'nope')} (does not exist)`);
  t.match(msg, `${join(p.emptyHome, '.kube', 'config')} (does not exist)`);
  t.match(msg, 'in-cluster (KUBERNETES_SERVICE_HOST not set)');
});

t.test('forced modes', async (t) => {
  const p = tree(t);
  await t.rejects(resolveConnection(kubeSettings({ KUBE_CONNECTION: 'explicit' }), {}), { code: 'KUBE_SERVER_MISSING' });
  await t.rejects(resolveConnection(kubeSettings({ KUBE_CONNECTION: 'kubeconfig', KUBE_SERVER: 'a:1' }), { HOME: p.emptyHome }), { code: 'KUBECONFIG_NOT_FOUND' });
  const viaKc = await resolveConnection(kubeSettings({ KUBE_CONNECTION: 'kubeconfig', KUBE_SERVER: 'a:1' }), { HOME: p.home });
  t.equal(viaKc.server, 'https://home:6443', 'kubeconfig mode ignores KUBE_SERVER');
  const inc = await resolveConnection(kubeSettings({ KUBE_CONNECTION: 'in-cluster' }), { HOME: p.home, KUBERNETES_SERVICE_HOST: '10.96.0.1' }, { serviceAccountDir: p.sa });
  t.match(inc.source, /^in-cluster/);
});

t.test('insecure-skip-tls-verify yields a loud warning; plain http too', async (t) => {
  const w = connectionWarnings({ server: 'https://a:1', insecureSkipTlsVerify: true, source: 'test' });
  t.equal(w.length, 1);
  t.match(w[0], /INSECURE: TLS verification .* DISABLED/);
  t.match(connectionWarnings({ server: 'http://a:1', insecureSkipTlsVerify: false, source: 'test' })[0], /plain HTTP/);
  t.same(connectionWarnings({ server: 'https://a:1', insecureSkipTlsVerify: false, source: 'test' }), []);
});
