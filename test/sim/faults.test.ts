import t from 'tap';
import { startSimulator } from '../../src/sim/index.js';
import { dwsResource } from '../../src/kube/resource.js';
import { call, openWatch, WF } from './client.js';

const WORKFLOWS = dwsResource('workflows', 'v1alpha7');

function wf(name: string) {
  return { metadata: { name, namespace: 'default' }, spec: { desiredState: 'Proposal', wlmID: 'flux', jobID: 'f2', userID: 1, groupID: 1 } };
}

t.test('dropWatches destroys every watch connection', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  const a = openWatch(sim, `${WF}?watch=1`);
  const b = openWatch(sim, `/api/v1/nodes?watch=1`);
  t.teardown(() => [a, b].forEach((w) => w.close()));
  await b.next(); // the seeded Node: both watches are registered now
  sim.create(WORKFLOWS, wf('x'));
  await a.next();
  t.equal(sim.watchCount(), 2);
  t.equal(sim.faults.dropWatches(), 2);
  t.equal(await a.done, 'error', 'the connection breaks (no clean end)');
  t.equal(await b.done, 'error');
  t.equal(sim.watchCount(), 0);
  // New watches work.
  const c = openWatch(sim, `${WF}?watch=1`);
  t.teardown(() => c.close());
  t.equal((await c.next()).object.metadata.name, 'x');
});

t.test('stallWatches keeps sockets open and silent until resumed or the time passes', async (t) => {
  const sim = await startSimulator({ controllers: false, bookmarkIntervalMs: 50 });
  t.teardown(() => sim.close());
  const rv = sim.currentResourceVersion();
  const w = openWatch(sim, `${WF}?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`);
  t.teardown(() => w.close());
  await w.next(); // a bookmark: registered
  sim.faults.stallWatches();
  await new Promise((r) => setTimeout(r, 100)); // bookmarks already on the wire have arrived
  const bytes = w.bytes;
  sim.create(WORKFLOWS, wf('during-stall'));
  await new Promise((r) => setTimeout(r, 300));
  t.equal(w.bytes, bytes, 'not a byte while stalled (no events, no bookmarks)');
  t.notOk(w.ended, 'the socket stays open');
  // A watch started during the stall is not affected.
  const fresh = openWatch(sim, `${WF}?watch=1`);
  t.teardown(() => fresh.close());
  t.equal((await fresh.next()).object.metadata.name, 'during-stall');
  sim.faults.resumeWatches();
  const e = await w.until((x) => x.type === 'ADDED');
  t.equal(e.object.metadata.name, 'during-stall', 'held events arrive after resume');

  // With a time limit the stall ends by itself.
  const w2 = openWatch(sim, `${WF}?watch=1&resourceVersion=${sim.currentResourceVersion()}`);
  t.teardown(() => w2.close());
  await new Promise((r) => setTimeout(r, 50));
  sim.faults.stallWatches(200);
  sim.create(WORKFLOWS, wf('late'));
  await new Promise((r) => setTimeout(r, 80));
  t.same(w2.pending(), [], 'held');
  t.equal((await w2.next(3000)).object.metadata.name, 'late', 'delivered when the stall expires');
});

t.test('compact forces 410 on a watch from an older resourceVersion (continue tokens: http.test)', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  sim.create(WORKFLOWS, wf('a'));
  const rv = sim.currentResourceVersion();
  sim.create(WORKFLOWS, wf('b'));
  sim.faults.compact();
  const w = openWatch(sim, `${WF}?watch=1&resourceVersion=${rv}`);
  t.match(await w.next(), { type: 'ERROR', object: { code: 410, reason: 'Expired' } });
});

t.test('failNext answers 429/500/503 with a Status and Retry-After', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  sim.faults.failNext({ status: 429, retryAfterSeconds: 3 });
  const r = await call(sim, 'GET', WF);
  t.equal(r.status, 429);
  t.equal(r.headers['retry-after'], '3');
  t.match(r.body, { kind: 'Status', reason: 'TooManyRequests', code: 429, details: { retryAfterSeconds: 3 } });
  t.equal((await call(sim, 'GET', WF)).status, 200, 'count defaults to 1');

  sim.faults.failNext({ status: 503, count: 2, retryAfterSeconds: 1 });
  t.equal((await call(sim, 'GET', WF)).status, 503);
  const second = await call(sim, 'GET', '/api');
  t.equal(second.status, 503);
  t.equal(second.body.reason, 'ServiceUnavailable');
  t.equal((await call(sim, 'GET', WF)).status, 200);

  sim.faults.failNext({ status: 500, match: (req) => req.watch });
  t.equal((await call(sim, 'GET', WF)).status, 200, 'a list does not match');
  const w = openWatch(sim, `${WF}?watch=1`);
  await w.done;
  t.equal(w.status, 500, 'the watch does');
  t.equal((await call(sim, 'GET', WF)).status, 200);
  const r500 = await call(sim, 'GET', WF);
  t.equal(r500.status, 200);

  sim.faults.failNext({ status: 500 });
  const e = await call(sim, 'GET', WF);
  t.match(e.body, { reason: 'InternalError', code: 500 });
  t.equal(e.headers['retry-after'], undefined, 'no Retry-After unless asked');
});

t.test('setLatency delays every response', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  sim.faults.setLatency(300);
  const started = Date.now();
  t.equal((await call(sim, 'GET', '/version')).status, 200);
  t.ok(Date.now() - started >= 290, `took ${Date.now() - started} ms`);
  sim.faults.setLatency(0);
  t.throws(() => sim.faults.setLatency(-1), RangeError);
  // close() does not wait for delayed requests.
  sim.faults.setLatency(60_000);
  const pending = call(sim, 'GET', '/version').catch(() => 'failed');
  await new Promise((r) => setTimeout(r, 50));
  await sim.close();
  t.equal(await pending, 'failed', 'a delayed request is cut off by close()');
});
