/**
 * One consumer of the watch throughput benchmark, in its own process so that its CPU and peak
 * RSS are its own:
 *   node dist/bench/watch-consumer.js <nnf|peer> <kubeconfig> <namespace> <events> <lastResourceVersion>
 * nnf:  nnf-env's Reflector on nnf-env's KubeClient (the daemon's path).
 * peer: @kubernetes/client-node's makeInformer (a ListWatch) with a KubeConfig loaded from the
 *       same kubeconfig file, listing through CustomObjectsApi.
 * Prints one JSON line: events seen, watch-phase seconds and CPU seconds, process CPU, peak RSS.
 */
import { selfUsage } from './lib.js';

const [impl, kubeconfig, namespace, eventsArg, lastRV] = process.argv.slice(2);
if (!impl || !kubeconfig || !namespace || !eventsArg || !lastRV) {
  process.stderr.write('usage: watch-consumer <nnf|peer> <kubeconfig> <namespace> <events> <lastResourceVersion>\n');
  process.exit(2);
}
const expected = Number(eventsArg);
const GROUP = 'dataworkflowservices.github.io';
const VERSION = 'v1alpha7';

interface Obj {
  metadata?: { resourceVersion?: string; name?: string };
}

let events = 0;
let firstAt = 0;
let cpuAtFirst: NodeJS.CpuUsage = { user: 0, system: 0 };
let resolveDone: () => void = () => undefined;
const done = new Promise<void>((r) => (resolveDone = r));
let listed = 0;
let finished = false;

function onEvent(o: Obj): void {
  if (listed === 0) return; // list items, not watch events
  if (events === 0) {
    firstAt = performance.now();
    cpuAtFirst = process.cpuUsage();
  }
  events++;
  if (o.metadata?.resourceVersion === lastRV) resolveDone();
}

const startCpu = process.cpuUsage();
let stop: () => Promise<void>;
let storeSize: () => number;

if (impl === 'nnf') {
  const { resolveConnection } = await import('../src/kube/connection.js');
  const { KubeClient } = await import('../src/kube/client.js');
  const { Reflector } = await import('../src/kube/reflector.js');
  const { dwsResource } = await import('../src/kube/resource.js');
  const connection = await resolveConnection(
    { KUBE_CONNECTION: 'kubeconfig', KUBECONFIG: kubeconfig, KUBE_SERVER: '', KUBE_TOKEN_FILE: '', KUBE_CA_FILE: '', KUBE_TLS_SERVER_NAME: '', KUBE_INSECURE_SKIP_TLS_VERIFY: false, KUBE_CONTEXT: '' },
    {},
  );
  const client = new KubeClient({ connection });
  const r = new Reflector<Obj & import('../src/kube/resource.js').KubeObject>({ client, resource: dwsResource('workflows', VERSION), namespace });
  r.on('synced', () => (listed = 1));
  r.on('added', onEvent);
  r.on('updated', onEvent);
  r.start();
  stop = async () => {
    await r.stop();
    await client.close();
  };
  storeSize = () => r.store.list().length;
} else if (impl === 'peer') {
  const k8s = await import('@kubernetes/client-node');
  type KObj = import('@kubernetes/client-node').KubernetesObject;
  type KList = import('@kubernetes/client-node').KubernetesListObject<KObj>;
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const path = `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/workflows`;
  const informer = k8s.makeInformer<KObj>(kc, path, async () => {
    const list = (await api.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: 'workflows' })) as KList;
    // The informer applies the list after this resolves; the next callbacks are watch events.
    setImmediate(() => (listed = 1));
    return list;
  });
  informer.on('add', onEvent);
  informer.on('update', onEvent);
  informer.on('error', (err: unknown) => {
    if (finished) return; // stop() aborts the watch, which the informer reports as an error
    // The informer does not restart after a non-410 error: the run is void.
    process.stderr.write(`informer error: ${String(err)}\n`);
    process.exit(4);
  });
  await informer.start();
  stop = async () => {
    await informer.stop();
  };
  storeSize = () => informer.list().length;
} else {
  process.stderr.write(`unknown consumer ${impl}\n`);
  process.exit(2);
}

const timeout = setTimeout(() => {
  process.stderr.write(`timed out with ${events} of ${expected} events\n`);
  process.exit(3);
}, 240_000);
await done;
const lastAt = performance.now();
finished = true;
const watchCpu = process.cpuUsage(cpuAtFirst);
clearTimeout(timeout);
const seconds = (lastAt - firstAt) / 1000;
const total = selfUsage(startCpu);
const result = {
  impl,
  events,
  expected,
  objects: storeSize(),
  seconds,
  eventsPerSecond: events / seconds,
  watchCpuSeconds: (watchCpu.user + watchCpu.system) / 1e6,
  processCpuSeconds: total.cpuSeconds,
  maxRssMiB: total.maxRssMiB,
};
process.stdout.write(JSON.stringify(result) + '\n');
await Promise.race([stop(), new Promise((r) => setTimeout(r, 2000))]);
process.exit(0);
