/**
 * Daemon footprint: RSS and CPU of nnf-envd (its own process, read from /proc) when idle, with
 * N tracked jobs still waiting (one watch each), and with the same N jobs delivered.
 */
import { trackJob } from '../src/api/client.js';
import { dwsResource } from '../src/kube/resource.js';
import { procUsage, sleep, until } from './lib.js';
import { startRig } from './daemon-rig.js';
import { benchWorkflow, jobIdOf, workflowName } from './workflows.js';
import { getStatus } from '../src/api/client.js';

const WF = dwsResource('workflows', 'v1alpha7');

export interface FootprintSample {
  rssMiB: number;
  /** CPU seconds per wall second over the window (1.0 = one core busy). */
  cpuShare: number;
  windowSeconds: number;
}

export interface FootprintResult {
  jobs: number;
  idle: FootprintSample;
  waiting: FootprintSample & { watches: number };
  delivered: FootprintSample;
  bookmarkIntervalMs: number;
}

async function sample(pid: number, seconds: number): Promise<FootprintSample> {
  const a = procUsage(pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const b = procUsage(pid);
  const wall = (performance.now() - t0) / 1000;
  return { rssMiB: b.rssMiB, cpuShare: (b.cpuSeconds - a.cpuSeconds) / wall, windowSeconds: wall };
}

export async function runFootprint(opts: { jobs: number; windowSeconds: number; log: (s: string) => void }): Promise<FootprintResult> {
  const bookmarkIntervalMs = 60_000;
  // Watches as long as kube-apiserver's default bounds them (no client-side churn in the window).
  const rig = await startRig({ sim: { bookmarkIntervalMs, historySize: 50_000 } });
  try {
    const pid = rig.daemon.pid!;
    await sleep(2000); // past start-up work (discovery, first lists, GC)
    const idle = await sample(pid, opts.windowSeconds);
    opts.log(`  idle: RSS ${idle.rssMiB.toFixed(1)} MiB, CPU ${(idle.cpuShare * 100).toFixed(2)} %`);
    const idx = Array.from({ length: opts.jobs }, (_, k) => 200_000 + k);
    for (const i of idx) rig.h.sim.create(WF, benchWorkflow(i, 1, { ready: false, token: false }));
    for (let k = 0; k < idx.length; k += 50) await Promise.all(idx.slice(k, k + 50).map((i) => trackJob(rig.h.socketPath, jobIdOf(i).toString(), 1050)));
    let watches = 0;
    await until('every job watched', async () => {
      const st = (await getStatus(rig.h.socketPath)) as { watches?: { live?: number } };
      watches = st.watches?.live ?? 0;
      return watches >= opts.jobs;
    }, 120_000, 100);
    await sleep(1000);
    const waiting = { ...(await sample(pid, opts.windowSeconds)), watches };
    opts.log(`  ${opts.jobs} waiting jobs (${watches} watches): RSS ${waiting.rssMiB.toFixed(1)} MiB, CPU ${(waiting.cpuShare * 100).toFixed(2)} %`);
    for (const i of idx) rig.h.sim.patchMerge(WF, 'default', workflowName(i), { status: { ready: true, status: 'Completed' } });
    for (const i of idx) await rig.waitPhase(jobIdOf(i), ['delivered'], 120_000);
    await sleep(1000);
    const delivered = await sample(pid, opts.windowSeconds);
    opts.log(`  ${opts.jobs} delivered jobs: RSS ${delivered.rssMiB.toFixed(1)} MiB, CPU ${(delivered.cpuShare * 100).toFixed(2)} %`);
    return { jobs: opts.jobs, idle, waiting, delivered, bookmarkIntervalMs };
  } finally {
    await rig.close();
  }
}
