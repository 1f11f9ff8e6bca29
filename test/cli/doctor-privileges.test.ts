/**
 * Least privilege in kube mode: the shipped RBAC example grants no Secrets and nothing
 * cluster-wide but Nodes, and `nnf-env doctor`'s SelfSubjectAccessReview checks flag what a
 * token may do beyond nnf-envd's needs. The API server here is a loopback HTTP server that
 * answers SelfSubjectAccessReview by evaluating RBAC objects (the shipped file, or variants)
 * for the nnf-env ServiceAccount, as kube-apiserver's RBAC authorizer does for these rules.
 */
import t, { type Test } from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KubeClient } from '../../src/kube/client.js';
import { checkExcessPrivileges, excessRules } from '../../src/cli/commands/doctor-privileges.js';
import { permissionNeeds } from '../../src/cli/commands/doctor.js';
import { repoRoot } from '../helpers/paths.js';

interface Rule { apiGroups: string[]; resources: string[]; verbs: string[] }
interface RbacDoc { kind: string; metadata: { name: string; namespace?: string }; rules?: Rule[]; roleRef?: { kind: string; name: string }; subjects?: Array<{ kind: string; name: string; namespace?: string }> }

const RBAC_FILE = join(repoRoot, 'etc', 'kubernetes', 'nnf-env-rbac.yaml');
const SA = { name: 'nnf-env', namespace: 'default' };

function docsOf(text: string): RbacDoc[] {
  return parseAllDocuments(text).map((d) => d.toJS() as RbacDoc).filter((d) => d && typeof d === 'object' && d.kind);
}

/** The commented-out block at the end of the file, uncommented. */
function commentedDocs(text: string): RbacDoc[] {
  const block = text.slice(text.indexOf('# apiVersion:')).split('\n').map((l) => l.replace(/^# ?/, '')).join('\n');
  return docsOf(block);
}

/** RBAC's answer for the ServiceAccount: a binding's role grants in the binding's namespace (RoleBinding) or everywhere (ClusterRoleBinding). */
function allowed(docs: RbacDoc[], attrs: { group?: string; resource: string; verb: string; namespace?: string }): boolean {
  const roles = new Map(docs.filter((d) => d.kind === 'Role' || d.kind === 'ClusterRole').map((d) => [`${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`, d]));
  for (const b of docs.filter((d) => d.kind === 'RoleBinding' || d.kind === 'ClusterRoleBinding')) {
    if (!b.subjects?.some((s) => s.kind === 'ServiceAccount' && s.name === SA.name && (s.namespace ?? b.metadata.namespace) === SA.namespace)) continue;
    if (b.kind === 'RoleBinding' && attrs.namespace !== b.metadata.namespace) continue;
    const role = roles.get(`${b.roleRef!.kind}/${b.roleRef!.kind === 'Role' ? b.metadata.namespace : ''}/${b.roleRef!.name}`);
    for (const r of role?.rules ?? []) {
      const g = r.apiGroups.includes('*') || r.apiGroups.includes(attrs.group ?? '');
      if (g && (r.resources.includes('*') || r.resources.includes(attrs.resource)) && (r.verbs.includes('*') || r.verbs.includes(attrs.verb))) return true;
    }
  }
  return false;
}

async function authorizer(t: Test, docs: RbacDoc[] | 'no-ssar'): Promise<KubeClient> {
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (docs === 'no-ssar' || req.method !== 'POST' || req.url !== '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: 'the server could not find the requested resource' }));
        return;
      }
      const review = JSON.parse(body) as { spec: { resourceAttributes: { group?: string; resource: string; verb: string; namespace?: string } } };
      const attrs = review.spec.resourceAttributes;
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ ...review, status: { allowed: allowed(docs, attrs) } }));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const c = new KubeClient({ connection: { server: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, insecureSkipTlsVerify: false, source: 'test' } });
  t.teardown(async () => {
    await c.close();
    srv.close();
  });
  return c;
}

const kubeCfg = { WORKFLOW_NAMESPACE: 'default', WORKFLOW_TOKEN: false, ENV_SOURCE: 'kube' };

t.test('the shipped RBAC grants what nnf-envd needs and no Secrets', async (t) => {
  const text = await readFile(RBAC_FILE, 'utf8');
  const docs = docsOf(text);
  for (const need of permissionNeeds({ ...kubeCfg, RABBIT_ADDRESS: '' })) {
    for (const verb of need.verbs) t.ok(allowed(docs, { group: need.group, resource: need.resource, verb, ...(need.namespace ? { namespace: need.namespace } : {}) }), `${verb} ${need.resource}`);
  }
  t.notOk(allowed(docs, { resource: 'secrets', verb: 'get', namespace: 'default' }), 'no get on secrets');
  t.notOk(allowed(docs, { group: 'dataworkflowservices.github.io', resource: 'workflows', verb: 'list' }), 'workflows not cluster-wide');
  t.notOk(docs.some((d) => d.kind === 'ClusterRole' && d.rules?.some((r) => r.resources.some((x) => x !== 'nodes'))), 'the only ClusterRole is for nodes');
  const tokens = commentedDocs(text);
  t.same(tokens.map((d) => `${d.kind}/${d.metadata.name}`), ['Role/nnf-env-workflow-tokens', 'RoleBinding/nnf-env-workflow-tokens'], 'the token role is there, commented out');
  t.same(tokens[0]!.rules, [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }], 'get only, no list');
  t.ok(allowed([...docs, ...tokens], { resource: 'secrets', verb: 'get', namespace: 'default' }), 'uncommented, it grants get in default');
  t.same(permissionNeeds({ ...kubeCfg, ENV_SOURCE: 'flux', RABBIT_ADDRESS: '' }), [], 'flux mode needs no permission');
});

t.test('doctor: the shipped RBAC passes', async (t) => {
  const c = await authorizer(t, docsOf(await readFile(RBAC_FILE, 'utf8')));
  const r = await checkExcessPrivileges(c, kubeCfg);
  t.same(r.map((x) => x.state), ['ok']);
  t.match(r[0]!.detail, /no access to Secrets; workflows only in default/);
});

t.test('doctor: Secrets the node does not need are flagged', async (t) => {
  const text = await readFile(RBAC_FILE, 'utf8');
  const c = await authorizer(t, [...docsOf(text), ...commentedDocs(text)]);
  const off = await checkExcessPrivileges(c, kubeCfg);
  t.match(off, [{ state: 'fail', detail: /may read the Secrets of namespace default .*WORKFLOW_TOKEN is off/, fix: /remove the nnf-env-workflow-tokens RoleBinding/ }]);
  const flux = await checkExcessPrivileges(c, { ...kubeCfg, ENV_SOURCE: 'flux' });
  t.match(flux[0]?.detail, /ENV_SOURCE=flux/);
  // On purpose: said plainly, and nothing more is flagged.
  const on = await checkExcessPrivileges(c, { ...kubeCfg, WORKFLOW_TOKEN: true });
  t.match(on, [{ state: 'warn', detail: /WORKFLOW_TOKEN is on: this node can read Secrets in namespace default/ }, { state: 'ok', detail: /beyond get in default/ }]);
});

t.test('doctor: cluster-wide grants are flagged', async (t) => {
  const wide: RbacDoc[] = [
    { kind: 'ClusterRole', metadata: { name: 'too-much' }, rules: [{ apiGroups: ['dataworkflowservices.github.io'], resources: ['workflows'], verbs: ['get', 'list', 'watch'] }, { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] }] },
    { kind: 'ClusterRoleBinding', metadata: { name: 'too-much' }, roleRef: { kind: 'ClusterRole', name: 'too-much' }, subjects: [{ kind: 'ServiceAccount', ...SA }] },
  ];
  const r = await checkExcessPrivileges(await authorizer(t, wide), { ...kubeCfg, WORKFLOW_TOKEN: true });
  const details = r.map((x) => `${x.state} ${x.detail}`).join('\n');
  t.match(details, /fail this node may read Secrets in every namespace/);
  t.match(details, /fail this node may list the Secrets of namespace default/);
  t.match(details, /warn this node may list workflows in every namespace; nnf-envd reads only namespace default/);
});

t.test('doctor: without SelfSubjectAccessReview nothing is claimed', async (t) => {
  const r = await checkExcessPrivileges(await authorizer(t, 'no-ssar'), kubeCfg);
  t.match(r, [{ state: 'skip', detail: /does not serve SelfSubjectAccessReview/ }]);
  t.equal(excessRules({ ...kubeCfg, WORKFLOW_TOKEN: true }).length, 3, 'with tokens on, get in the namespace is not excess');
});
