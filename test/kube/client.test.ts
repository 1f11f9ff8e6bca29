import t from 'tap';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { KubeClient } from '../../src/kube/client.js';
import { KubeApiError, KubeConnectionError } from '../../src/kube/errors.js';
import { dwsResource, NODES } from '../../src/kube/resource.js';
import { resolveConnection } from '../../src/kube/connection.js';
import { kubeSettings, makePki } from './fixtures.js';
import { eventLine, kubeStatus, sendJson, sleepMs, startScriptServer, startWatch, type Handler } from './script-server.js';

const WF = dwsResource('workflows', 'v1alpha7');
const wf = (name: string, rv: string) => ({ apiVersion: 'dataworkflowservices.github.io/v1alpha7', kind: 'Workflow', metadata: { name, namespace: 'default', resourceVersion: rv } });

async function serve(t: Tap.Test, handler: Handler, tls?: Parameters<typeof startScriptServer>[1]) {
  const srv = await startScriptServer(handler, tls);
  t.teardown(() => srv.close());
  return srv;
}
function client(t: Tap.Test, server: string, extra: Partial<ConstructorParameters<typeof KubeClient>[0]> = {}, conn: Partial<ConstructorParameters<typeof KubeClient>[0]['connection']> = {}) {
  const c = new KubeClient({ connection: { server, insecureSkipTlsVerify: false, source: 'test', ...conn }, ...extra });
  t.teardown(() => c.close());
  return c;
}
namespace Tap { export type Test = import('tap').Test; }

t.test('list, get, tryGet, create, replace, patch, delete: paths, queries, bodies, content types', async (t) => {
  const srv = await serve(t, (req, res) => {
    if (req.method === 'GET' && (req.path.endsWith('/workflows') || req.path.endsWith('/nodes'))) return sendJson(res, 200, { kind: 'WorkflowList', metadata: { resourceVersion: '7', continue: 'c2' }, items: [wf('a', '5')] });
    if (req.method === 'GET' && req.path.endsWith('/workflows/a')) return sendJson(res, 200, wf('a', '5'));
    if (req.method === 'GET') return sendJson(res, 404, kubeStatus(404, 'NotFound', 'workflows "zz" not found'));
    if (req.method === 'DELETE') return sendJson(res, 200, { kind: 'Status', status: 'Success' });
    return sendJson(res, 200, { ...JSON.parse(req.body || '{}'), echoed: req.headers['content-type'] });
  });
  const c = client(t, srv.url);
  const list = await c.list(WF, { namespace: 'default', labelSelector: 'a=b', fieldSelector: 'metadata.name=a', limit: 10, continue: 'c1' });
  t.equal(list.metadata.resourceVersion, '7');
  t.equal(list.items[0]?.metadata.name, 'a');
  const r0 = srv.requests[0]!;
  t.equal(r0.path, '/apis/dataworkflowservices.github.io/v1alpha7/namespaces/default/workflows');
  t.equal(r0.query.get('labelSelector'), 'a=b');
  t.equal(r0.query.get('fieldSelector'), 'metadata.name=a');
  t.equal(r0.query.get('limit'), '10');
  t.equal(r0.query.get('continue'), 'c1');
  t.equal(r0.headers.accept, 'application/json');
  t.equal(r0.headers.authorization, undefined, 'anonymous: no authorization header');
  t.equal((await c.get(WF, 'default', 'a')).metadata.resourceVersion, '5');
  await t.rejects(c.get(WF, 'default', 'zz'), { code: 'KUBE_NOT_FOUND', status: 404, verb: 'get' });
  t.equal(await c.tryGet(WF, 'default', 'zz'), undefined);
  type Echo = ReturnType<typeof wf> & { echoed: string };
  const created = await c.create<Echo>(WF, 'default', { ...wf('n', ''), echoed: '' });
  t.equal(created.echoed, 'application/json');
  t.equal(srv.requests.at(-1)!.method, 'POST');
  await c.replace(WF, 'default', 'n', wf('n', '9'));
  t.equal(srv.requests.at(-1)!.method, 'PUT');
  t.equal(srv.requests.at(-1)!.path.endsWith('/workflows/n'), true);
  const merged = await c.patch<Echo>(WF, 'default', 'n', { spec: { desiredState: 'Setup' } }, 'merge');
  t.equal(merged.echoed, 'application/merge-patch+json');
  const jsonPatched = await c.patch<Echo>(WF, 'default', 'n', [{ op: 'add', path: '/spec/x', value: 1 }], 'json');
  t.equal(jsonPatched.echoed, 'application/json-patch+json');
  t.same(JSON.parse(srv.requests.at(-1)!.body), [{ op: 'add', path: '/spec/x', value: 1 }]);
  await c.delete(WF, 'default', 'n');
  t.equal(srv.requests.at(-1)!.method, 'DELETE');
  await c.list(NODES);
  t.equal(srv.requests.at(-1)!.path, '/api/v1/nodes');
});

t.test('Status errors become KubeApiError with the request context', async (t) => {
  const srv = await serve(t, (_req, res) => sendJson(res, 403, kubeStatus(403, 'Forbidden', 'workflows.dataworkflowservices.github.io is forbidden: User "system:serviceaccount:nnf:envd" cannot watch')));
  const c = client(t, srv.url);
  const err = await c.list(WF, { namespace: 'default' }).catch((e: unknown) => e);
  t.ok(err instanceof KubeApiError);
  t.match((err as KubeApiError).message, 'the account cannot list workflows.dataworkflowservices.github.io in default: grant it in RBAC');
  t.match((err as KubeApiError).kubeMessage, /system:serviceaccount:nnf:envd/);
  const w = await c.watch(WF, { namespace: 'default', resourceVersion: '1', timeoutSeconds: 5, allowWatchBookmarks: true, signal: new AbortController().signal }).catch((e: unknown) => e);
  t.match(w, { code: 'KUBE_FORBIDDEN', verb: 'watch', status: 403 });
  t.match((w as KubeApiError).message, 'cannot watch workflows.dataworkflowservices.github.io in default');
});

t.test('non-JSON success body and non-JSON error body', async (t) => {
  let n = 0;
  const srv = await serve(t, (_req, res) => {
    if (n++ === 0) {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>hello</html>');
    } else {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway from proxy');
    }
  });
  const c = client(t, srv.url);
  await t.rejects(c.get(WF, 'default', 'a'), { code: 'KUBE_BAD_RESPONSE' });
  await t.rejects(c.get(WF, 'default', 'a'), { code: 'KUBE_SERVER_ERROR', status: 502, kubeMessage: 'bad gateway from proxy' });
});

t.test('a non-watch request times out as a whole; the caller\'s abort stays an abort', async (t) => {
  const srv = await serve(t, (_req, res) => {
    // headers quickly, body never
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"kind":');
  });
  const c = client(t, srv.url, { requestTimeoutMs: 300 });
  const started = performance.now();
  await t.rejects(c.get(WF, 'default', 'a'), { code: 'KUBE_REQUEST_TIMEOUT' });
  t.ok(performance.now() - started < 10_000, 'bounded');
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('mine')), 50);
  await t.rejects(c.get(WF, 'default', 'a', ac.signal), { message: 'mine' });
});

t.test('a watch has no whole-request timeout: slow events still arrive', async (t) => {
  const srv = await serve(t, async (req, res) => {
    startWatch(res);
    await sleepMs(600);
    res.write(eventLine('ADDED', wf('a', '2')));
    await sleepMs(400);
    res.end();
  });
  const c = client(t, srv.url, { requestTimeoutMs: 200 });
  const ac = new AbortController();
  const body = await c.watch(WF, { resourceVersion: '1', timeoutSeconds: 30, allowWatchBookmarks: true, signal: ac.signal });
  const q = srv.requests[0]!.query;
  t.equal(q.get('watch'), '1');
  t.equal(q.get('resourceVersion'), '1');
  t.equal(q.get('allowWatchBookmarks'), 'true');
  t.equal(q.get('timeoutSeconds'), '30');
  t.equal(srv.requests[0]!.path, '/apis/dataworkflowservices.github.io/v1alpha7/workflows', 'all namespaces');
  let text = '';
  for await (const chunk of body) text += Buffer.from(chunk).toString();
  t.equal(text, eventLine('ADDED', wf('a', '2')));
});

t.test('connection refused is a KubeConnectionError', async (t) => {
  const srv = await startScriptServer(() => {});
  const url = srv.url;
  await srv.close();
  const c = client(t, url);
  const err = await c.list(WF).catch((e: unknown) => e);
  t.ok(err instanceof KubeConnectionError, String(err));
  t.equal((err as KubeConnectionError).code, 'KUBE_CONNECTION_REFUSED');
});

t.test('401: the token file is re-read and the request retried once', async (t) => {
  const dir = t.testdir({ token: 'old-token\n' });
  const tokenFile = join(dir, 'token');
  let accepted = 'old-token';
  const srv = await serve(t, (req, res) => {
    if (req.headers.authorization !== `Bearer ${accepted}`) return sendJson(res, 401, kubeStatus(401, 'Unauthorized', 'Unauthorized'));
    if (req.query.get('watch')) {
      startWatch(res);
      res.end(eventLine('ADDED', wf('a', '3')));
      return;
    }
    sendJson(res, 200, wf('a', '1'));
  });
  const logLines: string[] = [];
  const logger = pino({ level: 'trace' }, new Writable({ write(c, _e, cb) { logLines.push(String(c)); cb(); } }));
  const c = client(t, srv.url, { logger }, { tokenFile });
  t.equal((await c.get(WF, 'default', 'a')).metadata.name, 'a');
  t.equal(srv.requests.length, 1);

  // Rotation: the server now wants the new token, the file has it, the client still caches the old one.
  accepted = 'new-token';
  writeFileSync(tokenFile, 'new-token\n');
  t.equal((await c.get(WF, 'default', 'a')).metadata.name, 'a');
  t.same(srv.requests.slice(1).map((r) => r.headers.authorization), ['Bearer old-token', 'Bearer new-token'], 'one 401, one retry with the re-read token');

  // The same for a watch.
  accepted = 'newer-token';
  writeFileSync(tokenFile, 'newer-token');
  const body = await c.watch(WF, { resourceVersion: '1', timeoutSeconds: 5, allowWatchBookmarks: true, signal: new AbortController().signal });
  let text = '';
  for await (const chunk of body) text += Buffer.from(chunk).toString();
  t.match(text, /"ADDED"/);

  // Token unchanged: the 401 is the answer, no retry loop.
  accepted = 'something-else';
  const before = srv.requests.length;
  await t.rejects(c.get(WF, 'default', 'a'), { code: 'KUBE_UNAUTHORIZED' });
  t.equal(srv.requests.length - before, 1);
  t.notOk(logLines.join('').includes('token'.repeat(0) + 'new-token'), 'the token never appears in the log');
  t.notOk(logLines.join('').includes('old-token'));
  rmSync(tokenFile);
});

t.test('TLS: verified with the CA, refused without it, names, client certificates, insecure', async (t) => {
  const pki = makePki();
  t.teardown(() => rmSync(pki.dir, { recursive: true, force: true }));
  const ok: Handler = (req, res, raw) => {
    const peer = (raw.socket as import('node:tls').TLSSocket).getPeerCertificate?.();
    sendJson(res, 200, { kind: 'APIGroup', metadata: { name: 'x' }, peer: peer?.subject?.CN ?? null, auth: req.headers.authorization ?? null });
  };
  const srv = await serve(t, ok, { key: pki.serverKey, cert: pki.serverCert });

  const good = client(t, srv.url, {}, { caPem: pki.caCert, token: 'tls-token' });
  const r = await good.request<{ auth: string }>({ method: 'GET', path: '/apis/x' });
  t.equal(r.auth, 'Bearer tls-token');

  const noCa = client(t, srv.url);
  const e1 = await noCa.request({ method: 'GET', path: '/apis/x' }).catch((e: unknown) => e);
  t.ok(e1 instanceof KubeConnectionError, String(e1));
  t.equal((e1 as KubeConnectionError).code, 'KUBE_TLS_UNTRUSTED');
  t.match((e1 as KubeConnectionError).message, 'certificate not trusted: set KUBE_CA_FILE / certificate-authority');

  const wrongCa = client(t, srv.url, {}, { caPem: pki.otherCaCert });
  await t.rejects(wrongCa.request({ method: 'GET', path: '/apis/x' }), { code: 'KUBE_TLS_UNTRUSTED' });

  const insecure = client(t, srv.url, {}, { insecureSkipTlsVerify: true });
  t.ok(await insecure.request({ method: 'GET', path: '/apis/x' }), 'insecure-skip-tls-verify connects');

  // A certificate that names only kube.test: refused by IP, accepted with tls-server-name.
  const named = await serve(t, ok, { key: pki.namedKey, cert: pki.namedCert });
  await t.rejects(client(t, named.url, {}, { caPem: pki.caCert }).request({ method: 'GET', path: '/apis/x' }), { code: 'KUBE_TLS_NAME_MISMATCH' });
  t.ok(await client(t, named.url, {}, { caPem: pki.caCert, tlsServerName: 'kube.test' }).request({ method: 'GET', path: '/apis/x' }));

  // Mutual TLS, through a kubeconfig with -data fields, resolved like the daemon does it.
  const mtls = await serve(t, ok, { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: true });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const dir = t.testdir({
    config: `current-context: c
clusters: [{name: k, cluster: {server: "${mtls.url}", certificate-authority-data: ${b64(pki.caCert)}}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {client-certificate-data: ${b64(pki.clientCert)}, client-key-data: ${b64(pki.clientKey)}}}]
`,
  });
  const conn = await resolveConnection(kubeSettings({ KUBECONFIG: join(dir, 'config') }), {});
  const viaKc = new KubeClient({ connection: conn });
  t.teardown(() => viaKc.close());
  const answer = await viaKc.request<{ peer: string; auth: string | null }>({ method: 'GET', path: '/apis/x' });
  t.equal(answer.peer, 'system:node:compute-01', 'the server saw our client certificate');
  t.equal(answer.auth, null);
  await t.rejects(client(t, mtls.url, {}, { caPem: pki.caCert }).request({ method: 'GET', path: '/apis/x' }), KubeConnectionError, 'no client certificate: refused');
});
