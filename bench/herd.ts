/**
 * Herd: one job spanning N nodes. N node-side watchers (bench/herd-watchers.ts, one process,
 * src/kube as nnf-envd uses it, one connection each) track the job's workflow while its PreRun
 * is in progress; then PreRun finishes. Measured: the time from the write that finishes PreRun
 * until each watcher holds it (all N), requests per node, 429s, and the API server's CPU
 * seconds and peak RSS over the run. Variants: plain list+watch (nnf-envd today), lists with
 * resourceVersion=0 (served from the watch cache), start jitter, and a watch list (no list: one
 * watch with sendInitialEvents=true; kube-apiserver only; the simulator serves it too).
 *
 * Backends: the simulator (in this process: its CPU and RSS are this process's) and the real
 * kube-apiserver (test/apiserver/, a process of its own: /proc/<pid>).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Workflow } from '../src/domain/dws-types.js';
import { dwsResource } from '../src/kube/resource.js';
import { kubeconfigClient } from '../src/sim/api-controllers.js';
import { startSimulator } from '../src/sim/index.js';
import { startRealServer } from '../test/helpers/real-server.js';
import { benchDir, percentile } from './lib.js';

const WF = dwsResource('workflows', 'v1alpha7');
const NAME = 'fluxjob-424242';

export type HerdVariant = 'list+watch' | 'list rv=0' | 'jitter 1s' | 'watch-list';
export const HERD_VARIANTS: readonly HerdVariant[] = ['list+watch', 'list rv=0', 'jitter 1s', 'watch-list'];

export interface HerdRow {
  backend: 'sim' | 'real';
  variant: HerdVariant;
  n: number;
  /** All N listing and watching, from the first start. */
  syncedMs: number;
  /** PreRun finished (the write) -> watcher holds it: p50, p99, max over the N; undefined entries are failures. */
  deliveredP50Ms: number;
  deliveredP99Ms: number;
  deliveredMaxMs: number;
  failures: number;
  requestsPerNodeMax: number;
  requestsPerNodeMean: number;
  throttled: number;
  serverCpuSeconds: number;
  serverPeakRssMiB: number;
}

function inProgress(): Workflow {
  return {
    apiVersion: 'dataworkflowservices.github.io/v1alpha7',
    kind: 'Workflow',
    metadata: { name: NAME, namespace: 'default' },
    spec: { desiredState: 'PreRun', wlmID: 'flux', jobID: 'f2Z5', userID: 1050, groupID: 1050, hurry: false, forceReady: false, dwDirectives: ['#DW jobdw type=xfs capacity=10GB name=scratch'] },
    status: { state: 'PreRun', ready: false, status: 'DriverWait', message: '', env: { DW_WORKFLOW_NAME: NAME, DW_WORKFLOW_NAMESPACE: 'default' } },
  };
}
const FINISH = { status: { ready: true, status: 'Completed', env: { DW_WORKFLOW_NAME: NAME, DW_WORKFLOW_NAMESPACE: 'default', DW_JOB_scratch: '/mnt/nnf/herd-0' } } };

/** CPU seconds and RSS of a process: this one (the simulator) or another (/proc). */
interface ServerMeter {
  cpuSeconds(): number;
  rssMiB(): number;
}
const selfMeter: ServerMeter = {
  cpuSeconds: () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  },
  rssMiB: () => process.memoryUsage().rss / 2 ** 20,
};
function procMeter(pid: number): ServerMeter {
  const tick = 100; // USER_HZ on Linux
  return {
    cpuSeconds: () => {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) / tick;
    },
    rssMiB: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024,
  };
}

interface Api {
  kubeconfig: string;
  meter: ServerMeter;
  reset(): Promise<void>;
  finish(): Promise<void>;
  close(): Promise<void>;
}

async function simApi(dir: string): Promise<Api> {
  const sim = await startSimulator({ controllers: false, tls: true, bookmarkIntervalMs: 3_600_000 });
  const kubeconfig = join(dir, 'sim.kubeconfig');
  await sim.writeKubeconfig(kubeconfig);
  return {
    kubeconfig,
    meter: selfMeter,
    async reset() {
      if (sim.get(WF, 'default', NAME)) sim.delete(WF, 'default', NAME);
      sim.create(WF, inProgress());
    },
    async finish() {
      sim.patchMerge(WF, 'default', NAME, FINISH);
    },
    close: () => sim.close(),
  };
}

async function realApi(): Promise<Api> {
  const server = await startRealServer({});
  const client = await kubeconfigClient(server.kubeconfig);
  return {
    kubeconfig: server.saKubeconfig,
    meter: procMeter(server.pid),
    async reset() {
      await client.delete(WF, 'default', NAME).catch(() => undefined);
      for (let i = 0; i < 200 && (await client.tryGet(WF, 'default', NAME)); i++) await new Promise((r) => setTimeout(r, 20));
      await client.create(WF, 'default', inProgress());
    },
    async finish() {
      await client.patch(WF, 'default', NAME, FINISH, 'merge');
    },
    async close() {
      await client.close();
      await server.stop();
    },
  };
}

async function herdOnce(api: Api, backend: 'sim' | 'real', variant: HerdVariant, n: number): Promise<HerdRow> {
  await api.reset();
  const args = [join(benchDir, 'herd-watchers.js'), '--kubeconfig', api.kubeconfig, '--name', NAME, '--n', String(n), '--deadline', '60000'];
  if (variant === 'list rv=0') args.push('--list-rv0');
  if (variant === 'jitter 1s') args.push('--jitter', '1000');
  if (variant === 'watch-list') args.push('--watch-list');
  const cpu0 = api.meter.cpuSeconds();
  let peakRss = api.meter.rssMiB();
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, api.meter.rssMiB())), 50);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const r = await lines.next();
    if (r.done) throw new Error('the herd process ended early');
    return JSON.parse(r.value) as Record<string, unknown>;
  };
  try {
    const synced = await next();
    if (synced.ok !== true) throw new Error(`the herd did not sync: ${JSON.stringify(synced)}`);
    const finishedAt = performance.timeOrigin + performance.now();
    await api.finish();
    const done = (await next()) as { finishedAt: Array<number | null>; requests: number[]; throttled: number };
    const delays = done.finishedAt.filter((x): x is number => x !== null).map((x) => x - finishedAt).sort((a, b) => a - b);
    return {
      backend,
      variant,
      n,
      syncedMs: synced.ms as number,
      deliveredP50Ms: percentile(delays, 50),
      deliveredP99Ms: percentile(delays, 99),
      deliveredMaxMs: delays.at(-1) ?? NaN,
      failures: n - delays.length,
      requestsPerNodeMax: Math.max(...done.requests),
      requestsPerNodeMean: done.requests.reduce((a, b) => a + b, 0) / n,
      throttled: done.throttled,
      serverCpuSeconds: api.meter.cpuSeconds() - cpu0,
      serverPeakRssMiB: peakRss,
    };
  } finally {
    clearInterval(sampler);
    await new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve())));
  }
}

export async function runHerd(opts: { backends: Array<'sim' | 'real'>; sizes: number[]; variants?: readonly HerdVariant[]; log: (s: string) => void }): Promise<HerdRow[]> {
  const rows: HerdRow[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'nnf-env-herd-'));
  try {
    for (const backend of opts.backends) {
      const api = backend === 'sim' ? await simApi(dir) : await realApi();
      try {
        for (const variant of opts.variants ?? HERD_VARIANTS) {
          for (const n of opts.sizes) {
            const row = await herdOnce(api, backend, variant, n);
            rows.push(row);
            opts.log(`  ${backend} ${variant} N=${n}: synced ${row.syncedMs.toFixed(0)} ms; delivered p50 ${row.deliveredP50Ms.toFixed(1)} / p99 ${row.deliveredP99Ms.toFixed(1)} / max ${row.deliveredMaxMs.toFixed(1)} ms; ${row.failures} failures; requests/node max ${row.requestsPerNodeMax}; 429s ${row.throttled}; server ${row.serverCpuSeconds.toFixed(2)} CPU s, ${row.serverPeakRssMiB.toFixed(0)} MiB`);
          }
        }
      } finally {
        await api.close();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = (process.argv[2] ?? '100,500,2000').split(',').map(Number);
  const backends = (process.argv[3] ?? 'sim').split(',') as Array<'sim' | 'real'>;
  const rows = await runHerd({ backends, sizes, log: (s) => process.stderr.write(s + '\n') });
  process.stdout.write(JSON.stringify(rows, null, 1) + '\n');
}
