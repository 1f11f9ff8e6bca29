/**
 * Fan-out: what the API server spends on one compute node as the cluster grows. W workflows
 * (one Computes each, this node in the first), every workflow updated k times; three ways for
 * the node to learn about its job, each through its own byte-counting proxy:
 * - per-job:  nnf-envd's way: a watch of its own workflow (fieldSelector metadata.name=...).
 * - computes: DISCOVERY=computes: a watch of all Computes of the namespace, plus the per-job
 *             watch of each job found.
 * - naive:    a watch of every workflow of the namespace.
 * Bytes are counted server -> client at the TCP level (list, watch, HTTP framing), plain HTTP.
 */
import { KubeClient } from '../src/kube/client.js';
import { Reflector } from '../src/kube/reflector.js';
import { dwsResource, type KubeObject } from '../src/kube/resource.js';
import { startSimulator } from '../src/sim/index.js';
import type { Computes, Workflow } from '../src/domain/dws-types.js';
import { startCountingProxy, type CountingProxy } from './counting-proxy.js';
import { until } from './lib.js';
import { benchWorkflow, workflowName } from './workflows.js';

const WF = dwsResource('workflows', 'v1alpha7');
const CO = dwsResource('computes', 'v1alpha7');
const NODE = 'compute-0';

export interface FanoutRow {
  workflows: number;
  updates: number;
  perJob: { bytes: number; connections: number };
  computes: { bytes: number; connections: number };
  naive: { bytes: number; connections: number };
  seconds: number;
}

export interface FanoutResult {
  rows: FanoutRow[];
  /** Per node at 11,000 workflows (one job per node), from a least-squares line over the rows. */
  extrapolated: { workflows: number; perJob: number; computes: number; naive: number; clusterPerJob: number; clusterComputes: number; clusterNaive: number };
}

function computesOf(i: number): Computes {
  return { apiVersion: 'dataworkflowservices.github.io/v1alpha7', kind: 'Computes', metadata: { name: workflowName(i), namespace: 'default' }, data: [{ name: `compute-${i}` }, { name: `compute-${i}-b` }] } as Computes;
}

async function oneSize(workflows: number, updates: number): Promise<FanoutRow> {
  const t0 = performance.now();
  const sim = await startSimulator({ controllers: false, historySize: workflows * (updates + 2) + 100, computeName: NODE, bookmarkIntervalMs: 3_600_000 });
  const proxies: CountingProxy[] = [];
  const clients: KubeClient[] = [];
  const reflectors: Reflector<KubeObject>[] = [];
  try {
    for (let i = 0; i < workflows; i++) {
      sim.create(WF, benchWorkflow(i, 0, { ready: false, token: false }));
      sim.create(CO, computesOf(i));
    }
    const port = Number(new URL(sim.url).port);
    const watchThrough = async <T extends KubeObject>(resource: typeof WF, fieldSelector?: string): Promise<{ r: Reflector<T>; proxy: CountingProxy }> => {
      const proxy = await startCountingProxy({ host: '127.0.0.1', port });
      proxies.push(proxy);
      const client = new KubeClient({ connection: { server: proxy.url, insecureSkipTlsVerify: false, source: 'bench' } });
      clients.push(client);
      const r = new Reflector<T>({ client, resource, namespace: 'default', ...(fieldSelector ? { fieldSelector } : {}) });
      reflectors.push(r as unknown as Reflector<KubeObject>);
      r.start();
      await r.waitForSync();
      return { r, proxy };
    };
    const own = workflowName(0);
    const perJob = await watchThrough<Workflow>(WF, `metadata.name=${own}`);
    // computes mode: the Computes watch finds the job; then the same per-job watch (own proxy).
    const comp = await watchThrough<Computes>(CO);
    const compJobProxy = await startCountingProxy({ host: '127.0.0.1', port });
    proxies.push(compJobProxy);
    const compClient = new KubeClient({ connection: { server: compJobProxy.url, insecureSkipTlsVerify: false, source: 'bench' } });
    clients.push(compClient);
    if (!comp.r.store.list().some((c) => (c.data ?? []).some((d) => d.name === NODE))) throw new Error('the Computes watch did not find this node');
    const compJob = new Reflector<Workflow>({ client: compClient, resource: WF, namespace: 'default', fieldSelector: `metadata.name=${own}` });
    reflectors.push(compJob as unknown as Reflector<KubeObject>);
    compJob.start();
    await compJob.waitForSync();
    const naive = await watchThrough<Workflow>(WF);
    const waitWatching = () => until(`watches started (${reflectors.map((r) => r.state).join(',')})`, () => reflectors.every((r) => r.state === 'watching'), 10_000, 5);
    await waitWatching();

    // Every workflow updated k times; our own last, so its final update marks the end.
    for (let u = 1; u <= updates; u++) {
      for (let i = workflows - 1; i >= 0; i--) {
        sim.patchMerge(WF, 'default', workflowName(i), { status: { message: `update ${u}`, env: { DW_JOB_progress: `update-${u}` } } });
        if (i % 500 === 0) await new Promise((r) => setImmediate(r));
      }
    }
    const last = sim.currentResourceVersion();
    await until('every watch caught up', () => perJob.r.lastSyncResourceVersion === last && compJob.lastSyncResourceVersion === last && naive.r.lastSyncResourceVersion === last, 120_000, 10);
    const conns = (p: CountingProxy) => p.stats.peakOpen;
    return {
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
    await sim.close();
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

export async function runFanout(opts: { sizes: number[]; updates: number; log: (s: string) => void }): Promise<FanoutResult> {
  const rows: FanoutRow[] = [];
  for (const w of opts.sizes) {
    const row = await oneSize(w, opts.updates);
    rows.push(row);
    opts.log(`  ${w} workflows x ${opts.updates} updates: per-job ${row.perJob.bytes} B, computes ${row.computes.bytes} B, naive ${row.naive.bytes} B (${row.seconds.toFixed(1)} s)`);
  }
  const W = 11_000;
  const xs = rows.map((r) => r.workflows);
  const perJob = fit(xs, rows.map((r) => r.perJob.bytes))(W);
  const computes = fit(xs, rows.map((r) => r.computes.bytes))(W);
  const naive = fit(xs, rows.map((r) => r.naive.bytes))(W);
  return { rows, extrapolated: { workflows: W, perJob, computes, naive, clusterPerJob: perJob * W, clusterComputes: computes * W, clusterNaive: naive * W } };
}
