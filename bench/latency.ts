/**
 * Delivery latency: from the simulator recording "PreRun finished" (the merge patch that sets
 * ready=true) to the job's env file being in place (inotify, in an idle watcher process), and to
 * `nnf-env prolog` returning. Clock: process.hrtime (CLOCK_MONOTONIC, shared by all processes).
 * The daemon runs as its own process (nnf-envd), port probes off: this is the path
 * workflow -> watch -> decision -> files.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { getJob, trackJob } from '../src/api/client.js';
import type { Workflow } from '../src/domain/dws-types.js';
import { formatJobId } from '../src/contract/jobid.js';
import { dwsResource } from '../src/kube/resource.js';
import { benchDir, nnfEnvBin, summarize, until, type Summary } from './lib.js';
import { startRig, type Rig } from './daemon-rig.js';
import { benchWorkflow, jobIdOf, workflowName } from './workflows.js';

const WF = dwsResource('workflows', 'v1alpha7');

export interface LatencyResult {
  single: { files: Summary; prolog: Summary };
  concurrent: { jobs: number; files: Summary; patchLoopMs: number };
  inARow: { jobs: number; files: Summary; first100p50: number; last100p50: number; seconds: number };
}

interface Watcher {
  proc: ChildProcessWithoutNullStreams;
  dump(): Promise<Record<string, bigint>>;
}

async function startWatcher(dir: string): Promise<Watcher> {
  const proc = spawn(process.execPath, [join(benchDir, 'file-watcher.js'), dir, '.env'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = createInterface({ input: proc.stdout });
  const queue: Array<(l: string) => void> = [];
  lines.on('line', (l) => queue.shift()?.(l));
  await new Promise<void>((resolve) => queue.push(() => resolve()));
  return {
    proc,
    dump: () =>
      new Promise((resolve) => {
        queue.push((l) => {
          const raw = JSON.parse(l) as Record<string, string>;
          resolve(Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, BigInt(v)])));
        });
        proc.stdin.write('dump\n');
      }),
  };
}

/**
 * The watcher's timestamps, waiting (bounded) for files whose inotify event it has not read yet:
 * its stdin and its inotify fd become readable independently, so a dump asked for right after
 * the last file was written can come before that file's event. Only missing files are taken
 * from the later dumps: a file's first event stays its timestamp.
 */
async function dumpUntil(w: Watcher, names: string[]): Promise<Record<string, bigint>> {
  const seen = await w.dump();
  for (let k = 0; k < 50 && names.some((n) => seen[n] === undefined); k++) {
    await new Promise((r) => setTimeout(r, 10));
    for (const [n, t] of Object.entries(await w.dump())) seen[n] ??= t;
  }
  return seen;
}

let nextIndex = 100_000;

function inProgress(i: number): Workflow {
  return benchWorkflow(i, 1, { ready: false, token: false });
}

async function synced(rig: Rig, id: bigint): Promise<void> {
  await until(`job ${id} sees its workflow`, async () => (await getJob(rig.h.socketPath, id.toString())).workflow?.state === 'PreRun', 30_000, 2);
}

function finish(rig: Rig, i: number): bigint {
  const at = process.hrtime.bigint();
  rig.h.sim.patchMerge(WF, 'default', workflowName(i), { status: { ready: true, status: 'Completed', message: '' } });
  return at;
}

const ms = (ns: bigint): number => Number(ns) / 1e6;

/** `batch` jobs tracked and synced, then all finished at once. */
async function batch(rig: Rig, w: Watcher, n: number): Promise<{ lat: number[]; patchLoopMs: number }> {
  const idx = Array.from({ length: n }, () => nextIndex++);
  for (const i of idx) rig.h.sim.create(WF, inProgress(i));
  await Promise.all(idx.map((i) => trackJob(rig.h.socketPath, jobIdOf(i).toString(), 1050)));
  for (const i of idx) await synced(rig, jobIdOf(i));
  await w.dump();
  const at = new Map<number, bigint>();
  const t0 = process.hrtime.bigint();
  // Node's HTTP layer corks a chunked response until the next tick, so in one synchronous loop
  // every event would leave only after the last patch, up to ~20 ms after the time taken for it;
  // kube-apiserver sends each event as it commits it. Waiting for the next tick after each patch
  // lets the uncork (queued first) write the event, and nothing else: no I/O is polled, so the
  // 100 changes still go out back to back.
  for (const i of idx) {
    at.set(i, finish(rig, i));
    await new Promise<void>((r) => process.nextTick(r));
  }
  const patchLoopMs = ms(process.hrtime.bigint() - t0);
  for (const i of idx) {
    const st = await getJob(rig.h.socketPath, jobIdOf(i).toString(), { wait: true, timeoutMs: 30_000 });
    if (st.phase !== 'delivered') throw new Error(`job ${jobIdOf(i)} ended ${st.phase}`);
  }
  const seen = await dumpUntil(w, idx.map((i) => `${formatJobId(jobIdOf(i), 'f58plain')}.env`));
  const lat = idx.map((i) => {
    const t = seen[`${formatJobId(jobIdOf(i), 'f58plain')}.env`];
    if (t === undefined) throw new Error(`no inotify event for job ${jobIdOf(i)}`);
    return ms(t - at.get(i)!);
  });
  return { lat, patchLoopMs };
}

/** One job through `nnf-env prolog`: the prolog tracks it and long-polls; then PreRun finishes. */
async function viaProlog(rig: Rig, w: Watcher): Promise<{ file: number; prolog: number }> {
  const i = nextIndex++;
  const id = jobIdOf(i);
  rig.h.sim.create(WF, inProgress(i));
  await w.dump();
  const proc = spawn(process.execPath, [nnfEnvBin, 'prolog'], { env: { ...rig.cliEnv, FLUX_JOB_ID: formatJobId(id, 'f58'), FLUX_JOB_USERID: '1050' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; at: bigint }>((resolve) => proc.once('exit', (code) => resolve({ code, at: process.hrtime.bigint() })));
  await until(`prolog tracked job ${id}`, async () => {
    try {
      return (await getJob(rig.h.socketPath, id.toString())).workflow?.state === 'PreRun';
    } catch {
      return false;
    }
  }, 30_000, 2);
  // The prolog is in its long poll once the job is tracked (it asks right after the PUT).
  await new Promise((r) => setTimeout(r, 30));
  const at = finish(rig, i);
  const { code, at: end } = await exited;
  if (code !== 0) throw new Error(`nnf-env prolog exited ${code}: ${err}`);
  const seen = await dumpUntil(w, [`${formatJobId(id, 'f58plain')}.env`]);
  const t = seen[`${formatJobId(id, 'f58plain')}.env`];
  if (t === undefined) throw new Error(`no inotify event for job ${id}`);
  return { file: ms(t - at), prolog: ms(end - at) };
}

export async function runLatency(opts: { single: number; concurrent: number; inARow: number; log: (s: string) => void }): Promise<LatencyResult> {
  const rig = await startRig();
  const w = await startWatcher(rig.h.jobsDir);
  try {
    const files: number[] = [];
    const prolog: number[] = [];
    for (let k = 0; k < opts.single; k++) {
      const r = await viaProlog(rig, w);
      files.push(r.file);
      prolog.push(r.prolog);
    }
    opts.log(`  one job (x${opts.single}, via nnf-env prolog): files p50 ${summarize(files).p50.toFixed(1)} ms, prolog returns p50 ${summarize(prolog).p50.toFixed(1)} ms`);

    const c = await batch(rig, w, opts.concurrent);
    opts.log(`  ${opts.concurrent} concurrent: p50 ${summarize(c.lat).p50.toFixed(1)} ms, p99 ${summarize(c.lat).p99.toFixed(1)} ms`);

    const row: number[] = [];
    const t0 = performance.now();
    for (let k = 0; k < opts.inARow; k++) row.push(...(await batch(rig, w, 1)).lat);
    const seconds = (performance.now() - t0) / 1000;
    opts.log(`  ${opts.inARow} in a row: p50 ${summarize(row).p50.toFixed(1)} ms, p99 ${summarize(row).p99.toFixed(1)} ms (${seconds.toFixed(1)} s)`);
    return {
      single: { files: summarize(files), prolog: summarize(prolog) },
      concurrent: { jobs: opts.concurrent, files: summarize(c.lat), patchLoopMs: c.patchLoopMs },
      inARow: { jobs: opts.inARow, files: summarize(row), first100p50: summarize(row.slice(0, 100)).p50, last100p50: summarize(row.slice(-100)).p50, seconds },
    };
  } finally {
    w.proc.stdin.end();
    await rig.close();
  }
}
