/**
 * Differential conformance: the same requests to the simulator and to the real kube-apiserver
 * (test/apiserver, the same CRD files), answers compared after normalising what differs by
 * nature (uids, timestamps, resourceVersions, continue tokens, managedFields). Each remaining
 * difference is either fixed in the simulator or listed in docs/SIMULATOR-DIFFERENCES.md; the
 * places that skip a field name the entry.
 */
import t, { type Test } from 'tap';
import { startSimulator } from '../../src/sim/index.js';
import { realApiServerSkipReason, startRealApiServer } from '../helpers/apiserver.js';
import { call, openWatch, type CallOptions, type Conn, type Reply, type WatchEventJson } from '../sim/client.js';

const skip = await realApiServerSkipReason();
if (skip) {
  t.plan(0, skip);
  process.exit(0);
}

const real = await startRealApiServer();
t.teardown(() => real.stop());
const TOKEN = 'conformance-token';
const sim = await startSimulator({ tls: true, token: TOKEN, controllers: false, userContainers: false });
t.teardown(() => sim.close());

type Side = 'sim' | 'real';
const conns: Record<Side, Conn> = {
  sim: { url: sim.url, caPem: sim.caPem!, token: TOKEN },
  real: { url: real.url, caPem: real.caPem, token: real.adminToken },
};

const NS = 'conformance';
const GROUP = 'dataworkflowservices.github.io';
const WFS = `/apis/${GROUP}/v1alpha7/namespaces/${NS}/workflows`;
const SCS = `/apis/${GROUP}/v1alpha7/namespaces/${NS}/systemconfigurations`;

async function both(method: string, path: string, opts: CallOptions = {}): Promise<Record<Side, Reply>> {
  const [s, r] = await Promise.all([call(conns.sim, method, path, opts), call(conns.real, method, path, opts)]);
  return { sim: s, real: r };
}

/** What differs by nature between two servers: server-assigned ids, times and versions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function norm(v: any): any {
  if (Array.isArray(v)) return v.map(norm);
  if (v === null || typeof v !== 'object') return v;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const out: any = {};
  for (const [k, x] of Object.entries(v)) out[k] = norm(x);
  const md = out.metadata;
  if (md && typeof md === 'object') {
    for (const k of ['uid', 'creationTimestamp', 'selfLink', 'deletionTimestamp']) if (k in md) md[k] = `<${k}>`;
    // The simulator does not track field managers (SIMULATOR-DIFFERENCES: managedFields).
    delete md.managedFields;
    if ('resourceVersion' in md) md.resourceVersion = '<rv>';
    if ('continue' in md) md.continue = '<continue>';
    if (md.annotations && Object.keys(md.annotations).length === 0) delete md.annotations;
  }
  return out;
}

function workflow(name: string, extra: Record<string, unknown> = {}, labels?: Record<string, string>) {
  return {
    apiVersion: `${GROUP}/v1alpha7`,
    kind: 'Workflow',
    metadata: { name, ...(labels ? { labels } : {}) },
    spec: { desiredState: 'Proposal', wlmID: 'flux', jobID: 'f2Xk8Hj4C1V', userID: 1001, groupID: 1001, dwDirectives: ['#DW jobdw type=xfs capacity=1GB name=x'], ...extra },
  };
}

function sameReply(t: Test, r: Record<Side, Reply>, what: string): void {
  t.equal(r.sim.status, r.real.status, `${what}: HTTP status`);
  t.same(norm(r.sim.body), norm(r.real.body), `${what}: body`);
}

t.before(async () => {
  const ns = await both('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } } });
  if (ns.sim.status !== 201 || ns.real.status !== 201) throw new Error(`namespace: sim ${ns.sim.status} ${ns.sim.text}; real ${ns.real.status} ${ns.real.text}`);
});

t.test('discovery: the group, its versions and resources', async (t) => {
  const g = await both('GET', `/apis/${GROUP}`);
  sameReply(t, g, 'APIGroup');
  for (const version of ['v1alpha7', 'v1alpha6']) {
    const l = await both('GET', `/apis/${GROUP}/${version}`);
    t.equal(l.sim.status, 200);
    t.equal(l.real.status, 200);
    // storageVersionHash and categories are kube's own bookkeeping (SIMULATOR-DIFFERENCES: discovery).
    const shape = (b: { resources: Array<Record<string, unknown>> }) =>
      b.resources
        .map((r) => ({ name: r.name, singularName: r.singularName, namespaced: r.namespaced, kind: r.kind, verbs: [...(r.verbs as string[])].sort(), shortNames: r.shortNames }))
        .sort((a, b) => String(a.name).localeCompare(String(b.name)));
    t.same(shape(l.sim.body), shape(l.real.body), `APIResourceList ${version}`);
  }
  const nnf = await both('GET', '/apis/nnf.cray.hpe.com');
  sameReply(t, nnf, 'nnf.cray.hpe.com APIGroup');
});

t.test('create, get, list', async (t) => {
  for (const [name, labels] of [['wf-a', { app: 'x' }], ['wf-b', { app: 'x' }], ['wf-c', { app: 'y' }]] as const) {
    const c = await both('POST', WFS, { body: workflow(name, {}, labels) });
    sameReply(t, c, `create ${name}`);
    t.equal(c.real.body.spec.hurry, false, 'the CRD default is applied');
  }
  sameReply(t, await both('GET', `${WFS}/wf-a`), 'get');
  sameReply(t, await both('GET', WFS), 'list');
  sameReply(t, await both('GET', `/apis/${GROUP}/v1alpha6/namespaces/${NS}/workflows/wf-a`), 'get at v1alpha6');
});

t.test('limit and continue', async (t) => {
  const p1 = await both('GET', `${WFS}?limit=2`);
  sameReply(t, p1, 'first page');
  t.ok(p1.real.body.metadata.continue, 'real: continue token');
  const p2 = await both('GET', `${WFS}?limit=2&continue=${encodeURIComponent(p1.sim.body.metadata.continue)}`).then(async (r) => ({
    sim: r.sim,
    real: await call(conns.real, 'GET', `${WFS}?limit=2&continue=${encodeURIComponent(p1.real.body.metadata.continue)}`),
  }));
  sameReply(t, p2, 'second page');
  const bad = await both('GET', `${WFS}?limit=2&continue=not-a-token`);
  t.equal(bad.sim.status, bad.real.status, 'bad continue token: status');
  t.equal(bad.sim.body.reason, bad.real.body.reason, 'bad continue token: reason');
});

t.test('label and field selectors', async (t) => {
  sameReply(t, await both('GET', `${WFS}?labelSelector=app%3Dx`), 'labelSelector app=x');
  sameReply(t, await both('GET', `${WFS}?labelSelector=app%20in%20(y)`), 'labelSelector app in (y)');
  sameReply(t, await both('GET', `${WFS}?labelSelector=!app`), 'labelSelector !app');
  sameReply(t, await both('GET', `${WFS}?fieldSelector=metadata.name%3Dwf-b`), 'fieldSelector metadata.name');
  sameReply(t, await both('GET', `${WFS}?fieldSelector=metadata.namespace%3D${NS}`), 'fieldSelector metadata.namespace');
  const bad = await both('GET', `${WFS}?fieldSelector=spec.userID%3D1`);
  t.equal(bad.sim.status, bad.real.status, 'unsupported field selector: status');
  t.same({ reason: bad.sim.body.reason, code: bad.sim.body.code }, { reason: bad.real.body.reason, code: bad.real.body.code }, 'unsupported field selector: reason');
});

async function watchBoth(query: string, count: number, act?: () => Promise<void>): Promise<Record<Side, WatchEventJson[]>> {
  const ws = { sim: openWatch(conns.sim, `${WFS}?${query}`), real: openWatch(conns.real, `${WFS}?${query}`) };
  try {
    // The watch is registered once its headers arrive; give both a moment.
    await new Promise((r) => setTimeout(r, 300));
    if (act) await act();
    const out: Record<Side, WatchEventJson[]> = { sim: [], real: [] };
    for (const side of ['sim', 'real'] as const) {
      for (let i = 0; i < count; i++) out[side].push(await ws[side].until((e) => e.type !== 'BOOKMARK' || query.includes('sendInitialEvents'), 10_000));
    }
    return out;
  } finally {
    ws.sim.close();
    ws.real.close();
  }
}

t.test('watch from a resourceVersion', async (t) => {
  const rvs = await both('GET', WFS);
  const q = (side: Side) => `watch=1&resourceVersion=${rvs[side].body.metadata.resourceVersion}`;
  const ws = { sim: openWatch(conns.sim, `${WFS}?${q('sim')}`), real: openWatch(conns.real, `${WFS}?${q('real')}`) };
  t.teardown(() => {
    ws.sim.close();
    ws.real.close();
  });
  await new Promise((r) => setTimeout(r, 300));
  await both('PATCH', `${WFS}/wf-a`, { body: { spec: { hurry: true } }, contentType: 'application/merge-patch+json' });
  await both('DELETE', `${WFS}/wf-c`);
  await both('POST', WFS, { body: workflow('wf-d') });
  const got: Record<Side, unknown[]> = { sim: [], real: [] };
  for (const side of ['sim', 'real'] as const) {
    for (let i = 0; i < 3; i++) {
      const e = await ws[side].until((x) => x.type !== 'BOOKMARK', 10_000);
      got[side].push({ type: e.type, object: norm(e.object) });
    }
  }
  t.same(got.sim, got.real, 'MODIFIED, DELETED, ADDED with the same objects');
});

t.test('bookmarks: sendInitialEvents ends with the initial-events-end bookmark', async (t) => {
  const ev = await watchBoth('watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true', 4);
  const shape = (es: WatchEventJson[]) => es.map((e) => (e.type === 'BOOKMARK' ? { type: e.type, object: { ...norm(e.object) } } : { type: e.type, name: e.object.metadata.name }));
  const sortAdded = (es: unknown[]) => es; // both list in key order
  t.same(sortAdded(shape(ev.sim)), sortAdded(shape(ev.real)), 'ADDED for each object, then one BOOKMARK');
});

t.test('410 after compaction', async (t) => {
  const before = await both('GET', `${WFS}?limit=1`);
  for (let i = 0; i < 3; i++) await both('PATCH', `${WFS}/wf-a`, { body: { metadata: { labels: { round: String(i) } } }, contentType: 'application/merge-patch+json' });
  await real.compact();
  sim.faults.compact();
  const exact = {
    sim: await call(conns.sim, 'GET', `${WFS}?resourceVersion=${before.sim.body.metadata.resourceVersion}&resourceVersionMatch=Exact`),
    real: await call(conns.real, 'GET', `${WFS}?resourceVersion=${before.real.body.metadata.resourceVersion}&resourceVersionMatch=Exact`),
  };
  // kube-apiserver 1.37 serves an exact-resourceVersion list and a continue token from its
  // watch-cache snapshots even after etcd compacted that revision; the simulator's compaction
  // drops its history at once (SIMULATOR-DIFFERENCES: compaction). Both answers are checked.
  t.equal(exact.sim.status, 410, 'sim: exact list from a compacted resourceVersion is 410');
  t.equal(exact.sim.body.reason, 'Expired');
  t.equal(exact.real.status, 200, 'real: served from the watch cache snapshot');
  const cont = {
    sim: await call(conns.sim, 'GET', `${WFS}?limit=1&continue=${encodeURIComponent(before.sim.body.metadata.continue)}`),
    real: await call(conns.real, 'GET', `${WFS}?limit=1&continue=${encodeURIComponent(before.real.body.metadata.continue)}`),
  };
  t.equal(cont.sim.status, 410, 'sim: continue token from before the compaction is 410');
  t.match(cont.sim.body.message, /continue parameter is too old/);
  t.equal(cont.real.status, 200, 'real: continue served from the watch cache snapshot');
  const w = {
    sim: openWatch(conns.sim, `${WFS}?watch=1&resourceVersion=1`),
    real: openWatch(conns.real, `${WFS}?watch=1&resourceVersion=1`),
  };
  t.teardown(() => {
    w.sim.close();
    w.real.close();
  });
  const e = { sim: await w.sim.next(10_000), real: await w.real.next(10_000) };
  t.equal(w.sim.status, w.real.status, 'watch from a compacted resourceVersion: HTTP status');
  t.equal(e.sim.type, 'ERROR');
  t.same({ type: e.sim.type, code: e.sim.object.code, reason: e.sim.object.reason, kind: e.sim.object.kind }, { type: e.real.type, code: e.real.object.code, reason: e.real.object.reason, kind: e.real.object.kind }, 'one ERROR event: 410 Expired');
});

t.test('merge and JSON patch; 415 for strategic merge on a custom resource', async (t) => {
  sameReply(t, await both('PATCH', `${WFS}/wf-b`, { body: { spec: { desiredState: 'Setup' }, metadata: { labels: { extra: 'yes' } } }, contentType: 'application/merge-patch+json' }), 'merge patch');
  sameReply(
    t,
    await both('PATCH', `${WFS}/wf-b`, { body: [{ op: 'test', path: '/spec/userID', value: 1001 }, { op: 'replace', path: '/spec/groupID', value: 2002 }, { op: 'remove', path: '/metadata/labels/extra' }], contentType: 'application/json-patch+json' }),
    'JSON patch',
  );
  sameReply(t, await both('PATCH', `${WFS}/wf-b`, { body: [{ op: 'test', path: '/spec/userID', value: 5 }], contentType: 'application/json-patch+json' }), 'JSON patch test fails');
  sameReply(t, await both('PATCH', `${WFS}/wf-b`, { body: { spec: { hurry: true } }, contentType: 'application/strategic-merge-patch+json' }), 'strategic merge patch');
});

t.test('Status bodies: 404, 409, 422', async (t) => {
  sameReply(t, await both('GET', `${WFS}/nope`), '404 get');
  sameReply(t, await both('DELETE', `${WFS}/nope`), '404 delete');
  sameReply(t, await both('POST', WFS, { body: workflow('wf-a') }), '409 AlreadyExists');
  const cur = await both('GET', `${WFS}/wf-d`);
  const stale = (side: Side) => ({ ...cur[side].body, metadata: { ...cur[side].body.metadata, resourceVersion: '1' }, spec: { ...cur[side].body.spec, hurry: true } });
  sameReply(t, { sim: await call(conns.sim, 'PUT', `${WFS}/wf-d`, { body: stale('sim') }), real: await call(conns.real, 'PUT', `${WFS}/wf-d`, { body: stale('real') }) }, '409 Conflict');
  sameReply(t, await both('POST', WFS, { body: workflow('wf-bad', { desiredState: 'Bogus' }) }), '422 enum');
  const missing = workflow('wf-missing') as { spec: Record<string, unknown> };
  delete missing.spec.wlmID;
  delete missing.spec.userID;
  sameReply(t, await both('POST', WFS, { body: missing }), '422 required');
  sameReply(t, await both('POST', WFS, { body: workflow('wf-type', { userID: 'root' }) }), '422 type');
  sameReply(t, await both('POST', WFS, { body: workflow('Not_A_Name') }), '422 name');
});

t.test('status subresource: SystemConfiguration has one, Workflow has none', async (t) => {
  const sc = { apiVersion: `${GROUP}/v1alpha7`, kind: 'SystemConfiguration', metadata: { name: 'default' }, spec: { storageNodes: [{ type: 'Rabbit', name: 'r1', computesAccess: [{ name: 'c1', index: 0 }] }] }, status: { ready: true } };
  sameReply(t, await both('POST', SCS, { body: sc }), 'create ignores status');
  sameReply(t, await both('PATCH', `${SCS}/default/status`, { body: { status: { ready: true }, spec: { ports: [1] } }, contentType: 'application/merge-patch+json' }), 'status patch changes status only');
  sameReply(t, await both('PATCH', `${SCS}/default`, { body: { status: { ready: false } }, contentType: 'application/merge-patch+json' }), 'a main-resource patch leaves status');
  sameReply(t, await both('GET', `${WFS}/wf-a/status`), 'no workflows/status');
});

t.test('query spellings kube-apiserver accepts', async (t) => {
  for (const v of ['1', 'true', 'True', 'TRUE', 'yes', 'on', '']) {
    const r = await watchBoth(`watch=${encodeURIComponent(v)}&timeoutSeconds=5`, 1);
    t.same(r.sim.map((e) => e.type), r.real.map((e) => e.type), `watch=${JSON.stringify(v)} is a watch`);
  }
  for (const v of ['0', 'false', 'False', 'FALSE']) {
    const r = await both('GET', `${WFS}?watch=${v}`);
    t.same([r.sim.body.kind, r.sim.status], [r.real.body.kind, r.real.status], `watch=${v} is a list`);
  }
  for (const v of ['1', '+1', '01', '-1', '0', '', 'abc', '1.0', ' 1']) {
    const r = await both('GET', `${WFS}?limit=${encodeURIComponent(v)}`);
    t.equal(r.sim.status, r.real.status, `limit=${JSON.stringify(v)}: status`);
    if (r.real.status === 200) t.same(r.sim.body.items.length, r.real.body.items.length, `limit=${JSON.stringify(v)}: items`);
    else t.same([r.sim.body.reason, r.sim.body.message], [r.real.body.reason, r.real.body.message], `limit=${JSON.stringify(v)}: Status`);
  }
  for (const v of ['1', 'True', '']) {
    const r = await both('GET', `${WFS}?timeoutSeconds=${encodeURIComponent(v)}&watch=1`, { timeoutMs: 15_000 });
    t.equal(r.sim.status, r.real.status, `timeoutSeconds=${JSON.stringify(v)}: status`);
    if (r.real.status !== 200) t.same(r.sim.body.message, r.real.body.message, `timeoutSeconds=${JSON.stringify(v)}: message`);
  }
  for (const v of ['1', 'True', 'false']) {
    const r = await both('GET', `${WFS}?allowWatchBookmarks=${v}`);
    t.same([r.sim.status, r.sim.body.kind], [r.real.status, r.real.body.kind], `allowWatchBookmarks=${v} on a list`);
  }
});

t.test('OpenAPI v2 and v3', async (t) => {
  const v2 = await both('GET', '/openapi/v2', { accept: 'application/json' });
  for (const side of ['sim', 'real'] as const) {
    t.equal(v2[side].status, 200, `${side}: /openapi/v2`);
    t.equal(v2[side].body.swagger, '2.0');
    t.match(v2[side].body.definitions['io.github.dataworkflowservices.v1alpha7.Workflow']['x-kubernetes-group-version-kind'], [{ group: GROUP, version: 'v1alpha7', kind: 'Workflow' }]);
  }
  const root = await both('GET', '/openapi/v3');
  for (const side of ['sim', 'real'] as const) {
    t.equal(root[side].status, 200, `${side}: /openapi/v3`);
    const entry = root[side].body.paths[`apis/${GROUP}/v1alpha7`];
    t.match(entry?.serverRelativeURL, new RegExp(`^/openapi/v3/apis/${GROUP}/v1alpha7\\?hash=`), `${side}: the group version is listed`);
    const doc = await call(conns[side], 'GET', entry.serverRelativeURL, { accept: 'application/json' });
    t.equal(doc.status, 200);
    const wf = doc.body.components.schemas['io.github.dataworkflowservices.v1alpha7.Workflow'];
    t.match(wf['x-kubernetes-group-version-kind'], [{ group: GROUP, version: 'v1alpha7', kind: 'Workflow' }], `${side}: Workflow schema`);
    t.same(wf.properties.spec.properties.desiredState.enum, ['Proposal', 'Setup', 'DataIn', 'PreRun', 'PostRun', 'DataOut', 'Teardown']);
    const patch = doc.body.paths[`/apis/${GROUP}/v1alpha7/namespaces/{namespace}/workflows/{name}`]?.patch;
    t.ok(patch?.parameters?.some((p: { name?: string }) => p.name === 'fieldValidation'), `${side}: PATCH lists fieldValidation (kubectl then validates on the server)`);
  }
});
