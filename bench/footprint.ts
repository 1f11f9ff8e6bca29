/**
 * Daemon footprint and quiet: how often nnf-envd wakes up, how much CPU and memory it uses,
 * read from /proc for its own process (all its threads), in three states against the
 * simulator sending a bookmark every 60 s on each watch (as kube-apiserver does):
 *   idle (no jobs), N tracked jobs waiting (one watch each), the same N jobs delivered.
 *
 * A wakeup is a context switch of any of the daemon's threads (voluntary + involuntary, from
 * /proc/<pid>/task/<tid>/status): each time the process leaves the CPU it was woken before.
 * "Apart from the API's own events": every watch event and bookmark the API server sends costs
 * the daemon at least one wakeup, so those received in the window (from /v1/status, asked
 * before and after the window, outside it) are subtracted for the waiting figure.
 * The floor is `node -e 'setInterval(()=>{},1e9)'` measured the same way.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { trackJob, getStatus } from '../src/api/client.js';
import { dwsResource } from '../src/kube/resource.js';
import { sleep, until } from './lib.js';
import { startRig } from './daemon-rig.js';
import { benchWorkflow, jobIdOf, workflowName } from './workflows.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeStandInFlux } from '../test/flux/stand-in.js';

const WF = dwsResource('workflows', 'v1alpha7');

export interface QuietSample {
  rssMiB: number;
  /**
   * The anonymous part of RSS (heap, JIT code, buffers): this process's own memory. The rest is
   * file pages, mostly of the node binary, shared with every other node process on the host.
   */
  anonMiB: number;
  /** CPU seconds per wall second over the window (1.0 = one core busy). */
  cpuShare: number;
  /** Context switches of all threads per second. */
  wakeupsPerSecond: number;
  /** Watch events + bookmarks the API server sent in the window, per second. */
  apiEventsPerSecond: number;
  threads: number;
  windowSeconds: number;
}

export interface FootprintResult {
  jobs: number;
  floor: QuietSample;
  idle: QuietSample;
  waiting: QuietSample & { watches: number };
  delivered: QuietSample;
  /** ENV_SOURCE=flux, no jobs: the daemon without Kubernetes (no undici, no TLS). */
  fluxIdle: QuietSample;
  bookmarkIntervalMs: number;
}

interface ProcSnapshot {
  switches: number;
  cpuSeconds: number;
  rssMiB: number;
  anonMiB: number;
  threads: number;
}

/** Context switches over all threads, CPU (utime + stime of the whole process) and RSS. */
export function procSnapshot(pid: number): ProcSnapshot {
  let switches = 0;
  let threads = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let st: string;
    try {
      st = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    } catch {
      continue; // the thread ended between readdir and read
    }
    threads++;
    switches += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
  }
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssMiB = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN) / 1024;
  const anonMiB = Number(/^RssAnon:\s+(\d+)/m.exec(status)?.[1] ?? NaN) / 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = (Number(f[11]) + Number(f[12])) / 100; // utime, stime (fields 14, 15), USER_HZ 100
  return { switches, cpuSeconds, rssMiB, anonMiB, threads };
}

async function apiEvents(socketPath: string): Promise<number> {
  const st = (await getStatus(socketPath)) as { watches?: { events?: number; bookmarks?: number } };
  return (st.watches?.events ?? 0) + (st.watches?.bookmarks ?? 0);
}

async function sample(pid: number, seconds: number, socketPath?: string): Promise<QuietSample> {
  // The status requests are made outside the window: they would wake the daemon themselves.
  const e0 = socketPath ? await apiEvents(socketPath) : 0;
  await sleep(200);
  const a = procSnapshot(pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const b = procSnapshot(pid);
  const wall = (performance.now() - t0) / 1000;
  await sleep(200);
  const e1 = socketPath ? await apiEvents(socketPath) : 0;
  return {
    rssMiB: b.rssMiB,
    anonMiB: b.anonMiB,
    cpuShare: (b.cpuSeconds - a.cpuSeconds) / wall,
    wakeupsPerSecond: (b.switches - a.switches) / wall,
    apiEventsPerSecond: (e1 - e0) / wall,
    threads: b.threads,
    windowSeconds: wall,
  };
}

/** The floor: a Node process that does nothing but stay alive. */
async function floorSample(seconds: number): Promise<QuietSample> {
  const child = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e9)'], { stdio: 'ignore' });
  try {
    await sleep(1000);
    return await sample(child.pid!, seconds);
  } finally {
    child.kill('SIGKILL');
  }
}

export async function runFootprint(opts: { jobs: number; windowSeconds: number; log: (s: string) => void }): Promise<FootprintResult> {
  const bookmarkIntervalMs = 60_000;
  const line = (name: string, s: QuietSample) =>
    opts.log(`  ${name}: ${s.wakeupsPerSecond.toFixed(2)} wakeups/s (API events ${s.apiEventsPerSecond.toFixed(2)}/s), CPU ${(s.cpuShare * 100).toFixed(3)} %, RSS ${s.rssMiB.toFixed(1)} MiB (anonymous ${s.anonMiB.toFixed(1)}), ${s.threads} threads`);
  const floor = await floorSample(Math.min(opts.windowSeconds, 20));
  line('floor (node -e setInterval)', floor);
  // Watches as long as kube-apiserver's default bounds them (no client-side churn in the window).
  const rig = await startRig({ sim: { bookmarkIntervalMs, historySize: 50_000 } });
  let kube: Pick<FootprintResult, 'idle' | 'waiting' | 'delivered'>;
  try {
    const pid = rig.daemon.pid!;
    // Past start-up: discovery, first lists, GC of old job files, and V8's memory reducer, which
    // runs a few full GCs in the first ~10 s after the start-up allocations (once per start).
    await sleep(15_000);
    const idle = await sample(pid, opts.windowSeconds, rig.h.socketPath);
    line('idle', idle);
    const idx = Array.from({ length: opts.jobs }, (_, k) => 200_000 + k);
    for (const i of idx) rig.h.sim.create(WF, benchWorkflow(i, 1, { ready: false, token: false }));
    for (let k = 0; k < idx.length; k += 50) await Promise.all(idx.slice(k, k + 50).map((i) => trackJob(rig.h.socketPath, jobIdOf(i).toString(), 1050)));
    let watches = 0;
    await until('every job watched', async () => {
      const st = (await getStatus(rig.h.socketPath)) as { watches?: { live?: number } };
      watches = st.watches?.live ?? 0;
      return watches >= opts.jobs;
    }, 120_000, 100);
    await sleep(2000);
    const waiting = { ...(await sample(pid, opts.windowSeconds, rig.h.socketPath)), watches };
    line(`${opts.jobs} waiting jobs (${watches} watches)`, waiting);
    for (const i of idx) rig.h.sim.patchMerge(WF, 'default', workflowName(i), { status: { ready: true, status: 'Completed' } });
    for (const i of idx) await rig.waitPhase(jobIdOf(i), ['delivered'], 120_000);
    await sleep(2000);
    const delivered = await sample(pid, opts.windowSeconds, rig.h.socketPath);
    line(`${opts.jobs} delivered jobs`, delivered);
    kube = { idle, waiting, delivered };
  } finally {
    await rig.close();
  }
  const fluxIdle = await fluxIdleSample(opts.windowSeconds);
  line('idle, ENV_SOURCE=flux', fluxIdle);
  return { jobs: opts.jobs, floor, ...kube, fluxIdle, bookmarkIntervalMs };
}

/** The daemon in flux mode (a stand-in `flux` command, rabbit from configuration), idle. */
async function fluxIdleSample(seconds: number): Promise<QuietSample> {
  const dir = await mkdtemp(join(tmpdir(), 'nnf-env-bench-flux-'));
  const flux = await makeStandInFlux(dir);
  const rig = await startRig({ config: { ENV_SOURCE: 'flux', FLUX_COMMAND: flux.command, RABBIT_NAME: 'rabbit-flux-1', RABBIT_ADDRESS: '127.0.0.1' } });
  try {
    await sleep(15_000);
    return await sample(rig.daemon.pid!, seconds, rig.h.socketPath);
  } finally {
    await rig.close();
    await rm(dir, { recursive: true, force: true });
  }
}
