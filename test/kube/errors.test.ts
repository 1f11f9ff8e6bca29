import t from 'tap';
import { NnfEnvError } from '../../src/core/errors.js';
import { KubeApiError, KubeConfigError, KubeConnectionError, parseRetryAfter } from '../../src/kube/errors.js';

const ctx = { verb: 'list', path: '/apis/dataworkflowservices.github.io/v1alpha7/namespaces/default/workflows', resource: 'workflows.dataworkflowservices.github.io', namespace: 'default' };
const status = (code: number, reason: string, message: string, details?: object) => JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message, ...(details ? { details } : {}) });

t.test('403 from a Status body names verb, resource and namespace, and says to grant it in RBAC', async (t) => {
  const e = KubeApiError.fromResponse(ctx, 403, status(403, 'Forbidden', 'workflows is forbidden: User "system:serviceaccount:x:y" cannot list resource "workflows"'));
  t.ok(e instanceof NnfEnvError);
  t.equal(e.code, 'KUBE_FORBIDDEN');
  t.equal(e.status, 403);
  t.equal(e.reason, 'Forbidden');
  t.match(e.kubeMessage, /cannot list resource/);
  t.match(e.message, 'the account cannot list workflows.dataworkflowservices.github.io in default: grant it in RBAC');
  t.equal(e.verb, 'list');
  t.equal(e.namespace, 'default');
  t.equal(e.path, ctx.path);
});

t.test('401 says to check the token or certificate', async (t) => {
  const e = KubeApiError.fromResponse(ctx, 401, status(401, 'Unauthorized', 'Unauthorized'));
  t.equal(e.code, 'KUBE_UNAUTHORIZED');
  t.match(e.hint, /token/);
  t.match(e.hint, /certificate/);
});

t.test('404, 410, 5xx codes', async (t) => {
  t.equal(KubeApiError.fromResponse({ ...ctx, verb: 'get', name: 'w1' }, 404, status(404, 'NotFound', 'workflows "w1" not found')).code, 'KUBE_NOT_FOUND');
  const gone = KubeApiError.fromResponse(ctx, 410, status(410, 'Expired', 'too old resource version: 1 (5)'));
  t.equal(gone.code, 'KUBE_GONE');
  t.ok(gone.isExpired);
  t.equal(gone.reason, 'Expired');
  t.equal(KubeApiError.fromResponse(ctx, 500, status(500, 'InternalError', 'etcd')).code, 'KUBE_SERVER_ERROR');
  t.equal(KubeApiError.fromResponse(ctx, 418, 'teapot').code, 'KUBE_API_ERROR');
});

t.test('429 and 503 carry Retry-After from the header, else from Status details', async (t) => {
  const a = KubeApiError.fromResponse(ctx, 429, status(429, 'TooManyRequests', 'slow down'), { 'retry-after': '3' });
  t.equal(a.code, 'KUBE_TOO_MANY_REQUESTS');
  t.equal(a.retryAfterMs, 3000);
  t.match(a.message, /retry after 3s/);
  const b = KubeApiError.fromResponse(ctx, 503, status(503, 'ServiceUnavailable', 'down', { retryAfterSeconds: 7 }));
  t.equal(b.code, 'KUBE_UNAVAILABLE');
  t.equal(b.retryAfterMs, 7000);
});

t.test('a non-JSON body becomes the message, truncated', async (t) => {
  const e = KubeApiError.fromResponse(ctx, 502, '<html>' + 'x'.repeat(500) + '</html>');
  t.equal(e.status, 502);
  t.equal(e.reason, 'Bad Gateway');
  t.ok(e.kubeMessage.length <= 203);
  t.match(e.kubeMessage, /^<html>x+\.\.\.$/);
});

t.test('watch ERROR event Status', async (t) => {
  const e = KubeApiError.fromStatus({ ...ctx, verb: 'watch' }, { kind: 'Status', code: 410, reason: 'Gone', message: 'too old' });
  t.equal(e.status, 410);
  t.ok(e.isExpired);
  t.equal(KubeApiError.fromStatus(ctx, { kind: 'Status', message: 'no code' }).status, 500);
});

t.test('parseRetryAfter: seconds, HTTP date, junk', async (t) => {
  t.equal(parseRetryAfter('2'), 2000);
  t.equal(parseRetryAfter(undefined), undefined);
  t.equal(parseRetryAfter('soon'), undefined);
  const now = Date.parse('2026-01-01T00:00:00Z');
  t.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
  t.equal(parseRetryAfter('Thu, 01 Jan 2025 00:00:05 GMT', now), 0);
});

t.test('connection errors are classified by their code, also inside causes', async (t) => {
  const server = 'https://127.0.0.1:6443';
  const c = { server, verb: 'list', path: '/x' };
  const tls = KubeConnectionError.from(Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }), c);
  t.equal(tls.code, 'KUBE_TLS_UNTRUSTED');
  t.match(tls.message, 'certificate not trusted: set KUBE_CA_FILE / certificate-authority');
  const wrapped = new Error('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
  t.equal(KubeConnectionError.from(wrapped, c).code, 'KUBE_CONNECTION_REFUSED');
  t.equal(KubeConnectionError.from(Object.assign(new Error('x'), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }), c).code, 'KUBE_TLS_NAME_MISMATCH');
  t.equal(KubeConnectionError.from(new Error('?'), c).code, 'KUBE_CONNECTION_FAILED');
  t.equal(KubeConnectionError.from(new Error('?'), c).server, server);
});

t.test('KubeConfigError names the file and the problem', async (t) => {
  const e = new KubeConfigError('KUBECONFIG_BAD_YAML', 'not valid YAML at line 3', { file: '/tmp/kc', hint: 'fix it' });
  t.equal(e.message, '/tmp/kc: not valid YAML at line 3');
  t.equal(e.problem, 'not valid YAML at line 3');
  t.equal(e.file, '/tmp/kc');
});
