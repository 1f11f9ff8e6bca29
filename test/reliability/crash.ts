/**
 * The crash loop shared by test/reliability/crash.test.ts (20 kills) and `npm run soak` (100):
 * the built nnf-envd runs as a child process and is SIGKILLed at random moments — during its
 * start (recovery, hosts block), while deliveries of large env files are being written, while
 * the hosts block is being rewritten (the rabbit's Node address flips) — and started again.
 * After every kill: the hosts file is whole (the admin's bytes exactly, and a complete managed
 * block or none) and every job file in the runtime directory parses completely. At the end: one
 * clean start converges (every job delivered with its workflow's variables, the hosts block
 * names the rabbit's current address).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { getJob, health, trackJob } from '../../src/api/client.js';
import { flagName, type ConfigKey } from '../../src/config/schema.js';
import type { KubeNode, Workflow } from '../../src/domain/dws-types.js';
import { formatJobId } from '../../src/contract/jobid.js';
import { NODES, dwsResource } from '../../src/kube/resource.js';
import { parseEnvFile } from '../../src/contract/env-file.js';
import { HOSTS_BEGIN_MARKER, HOSTS_END_MARKER, readHostsBlock } from '../../src/domain/hosts-block.js';
import { nnfEnvdBin } from '../helpers/paths.js';
import type { Backend } from '../helpers/cluster.js';
import { RABBIT, SAMPLE_HOSTS, startHarness, type Harness } from '../daemon/harness.js';

const WF = dwsResource('workflows', 'v1alpha7');
const ADDRESSES = ['127.0.0.1', '127.0.0.2'];

export interface CrashOptions {
  /** Default 'sim'. */
  backend?: Backend;
  kills: number;
  jobsPerRound: number;
  log?: (s: string) => void;
}

export interface CrashReport {
  kills: number;
  /** Kills after which a temp file was left: a write (job file or hosts) was in flight. */
  midWrite: number;
  /** Kills before the daemon answered its first health check. */
  duringStart: number;
  jobs: number;
  convergeMs: number;
  problems: string[];
}

/** A workflow whose PreRun is finished, with ~600 KB of variables (slow enough writes to be killed in). */
function bigWorkflow(id: bigint, userID: number): Workflow {
  const name = `fluxjob-${id}`;
  const env: Record<string, string> = { DW_WORKFLOW_NAME: name, DW_WORKFLOW_NAMESPACE: 'default', DW_JOB_scratch: `/mnt/nnf/${id}-0` };
  for (let k = 0; k < 9; k++) env[`NNF_BULK_${k}`] = `${id}:${k}:` + 'v'.repeat(60_000);
  return {
    metadata: { name, namespace: 'default' },
    spec: { desiredState: 'PreRun', wlmID: 'flux', jobID: formatJobId(id, 'f58plain'), userID, groupID: userID, hurry: false, forceReady: false, dwDirectives: [] },
    status: { state: 'PreRun', ready: true, status: 'Completed', env },
  };
}

function spawnDaemon(h: Harness): { proc: ChildProcess; exited: Promise<void>; output: () => string } {
  const args = [nnfEnvdBin];
  for (const [k, v] of Object.entries(h.flags)) args.push(`${flagName(k as ConfigKey)}=${v}`);
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  let out = '';
  proc.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-5000)));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return { proc, exited, output: () => out };
}

async function waitHealthy(h: Harness, d: ReturnType<typeof spawnDaemon>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (d.proc.exitCode !== null) throw new Error(`nnf-envd exited ${d.proc.exitCode}: ${d.output()}`);
    if (await health(h.socketPath, { timeoutMs: 1000 }).catch(() => false)) return;
    if (Date.now() > end) throw new Error(`nnf-envd not healthy within ${timeoutMs} ms: ${d.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The admin's bytes exactly, and the managed block complete or absent. */
export function hostsProblem(text: string): string | null {
  if (text === '') return 'hosts file is empty';
  const b = text.indexOf(HOSTS_BEGIN_MARKER);
  if (b < 0) return text === SAMPLE_HOSTS ? null : `hosts file without a block differs from the original: ${JSON.stringify(text.slice(0, 300))}`;
  const e = text.indexOf(HOSTS_END_MARKER, b);
  if (e < 0) return 'hosts block without its end marker (half-written)';
  const lineEnd = text.indexOf('\n', e);
  const outside = text.slice(0, b) + (lineEnd >= 0 ? text.slice(lineEnd + 1) : '');
  if (outside !== SAMPLE_HOSTS) return `bytes outside the block changed: ${JSON.stringify(outside.slice(0, 300))}`;
  return null;
}

async function checkRuntime(h: Harness, problems: string[], when: string): Promise<number> {
  let temps = 0;
  let names: string[] = [];
  try {
    names = await readdir(h.jobsDir);
  } catch {
    return 0; // not created yet (killed early in the first start)
  }
  for (const n of names) {
    const p = join(h.jobsDir, n);
    if (n.endsWith('.nnf-tmp')) temps++;
    try {
      if (n.endsWith('.env')) parseEnvFile(await readFile(p), p);
      else if (n.endsWith('.json')) JSON.parse(await readFile(p, 'utf8'));
    } catch (err) {
      problems.push(`${when}: ${n} is not whole: ${(err as Error).message}`);
    }
  }
  for (const n of await readdir(dirname(h.hostsFile))) if (n.startsWith('.hosts') && n.endsWith('.nnf-tmp')) temps++;
  const hp = hostsProblem(await readFile(h.hostsFile, 'utf8'));
  if (hp) problems.push(`${when}: ${hp}`);
  return temps;
}

export async function runCrashLoop(opts: CrashOptions): Promise<CrashReport> {
  const log = opts.log ?? (() => undefined);
  const problems: string[] = [];
  const h = await startHarness({ backend: opts.backend ?? 'sim', noDaemon: true, sim: { controllers: false, historySize: 100_000 }, config: { PROBE_PORTS: 'false', GC_INTERVAL: '1h' } });
  const ids: bigint[] = [];
  const users = new Map<bigint, number>();
  let midWrite = 0;
  let duringStart = 0;
  let addr = 0;
  let base = (BigInt(Date.now()) << 20n) + BigInt(process.pid & 0x3ff) * 512n;
  const flipAddress = async () => {
    addr = 1 - addr;
    const node = (await h.cluster.get<KubeNode>(NODES, undefined, RABBIT))!;
    await h.cluster.patchNodeStatus(RABBIT, { addresses: [{ type: 'InternalIP', address: ADDRESSES[addr] }, ...((node.status?.addresses ?? []) as Array<{ type: string }>).filter((a) => a.type !== 'InternalIP')] });
  };
  try {
    for (let k = 0; k < opts.kills; k++) {
      const d = spawnDaemon(h);
      try {
        if (Math.random() < 0.25) {
          // During start: recovery of tracked jobs, hosts block, socket.
          await flipAddress();
          await new Promise((r) => setTimeout(r, Math.random() * 400));
          if (!(await health(h.socketPath, { timeoutMs: 200 }).catch(() => false))) duringStart++;
        } else {
          await waitHealthy(h, d);
          const batch = Array.from({ length: opts.jobsPerRound }, () => base++);
          for (const id of batch) await h.cluster.create(WF, bigWorkflow(id, 1050 + (k % 3)));
          await Promise.all(batch.map((id) => trackJob(h.socketPath, id.toString(), 1050 + (k % 3)).catch(() => undefined)));
          ids.push(...batch);
          for (const id of batch) users.set(id, 1050 + (k % 3));
          if (Math.random() < 0.5) await flipAddress();
          await new Promise((r) => setTimeout(r, Math.random() * 60));
        }
      } finally {
        d.proc.kill('SIGKILL');
        await d.exited;
      }
      if ((await checkRuntime(h, problems, `after kill ${k + 1}`)) > 0) midWrite++;
      if (k % 10 === 9) log(`  ${k + 1} kills (${midWrite} mid-write, ${duringStart} during start), ${ids.length} jobs`);
    }
    // A clean start converges. Jobs whose PUT was lost to a kill are tracked again, as Flux
    // reruns nothing but the next prolog would (idempotent PUT).
    const d = spawnDaemon(h);
    const t0 = performance.now();
    try {
      await waitHealthy(h, d);
      for (const id of ids) {
        await trackJob(h.socketPath, id.toString(), users.get(id)!).catch(() => undefined);
      }
      for (const id of ids) {
        const st = await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 30_000 });
        if (st.phase !== 'delivered') {
          problems.push(`job ${id} ended ${st.phase} after the last restart`);
          continue;
        }
        const file = h.files(id).env;
        const vars = parseEnvFile(await readFile(file), file);
        const wf = (await h.cluster.get<Workflow>(WF, 'default', `fluxjob-${id}`))!;
        for (const [name, v] of Object.entries(wf.status?.env ?? {})) if (vars[name] !== v) problems.push(`job ${id}: ${name} differs from the workflow`);
      }
      const convergeMs = performance.now() - t0;
      const hostsEnd = Date.now() + 10_000;
      for (;;) {
        const block = readHostsBlock(await readFile(h.hostsFile, 'utf8'));
        if (block?.address === ADDRESSES[addr]) break;
        if (Date.now() > hostsEnd) {
          problems.push(`hosts block names ${block?.address ?? 'nothing'}, the rabbit is at ${ADDRESSES[addr]}`);
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      await checkRuntime(h, problems, 'after convergence');
      return { kills: opts.kills, midWrite, duringStart, jobs: ids.length, convergeMs, problems };
    } finally {
      d.proc.kill('SIGTERM');
      // The 5 s limit's timer is cleared once the daemon has exited: left running it held the
      // process for up to 5 s after the file's tests, as long as exit-when-done's grace.
      let limit: NodeJS.Timeout | undefined;
      await Promise.race([d.exited, new Promise((r) => (limit = setTimeout(r, 5000)))]);
      clearTimeout(limit);
      d.proc.kill('SIGKILL');
      await d.exited;
    }
  } finally {
    await h.close();
  }
}
