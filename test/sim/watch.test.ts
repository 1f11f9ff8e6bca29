import t from 'tap';
import { startSimulator } from '../../src/sim/index.js';
import { dwsResource, type KubeObject } from '../../src/kube/resource.js';
import { call, openWatch, WF, WF6 } from './client.js';

const WORKFLOWS = dwsResource('workflows', 'v1alpha7');

function wf(name: string, labels: Record<string, string> = {}, ns = 'default') {
  return { metadata: { name, namespace: ns, labels }, spec: { desiredState: 'Proposal', wlmID: 'flux', jobID: 'f2', userID: 1, groupID: 1 } };
}

t.test('unset or "0" resourceVersion: synthetic ADDED, then live events', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  sim.create(WORKFLOWS, wf('a'));
  sim.create(WORKFLOWS, wf('b'));
  for (const q of ['watch=1', 'watch=true&resourceVersion=0']) {
    const w = openWatch(sim, `${WF}?${q}`);
    t.teardown(() => w.close());
    const e1 = await w.next();
    const e2 = await w.next();
    t.equal(w.status, 200);
    t.match(w.headers['content-type'], /^application\/json/);
    t.same([e1.type, e1.object.metadata.name, e2.type, e2.object.metadata.name], ['ADDED', 'a', 'ADDED', 'b'], q);
    t.equal(e1.object.apiVersion, 'dataworkflowservices.github.io/v1alpha7');
    t.equal(e1.object.kind, 'Workflow');
    w.close();
  }
  const w = openWatch(sim, `${WF6}?watch=1`);
  t.teardown(() => w.close());
  await w.next();
  await w.next();
  const c = sim.create<KubeObject>(WORKFLOWS, wf('c'));
  const live = await w.next();
  t.equal(live.type, 'ADDED');
  t.equal(live.object.metadata.resourceVersion, c.metadata.resourceVersion);
  t.equal(live.object.apiVersion, 'dataworkflowservices.github.io/v1alpha6', 'served at the version watched');
  sim.patchMerge(WORKFLOWS, 'default', 'c', { spec: { userID: 2 } });
  t.match(await w.next(), { type: 'MODIFIED', object: { spec: { userID: 2 } } });
  sim.delete(WORKFLOWS, 'default', 'c');
  const del = await w.next();
  t.equal(del.type, 'DELETED');
  t.equal(del.object.metadata.resourceVersion, sim.currentResourceVersion(), 'a DELETED object carries the deletion resourceVersion');
});

t.test('sendInitialEvents=true: current objects, then a bookmark marking their end', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  sim.create(WORKFLOWS, wf('a'));
  const w = openWatch(sim, `${WF}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true`);
  t.teardown(() => w.close());
  t.match(await w.next(), { type: 'ADDED', object: { metadata: { name: 'a' } } });
  t.match(await w.next(), { type: 'BOOKMARK', object: { metadata: { resourceVersion: sim.currentResourceVersion(), annotations: { 'k8s.io/initial-events-end': 'true' } } } });
});

t.test('resourceVersion N: only the events after N, from history', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  sim.create(WORKFLOWS, wf('a'));
  const rv = sim.currentResourceVersion();
  sim.patchMerge(WORKFLOWS, 'default', 'a', { spec: { userID: 5 } });
  sim.create(WORKFLOWS, wf('b'));
  sim.create(WORKFLOWS, wf('elsewhere', {}, 'other'));
  sim.delete(WORKFLOWS, 'default', 'a');
  const w = openWatch(sim, `${WF}?watch=1&resourceVersion=${rv}`);
  t.teardown(() => w.close());
  const got = [await w.next(), await w.next(), await w.next()].map((e) => `${e.type} ${e.object.metadata.name}`);
  t.same(got, ['MODIFIED a', 'ADDED b', 'DELETED a'], 'other namespaces and older events left out');
  const rvs = w.events.map((e) => Number(e.object.metadata.resourceVersion));
  t.ok(rvs.every((r, i) => r > Number(rv) && (i === 0 || r > rvs[i - 1]!)), 'increasing resourceVersions after N');
  // Nothing else is pending.
  await new Promise((r) => setTimeout(r, 50));
  t.same(w.pending(), []);
  const everywhere = openWatch(sim, `/apis/dataworkflowservices.github.io/v1alpha7/workflows?watch=1&resourceVersion=${rv}`);
  t.teardown(() => everywhere.close());
  await everywhere.until((e) => e.object.metadata.name === 'elsewhere');
  t.pass('an all-namespaces watch sees other namespaces');
  t.equal((await call(sim, 'GET', `${WF}?watch=1&resourceVersion=abc`)).status, 400);
});

t.test('410 Expired: a resourceVersion older than the history, or after compact()', async (t) => {
  const sim = await startSimulator({ controllers: false, historySize: 5 });
  t.teardown(() => sim.close());
  sim.create(WORKFLOWS, wf('a'));
  const old = sim.currentResourceVersion();
  for (let i = 0; i < 6; i++) sim.patchMerge(WORKFLOWS, 'default', 'a', { spec: { userID: i + 10 } });
  const w = openWatch(sim, `${WF}?watch=1&resourceVersion=${old}`);
  const e = await w.next();
  t.equal(w.status, 200, 'a 410 on a watch is an ERROR event in a 200 stream');
  t.match(e, { type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410 } });
  t.match(e.object.message, /too old resource version/);
  t.equal(await w.done, 'end', 'then the stream ends');

  const recent = sim.currentResourceVersion();
  const ok = openWatch(sim, `${WF}?watch=1&resourceVersion=${Number(recent) - 2}`);
  t.teardown(() => ok.close());
  t.equal((await ok.next()).type, 'MODIFIED', 'a resourceVersion still in history works');

  sim.faults.compact();
  const after = openWatch(sim, `${WF}?watch=1&resourceVersion=${Number(recent) - 1}`);
  t.equal((await after.next()).object.code, 410, 'compact() expires every older resourceVersion');
  const current = openWatch(sim, `${WF}?watch=1&resourceVersion=${sim.currentResourceVersion()}`);
  t.teardown(() => current.close());
  sim.patchMerge(WORKFLOWS, 'default', 'a', { spec: { userID: 1 } });
  t.equal((await current.next()).type, 'MODIFIED', 'the current resourceVersion still works after compact()');
});

t.test('bookmarks and timeoutSeconds', async (t) => {
  const sim = await startSimulator({ controllers: false, bookmarkIntervalMs: 100 });
  t.teardown(() => sim.close());
  sim.create(WORKFLOWS, wf('a'));
  const rv = sim.currentResourceVersion();
  const w = openWatch(sim, `${WF}?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true&timeoutSeconds=1`);
  t.teardown(() => w.close());
  const b = await w.next(3000);
  t.same(b, { type: 'BOOKMARK', object: { kind: 'Workflow', apiVersion: 'dataworkflowservices.github.io/v1alpha7', metadata: { resourceVersion: rv } } });
  sim.create(WORKFLOWS, wf('elsewhere', {}, 'other'));
  const b2 = await w.until((e) => e.type === 'BOOKMARK' && e.object.metadata.resourceVersion !== rv, 3000);
  t.equal(b2.object.metadata.resourceVersion, sim.currentResourceVersion(), 'bookmarks move past changes the watch does not see');
  const started = Date.now();
  t.equal(await w.done, 'end', 'the server ends the watch at timeoutSeconds');
  t.ok(Date.now() - started < 3000);
  t.equal(w.events[w.events.length - 1]!.type, 'BOOKMARK', 'a last bookmark before the end');

  const plain = openWatch(sim, `${WF}?watch=1&resourceVersion=${rv}&timeoutSeconds=1`);
  t.equal(await plain.done, 'end');
  t.notOk(plain.events.some((e) => e.type === 'BOOKMARK'), 'no bookmarks unless asked');
});

t.test('selectors: objects entering arrive as ADDED, leaving as DELETED', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  sim.create(WORKFLOWS, wf('a', { tier: 'x' }));
  sim.create(WORKFLOWS, wf('b', { tier: 'y' }));
  const byLabel = openWatch(sim, `${WF}?watch=1&labelSelector=${encodeURIComponent('tier=x')}`);
  const byName = openWatch(sim, `${WF}?watch=1&fieldSelector=${encodeURIComponent('metadata.name=b')}`);
  const notA = openWatch(sim, `${WF}?watch=1&fieldSelector=${encodeURIComponent('metadata.name!=a')}&labelSelector=tier%21%3Dz`);
  t.teardown(() => [byLabel, byName, notA].forEach((w) => w.close()));
  t.match(await byLabel.next(), { type: 'ADDED', object: { metadata: { name: 'a' } } });
  t.match(await byName.next(), { type: 'ADDED', object: { metadata: { name: 'b' } } });
  t.match(await notA.next(), { type: 'ADDED', object: { metadata: { name: 'b' } } });

  const leaveRV = sim.patchMerge(WORKFLOWS, 'default', 'a', { metadata: { labels: { tier: 'y' } } }).metadata.resourceVersion;
  const left = await byLabel.next();
  t.equal(left.type, 'DELETED', 'leaving the selector');
  t.equal(left.object.metadata.labels.tier, 'x', 'the object as it last matched');
  t.equal(left.object.metadata.resourceVersion, leaveRV, 'at the resourceVersion of the change');
  sim.patchMerge(WORKFLOWS, 'default', 'b', { metadata: { labels: { tier: 'x' } } });
  t.match(await byLabel.next(), { type: 'ADDED', object: { metadata: { name: 'b', labels: { tier: 'x' } } } }, 'entering the selector');
  t.match(await byName.next(), { type: 'MODIFIED', object: { metadata: { name: 'b' } } });
  sim.patchMerge(WORKFLOWS, 'default', 'b', { metadata: { labels: { tier: 'z' } } });
  t.match(await notA.until((e) => e.type !== 'MODIFIED'), { type: 'DELETED', object: { metadata: { name: 'b' } } });
  await new Promise((r) => setTimeout(r, 50));
  t.notOk(notA.pending().some((e) => e.object.metadata.name === 'a'), 'the field selector keeps a out');

  // Replays from history apply selectors the same way.
  const replay = openWatch(sim, `${WF}?watch=1&resourceVersion=${Number(leaveRV) - 1}&labelSelector=tier%3Dx`);
  t.teardown(() => replay.close());
  const r = [await replay.next(), await replay.next(), await replay.next()].map((e) => `${e.type} ${e.object.metadata.name}`);
  t.same(r, ['DELETED a', 'ADDED b', 'DELETED b']);
});

t.test('finalizer deletion is a MODIFIED (deletionTimestamp) then a DELETED', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  sim.create(WORKFLOWS, { ...wf('f'), metadata: { name: 'f', namespace: 'default', finalizers: ['x/y'] } });
  const w = openWatch(sim, `${WF}?watch=1&resourceVersion=${sim.currentResourceVersion()}`);
  t.teardown(() => w.close());
  sim.delete(WORKFLOWS, 'default', 'f');
  const m = await w.next();
  t.equal(m.type, 'MODIFIED');
  t.ok(m.object.metadata.deletionTimestamp);
  sim.patchMerge(WORKFLOWS, 'default', 'f', { metadata: { finalizers: [] } });
  t.equal((await w.until((e) => e.type === 'DELETED')).object.metadata.name, 'f');
});

t.test('a Table watch (kubectl get -w)', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  sim.create(WORKFLOWS, { ...wf('a'), status: { state: 'Setup', ready: false, status: 'DriverWait' } });
  const w = openWatch(sim, `${WF}?watch=1`, 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json');
  t.teardown(() => w.close());
  const e = await w.next();
  t.equal(e.type, 'ADDED');
  t.equal(e.object.kind, 'Table');
  t.same(e.object.rows[0].cells.slice(0, 4), ['a', 'Setup', false, 'DriverWait']);
});

t.test('watches of one name (indexed by name in the hub) see that object only, closed ones nothing', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  sim.create(WORKFLOWS, wf('a'));
  sim.create(WORKFLOWS, wf('b'));
  sim.create(WORKFLOWS, wf('a', {}, 'other'));
  const rv = sim.currentResourceVersion();
  const sel = (s: string) => encodeURIComponent(s);
  const a1 = openWatch(sim, `${WF}?watch=1&resourceVersion=${rv}&fieldSelector=${sel('metadata.name=a')}`);
  const a2 = openWatch(sim, `${WF}?watch=1&resourceVersion=${rv}&fieldSelector=${sel('metadata.namespace=default,metadata.name==a')}&labelSelector=${sel('!gone')}`);
  const b = openWatch(sim, `${WF}?watch=1&resourceVersion=${rv}&fieldSelector=${sel('metadata.name=b')}`);
  const all = openWatch(sim, `${WF}?watch=1&resourceVersion=${rv}`);
  const closed = openWatch(sim, `${WF}?watch=1&resourceVersion=${rv}&fieldSelector=${sel('metadata.name=a')}`);
  t.teardown(() => [a1, a2, b, all].forEach((w) => w.close()));
  await waitForCount(() => sim.watchCount() === 5);
  closed.close();
  await waitForCount(() => sim.watchCount() === 4);

  sim.patchMerge(WORKFLOWS, 'other', 'a', { metadata: { labels: { x: '1' } } });
  sim.patchMerge(WORKFLOWS, 'default', 'a', { metadata: { labels: { x: '2' } } });
  sim.patchMerge(WORKFLOWS, 'default', 'b', { metadata: { labels: { x: '3' } } });
  sim.patchMerge(WORKFLOWS, 'default', 'a', { metadata: { labels: { gone: 'y' } } });
  const names = (w: typeof a1, n: number) => Promise.all(Array.from({ length: n }, () => w.next())).then((es) => es.map((e) => `${e.type} ${e.object.metadata.name} ${JSON.stringify(e.object.metadata.labels)}`));
  t.same(await names(a1, 2), ['MODIFIED a {"x":"2"}', 'MODIFIED a {"x":"2","gone":"y"}'], 'the default namespace\'s a, not other/a');
  t.same(await names(a2, 2), ['MODIFIED a {"x":"2"}', 'DELETED a {"x":"2"}'], 'the same event, then leaving its label selector');
  t.same(await names(b, 1), ['MODIFIED b {"x":"3"}']);
  t.same(await names(all, 3), ['MODIFIED a {"x":"2"}', 'MODIFIED b {"x":"3"}', 'MODIFIED a {"x":"2","gone":"y"}']);
  await new Promise((r) => setTimeout(r, 50));
  t.same([a1, b, all].map((w) => w.pending().length), [0, 0, 0], 'nothing else arrived');
});

async function waitForCount(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!ok()) throw new Error('watch count not reached in 2 s');
}
