/**
 * The informer over a real HTTP watch (scripted server): handlers hear of each change after the
 * store holds it, a handler that throws or blocks does not hold up the stream, and an injected
 * store is the one the reflector writes.
 */
import t from 'tap';
import { KubeClient } from '../../src/kube/client.js';
import { Informer, type InformerNotification } from '../../src/kube/informer.js';
import { dwsResource, type KubeObject } from '../../src/kube/resource.js';
import { ObjectStore } from '../../src/kube/store.js';
import { eventLine, sendJson, startScriptServer, startWatch, waitUntil } from './script-server.js';

const WF = dwsResource('workflows', 'v1alpha7');
const API = 'dataworkflowservices.github.io/v1alpha7';
const wf = (name: string, rv: string): KubeObject => ({ apiVersion: API, kind: 'Workflow', metadata: { name, namespace: 'default', resourceVersion: rv, uid: `uid-${name}` } });

t.test('notifications come from a buffer, after the store has the object; a throwing handler is contained', async (t) => {
  const EVENTS = 200;
  const srv = await startScriptServer((req, res) => {
    if (req.query.get('watch') !== '1') return sendJson(res, 200, { apiVersion: API, kind: 'WorkflowList', metadata: { resourceVersion: '1' }, items: [wf('a', '1')] });
    if (req.query.get('resourceVersion') !== '1') return; // later watches hang until the test ends
    startWatch(res);
    // Every event in one chunk: the reflector parses them all in one turn.
    let body = '';
    for (let i = 0; i < EVENTS; i++) body += eventLine('MODIFIED', wf('a', String(2 + i)));
    res.write(body);
  });
  const client = new KubeClient({ connection: { server: srv.url, insecureSkipTlsVerify: false, source: 'test' } });
  const store = new ObjectStore<KubeObject>();
  const inf = new Informer<KubeObject>({ client, resource: WF, namespace: 'default', store, backoffInitialMs: 20, backoffMaxMs: 100 });
  t.teardown(async () => {
    await inf.stop();
    await client.close();
    await srv.close();
  });
  t.equal(inf.store, store, 'the injected store is the informer\'s');

  const seen: InformerNotification<KubeObject>[] = [];
  let storeRvAtFirstUpdate: string | undefined;
  let calls = 0;
  inf.addHandler(() => {
    calls++;
    throw new Error('a buggy handler');
  });
  inf.addHandler((n) => {
    if (n.type === 'updated' && storeRvAtFirstUpdate === undefined) storeRvAtFirstUpdate = store.get('default/a')?.metadata.resourceVersion;
    seen.push(n);
  });
  inf.start();
  await waitUntil(() => seen.filter((n) => n.type === 'updated').length === EVENTS, `${EVENTS} updates heard`);
  t.equal(storeRvAtFirstUpdate, String(EVENTS + 1), 'the whole chunk was applied before any handler ran: handlers never sat inside the line loop');
  t.same(seen.filter((n) => n.type === 'added' || n.type === 'synced').map((n) => n.type), ['added', 'synced']);
  t.ok(calls >= EVENTS + 2, 'the throwing handler was called for every notification too');
  t.equal(store.get('default/a')?.metadata.resourceVersion, String(EVENTS + 1));
});
