/**
 * Watch throughput: the same pre-generated stream of Workflow updates, consumed by nnf-env's
 * Reflector and by @kubernetes/client-node's informer, each in its own process, alternately,
 * `rounds` times each. The median round of each is reported, and the ratios.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeKubeconfigFile } from '../src/sim/kubeconfig.js';
import { generateCertificates } from '../src/sim/tls.js';
import { benchDir, runNodeChild } from './lib.js';
import { startStreamServer } from './stream-server.js';
import { benchWorkflow } from './workflows.js';

export interface ConsumerResult {
  impl: string;
  events: number;
  expected: number;
  objects: number;
  seconds: number;
  eventsPerSecond: number;
  watchCpuSeconds: number;
  processCpuSeconds: number;
  maxRssMiB: number;
}

export interface WatchThroughputResult {
  events: number;
  objects: number;
  bytesPerEvent: number;
  payloadMiB: number;
  rounds: number;
  nnf: ConsumerResult;
  peer: ConsumerResult;
  all: { nnf: ConsumerResult[]; peer: ConsumerResult[] };
  throughputRatio: number;
  cpuPerEventRatio: number;
  rssRatio: number;
}

function median(rs: ConsumerResult[]): ConsumerResult {
  const s = [...rs].sort((a, b) => a.eventsPerSecond - b.eventsPerSecond);
  return s[Math.floor((s.length - 1) / 2)]!;
}

export async function runWatchThroughput(opts: { events: number; objects: number; rounds: number; log: (s: string) => void }): Promise<WatchThroughputResult> {
  const { events, objects } = opts;
  const items = Array.from({ length: objects }, (_, i) => benchWorkflow(i, 0, { resourceVersion: String(1000 - objects + i) }));
  const lines: Buffer[] = [];
  for (let k = 0; k < events; k++) {
    const obj = benchWorkflow(k % objects, Math.floor(k / objects) + 1, { resourceVersion: String(1001 + k), ready: k % 3 !== 0 });
    lines.push(Buffer.from(JSON.stringify({ type: 'MODIFIED', object: obj }) + '\n'));
  }
  const payload = Buffer.concat(lines);
  lines.length = 0;
  const lastRV = String(1000 + events);
  const dir = await mkdtemp(join(tmpdir(), 'nnf-env-bench-watch-'));
  const certs = await generateCertificates(['127.0.0.1']);
  const all: { nnf: ConsumerResult[]; peer: ConsumerResult[] } = { nnf: [], peer: [] };
  try {
    for (let round = 0; round < opts.rounds; round++) {
      for (const impl of round % 2 === 0 ? (['nnf', 'peer'] as const) : (['peer', 'nnf'] as const)) {
        // A fresh server per run: the first watch of each gets the whole stream.
        const srv = await startStreamServer({
          path: '/apis/dataworkflowservices.github.io/v1alpha7/namespaces/default/workflows',
          listKind: 'WorkflowList',
          apiVersion: 'dataworkflowservices.github.io/v1alpha7',
          items,
          listResourceVersion: '1000',
          payload,
          tls: certs,
        });
        const kubeconfig = join(dir, `kubeconfig-${impl}-${round}`);
        await writeKubeconfigFile(kubeconfig, { server: srv.url, caPem: certs.caPem });
        try {
          const { result } = await runNodeChild<ConsumerResult>(join(benchDir, 'watch-consumer.js'), [impl, kubeconfig, 'default', String(events), lastRV], { timeoutMs: 300_000 });
          if (result.events !== events) throw new Error(`${impl} saw ${result.events} events, expected ${events}`);
          if (result.objects !== objects) throw new Error(`${impl} holds ${result.objects} objects, expected ${objects}`);
          all[impl].push(result);
          opts.log(`  round ${round + 1} ${impl}: ${Math.round(result.eventsPerSecond)} events/s, watch CPU ${result.watchCpuSeconds.toFixed(2)} s, peak RSS ${result.maxRssMiB.toFixed(0)} MiB`);
        } finally {
          await srv.close();
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const nnf = median(all.nnf);
  const peer = median(all.peer);
  return {
    events,
    objects,
    bytesPerEvent: payload.length / events,
    payloadMiB: payload.length / 2 ** 20,
    rounds: opts.rounds,
    nnf,
    peer,
    all,
    throughputRatio: nnf.eventsPerSecond / peer.eventsPerSecond,
    cpuPerEventRatio: nnf.watchCpuSeconds / nnf.events / (peer.watchCpuSeconds / peer.events),
    rssRatio: nnf.maxRssMiB / peer.maxRssMiB,
  };
}
