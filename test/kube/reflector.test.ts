import t, { type Test } from 'tap';
import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { KubeClient } from '../../src/kube/client.js';
import { Reflector, type ReflectorOptions, type ReflectorState } from '../../src/kube/reflector.js';
import { dwsResource, NODES, type KubeObject } from '../../src/kube/resource.js';
import { eventLine, kubeStatus, sendJson, sleepMs, startScriptServer, startWatch, waitUntil, type Handler, type RecordedRequest } from './script-server.js';

const WF = dwsResource('workflows', 'v1alpha7');
const API = 'dataworkflowservices.github.io/v1alpha7';

function wf(name: string, rv: string, extra: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: API, kind: 'Workflow', metadata: { name, namespace: 'default', resourceVersion: rv, uid: `uid-${name}` }, ...extra };
}
function list(rv: string, items: KubeObject[], cont?: string) {
  return { apiVersion: API, kind: 'WorkflowList', metadata: { resourceVersion: rv, ...(cont ? { continue: cont } : {}) }, items };
}
const bookmark = (rv: string) => ({ apiVersion: API, kind: 'Workflow', metadata: { resourceVersion: rv } });
const isWatch = (r: RecordedRequest) => r.query.get('watch') === '1';

interface Harness {
  r: Reflector<KubeObject>;
  events: string[];
  states: ReflectorState[];
  logs: () => string;
  requests: RecordedRequest[];
  watches: () => RecordedRequest[];
  lists: () => RecordedRequest[];
  storeSummary: () => Record<string, string>;
}

/** A scripted server, a real client and a started reflector, all torn down with the test. */
async function harness(t: Test, handler: Handler, opts: Partial<ReflectorOptions> = {}): Promise<Harness> {
  const srv = await startScriptServer(handler);
  const client = new KubeClient({ connection: { server: srv.url, insecureSkipTlsVerify: false, source: 'test' } });
  let logText = '';
  const logger = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { logText += String(c); cb(); } }));
  const r = new Reflector<KubeObject>({
    client,
    resource: WF,
    namespace: 'default',
    backoffInitialMs: 20,
    backoffMaxMs: 200,
    silenceTimeoutMs: 10_000,
    watchTimeoutMs: 10_000,
    logger,
    ...opts,
  });
  const events: string[] = [];
  const states: ReflectorState[] = [];
  r.on('added', (o) => events.push(`added ${o.metadata.name} ${o.metadata.resourceVersion}`));
  r.on('updated', (o, old) => events.push(`updated ${o.metadata.name} ${o.metadata.resourceVersion}<-${old.metadata.resourceVersion}`));
  r.on('deleted', (o) => events.push(`deleted ${o.metadata.name} ${o.metadata.resourceVersion}`));
  r.on('synced', () => events.push('synced'));
  r.on('state', (s) => states.push(s));
  t.teardown(async () => {
    await r.stop();
    await client.close();
    await srv.close();
  });
  r.start();
  return {
    r,
    events,
    states,
    logs: () => logText,
    requests: srv.requests,
    watches: () => srv.requests.filter(isWatch),
    lists: () => srv.requests.filter((q) => !isWatch(q)),
    storeSummary: () => Object.fromEntries(r.store.list().map((o) => [o.metadata.name, o.metadata.resourceVersion ?? ''])),
  };
}

/** Writes `data` in small, irregular pieces with pauses, so the client sees chunk boundaries inside lines and characters. */
async function dribble(res: ServerResponse, data: Buffer): Promise<void> {
  const sizes = [1, 2, 3, 5, 7, 11, 13];
  for (let i = 0, k = 0; i < data.length; k++) {
    const n = sizes[k % sizes.length]!;
    res.write(data.subarray(i, i + n));
    i += n;
    if (k % 4 === 0) await sleepMs(1);
  }
}

t.test('paginated list, then a watch from its resourceVersion; split chunks, multi-byte UTF-8, many events per chunk', async (t) => {
  const note = 'ünïcødé ✓ 😀 日本';
  const many = Array.from({ length: 200 }, (_, i) => eventLine('MODIFIED', wf('c', String(100 + i))));
  let watchBytes = 0;
  const h = await harness(t, async (req, res) => {
    if (!isWatch(req)) {
      if (!req.query.get('continue')) return sendJson(res, 200, list('10', [wf('a', '5'), wf('b', '6')], 'page2'));
      return sendJson(res, 200, list('10', [wf('c', '7')]));
    }
    if (h.watches().length > 1) return startWatch(res);
    startWatch(res);
    const first = Buffer.from(
      eventLine('MODIFIED', wf('a', '11', { metadata: { name: 'a', namespace: 'default', resourceVersion: '11', annotations: { note } } })) +
        eventLine('ADDED', wf('d', '12')) +
        eventLine('DELETED', wf('b', '13')),
    );
    await dribble(res, first);
    const second = Buffer.from(many.join(''));
    res.write(second);
    watchBytes = first.length + second.length;
  }, { pageSize: 2 });

  await h.r.waitForSync();
  await waitUntil(() => h.r.lastSyncResourceVersion === '299', 'the last event');
  const [l1, l2] = h.lists();
  t.equal(l1!.query.get('limit'), '2');
  t.equal(l1!.query.get('continue'), null);
  t.equal(l2!.query.get('continue'), 'page2');
  const w = h.watches()[0]!;
  t.equal(w.path, '/apis/dataworkflowservices.github.io/v1alpha7/namespaces/default/workflows');
  t.equal(w.query.get('resourceVersion'), '10');
  t.equal(w.query.get('allowWatchBookmarks'), 'true');
  const ts = Number(w.query.get('timeoutSeconds'));
  t.ok(ts >= 8 && ts <= 12, `timeoutSeconds ${ts} is 10 s +-20%`);
  t.same(h.events.slice(0, 7), ['added a 5', 'added b 6', 'added c 7', 'synced', 'updated a 11<-5', 'added d 12', 'deleted b 13']);
  t.equal(h.events.length, 7 + 200);
  t.equal(h.events.at(-1), 'updated c 299<-298');
  t.same(h.storeSummary(), { a: '11', c: '299', d: '12' });
  t.equal((h.r.store.get('default/a')?.metadata.annotations as Record<string, string>).note, note, 'multi-byte characters split across chunks arrive intact');
  t.equal(h.r.counters.events, 203);
  t.equal(h.r.counters.bytes, watchBytes);
  t.equal(h.r.counters.malformedLines, 0);
  t.equal(h.r.hasSynced, true);
  t.equal(h.r.state, 'watching');
});

t.test('a watch that ends cleanly resumes from the last resourceVersion seen, bookmarks included', async (t) => {
  const h = await harness(t, (req, res) => {
    if (!isWatch(req)) return sendJson(res, 200, list('5', [wf('a', '5')]));
    const n = h.watches().length;
    startWatch(res);
    if (n === 1) res.end(eventLine('MODIFIED', wf('a', '6')) + eventLine('BOOKMARK', bookmark('9')));
    else if (n === 2) res.end(eventLine('BOOKMARK', bookmark('12')));
    else if (n === 3) res.write(eventLine('MODIFIED', wf('a', '13')));
  });
  await waitUntil(() => h.r.lastSyncResourceVersion === '13', 'the third watch event');
  const rvs = h.watches().map((w) => w.query.get('resourceVersion'));
  t.same(rvs, ['5', '9', '12']);
  t.equal(h.lists().length, 1, 'no relist');
  t.equal(h.r.counters.relists, 0);
  t.equal(h.r.counters.reconnects, 2);
  t.equal(h.r.counters.bookmarks, 2);
  t.same(h.events, ['added a 5', 'synced', 'updated a 6<-5', 'updated a 13<-6']);
});

t.test('410 ERROR event: relist and emit the difference (synthesized delete)', async (t) => {
  const h = await harness(t, (req, res) => {
    if (!isWatch(req)) {
      if (h.lists().length === 1) return sendJson(res, 200, list('5', [wf('a', '5'), wf('b', '5'), wf('c', '5')]));
      return sendJson(res, 200, list('20', [wf('a', '8'), wf('c', '5'), wf('d', '7')]));
    }
    startWatch(res);
    if (h.watches().length === 1) res.end(eventLine('ERROR', kubeStatus(410, 'Expired', 'too old resource version: 5 (15)')));
  });
  await waitUntil(() => h.watches().length === 2, 'the watch after the relist');
  t.same(h.events, ['added a 5', 'added b 5', 'added c 5', 'synced', 'deleted b 5', 'updated a 8<-5', 'added d 7']);
  t.same(h.storeSummary(), { a: '8', c: '5', d: '7' });
  t.equal(h.watches()[1]!.query.get('resourceVersion'), '20');
  t.equal(h.r.counters.relists, 1);
  t.equal(h.r.counters.errors, 0, 'a 410 is not an error');
  t.same(h.events.filter((e) => e === 'synced'), ['synced'], 'synced only once');
});

t.test('HTTP 410 (reason Gone) on the watch request: relist', async (t) => {
  const h = await harness(t, (req, res) => {
    if (!isWatch(req)) return sendJson(res, 200, h.lists().length === 1 ? list('5', [wf('a', '5')]) : list('12', []));
    if (h.watches().length === 1) return sendJson(res, 410, kubeStatus(410, 'Gone', 'too old'));
    startWatch(res);
  });
  await waitUntil(() => h.watches().length === 2, 'the watch after the relist');
  t.same(h.events, ['added a 5', 'synced', 'deleted a 5']);
  t.equal(h.watches()[1]!.query.get('resourceVersion'), '12');
  t.equal(h.r.store.size, 0);
});

t.test('an expired continue token restarts the list from the beginning', async (t) => {
  let continues = 0;
  const h = await harness(t, (req, res) => {
    if (isWatch(req)) return startWatch(res);
    if (!req.query.get('continue')) return sendJson(res, 200, list('30', [wf('a', '1')], `tok${h.lists().length}`));
    if (continues++ === 0) return sendJson(res, 410, kubeStatus(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result.'));
    return sendJson(res, 200, list('31', [wf('b', '2')]));
  }, { pageSize: 1 });
  await h.r.waitForSync();
  t.same(h.lists().map((r) => r.query.get('continue')), [null, 'tok1', null, 'tok3']);
  t.same(h.storeSummary(), { a: '1', b: '2' });
  t.same(h.events, ['added a 1', 'added b 2', 'synced']);
  await waitUntil(() => h.watches().length === 1, 'the watch');
  t.equal(h.watches()[0]!.query.get('resourceVersion'), '31');
  t.match(h.logs(), /continue token expired: restarting the list/);
});

t.test('429 and 503 with Retry-After are honoured', async (t) => {
  const h = await harness(t, (req, res) => {
    if (!isWatch(req)) {
      if (h.lists().length === 1) return sendJson(res, 429, kubeStatus(429, 'TooManyRequests', 'slow down'), { 'retry-after': '1' });
      return sendJson(res, 200, list('5', []));
    }
    if (h.watches().length === 1) return sendJson(res, 503, kubeStatus(503, 'ServiceUnavailable', 'apiserver is shutting down'), { 'retry-after': '1' });
    startWatch(res);
  });
  await waitUntil(() => h.watches().length === 2, 'the second watch');
  const [l1, l2] = h.lists();
  const [w1, w2] = h.watches();
  t.ok(l2!.at - l1!.at >= 950, `list retried after ${Math.round(l2!.at - l1!.at)} ms (Retry-After: 1)`);
  t.ok(w2!.at - w1!.at >= 950, `watch retried after ${Math.round(w2!.at - w1!.at)} ms (Retry-After: 1)`);
  t.equal(h.r.counters.errors, 2);
  t.equal(h.r.lastError?.code, 'KUBE_UNAVAILABLE');
});

t.test('5xx: exponential backoff, then recovery without a relist', async (t) => {
  const h = await harness(t, (req, res) => {
    if (!isWatch(req)) return sendJson(res, 200, list('5', [wf('a', '5')]));
    if (h.watches().length <= 4) return sendJson(res, 500, kubeStatus(500, 'InternalError', 'etcdserver: request timed out'));
    startWatch(res);
    res.write(eventLine('MODIFIED', wf('a', '6')));
  }, { backoffInitialMs: 100, backoffMaxMs: 800 });
  await waitUntil(() => h.r.lastSyncResourceVersion === '6', 'recovery');
  const at = h.watches().map((w) => w.at);
  const gaps = at.slice(1).map((x, i) => x - at[i]!);
  // Full jitter over [ceiling/2, ceiling] with ceilings 100, 200, 400, 800.
  const floors = [50, 100, 200, 400];
  gaps.forEach((g, i) => t.ok(g >= floors[i]! - 5, `gap ${i + 1} is ${Math.round(g)} ms >= ${floors[i]} ms`));
  t.equal(h.r.counters.errors, 4);
  t.equal(h.lists().length, 1);
  t.equal(h.states.includes('backoff'), true);
});

t.test('a watch that ends at once with 200 and no progress (nothing, or a bookmark at the same resourceVersion) does not spin', async (t) => {
  const h = await harness(t, (req, res) => {
    if (!isWatch(req)) return sendJson(res, 200, list('5', []));
    startWatch(res);
    res.end(req.n % 2 ? eventLine('BOOKMARK', bookmark('5')) : '');
  }, { backoffInitialMs: 50, backoffMaxMs: 200 });
  await h.r.waitForSync();
  await sleepMs(1500);
  const n = h.watches().length;
  t.ok(n >= 3, `it keeps trying (${n} watches)`);
  t.ok(n <= 25, `but does not hot-loop (${n} watches in 1.5 s)`);
  t.equal(h.lists().length, 1);
});

t.test('silence: no bytes for silenceTimeoutMs drops the watch and resumes it, headers or not', async (t) => {
  const closed: number[] = [];
  const h = await harness(t, async (req, res) => {
    if (!isWatch(req)) return sendJson(res, 200, list('5', [wf('a', '5')]));
    const n = h.watches().length;
    res.on('close', () => closed.push(n));
    if (n === 1) return; // never even sends headers
    startWatch(res);
    if (n === 2) return void res.write(eventLine('MODIFIED', wf('a', '6'))); // then half-open
    // n === 3: a healthy, quiet watch kept alive by bookmarks: must not be dropped.
    for (let i = 0; i < 10 && !res.destroyed; i++) {
      res.write(eventLine('BOOKMARK', bookmark(String(7 + i))));
      await sleepMs(100);
    }
  }, { silenceTimeoutMs: 300 });
  await waitUntil(() => h.watches().length === 3, 'the third watch', 10_000);
  t.same(h.watches().map((w) => w.query.get('resourceVersion')), ['5', '5', '6']);
  await waitUntil(() => h.r.lastSyncResourceVersion === '16', 'the bookmarks of the third watch');
  t.equal(h.r.counters.silences, 2);
  t.equal(h.watches().length, 3, 'the bookmarked watch was not dropped');
  t.same(closed.sort(), [1, 2], 'the silent watches were closed by the client');
  const gap = h.watches()[2]!.at - h.watches()[1]!.at;
  t.ok(gap < 5000, `reconnected ${Math.round(gap)} ms after the silent watch started (bound 5 s)`);
  t.match(h.logs(), /watch silent too long/);
});

t.test('malformed lines are logged with context and skipped; unknown types skipped', async (t) => {
  const long = 'X'.repeat(1000);
  const h = await harness(t, (req, res) => {
    if (!isWatch(req)) return sendJson(res, 200, list('5', []));
    startWatch(res);
    res.write('this is not json\n');
    res.write('{"type":"ADDED"}\n');
    res.write('{"type":"WEIRD","object":{"metadata":{"name":"q"}}}\n');
    res.write('{"type":"ADDED","object":{"metadata":{}}}\n');
    res.write('[1,2]\n');
    res.write(long + '\n');
    res.write(eventLine('ADDED', wf('x', '7')));
  });
  await waitUntil(() => h.r.lastSyncResourceVersion === '7', 'the valid event');
  t.equal(h.r.counters.malformedLines, 5);
  t.same(h.storeSummary(), { x: '7' });
  const logs = h.logs().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; line?: string; why?: string; type?: string });
  const malformed = logs.filter((l) => l.msg === 'malformed watch line skipped');
  t.equal(malformed.length, 5);
  t.equal(malformed[0]!.line, 'this is not json');
  t.match(malformed[0]!.why, /not JSON/);
  t.equal(malformed[4]!.line, 'X'.repeat(200), 'context is the first 200 characters');
  t.ok(logs.some((l) => l.msg === 'unknown watch event type skipped' && l.type === 'WEIRD'));
  t.equal(h.watches().length, 1, 'no reconnect for bad lines');
});

t.test('a line over maxLineBytes is dropped and logged; the watch goes on', async (t) => {
  const huge = eventLine('MODIFIED', wf('a', '7', { blob: 'z'.repeat(4 * 1024 * 1024) }));
  const h = await harness(t, async (req, res) => {
    if (!isWatch(req)) return sendJson(res, 200, list('5', [wf('a', '5')]));
    startWatch(res);
    res.write(eventLine('MODIFIED', wf('a', '6')));
    const buf = Buffer.from(huge);
    for (let i = 0; i < buf.length; i += 256 * 1024) res.write(buf.subarray(i, i + 256 * 1024));
    res.write(eventLine('ADDED', wf('b', '8')));
  }, { maxLineBytes: 64 * 1024 });
  await waitUntil(() => h.r.lastSyncResourceVersion === '8', 'the event after the huge line');
  t.equal(h.r.counters.oversizedLines, 1);
  t.same(h.storeSummary(), { a: '6', b: '8' });
  t.ok(h.r.counters.bytes > 4 * 1024 * 1024);
  t.equal(h.watches().length, 1);
  t.match(h.logs(), /watch event line too long/);
});

t.test('a non-410 ERROR event backs off and resumes from the same resourceVersion', async (t) => {
  const h = await harness(t, (req, res) => {
    if (!isWatch(req)) return sendJson(res, 200, list('5', []));
    startWatch(res);
    if (h.watches().length === 1) res.end(eventLine('ADDED', wf('a', '6')) + eventLine('ERROR', kubeStatus(500, 'InternalError', 'boom')));
  });
  await waitUntil(() => h.watches().length === 2, 'the second watch');
  t.equal(h.watches()[1]!.query.get('resourceVersion'), '6');
  t.equal(h.lists().length, 1);
  t.equal(h.r.counters.errors, 1);
});

t.test('a listener that throws does not break the reflector', async (t) => {
  const h = await harness(t, (req, res) => {
    if (!isWatch(req)) return sendJson(res, 200, list('5', [wf('a', '5')]));
    startWatch(res);
    res.write(eventLine('ADDED', wf('b', '6')));
  });
  h.r.on('added', () => {
    throw new Error('listener bug');
  });
  await waitUntil(() => h.r.store.size === 2, 'b');
  t.match(h.logs(), /a reflector listener threw/);
});

t.test('stop() and the signal option end everything; waitForSync rejects if stopped first', async (t) => {
  const srv = await startScriptServer((req, res) => {
    if (!isWatch(req)) return sendJson(res, 500, kubeStatus(500, 'InternalError', 'down'));
  });
  t.teardown(() => srv.close());
  const client = new KubeClient({ connection: { server: srv.url, insecureSkipTlsVerify: false, source: 'test' } });
  t.teardown(() => client.close());
  const ac = new AbortController();
  const r = new Reflector({ client, resource: WF, signal: ac.signal, backoffInitialMs: 10, backoffMaxMs: 20 }).start();
  const sync = r.waitForSync();
  await waitUntil(() => srv.requests.length >= 2, 'retries');
  ac.abort();
  await t.rejects(sync, { code: 'KUBE_REFLECTOR_STOPPED' });
  await r.stop();
  t.equal(r.state, 'stopped');
  const n = srv.requests.length;
  await sleepMs(100);
  t.equal(srv.requests.length, n, 'no request after stop');

  // A stop during an open watch closes it.
  let watchClosed = false;
  const srv2 = await startScriptServer((req, res) => {
    if (!isWatch(req)) return sendJson(res, 200, list('1', []));
    res.on('close', () => (watchClosed = true));
    startWatch(res);
  });
  t.teardown(() => srv2.close());
  const client2 = new KubeClient({ connection: { server: srv2.url, insecureSkipTlsVerify: false, source: 'test' } });
  t.teardown(() => client2.close());
  const r2 = new Reflector({ client: client2, resource: WF }).start();
  await r2.waitForSync();
  await waitUntil(() => r2.state === 'watching', 'watching');
  await r2.stop();
  await waitUntil(() => watchClosed, 'the server sees the watch closed');
  t.pass('stopped');
});

t.test('options are validated up front', async (t) => {
  const client = { list: async () => list('1', []), watch: async () => { throw new Error('x'); } } as unknown as KubeClient;
  t.throws(() => new Reflector({ client, resource: WF, pageSize: 0 }), { code: 'KUBE_REFLECTOR_OPTION_INVALID', message: /pageSize/ });
  t.throws(() => new Reflector({ client, resource: WF, silenceTimeoutMs: Number.NaN }), { code: 'KUBE_REFLECTOR_OPTION_INVALID' });
  t.throws(() => new Reflector({ client, resource: WF, backoffInitialMs: 100, backoffMaxMs: 10 }), { code: 'KUBE_REFLECTOR_OPTION_INVALID', message: /backoffMaxMs/ });
  t.throws(() => new Reflector({ client, resource: NODES, namespace: 'default' }), { message: /cluster-scoped/ });
  t.throws(() => new Reflector({ client, resource: WF, namespace: '' }), { message: /namespace/ });
  t.throws(() => new Reflector({ client: {} as KubeClient, resource: WF }), { message: /client/ });
  t.throws(() => new Reflector({ client, resource: WF, watchTimeoutMs: 10 }), { message: /watchTimeoutMs/ });
});

t.test('backoff starts again from BACKOFF_INITIAL after a healthy watch (a second outage does not inherit the first one\'s delays)', async (t) => {
  const h = await harness(t, async (req, res) => {
    if (!isWatch(req)) return sendJson(res, 200, list('5', [wf('a', '5')]));
    const n = h.watches().length;
    // Outage 1: watches 1-4 fail; watch 5 is served and moves the resourceVersion; outage 2: watches 6-7 fail.
    if (n <= 4 || n === 6 || n === 7) return sendJson(res, 503, kubeStatus(503, 'ServiceUnavailable', 'restarting'));
    startWatch(res);
    res.write(eventLine('MODIFIED', wf('a', String(10 + n))));
    if (n === 5) res.end();
  }, { backoffInitialMs: 40, backoffMaxMs: 5000 });
  await waitUntil(() => h.r.lastSyncResourceVersion === '18', 'recovery after the second outage', 20_000);
  const delays = h.logs().split('\n').filter((l) => l.includes('watch failed; resuming')).map((l) => (JSON.parse(l) as { delay: number }).delay);
  t.equal(delays.length, 6, 'six failed watches');
  // Ceilings 40, 80, 160, 320 in the first outage; after watch 5 the sequence starts again at 40.
  t.ok(delays[3]! >= 160, `the fourth delay of the first outage grew (${delays[3]} ms)`);
  t.ok(delays[4]! <= 40 && delays[5]! <= 80, `the second outage starts again from the initial delay (${delays[4]}, ${delays[5]} ms)`);
});
