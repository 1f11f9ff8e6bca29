/**
 * The chaos run shared by the CI test (test/reliability/chaos.test.ts, ~100 jobs) and the soak
 * (`npm run soak`, bench/soak.ts, 1,000 jobs): jobs flow through the simulator (its controllers
 * drive every workflow to PreRun) and the real daemon (in-process, startDaemon), while faults hit
 * the API side at random: dropped connections, stalled watches (half-open TCP), forced 410s
 * (history compacted, watches dropped), 429/500/503 answers, and server restarts.
 *
 * A restart: the daemon talks to the simulator through a TCP proxy on its own port; the proxy
 * cuts every connection and refuses new ones for a while, then serves again on the same port
 * while the store stays (as etcd keeps its data when kube-apiserver restarts), and the
 * simulator's history is compacted (a restarted API server's watch cache starts afresh: old
 * resourceVersions get 410). The simulator itself cannot be closed and reopened with its store.
 *
 * Checked: every job delivered exactly once (one transition to `delivered` per job, from the
 * daemon's event bus), its env file equal to the workflow's status.env (all values here pass the
 * policy) plus the per-node variables; no env file ever seen (a sampler reads them during the
 * run) that is partial, stale (without the PreRun-final DW_JOB_ keys) or unparsable; each job's
 * delay from "PreRun finished" (polled in the simulator) to delivered, and each degraded ->
 * ok connection period, within the stated bounds.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { getJob, trackJob } from '../../src/api/client.js';
import { loadConfig } from '../../src/config/load.js';
import { startDaemon, type DaemonHandle } from '../../src/daemon/main.js';
import type { DaemonEvent } from '../../src/contract/control-api.js';
import { PER_NODE_VARIABLES } from '../../src/domain/delivery-plan.js';
import type { Workflow } from '../../src/domain/dws-types.js';
import { preRunFinished } from '../../src/domain/workflow-assessment.js';
import { formatJobId } from '../../src/contract/jobid.js';
import { dwsResource } from '../../src/kube/resource.js';
import { parseEnvFileWithFacts } from '../../src/contract/env-file.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { writeKubeconfigFile } from '../../src/sim/kubeconfig.js';
import { startCountingProxy, type CountingProxy } from '../../bench/counting-proxy.js';

const WF = dwsResource('workflows', 'v1alpha7');
const NODE = 'compute-chaos';
const ALLOWED = ['DW_', 'NNF_'];

export type FaultKind = 'drop' | 'stall' | 'expire' | '429' | '500' | '503' | 'restart';
export const FAULT_KINDS: readonly FaultKind[] = ['drop', 'stall', 'expire', '429', '500', '503', 'restart'];

export interface ChaosOptions {
  jobs: number;
  /** Jobs in flight at once. */
  concurrency: number;
  /** Mean pause between faults. */
  faultEveryMs: number;
  /** Jobs are paced so that the run lasts at least this long (and sees enough faults). */
  minSeconds?: number;
  /** How long a stall or a restart lasts. */
  stallMs: number;
  restartMs: number;
  /** Bound on PreRun finished -> delivered for any job, and on any degraded period. */
  recoveryBoundMs: number;
  /** Daemon settings that decide recovery speed (the bounds follow from them). */
  silenceTimeout: string;
  backoffMax: string;
  log?: (s: string) => void;
  logger?: Logger;
}

export interface ChaosReport {
  jobs: number;
  delivered: number;
  faults: Record<FaultKind, number>;
  problems: string[];
  /** PreRun finished (seen in the simulator) -> delivered, ms. */
  delays: number[];
  /** Degraded -> ok periods of the daemon's connection, ms. */
  degradedPeriods: number[];
  filesSampled: number;
  seconds: number;
  watchCounters: Record<string, unknown>;
}

interface JobTrack {
  id: bigint;
  name: string;
  finishedAt?: number;
  deliveredAt?: number;
  deliveredCount: number;
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? (() => undefined);
  const t0 = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'nnf-env-chaos-'));
  const problems: string[] = [];
  const faults = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  let sim: Simulator | undefined;
  let proxy: CountingProxy | undefined;
  let daemon: DaemonHandle | undefined;
  const timers: NodeJS.Timeout[] = [];
  let stopping = false;
  try {
    sim = await startSimulator({ computeName: NODE, rabbitName: 'rabbit-chaos', ports: '0', userContainers: false, stepDelayMs: 5, historySize: 2000, bookmarkIntervalMs: 1000 });
    proxy = await startCountingProxy({ host: '127.0.0.1', port: Number(new URL(sim.url).port) });
    const kubeconfig = join(dir, 'kubeconfig');
    await writeKubeconfigFile(kubeconfig, { server: proxy.url });
    await writeFile(join(dir, 'hosts'), '127.0.0.1 localhost\n');
    const loaded = await loadConfig({
      argvFlags: {
        KUBE_CONNECTION: 'kubeconfig',
        KUBECONFIG: kubeconfig,
        NODE_NAME: NODE,
        RUNTIME_DIR: join(dir, 'run'),
        HOSTS_FILE: join(dir, 'hosts'),
        LOCAL_RABBIT_CONF: join(dir, 'local-rabbit.conf'),
        RABBIT_MAPPING_FILE: join(dir, 'rabbitmapping'),
        PROBE_PORTS: 'false',
        BACKOFF_INITIAL: '50ms',
        BACKOFF_MAX: opts.backoffMax,
        WATCH_SILENCE_TIMEOUT: opts.silenceTimeout,
        KUBE_REQUEST_TIMEOUT: '5s',
        LOG_LEVEL: 'silent',
      },
      env: {},
      defaultConfigFile: null,
    });
    daemon = await startDaemon(loaded, opts.logger ?? pino({ level: 'silent' }), { env: {}, startupApiWaitMs: 5000, rabbitWaitMs: 5000 });
    const socket = daemon.socketPath;
    const jobsDir = daemon.jobsDir;

    // --- what the daemon announces
    const byName = new Map<string, JobTrack>();
    const degradedPeriods: number[] = [];
    let degradedSince: number | undefined;
    const unsubscribe = daemon.events.subscribe((ev: DaemonEvent) => {
      if (ev.type === 'job') {
        const j = byName.get(ev.job.job.id);
        if (j && ev.job.phase === 'delivered' && j.deliveredAt === undefined) {
          j.deliveredAt = performance.now();
          j.deliveredCount++;
        } else if (j && ev.job.phase === 'delivered' && ev.job.timings.deliveredAt !== undefined && j.deliveredCount > 0) {
          // Republished status of an already delivered job is fine; a second delivery is not.
        } else if (j && ev.job.phase !== 'delivered' && j.deliveredAt !== undefined && !ev.untracked) {
          problems.push(`job ${j.name} went back from delivered to ${ev.job.phase}`);
        }
      } else if (ev.type === 'connection') {
        const now = performance.now();
        if (ev.connection.state !== 'ok' && degradedSince === undefined) degradedSince = now;
        if (ev.connection.state === 'ok' && degradedSince !== undefined) {
          degradedPeriods.push(now - degradedSince);
          degradedSince = undefined;
        }
      }
    });

    // --- faults
    const s = sim;
    const p = proxy;
    // Every kind in turn, in a new random order each round.
    let order: FaultKind[] = [];
    let lastKind: FaultKind | undefined;
    const injectOne = async (): Promise<void> => {
      if (order.length === 0) order = [...FAULT_KINDS].sort(() => Math.random() - 0.5);
      const kind = order.pop()!;
      lastKind = kind;
      faults[kind]++;
      switch (kind) {
        case 'drop':
          s.faults.dropWatches();
          break;
        case 'stall':
          s.faults.stallWatches(opts.stallMs);
          break;
        case 'expire':
          s.faults.compact();
          s.faults.dropWatches();
          break;
        case '429':
        case '500':
        case '503':
          s.faults.failNext({ status: Number(kind) as 429 | 500 | 503, count: 3, ...(kind !== '500' ? { retryAfterSeconds: 1 } : {}) });
          s.faults.dropWatches();
          break;
        case 'restart':
          s.faults.compact();
          await p.outage(opts.restartMs);
          break;
      }
    };
    const scheduleFault = (): void => {
      if (stopping) return;
      const t = setTimeout(() => {
        void injectOne().finally(scheduleFault);
        // A stall is left alone until the daemon's silence detection has had to act.
      }, opts.faultEveryMs * (0.5 + Math.random()) + (lastKind === 'stall' ? opts.stallMs : 0));
      timers.push(t);
    };
    scheduleFault();

    // --- PreRun finished, as the simulator has it (polled: the simulator has no event API)
    const poll = setInterval(() => {
      const now = performance.now();
      for (const j of byName.values()) {
        if (j.finishedAt !== undefined) continue;
        const wf = s.get<Workflow>(WF, 'default', `fluxjob-${j.id}`);
        if (wf && preRunFinished(wf)) j.finishedAt = now;
      }
    }, 20);
    timers.push(poll);

    // --- no partial or stale env file, ever
    let filesSampled = 0;
    const sampler = setInterval(() => {
      void (async () => {
        let names: string[];
        try {
          names = (await readdir(jobsDir)).filter((n) => n.endsWith('.env'));
        } catch {
          return;
        }
        for (const n of names.slice(0, 20)) {
          let text: Buffer;
          try {
            text = await readFile(join(jobsDir, n));
          } catch {
            continue; // untracked meanwhile
          }
          filesSampled++;
          try {
            const { vars, facts } = parseEnvFileWithFacts(text, n);
            if (!facts.some((f) => f.key === 'phase' && f.value === 'delivered')) problems.push(`${n}: env file phase is not delivered`);
            if (!Object.keys(vars).some((k) => k.startsWith('DW_JOB_'))) problems.push(`${n}: env file without the PreRun-final DW_JOB_ variables (stale)`);
          } catch (err) {
            problems.push(`${n}: partial or unparsable env file: ${(err as Error).message}`);
          }
        }
      })();
    }, 50);
    timers.push(sampler);

    // --- the jobs
    const base = (BigInt(Date.now()) << 20n) + BigInt(Math.floor(Math.random() * 1000)) * 1024n;
    let next = 0;
    let delivered = 0;
    const paceMs = ((opts.minSeconds ?? 0) * 1000 * opts.concurrency) / opts.jobs;
    const worker = async (): Promise<void> => {
      while (next < opts.jobs) {
        if (paceMs > 0) await new Promise((r) => setTimeout(r, paceMs * (0.5 + Math.random())));
        if (next >= opts.jobs) break;
        const k = next++;
        const id = base + BigInt(k);
        const name = formatJobId(id, 'f58plain');
        const job: JobTrack = { id, name, deliveredCount: 0 };
        byName.set(name, job);
        s.submitJob({ jobId: id, userID: 1000 + (k % 50), containerName: `app-${k % 7}`, numPorts: 1 + (k % 3) });
        // The prolog's PUT, retried as the prolog would while the daemon is busy.
        for (let attempt = 0; ; attempt++) {
          try {
            await trackJob(socket, id.toString(), 1000 + (k % 50), { timeoutMs: 10_000 });
            break;
          } catch (err) {
            if (attempt >= 5) throw err;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
        const st = await getJob(socket, id.toString(), { wait: true, timeoutMs: opts.recoveryBoundMs + 30_000 });
        if (st.phase !== 'delivered') {
          problems.push(`job ${name} ended ${st.phase}${st.error ? ` (${st.error.code}: ${st.error.message})` : ''}`);
          continue;
        }
        delivered++;
        // Content: the workflow's env (as it is now: final) + the per-node variables, nothing else.
        const wf = s.get<Workflow>(WF, 'default', `fluxjob-${id}`)!;
        const want = Object.fromEntries(Object.entries(wf.status?.env ?? {}).filter(([k2]) => ALLOWED.some((pre) => k2.startsWith(pre)) && !(PER_NODE_VARIABLES as readonly string[]).includes(k2)));
        const file = join(jobsDir, `${name}.env`);
        const { vars } = parseEnvFileWithFacts(await readFile(file), file);
        for (const [k2, v] of Object.entries(want)) if (vars[k2] !== v) problems.push(`job ${name}: ${k2} is ${JSON.stringify(vars[k2])}, workflow says ${JSON.stringify(v)}`);
        for (const k2 of Object.keys(vars)) if (!(k2 in want) && !(PER_NODE_VARIABLES as readonly string[]).includes(k2)) problems.push(`job ${name}: unexpected variable ${k2}`);
        const jobVar = PER_NODE_VARIABLES.find((v) => v.startsWith('NNF_ENV_JOB'));
        if (jobVar && vars[jobVar] !== name) problems.push(`job ${name}: ${jobVar} is ${vars[jobVar]}`);
        if (k % 100 === 99) log(`  ${k + 1} jobs done; faults so far ${JSON.stringify(faults)}`);
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, () => worker()));
    stopping = true;
    unsubscribe();

    const delays: number[] = [];
    for (const j of byName.values()) {
      if (j.deliveredCount !== 1) problems.push(`job ${j.name} delivered ${j.deliveredCount} times`);
      if (j.finishedAt !== undefined && j.deliveredAt !== undefined) {
        const d = Math.max(0, j.deliveredAt - j.finishedAt);
        delays.push(d);
        if (d > opts.recoveryBoundMs) problems.push(`job ${j.name}: delivered ${Math.round(d)} ms after PreRun finished (bound ${opts.recoveryBoundMs} ms)`);
      }
    }
    for (const d of degradedPeriods) if (d > opts.recoveryBoundMs) problems.push(`connection degraded for ${Math.round(d)} ms (bound ${opts.recoveryBoundMs} ms)`);
    const st = daemon.status() as { watches?: Record<string, unknown> };
    return {
      jobs: opts.jobs,
      delivered,
      faults,
      problems,
      delays: delays.sort((a, b) => a - b),
      degradedPeriods: degradedPeriods.sort((a, b) => a - b),
      filesSampled,
      seconds: (performance.now() - t0) / 1000,
      watchCounters: st.watches ?? {},
    };
  } finally {
    stopping = true;
    for (const t of timers) clearTimeout(t);
    sim?.faults.resumeWatches();
    await daemon?.stop();
    await proxy?.close();
    await sim?.close();
    await rm(dir, { recursive: true, force: true });
  }
}
