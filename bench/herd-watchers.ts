/**
 * The herd's load generator (a child of bench/herd.ts): N node-side watchers of one workflow,
 * each as nnf-envd watches a job: its own KubeClient (one connection), a Reflector with
 * fieldSelector metadata.name=<workflow>, list then watch. Reports one JSON line when all have
 * synced, then one when all saw PreRun finished (or the deadline passed).
 *
 *   node herd-watchers.js --kubeconfig FILE --name WORKFLOW --n N [--jitter MS] [--list-rv0] [--watch-list] [--deadline MS]
 *
 * --watch-list: no list; one watch with sendInitialEvents=true (kube-apiserver's WatchList),
 * synced at the bookmark that ends the initial events: one request per node.
 */
import { setMaxListeners } from 'node:events';
import { parseArgs } from 'node:util';
import { KubeClient, type ListOptions, type WatchOptions } from '../src/kube/client.js';
import { resolveConnection } from '../src/kube/connection.js';
import { KubeApiError } from '../src/kube/errors.js';
import { Reflector } from '../src/kube/reflector.js';
import { dwsResource, type KubeObject, type ResourceType } from '../src/kube/resource.js';
import { preRunFinished } from '../src/domain/workflow-assessment.js';
import type { Workflow } from '../src/domain/dws-types.js';

const { values } = parseArgs({
  options: {
    kubeconfig: { type: 'string' },
    name: { type: 'string' },
    n: { type: 'string' },
    jitter: { type: 'string', default: '0' },
    'list-rv0': { type: 'boolean', default: false },
    'watch-list': { type: 'boolean', default: false },
    deadline: { type: 'string', default: '60000' },
  },
});
const n = Number(values.n);
const jitter = Number(values.jitter);
const deadline = Number(values.deadline);
if (!values.kubeconfig || !values.name || !(n > 0)) throw new Error('usage: herd-watchers --kubeconfig FILE --name WORKFLOW --n N');

const WF = dwsResource('workflows', 'v1alpha7');
const now = () => performance.timeOrigin + performance.now();
const print = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

const connection = await resolveConnection({
  KUBE_CONNECTION: 'kubeconfig', KUBECONFIG: values.kubeconfig, KUBE_CONTEXT: '', KUBE_SERVER: '', KUBE_TOKEN_FILE: '', KUBE_CA_FILE: '', KUBE_TLS_SERVER_NAME: '', KUBE_INSECURE_SKIP_TLS_VERIFY: false,
});

interface Watcher {
  client: KubeClient;
  /** Reflector variants: listing and watching. */
  reflector: Reflector<Workflow> | undefined;
  /** Watch-list variant: the initial events ended. */
  synced: boolean;
  requests: number;
  throttled: number;
  finishedAt: number | undefined;
}

const watchers: Watcher[] = [];
const abort = new AbortController();
// One listener per watcher on the shared signal.
setMaxListeners(0, abort.signal);

/** One watch with sendInitialEvents: ADDED for what exists, the initial-events-end bookmark, then changes. */
async function watchList(w: Watcher): Promise<void> {
  w.requests++;
  let stream;
  try {
    stream = await w.client.watch(WF, { namespace: 'default', fieldSelector: `metadata.name=${values.name}`, resourceVersion: '', sendInitialEvents: true, allowWatchBookmarks: true, timeoutSeconds: 600, signal: abort.signal });
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 429) w.throttled++;
    process.stderr.write(`watch-list failed: ${(err as Error).message}\n`);
    return;
  }
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for await (const chunk of stream) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const ev = JSON.parse(line) as { type: string; object: Workflow };
        if (ev.type === 'BOOKMARK') {
          if (ev.object.metadata.annotations?.['k8s.io/initial-events-end'] === 'true') w.synced = true;
        } else if ((ev.type === 'ADDED' || ev.type === 'MODIFIED') && w.finishedAt === undefined && preRunFinished(ev.object)) {
          w.finishedAt = now();
        }
      }
    }
  } catch {
    // aborted at the end
  }
}
const t0 = now();
for (let i = 0; i < n; i++) {
  const client = new KubeClient({ connection, userAgent: 'nnf-env-herd' });
  const w: Watcher = { client, reflector: undefined, synced: false, requests: 0, throttled: 0, finishedAt: undefined };
  if (values['watch-list']) {
    watchers.push(w);
    const start = () => void watchList(w);
    if (jitter > 0) setTimeout(start, Math.random() * jitter);
    else start();
    continue;
  }
  // Counts what each node asks of the server; optionally lists from the watch cache (resourceVersion=0).
  const counted = {
    list: async <T extends KubeObject>(rt: ResourceType, o: ListOptions = {}) => {
      w.requests++;
      try {
        return await client.list<T>(rt, values['list-rv0'] && !o.continue ? { ...o, resourceVersion: '0' } : o);
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 429) w.throttled++;
        throw err;
      }
    },
    watch: async (rt: ResourceType, o: WatchOptions) => {
      w.requests++;
      try {
        return await client.watch(rt, o);
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 429) w.throttled++;
        throw err;
      }
    },
  };
  const reflector = new Reflector<Workflow>({ client: counted, resource: WF, namespace: 'default', fieldSelector: `metadata.name=${values.name}`, backoffInitialMs: 100, backoffMaxMs: 5000 });
  const check = (o: Workflow) => {
    if (w.finishedAt === undefined && preRunFinished(o)) w.finishedAt = now();
  };
  reflector.on('added', check);
  reflector.on('updated', check);
  w.reflector = reflector;
  watchers.push(w);
  const start = () => reflector.start();
  if (jitter > 0) setTimeout(start, Math.random() * jitter);
  else start();
}

const until = async (cond: () => boolean, ms: number) => {
  const end = now() + ms;
  while (!cond() && now() < end) await new Promise((r) => setTimeout(r, 2));
  return cond();
};
const allWatching = await until(() => watchers.every((w) => (w.reflector ? w.reflector.state === 'watching' : w.synced)), deadline);
print({ event: 'synced', ok: allWatching, ms: now() - t0, requests: watchers.reduce((a, w) => a + w.requests, 0), throttled: watchers.reduce((a, w) => a + w.throttled, 0) });
await until(() => watchers.every((w) => w.finishedAt !== undefined), deadline);
print({
  event: 'done',
  finishedAt: watchers.map((w) => w.finishedAt ?? null),
  requests: watchers.map((w) => w.requests),
  throttled: watchers.reduce((a, w) => a + w.throttled, 0),
});
abort.abort();
await Promise.all(watchers.map((w) => w.reflector?.stop()));
await Promise.all(watchers.map((w) => w.client.close()));
