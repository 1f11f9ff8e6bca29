/**
 * The real kube-apiserver (test/apiserver) as the other tests use it: kubectl with the admin
 * kubeconfig, the project's own KubeClient with the service-account token (list, watch), RBAC
 * that grants exactly the shipped role, and SelfSubjectAccessReview answered.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { KubeClient } from '../../src/kube/client.js';
import { KubeApiError } from '../../src/kube/errors.js';
import { dwsResource, SECRETS, type KubeObject, type WatchEvent } from '../../src/kube/resource.js';
import { realApiServerSkipReason, startRealApiServer } from '../helpers/apiserver.js';

const skip = await realApiServerSkipReason();
if (skip) {
  t.plan(0, skip);
  process.exit(0);
}

const server = await startRealApiServer();
t.teardown(() => server.stop());
const dir = await mkdtemp(join(tmpdir(), 'nnf-env-real-smoke-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

function kubectl(kubeconfig: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'kubectl',
      ['--kubeconfig', kubeconfig, '--request-timeout=30s', ...args],
      { env: { ...process.env, KUBECACHEDIR: join(dir, 'kube-cache'), HOME: dir, KUBECONFIG: '' }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0, stdout, stderr }),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

const WORKFLOWS = dwsResource('workflows', 'v1alpha7');
const workflow = (name: string) => ({
  apiVersion: 'dataworkflowservices.github.io/v1alpha7',
  kind: 'Workflow',
  metadata: { name, namespace: 'default' },
  spec: { desiredState: 'Proposal', wlmID: 'flux', jobID: 'fSmoke1', userID: 1001, groupID: 1001, dwDirectives: ['#DW jobdw type=xfs capacity=1GB name=x'] },
});

const sa = new KubeClient({ connection: { server: server.url, caPem: server.caPem, tokenFile: server.tokenFile, insecureSkipTlsVerify: false, source: 'test' } });
t.teardown(() => sa.close());

t.test('it is kube-apiserver, on loopback, with TLS', async (t) => {
  t.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  t.match(server.kubeVersion, /^v1\.\d+\.\d+/);
  const v = await kubectl(server.kubeconfig, ['version', '-o', 'json']);
  t.equal(v.code, 0, v.stderr);
  t.equal(JSON.parse(v.stdout).serverVersion.gitVersion, server.kubeVersion);
});

t.test('kubectl get and create workflows (admin kubeconfig)', async (t) => {
  const empty = await kubectl(server.kubeconfig, ['get', 'workflows']);
  t.equal(empty.code, 0, empty.stderr);
  t.match(empty.stderr + empty.stdout, /No resources found in default namespace/);
  const created = await kubectl(server.kubeconfig, ['create', '-f', '-'], JSON.stringify(workflow('smoke-kubectl')));
  t.equal(created.code, 0, created.stderr);
  const got = await kubectl(server.kubeconfig, ['get', 'workflows']);
  t.equal(got.code, 0, got.stderr);
  // The CRD's printer columns.
  t.match(got.stdout.split('\n')[0], /^NAME\s+STATE\s+READY\s+STATUS\s+JOBID\s+AGE/);
  t.match(got.stdout, /smoke-kubectl\s+\S*\s*\S*\s*\S*\s*fSmoke1/);
  // Defaults from the CRD schema were applied by the server.
  const obj = JSON.parse((await kubectl(server.kubeconfig, ['get', 'workflow', 'smoke-kubectl', '-o', 'json'])).stdout) as { spec: { hurry: boolean; forceReady: boolean } };
  t.same({ hurry: obj.spec.hurry, forceReady: obj.spec.forceReady }, { hurry: false, forceReady: false });
});

t.test('KubeClient lists and watches workflows with the service-account token', async (t) => {
  const list = await sa.list<KubeObject>(WORKFLOWS, { namespace: 'default' });
  t.equal(list.kind, 'WorkflowList');
  t.ok(list.metadata.resourceVersion, 'list has a resourceVersion');
  const ac = new AbortController();
  const stream = await sa.watch(WORKFLOWS, { namespace: 'default', resourceVersion: list.metadata.resourceVersion!, timeoutSeconds: 30, allowWatchBookmarks: true, signal: ac.signal, fieldSelector: 'metadata.name=smoke-watch' });
  // The SA may not create workflows: the admin does.
  const created = await kubectl(server.kubeconfig, ['create', '-f', '-'], JSON.stringify(workflow('smoke-watch')));
  t.equal(created.code, 0, created.stderr);
  let buf = '';
  let event: WatchEvent | undefined;
  for await (const chunk of stream) {
    buf += Buffer.from(chunk).toString('utf8');
    const nl = buf.indexOf('\n');
    if (nl < 0) continue;
    event = JSON.parse(buf.slice(0, nl)) as WatchEvent;
    if (event.type !== 'BOOKMARK') break;
    buf = buf.slice(nl + 1);
  }
  ac.abort();
  t.equal(event?.type, 'ADDED');
  t.equal(event?.object.metadata.name, 'smoke-watch');
});

t.test('RBAC: the token has the shipped role and nothing more', async (t) => {
  const denied = await sa.create(WORKFLOWS, 'default', workflow('smoke-denied') as KubeObject).catch((e: unknown) => e);
  t.ok(denied instanceof KubeApiError && denied.status === 403, 'create workflows is forbidden');
  const secrets = await sa.list(SECRETS, { namespace: 'kube-system' }).catch((e: unknown) => e);
  t.ok(secrets instanceof KubeApiError && secrets.status === 403, 'secrets outside the role are forbidden');
  t.equal((await readFile(server.tokenFile, 'utf8')).split('.').length, 3, 'the token is a JWT');
});

t.test('SelfSubjectAccessReview is answered for the service account', async (t) => {
  const review = (verb: string, resource: string, group: string) =>
    sa.request<{ status: { allowed: boolean } }>({
      method: 'POST',
      path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { namespace: 'default', verb, resource, group } } },
    });
  t.equal((await review('watch', 'workflows', 'dataworkflowservices.github.io')).status.allowed, true);
  // The shipped RBAC grants no Secrets (WORKFLOW_TOKEN is off by default; the token role is commented out).
  t.equal((await review('get', 'secrets', '')).status.allowed, false);
  t.equal((await review('delete', 'workflows', 'dataworkflowservices.github.io')).status.allowed, false);
});
