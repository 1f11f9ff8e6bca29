/**
 * Fan-out: what the API server spends on one compute node as the cluster grows. W workflows
 * (one Computes each, this node in the first), every workflow updated k times; three ways for
 * the node to learn about its job, each through its own byte-counting proxy:
 * - per-job:  nnf-envd's way: a watch of its own workflow (fieldSelector metadata.name=...).
 * - computes: DISCOVERY=computes: a watch of all Computes of the namespace, plus the per-job
 *             watch of each job found.
 * - naive:    a watch of every workflow of the namespace.
 * Bytes are counted server -> client at the TCP level (list, watch, HTTP framing): plain HTTP
 * on the simulator; on the real kube-apiserver (backend 'real') TLS, in a namespace of its own
 * per size, objects written through the API 16 at a time.
 */
import { KubeClient } from '../src/kube/client.js';
import { Reflector } from '../src/kube/reflector.js';
import { dwsResource, type KubeObject } from '../src/kube/resource.js';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import type { Backend } from '../test/helpers/cluster.js';
import { sharedRealServer } from '../test/helpers/real-server.js';
import type { Computes, Workflow } from '../src/domain/dws-types.js';
import { startCountingProxy, type CountingProxy } from './counting-proxy.js';
import { until } from './lib.js';
import { benchWorkflow, workflowName } from './workflows.js';

const WF = dwsResource('workflows', 'v1alpha7');
const CO = dwsResource('computes', 'v1alpha7');
const NODE = 'compute-0';

export interface FanoutRow {
  backend: Backend;
  workflows: number;
  updates: number;
  perJob: { bytes: number; connections: number };
  computes: { bytes: number; connections: number };
  naive: { bytes: number; connections: number };
  seconds: number;
}

export interface FanoutResult {
  backend: Backend;
  rows: FanoutRow[];
  /** Per node at 11,000 workflows (one job per node), from a least-squares line over the rows. */
  extrapolated: { workflows: number; perJob: number; computes: number; naive: number; clusterPerJob: number; clusterComputes: number; clusterNaive: number };
}

function computesOf(i: number): Computes {
  return { apiVersion: 'dataworkflowservices.github.io/v1alpha7', kind: 'Computes', metadata: { name: workflowName(i), namespace: 'default' }, data: [{ name: `compute-${i}` }, { name: `compute-${i}-b` }] } as Computes;
}

/** Where the objects live: the simulator (in-process writes) or a namespace of the real server (writes through the API). */
interface Target {
  port: number;
  scheme: 'http' | 'https';
  caPem?: string;
  token?: string;
  namespace: string;
  /** Creates every workflow and its Computes. */
  load(workflows: number): Promise<void>;
  /** One round of updates, workflow 0 last; answers the resourceVersion of that last write. */
  updateAll(workflows: number, u: number): Promise<string>;
  close(): Promise<void>;
}

const updatePatch = (u: number) => ({ status: { message: `update ${u}`, env: { DW_JOB_progress: `update-${u}` } } });

async function simTarget(workflows: number, updates: number): Promise<Target> {
  const sim: Simulator = await startSimulator({ controllers: false, historySize: workflows * (updates + 2) + 100, computeName: NODE, bookmarkIntervalMs: 3_600_000 });
  return {
    port: Number(new URL(sim.url).port),
    scheme: 'http',
    namespace: 'default',
    async load(n) {
      for (let i = 0; i < n; i++) {
        sim.create(WF, benchWorkflow(i, 0, { ready: false, token: false }));
        sim.create(CO, computesOf(i));
      }
    },
    async updateAll(n, u) {
      for (let i = n - 1; i >= 0; i--) {
        sim.patchMerge(WF, 'default', workflowName(i), updatePatch(u));
        if (i % 500 === 0) await new Promise((r) => setImmediate(r));
      }
      return sim.currentResourceVersion();
    },
    close: () => sim.close(),
  };
}

/** Runs `fn` over 0..n-1, `width` at a time. */
async function pool(n: number, width: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await fn(next++);
  }));
}

async function realTarget(workflows: number): Promise<Target> {
  const server = await sharedRealServer();
  const admin = new KubeClient({ connection: { server: server.url, caPem: server.caPem, token: server.adminToken, insecureSkipTlsVerify: false, source: 'bench' } });
  const namespace = `fanout-${workflows}-${Date.now().toString(36)}`;
  await admin.create({ group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false }, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  const inNs = <T extends KubeObject>(o: T): T => {
    const { uid: _u, resourceVersion: _r, creationTimestamp: _c, generation: _g, ...metadata } = o.metadata as KubeObject['metadata'] & { creationTimestamp?: string; generation?: number };
    return { ...o, metadata: { ...metadata, namespace } };
  };
  return {
    port: server.port,
    scheme: 'https',
    caPem: server.caPem,
    token: server.adminToken,
    namespace,
    async load(n) {
      await pool(n, 16, async (i) => {
        await admin.create(WF, namespace, inNs(benchWorkflow(i, 0, { ready: false, token: false })));
        await admin.create(CO, namespace, inNs(computesOf(i)));
      });
    },
    async updateAll(n, u) {
      await pool(n - 1, 16, (k) => admin.patch(WF, namespace, workflowName(n - 1 - k), updatePatch(u), 'merge'));
      const own = await admin.patch<Workflow>(WF, namespace, workflowName(0), updatePatch(u), 'merge');
      return own.metadata.resourceVersion!;
    },
    async close() {
      // The namespace stays (no namespace controller runs beside the test server); the server dies with the process.
      await admin.close();
    },
  };
}

async function oneSize(backend: Backend, workflows: number, updates: number): Promise<FanoutRow> {
  const t0 = performance.now();
  const target = backend === 'sim' ? await simTarget(workflows, updates) : await realTarget(workflows);
  const proxies: CountingProxy[] = [];
  const clients: KubeClient[] = [];
  const reflectors: Reflector<KubeObject>[] = [];
  try {
    await target.load(workflows);
    const port = target.port;
    const namespace = target.namespace;
    const connect = (proxy: CountingProxy) =>
      new KubeClient({ connection: { server: proxy.url, ...(target.caPem ? { caPem: target.caPem } : {}), ...(target.token ? { token: target.token } : {}), insecureSkipTlsVerify: false, source: 'bench' } });
    const watchThrough = async <T extends KubeObject>(resource: typeof WF, fieldSelector?: string): Promise<{ r: Reflector<T>; proxy: CountingProxy }> => {
      const proxy = await startCountingProxy({ host: '127.0.0.1', port }, { scheme: target.scheme });
      proxies.push(proxy);
      const client = connect(proxy);
      clients.push(client);
      const r = new Reflector<T>({ client, resource, namespace, ...(fieldSelector ? { fieldSelector } : {}) });
      reflectors.push(r as unknown as Reflector<KubeObject>);
      r.start();
      await r.waitForSync();
      return { r, proxy };
    };
    const own = workflowName(0);
    const perJob = await watchThrough<Workflow>(WF, `metadata.name=${own}`);
    // computes mode: the Computes watch finds the job; then the same per-job watch (own proxy).
    const comp = await watchThrough<Computes>(CO);
    const compJobProxy = await startCountingProxy({ host: '127.0.0.1', port }, { scheme: target.scheme });
    proxies.push(compJobProxy);
    const compClient = connect(compJobProxy);
    clients.push(compClient);
    if (!comp.r.store.list().some((c) => (c.data ?? []).some((d) => d.name === NODE))) throw new Error('the Computes watch did not find this node');
    const compJob = new Reflector<Workflow>({ client: compClient, resource: WF, namespace, fieldSelector: `metadata.name=${own}` });
    reflectors.push(compJob as unknown as Reflector<KubeObject>);
    compJob.start();
    await compJob.waitForSync();
    const naive = await watchThrough<Workflow>(WF);
    const waitWatching = () => until(`watches started (${reflectors.map((r) => r.state).join(',')})`, () => reflectors.every((r) => r.state === 'watching'), 10_000, 5);
    await waitWatching();

    // Every workflow updated k times; our own last, so its final update marks the end.
    let last = '';
    for (let u = 1; u <= updates; u++) last = await target.updateAll(workflows, u);
    await until('every watch caught up', () => perJob.r.lastSyncResourceVersion === last && compJob.lastSyncResourceVersion === last && naive.r.lastSyncResourceVersion === last, 120_000, 10);
    const conns = (p: CountingProxy) => p.stats.peakOpen;
    return {
      backend,
      workflows,
      updates,
      perJob: { bytes: perJob.proxy.stats.bytesDown, connections: conns(perJob.proxy) },
      computes: { bytes: comp.proxy.stats.bytesDown + compJobProxy.stats.bytesDown, connections: conns(comp.proxy) + conns(compJobProxy) },
      naive: { bytes: naive.proxy.stats.bytesDown, connections: conns(naive.proxy) },
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await Promise.all(reflectors.map((r) => r.stop()));
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(proxies.map((p) => p.close()));
    await target.close();
  }
}

/** Least squares y = a + b x. */
function fit(xs: number[], ys: number[]): (x: number) => number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  const b = sxx === 0 ? 0 : sxy / sxx;
  return (x) => my + b * (x - mx);
}

export async function runFanout(opts: { backend?: Backend; sizes: number[]; updates: number; log: (s: string) => void }): Promise<FanoutResult> {
  const backend = opts.backend ?? 'sim';
  const rows: FanoutRow[] = [];
  for (const w of opts.sizes) {
    const row = await oneSize(backend, w, opts.updates);
    rows.push(row);
    opts.log(`  ${backend}: ${w} workflows x ${opts.updates} updates: per-job ${row.perJob.bytes} B, computes ${row.computes.bytes} B, naive ${row.naive.bytes} B (${row.seconds.toFixed(1)} s)`);
  }
  const W = 11_000;
  const xs = rows.map((r) => r.workflows);
  const perJob = fit(xs, rows.map((r) => r.perJob.bytes))(W);
  const computes = fit(xs, rows.map((r) => r.computes.bytes))(W);
  const naive = fit(xs, rows.map((r) => r.naive.bytes))(W);
  return { backend, rows, extrapolated: { workflows: W, perJob, computes, naive, clusterPerJob: perJob * W, clusterComputes: computes * W, clusterNaive: naive * W } };
}
