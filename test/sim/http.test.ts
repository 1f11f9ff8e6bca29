import t from 'tap';
import { startSimulator } from '../../src/sim/index.js';
import { dwsResource, NODES } from '../../src/kube/resource.js';
import { call, WF, WF6, type Conn } from './client.js';

const WORKFLOWS = dwsResource('workflows', 'v1alpha7');
const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';

function workflow(name: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'dataworkflowservices.github.io/v1alpha7',
    kind: 'Workflow',
    metadata: { name, namespace: 'default', labels: { team: 'a' } },
    spec: { desiredState: 'Proposal', wlmID: 'flux', jobID: 'f2', userID: 1050, groupID: 1051, dwDirectives: [] },
    ...extra,
  };
}

t.test('discovery', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  const v = await call(sim, 'GET', '/version');
  t.equal(v.status, 200);
  t.equal(v.body.major, '1');
  const api = await call(sim, 'GET', '/api');
  t.same(api.body.versions, ['v1']);
  const core = await call(sim, 'GET', '/api/v1');
  t.same(core.body.resources.map((r: { name: string }) => r.name).sort(), ['namespaces', 'nodes', 'nodes/status', 'secrets'], 'nodes/status as kube-apiserver lists it');
  const apis = await call(sim, 'GET', '/apis', { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json' });
  t.equal(apis.headers['content-type'], 'application/json', 'aggregated discovery asked: plain answer that client-go falls back to');
  t.same(apis.body.groups[0].versions.map((x: { version: string }) => x.version), ['v1alpha7', 'v1alpha6']);
  t.equal(apis.body.groups[0].preferredVersion.version, 'v1alpha7');
  const group = await call(sim, 'GET', '/apis/dataworkflowservices.github.io');
  t.equal(group.body.kind, 'APIGroup');
  for (const version of ['v1alpha7', 'v1alpha6']) {
    const list = await call(sim, 'GET', `/apis/dataworkflowservices.github.io/${version}`);
    t.equal(list.body.groupVersion, `dataworkflowservices.github.io/${version}`);
    const wf = list.body.resources.find((r: { name: string }) => r.name === 'workflows');
    t.match(wf, { singularName: 'workflow', namespaced: true, kind: 'Workflow' });
    t.equal(wf.shortNames, undefined, 'no short names: the CRD (as upstream) has none');
    t.ok(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'].every((verb) => wf.verbs.includes(verb)));
    t.same(list.body.resources.map((r: { name: string }) => r.name).sort(), ['computes', 'storages', 'storages/status', 'systemconfigurations', 'systemconfigurations/status', 'workflows']);
  }
  t.equal((await call(sim, 'GET', '/apis/dataworkflowservices.github.io/v1alpha5')).status, 404);
  t.equal((await call(sim, 'GET', '/apis/nope.example.com')).status, 404);
  const nf = await call(sim, 'GET', '/apis/dataworkflowservices.github.io/v1alpha7/namespaces/default/frobs');
  t.match(nf.body, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 });
});

t.test('only the DWS versions asked for are served', async (t) => {
  const sim = await startSimulator({ controllers: false, dwsVersions: ['v1alpha6'] });
  t.teardown(() => sim.close());
  const apis = await call(sim, 'GET', '/apis');
  t.same(apis.body.groups[0].versions.map((x: { version: string }) => x.version), ['v1alpha6']);
  t.equal((await call(sim, 'GET', WF)).status, 404);
  t.equal((await call(sim, 'GET', WF6)).status, 200);
});

t.test('seeded objects', async (t) => {
  const sim = await startSimulator({ controllers: false, computeName: 'compute-x', rabbitName: 'rabbit-x', rabbitAddress: '127.0.0.2', ports: '4100-4199' });
  t.teardown(() => sim.close());
  const sc = await call(sim, 'GET', '/apis/dataworkflowservices.github.io/v1alpha7/namespaces/default/systemconfigurations/default');
  t.equal(sc.status, 200);
  t.same(sc.body.spec.storageNodes, [{ type: 'Rabbit', name: 'rabbit-x', computesAccess: [{ name: 'compute-x', index: 0 }] }]);
  t.same(sc.body.spec.ports, ['4100-4199']);
  const node = await call(sim, 'GET', '/api/v1/nodes/rabbit-x');
  t.same(node.body.status.addresses, [{ type: 'InternalIP', address: '127.0.0.2' }, { type: 'Hostname', address: 'rabbit-x' }]);
  t.equal(node.body.apiVersion, 'v1');
  const storage = await call(sim, 'GET', '/apis/dataworkflowservices.github.io/v1alpha7/namespaces/default/storages/rabbit-x');
  t.equal(storage.body.metadata.labels['dataworkflowservices.github.io/storage'], 'Rabbit');
  t.equal(sim.get(NODES, undefined, 'rabbit-x')?.metadata.name, 'rabbit-x');
});

t.test('a Node\'s status is written through nodes/status only, as kube-apiserver does', async (t) => {
  const sim = await startSimulator({ controllers: false, computeName: 'compute-x', rabbitName: 'rabbit-x', rabbitAddress: '127.0.0.2' });
  t.teardown(() => sim.close());
  const to = (address: string) => ({ body: { status: { addresses: [{ type: 'InternalIP', address }] } }, contentType: 'application/merge-patch+json' });
  const ignored = await call(sim, 'PATCH', '/api/v1/nodes/rabbit-x', to('127.0.0.9'));
  t.equal(ignored.status, 200);
  t.equal(ignored.body.status.addresses[0].address, '127.0.0.2', 'a patch of the Node keeps its old status');
  const written = await call(sim, 'PATCH', '/api/v1/nodes/rabbit-x/status', to('127.0.0.9'));
  t.equal(written.status, 200);
  t.same(written.body.status.addresses, [{ type: 'InternalIP', address: '127.0.0.9' }], 'nodes/status writes it');
  const created = await call(sim, 'POST', '/api/v1/nodes', { body: { apiVersion: 'v1', kind: 'Node', metadata: { name: 'rabbit-y' }, status: { addresses: [{ type: 'InternalIP', address: '127.0.0.3' }] } } });
  t.equal(created.status, 201);
  t.equal(created.body.status.addresses[0].address, '127.0.0.3', 'a created Node keeps the status it is given');
});

t.test('create, get, update, patch, delete over HTTP', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());

  const created = await call(sim, 'POST', WF, { body: workflow('wf-a') });
  t.equal(created.status, 201);
  const md = created.body.metadata;
  t.ok(md.uid && md.creationTimestamp && md.resourceVersion, 'server fields set');
  t.equal(md.generation, 1);
  t.equal(created.body.apiVersion, 'dataworkflowservices.github.io/v1alpha7');
  t.equal(sim.currentResourceVersion(), md.resourceVersion, 'global resourceVersion is the last write');

  const dup = await call(sim, 'POST', WF, { body: workflow('wf-a') });
  t.equal(dup.status, 409);
  t.match(dup.body, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'AlreadyExists', code: 409, details: { name: 'wf-a', group: 'dataworkflowservices.github.io', kind: 'workflows' } });
  t.equal(dup.body.message, 'workflows.dataworkflowservices.github.io "wf-a" already exists');

  const withRV = workflow('wf-rv') as ReturnType<typeof workflow> & { metadata: { resourceVersion?: string } };
  withRV.metadata.resourceVersion = '5';
  t.equal((await call(sim, 'POST', WF, { body: withRV })).status, 500, 'resourceVersion on create is refused, as kube-apiserver does');
  const badName = await call(sim, 'POST', WF, { body: workflow('Bad_Name') });
  t.equal(badName.status, 422);
  t.equal(badName.body.reason, 'Invalid');
  const wrongNs = await call(sim, 'POST', WF, { body: { ...workflow('wf-b'), metadata: { name: 'wf-b', namespace: 'other' } } });
  t.equal(wrongNs.status, 400);
  const wrongKind = await call(sim, 'POST', WF, { body: { ...workflow('wf-b'), kind: 'Computes' } });
  t.equal(wrongKind.status, 400);

  // Stored once, served at both versions.
  const v6 = await call(sim, 'GET', `${WF6}/wf-a`);
  t.equal(v6.status, 200);
  t.equal(v6.body.apiVersion, 'dataworkflowservices.github.io/v1alpha6');
  t.equal(v6.body.metadata.resourceVersion, md.resourceVersion);
  const missing = await call(sim, 'GET', `${WF}/nope`);
  t.equal(missing.status, 404);
  t.equal(missing.body.message, 'workflows.dataworkflowservices.github.io "nope" not found');

  // PUT: conflict on a stale resourceVersion, 422 without one (custom resources), 200 otherwise.
  const obj = created.body;
  obj.status = { state: 'Proposal', ready: false };
  const put = await call(sim, 'PUT', `${WF}/wf-a`, { body: obj });
  t.equal(put.status, 200);
  t.not(put.body.metadata.resourceVersion, md.resourceVersion);
  t.equal(put.body.metadata.generation, 2, 'no status subresource: a status change is a new generation');
  t.equal(put.body.metadata.uid, md.uid);
  const stale = await call(sim, 'PUT', `${WF}/wf-a`, { body: obj });
  t.equal(stale.status, 409);
  t.equal(stale.body.reason, 'Conflict');
  t.match(stale.body.message, /the object has been modified/);
  const noRV = structuredClone(put.body);
  delete noRV.metadata.resourceVersion;
  t.equal((await call(sim, 'PUT', `${WF}/wf-a`, { body: noRV })).status, 422);
  const rename = structuredClone(put.body);
  rename.metadata.name = 'other';
  t.equal((await call(sim, 'PUT', `${WF}/wf-a`, { body: rename })).status, 400);
  t.equal((await call(sim, 'PUT', `${WF}/nope`, { body: { ...workflow('nope'), metadata: { name: 'nope', resourceVersion: '1' } } })).status, 404);
  const same = await call(sim, 'PUT', `${WF}/wf-a`, { body: put.body });
  t.equal(same.body.metadata.resourceVersion, put.body.metadata.resourceVersion, 'a no-op update keeps the resourceVersion');

  // PATCH: merge, json, strategic (415), preconditions.
  const merge = await call(sim, 'PATCH', `${WF}/wf-a`, { body: { spec: { desiredState: 'Setup' }, metadata: { labels: { team: null, x: 'y' } } }, contentType: 'application/merge-patch+json' });
  t.equal(merge.status, 200);
  t.equal(merge.body.spec.desiredState, 'Setup');
  t.same(merge.body.metadata.labels, { x: 'y' });
  const json = await call(sim, 'PATCH', `${WF}/wf-a`, {
    body: [
      { op: 'test', path: '/spec/desiredState', value: 'Setup' },
      { op: 'add', path: '/spec/dwDirectives/-', value: '#DW jobdw type=xfs capacity=1GB name=s' },
      { op: 'replace', path: '/spec/userID', value: 7 },
    ],
    contentType: 'application/json-patch+json',
  });
  t.equal(json.status, 200);
  t.same(json.body.spec.dwDirectives, ['#DW jobdw type=xfs capacity=1GB name=s']);
  t.equal(json.body.spec.userID, 7);
  const failedTest = await call(sim, 'PATCH', `${WF}/wf-a`, { body: [{ op: 'test', path: '/spec/userID', value: 8 }], contentType: 'application/json-patch+json' });
  t.equal(failedTest.status, 422);
  const smp = await call(sim, 'PATCH', `${WF}/wf-a`, { body: { spec: { userID: 9 } }, contentType: 'application/strategic-merge-patch+json' });
  t.equal(smp.status, 415);
  t.match(smp.body, { reason: 'UnsupportedMediaType', code: 415 });
  const stalePatch = await call(sim, 'PATCH', `${WF}/wf-a`, { body: { metadata: { resourceVersion: md.resourceVersion }, spec: { userID: 9 } }, contentType: 'application/merge-patch+json' });
  t.equal(stalePatch.status, 409, 'a resourceVersion in a patch is a precondition');
  t.equal((await call(sim, 'PATCH', `${WF}/nope`, { body: {}, contentType: 'application/merge-patch+json' })).status, 404);
  t.equal((await call(sim, 'PATCH', `${WF}/wf-a`, { body: 'not json', contentType: 'application/merge-patch+json' })).status, 400);
  // Strategic merge patch is fine on core types (treated as a merge patch there).
  const nodeSmp = await call(sim, 'PATCH', '/api/v1/nodes/rabbit-sim', { body: { metadata: { labels: { a: 'b' } } }, contentType: 'application/strategic-merge-patch+json' });
  t.equal(nodeSmp.status, 200);
  t.equal(nodeSmp.body.metadata.labels.a, 'b');

  // DELETE: object returned; preconditions; 404 after.
  const badPre = await call(sim, 'DELETE', `${WF}/wf-a`, { body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: 'wrong' } } });
  t.equal(badPre.status, 409);
  const del = await call(sim, 'DELETE', `${WF}/wf-a`, { body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' } });
  t.equal(del.status, 200);
  t.equal(del.body.metadata.name, 'wf-a');
  t.equal((await call(sim, 'GET', `${WF}/wf-a`)).status, 404);
  t.equal((await call(sim, 'DELETE', `${WF}/wf-a`)).status, 404);

  // dryRun writes nothing.
  const rv = sim.currentResourceVersion();
  t.equal((await call(sim, 'POST', `${WF}?dryRun=All`, { body: workflow('dry') })).status, 201);
  t.equal(sim.currentResourceVersion(), rv);
  t.equal((await call(sim, 'GET', `${WF}/dry`)).status, 404);

  // Subresources do not exist (the Workflow CRD has no status subresource).
  t.equal((await call(sim, 'GET', `${WF}/wf-a/status`)).status, 404);
  t.equal((await call(sim, 'POST', `${WF}/x`, { body: {} })).status, 405);
});

t.test('finalizers hold a deletion until removed', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  const w = workflow('fin');
  (w.metadata as Record<string, unknown>).finalizers = ['flux-framework.readthedocs.io/workflow'];
  await call(sim, 'POST', WF, { body: w });
  const del = await call(sim, 'DELETE', `${WF}/fin`);
  t.equal(del.status, 200);
  t.ok(del.body.metadata.deletionTimestamp, 'marked for deletion');
  const still = await call(sim, 'GET', `${WF}/fin`);
  t.equal(still.status, 200);
  const gone = await call(sim, 'PATCH', `${WF}/fin`, { body: { metadata: { finalizers: null } }, contentType: 'application/merge-patch+json' });
  t.equal(gone.status, 200);
  t.equal((await call(sim, 'GET', `${WF}/fin`)).status, 404, 'gone once the last finalizer is removed');
});

t.test('list: pagination, continue tokens, selectors, namespaces', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  for (let i = 0; i < 7; i++) sim.create(WORKFLOWS, { ...workflow(`wf-${i}`), metadata: { name: `wf-${i}`, namespace: 'default', labels: { parity: i % 2 ? 'odd' : 'even' } } });
  sim.create(WORKFLOWS, { ...workflow('elsewhere'), metadata: { name: 'elsewhere', namespace: 'other' } });

  const all = await call(sim, 'GET', WF);
  t.equal(all.body.kind, 'WorkflowList');
  t.equal(all.body.apiVersion, 'dataworkflowservices.github.io/v1alpha7');
  t.equal(all.body.metadata.resourceVersion, sim.currentResourceVersion());
  t.same(all.body.items.map((i: { metadata: { name: string } }) => i.metadata.name), ['wf-0', 'wf-1', 'wf-2', 'wf-3', 'wf-4', 'wf-5', 'wf-6']);
  const everywhere = await call(sim, 'GET', '/apis/dataworkflowservices.github.io/v1alpha7/workflows');
  t.equal(everywhere.body.items.length, 8, 'all namespaces');

  // Pages of 3: a consistent snapshot even when objects change between pages.
  const p1 = await call(sim, 'GET', `${WF}?limit=3`);
  t.same(p1.body.items.map((i: { metadata: { name: string } }) => i.metadata.name), ['wf-0', 'wf-1', 'wf-2']);
  t.equal(p1.body.metadata.remainingItemCount, 4);
  t.ok(p1.body.metadata.continue);
  sim.delete(WORKFLOWS, 'default', 'wf-4');
  sim.create(WORKFLOWS, workflow('wf-3a'));
  sim.patchMerge(WORKFLOWS, 'default', 'wf-5', { spec: { userID: 99 } });
  const p2 = await call(sim, 'GET', `${WF}?limit=3&continue=${encodeURIComponent(p1.body.metadata.continue)}`);
  t.same(p2.body.items.map((i: { metadata: { name: string } }) => i.metadata.name), ['wf-3', 'wf-4', 'wf-5'], 'the list as of the first page');
  t.equal(p2.body.items[2].spec.userID, 1050, 'old state of a changed object');
  t.equal(p2.body.metadata.resourceVersion, p1.body.metadata.resourceVersion);
  const p3 = await call(sim, 'GET', `${WF}?limit=3&continue=${encodeURIComponent(p2.body.metadata.continue)}`);
  t.same(p3.body.items.map((i: { metadata: { name: string } }) => i.metadata.name), ['wf-6']);
  t.notOk(p3.body.metadata.continue, 'last page has no continue');

  // An expired continue token is a 410.
  sim.faults.compact();
  const expired = await call(sim, 'GET', `${WF}?limit=3&continue=${encodeURIComponent(p1.body.metadata.continue)}`);
  t.equal(expired.status, 410);
  t.equal(expired.body.reason, 'Expired');
  t.equal((await call(sim, 'GET', `${WF}?continue=garbage`)).status, 400);

  const odd = await call(sim, 'GET', `${WF}?labelSelector=${encodeURIComponent('parity=odd')}`);
  t.same(odd.body.items.map((i: { metadata: { name: string } }) => i.metadata.name), ['wf-1', 'wf-3', 'wf-5']);
  const named = await call(sim, 'GET', `${WF}?fieldSelector=${encodeURIComponent('metadata.name=wf-2')}`);
  t.same(named.body.items.map((i: { metadata: { name: string } }) => i.metadata.name), ['wf-2']);
  const not = await call(sim, 'GET', `${WF}?fieldSelector=${encodeURIComponent('metadata.name!=wf-2,metadata.namespace==default')}&labelSelector=parity%3Deven`);
  t.same(not.body.items.map((i: { metadata: { name: string } }) => i.metadata.name), ['wf-0', 'wf-6']);
  t.equal((await call(sim, 'GET', `${WF}?fieldSelector=spec.userID%3D1`)).status, 400);
  // As kube-apiserver: a negative limit is no limit; a limit that is not an integer is a 400.
  t.equal((await call(sim, 'GET', `${WF}?limit=-1`)).status, 200);
  t.equal((await call(sim, 'GET', `${WF}?limit=abc`)).status, 400);
});

t.test('Table answers for kubectl get', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  sim.create(WORKFLOWS, { ...workflow('wf-t'), status: { state: 'PreRun', ready: true, status: 'Completed' } });
  const list = await call(sim, 'GET', WF, { accept: TABLE_ACCEPT });
  t.equal(list.body.kind, 'Table');
  t.equal(list.body.apiVersion, 'meta.k8s.io/v1');
  t.same(
    list.body.columnDefinitions.filter((c: { priority: number }) => c.priority === 0).map((c: { name: string }) => c.name),
    ['Name', 'STATE', 'READY', 'STATUS', 'JOBID', 'AGE'],
    'the upstream CRD printer columns',
  );
  const row = list.body.rows[0];
  t.same(row.cells.slice(0, 5), ['wf-t', 'PreRun', true, 'Completed', 'f2']);
  t.match(row.cells[5], /^\d+s$/, 'age');
  t.match(row.object, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { name: 'wf-t', namespace: 'default' } });
  const one = await call(sim, 'GET', `${WF}/wf-t?includeObject=Object`, { accept: TABLE_ACCEPT });
  t.equal(one.body.rows.length, 1);
  t.equal(one.body.rows[0].object.kind, 'Workflow');
  const plain = await call(sim, 'GET', `${WF}/wf-t`, { accept: 'application/json' });
  t.equal(plain.body.kind, 'Workflow');
});

t.test('bearer token', async (t) => {
  const sim = await startSimulator({ controllers: false, token: 's3cret' });
  t.teardown(() => sim.close());
  const anon: Conn = { url: sim.url };
  const no = await call(anon, 'GET', WF);
  t.equal(no.status, 401);
  t.match(no.body, { kind: 'Status', reason: 'Unauthorized', code: 401 });
  t.equal((await call({ url: sim.url, token: 'wrong' }, 'GET', '/api')).status, 401);
  t.equal((await call({ url: sim.url, token: 's3cret' }, 'GET', WF)).status, 200);
});

t.test('programmatic API shares resourceVersions and semantics with HTTP', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  const fixtureUid = '6b1f0a2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b';
  const c = sim.create(WORKFLOWS, { ...workflow('p'), metadata: { name: 'p', namespace: 'default', uid: fixtureUid, resourceVersion: '48190' } });
  t.equal(c.metadata.uid, fixtureUid, 'programmatic create keeps a given uid');
  t.equal(c.metadata.resourceVersion, sim.currentResourceVersion());
  const viaHttp = await call(sim, 'GET', `${WF}/p`);
  t.same(viaHttp.body, c);
  t.throws(() => sim.create(WORKFLOWS, workflow('p')), { reason: 'AlreadyExists', code: 'SIM_ALREADY_EXISTS' } as object as Error);
  t.throws(() => sim.update(WORKFLOWS, { ...c, metadata: { ...c.metadata, resourceVersion: '1' } }), { reason: 'Conflict' } as object as Error);
  const { resourceVersion: _rv, ...mdNoRV } = c.metadata;
  const u = sim.update(WORKFLOWS, { ...c, metadata: mdNoRV, spec: { ...(c.spec as object), userID: 5 } });
  t.equal((u.spec as { userID: number }).userID, 5, 'update without resourceVersion is unconditional');
  const p = sim.patchMerge(WORKFLOWS, 'default', 'p', { status: { env: { A: '1' } } });
  t.same((p.status as { env: object }).env, { A: '1' });
  (p.metadata.labels ??= {}).mutated = 'yes';
  (p.status as { env: Record<string, string> }).env.A = 'changed';
  t.same(sim.get(WORKFLOWS, 'default', 'p')?.status, { env: { A: '1' } }, 'returned objects are copies');
  t.equal(sim.get(WORKFLOWS, 'default', 'p')?.metadata.labels, undefined);
  const v6 = sim.get(dwsResource('workflows', 'v1alpha6'), 'default', 'p');
  t.equal(v6?.apiVersion, 'dataworkflowservices.github.io/v1alpha6');
  t.equal(sim.list(WORKFLOWS).length, 1);
  sim.delete(WORKFLOWS, 'default', 'p');
  t.equal(sim.get(WORKFLOWS, 'default', 'p'), undefined);
  t.throws(() => sim.delete(WORKFLOWS, 'default', 'p'), { reason: 'NotFound' } as object as Error);
});
