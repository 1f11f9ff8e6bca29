import { readdir } from 'node:fs/promises';
import { pino, type Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { NnfEnvError, errorMessage } from '../core/errors.js';
import { formatJobId } from '../contract/jobid.js';
import type { ReflectorSettings } from '../kube/reflector.js';
import type { Workflow } from '../domain/dws-types.js';
import type { JobIdentity } from '../domain/workflow-assessment.js';
import { validateWorkflowEnv } from '../domain/env-policy.js';
import { withoutMountPaths } from '../domain/mount-paths.js';
import { workflowNameFor } from '../domain/workflow-name.js';
import { cleanupStaleTemps, readFileNoFollow, removeFileNoFollow, writeFileAtomic } from '../fs/atomic-file.js';
import { jobFiles } from '../contract/job-paths.js';
import { FINAL_PHASES, type JobPhase, type JobStatus, type PortResult } from '../contract/job-status.js';
import { probePorts } from '../net/port-probe.js';
import type { DaemonMetrics } from '../api/metrics.js';
import type { DaemonEvents } from '../api/event-bus.js';
import type { HostAddressResolver } from '../net/host-address.js';
import type { EnvWatch, JobEnvSource, SourceView } from './env-source.js';
import {
  RESERVED_ENV_BYTES,
  buildJobStatus,
  planDelivery,
  renderFailedEnvFile,
  renderJobEnvFile,
  renderStatusFile,
  type DeliveryPlan,
  type RabbitFacts,
} from '../domain/delivery-plan.js';
import type { DaemonJobStatus } from '../contract/control-api.js';
import { TrackedRecords, canonicalJobName, type TrackedRecord } from './tracked-records.js';
import { primaryGidOf, type UserDbOptions } from '../fs/user-db.js';
import { isValidId } from '../contract/ids.js';
import type { WatchStats } from './watch-stats.js';

/**
 * The jobs of this node: for each tracked job, observe only its environment through the
 * configured source (its Workflow, or its Flux eventlog: ./env-source.ts), decide from each
 * answer what its files must say (pure: the source's assessment, planDelivery) and make the
 * files say it. Level-triggered and idempotent: every change, restart or retry
 * re-runs the same decision on the current state.
 */
export type JobControllerConfig = Pick<
  Config,
  | 'WORKFLOW_NAMESPACE'
  | 'WORKFLOW_NAME_TEMPLATE'
  | 'WLM_ID'
  | 'ENV_ALLOWED_PREFIXES'
  | 'ENV_MAX_VARIABLES'
  | 'ENV_MAX_VALUE_BYTES'
  | 'ENV_MAX_TOTAL_BYTES'
  | 'WORKFLOW_TOKEN'
  | 'PROBE_PORTS'
  | 'PROBE_ATTEMPT_TIMEOUT'
  | 'PROBE_DEADLINE'
  | 'PROBE_BACKOFF_INITIAL'
  | 'PROBE_BACKOFF_MAX'
  | 'GC_INTERVAL'
> & ReflectorSettings;

export interface JobControllerOptions {
  /** Where jobs' environments come from (kube-env-source.ts, flux-env-source.ts). */
  source: JobEnvSource;
  config: JobControllerConfig;
  jobsDir: string;
  /** This node's rabbit, as the rabbit controller knows it now. */
  rabbit: () => RabbitFacts;
  addresses: HostAddressResolver;
  events: DaemonEvents;
  watchStats: WatchStats;
  metrics?: DaemonMetrics;
  logger?: Logger;
  /** chown job files to the job's user. Default: when running as root. */
  chown?: boolean;
  userDb?: UserDbOptions;
  /** For tests: replaces the TCP prober. */
  probe?: typeof probePorts;
}

export class TrackConflictError extends NnfEnvError {
  constructor(id: string, tracked: number, asked: number) {
    super('JOB_USER_CONFLICT', `job ${id} is already tracked for user ${tracked}, not ${asked}`, {
      hint: 'untrack the job first (nnf-env epilog) if the user id really changed',
    });
  }
}

export class ControllerStoppedError extends NnfEnvError {
  constructor() {
    super('DAEMON_STOPPING', 'nnf-envd is shutting down', { hint: 'retry when it is back' });
  }
}

export interface TrackOptions {
  source?: 'api' | 'computes';
  /** Known workflow name (computes discovery); else from WORKFLOW_NAME_TEMPLATE. */
  workflowName?: string;
}

export interface TrackResult {
  created: boolean;
  status: DaemonJobStatus;
}

interface TrackedJob {
  id: bigint;
  ident: JobIdentity & { id: string };
  source: 'api' | 'computes';
  namespace: string;
  workflowName: string;
  trackedAt: string;
  status: DaemonJobStatus;
  watch: EnvWatch | undefined;
  seenWorkflow: boolean;
  /** The last workflow object seen (for a status after the watch stopped). */
  lastSeen: Workflow | undefined;
  /** The status file from before a restart, if there was one. */
  previous: DaemonJobStatus | undefined;
  gid: number | undefined;
  running: Promise<void> | undefined;
  dirty: boolean;
  removed: boolean;
  waitingFileWritten: boolean;
  abort: AbortController;
  retryTimer: NodeJS.Timeout | undefined;
  retries: number;
  /** Set once the record is on disk: the job is then visible to GC and untrack. */
  recorded: Promise<void>;
}

const MAX_STATUS_BYTES = 4 * 1024 * 1024;

export class JobController {
  private readonly jobs = new Map<string, TrackedJob>();
  private readonly records: TrackedRecords;
  private readonly logger: Logger;
  private readonly chownFiles: boolean;
  private readonly probe: typeof probePorts;
  private config: JobControllerConfig;
  private stopping = false;
  private gcTimer: NodeJS.Timeout | undefined;
  private gcRunning: Promise<void> | undefined;

  constructor(private readonly opts: JobControllerOptions) {
    this.config = opts.config;
    this.logger = opts.logger ?? pino({ level: 'silent' });
    this.records = new TrackedRecords(opts.jobsDir);
    this.chownFiles = opts.chown ?? process.getuid?.() === 0;
    this.probe = opts.probe ?? probePorts;
  }

  /** New settings for decisions from now on (SIGHUP). Jobs already delivered keep their files. */
  updateConfig(config: JobControllerConfig): void {
    this.config = config;
  }

  get size(): number {
    return this.jobs.size;
  }

  /** Recovers the jobs tracked before a restart, starts GC (now and every GC_INTERVAL). */
  async start(): Promise<void> {
    await this.records.ensureDir();
    const { records, dropped } = await this.records.readAll();
    for (const d of dropped) this.logger.warn({ record: d.name, reason: d.reason }, 'dropped an unreadable tracking record');
    for (const rec of records) this.recover(rec);
    if (records.length > 0) this.logger.info({ jobs: records.length }, 'recovered tracked jobs');
    this.gcRunning = this.gc().finally(() => (this.gcRunning = undefined));
    this.scheduleGc();
  }

  private scheduleGc(): void {
    if (this.stopping) return;
    this.gcTimer = setTimeout(() => {
      if (!this.gcRunning) this.gcRunning = this.gc().finally(() => (this.gcRunning = undefined));
      this.scheduleGc();
    }, this.config.GC_INTERVAL);
    this.gcTimer.unref();
  }

  /** Stops every watch and probe, waits for writes in progress. Files stay (a restart recovers). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.gcTimer);
    const all = [...this.jobs.values()];
    for (const job of all) {
      job.abort.abort(new ControllerStoppedError());
      clearTimeout(job.retryTimer);
    }
    await Promise.all(all.map((job) => this.stopWatch(job)));
    await Promise.all(all.map((job) => job.running?.catch(() => undefined)));
    await this.gcRunning?.catch(() => undefined);
  }

  // --- queries

  get(id: bigint): DaemonJobStatus | undefined {
    return this.jobs.get(formatJobId(id, 'f58plain'))?.status;
  }

  list(): DaemonJobStatus[] {
    return [...this.jobs.values()].map((j) => j.status);
  }

  countsByPhase(): Record<JobPhase, number> {
    const out: Record<JobPhase, number> = { waiting: 0, probing: 0, delivered: 0, failed: 0, 'no-workflow': 0 };
    for (const j of this.jobs.values()) out[j.status.phase]++;
    return out;
  }

  /**
   * Resolves with the job's status once its phase is final, or the current status at the
   * timeout; undefined when the job is (or becomes) untracked.
   */
  waitFinal(id: bigint, timeoutMs: number, signal?: AbortSignal): Promise<DaemonJobStatus | undefined> {
    const name = formatJobId(id, 'f58plain');
    const now = this.jobs.get(name);
    if (!now || FINAL_PHASES.includes(now.status.phase) || timeoutMs <= 0 || signal?.aborted) return Promise.resolve(now?.status);
    return new Promise((resolve) => {
      const finish = (s: DaemonJobStatus | undefined) => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener('abort', onAbort);
        resolve(s);
      };
      const unsubscribe = this.opts.events.subscribe((ev) => {
        if (ev.type !== 'job' || ev.job.job.id !== name) return;
        if (ev.untracked) finish(undefined);
        else if (FINAL_PHASES.includes(ev.job.phase)) finish(ev.job);
      });
      const timer = setTimeout(() => finish(this.jobs.get(name)?.status), timeoutMs);
      const onAbort = () => finish(this.jobs.get(name)?.status);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  // --- track / untrack

  /** Starts tracking (idempotent for the same user). Resolves once the tracking record is on disk. */
  async track(id: bigint, userID: number, opts: TrackOptions = {}): Promise<TrackResult> {
    if (this.stopping) throw new ControllerStoppedError();
    if (!isValidId(userID)) throw new NnfEnvError('BAD_USER_ID', `user id ${String(userID)} is not a valid uid`, { hint: 'pass the job\'s FLUX_JOB_USERID' });
    const name = formatJobId(id, 'f58plain');
    const existing = this.jobs.get(name);
    if (existing) {
      if (existing.ident.userID !== userID) throw new TrackConflictError(name, existing.ident.userID, userID);
      await existing.recorded;
      return { created: false, status: existing.status };
    }
    const job = this.newJob(id, userID, new Date().toISOString(), opts.source ?? 'api', opts.workflowName, undefined);
    const record: TrackedRecord = { version: 1, id: name, userID, trackedAt: job.trackedAt, source: job.source };
    if (opts.workflowName !== undefined) record.workflowName = opts.workflowName;
    job.recorded = this.records.write(record);
    try {
      await job.recorded;
    } catch (err) {
      this.jobs.delete(name);
      throw err;
    }
    this.logger.info({ job: name, userID, workflow: `${job.namespace}/${job.workflowName}`, source: job.source }, 'tracking job');
    this.startWatch(job);
    this.publish(job);
    return { created: true, status: job.status };
  }

  private recover(rec: TrackedRecord): void {
    const id = canonicalJobName(rec.id);
    if (id === undefined || this.jobs.has(rec.id)) return;
    const job = this.newJob(id, rec.userID, rec.trackedAt, rec.source, rec.workflowName, undefined);
    job.recorded = Promise.resolve();
    // The status file says what was delivered before the restart (ports already probed).
    job.recorded = readFileNoFollow(jobFiles(this.opts.jobsDir, id).status, MAX_STATUS_BYTES)
      .then((buf) => {
        const prev = JSON.parse(buf.toString('utf8')) as DaemonJobStatus;
        if (prev && prev.version === 1 && prev.job?.id === rec.id) job.previous = prev;
      })
      .catch(() => undefined)
      .finally(() => {
        if (!job.removed && !this.stopping) this.startWatch(job);
      });
    this.publish(job);
  }

  private newJob(id: bigint, userID: number, trackedAt: string, source: 'api' | 'computes', workflowName: string | undefined, previous: DaemonJobStatus | undefined): TrackedJob {
    const name = formatJobId(id, 'f58plain');
    const ident = { id: name, dec: formatJobId(id, 'dec'), f58plain: name, userID };
    const namespace = this.config.WORKFLOW_NAMESPACE;
    const wfName = workflowName ?? workflowNameFor(this.config.WORKFLOW_NAME_TEMPLATE, id);
    const job: TrackedJob = {
      id,
      ident,
      source,
      namespace,
      workflowName: wfName,
      trackedAt,
      status: buildJobStatus({
        job: ident,
        workflowRef: { namespace, name: wfName },
        workflow: undefined,
        phase: 'waiting',
        rabbit: this.opts.rabbit(),
        timings: { trackedAt },
      }),
      watch: undefined,
      seenWorkflow: false,
      lastSeen: undefined,
      previous,
      gid: undefined,
      running: undefined,
      dirty: false,
      removed: false,
      waitingFileWritten: false,
      abort: new AbortController(),
      retryTimer: undefined,
      retries: 0,
      recorded: Promise.resolve(),
    };
    this.jobs.set(name, job);
    return job;
  }

  /**
   * Stops tracking and removes the job's files and record. True when the job was tracked or
   * had files; false when there was nothing at all.
   */
  async untrack(id: bigint, why = 'untracked'): Promise<boolean> {
    const name = formatJobId(id, 'f58plain');
    const job = this.jobs.get(name);
    if (job) {
      job.removed = true;
      job.abort.abort(new NnfEnvError('JOB_UNTRACKED', 'job untracked'));
      clearTimeout(job.retryTimer);
      await job.recorded.catch(() => undefined);
      await this.stopWatch(job);
      await job.running?.catch(() => undefined);
    }
    const removedFiles = await this.removeFiles(id);
    await this.records.remove(name);
    if (job) {
      this.jobs.delete(name);
      this.logger.info({ job: name, why }, 'job untracked, files removed');
      this.opts.events.publish({ type: 'job', job: job.status, untracked: true });
    }
    return job !== undefined || removedFiles;
  }

  private async removeFiles(id: bigint): Promise<boolean> {
    const files = jobFiles(this.opts.jobsDir, id);
    // The status file goes first: a reader that finds no status stops before the env file.
    const a = await removeFileNoFollow(files.status);
    const b = await removeFileNoFollow(files.env);
    return a || b;
  }

  // --- the watch of one workflow

  private startWatch(job: TrackedJob): void {
    if (job.watch || job.removed || this.stopping) return;
    job.watch = this.opts.source.watch(
      { id: job.id, ident: job.ident, namespace: job.namespace, workflowName: job.workflowName, trackedBy: job.source, logger: this.logger.child({ job: job.ident.id }) },
      () => this.kick(job),
    );
  }

  private async stopWatch(job: TrackedJob): Promise<void> {
    const w = job.watch;
    if (!w) return;
    job.watch = undefined;
    await w.stop();
  }

  /** Level-triggered: one reconcile at a time per job; changes meanwhile cause one more. */
  private kick(job: TrackedJob): void {
    job.dirty = true;
    if (job.running) return;
    job.running = (async () => {
      while (job.dirty && !job.removed && !this.stopping) {
        job.dirty = false;
        try {
          await this.reconcile(job);
          job.retries = 0;
        } catch (err) {
          if (job.removed || this.stopping) break;
          this.retryLater(job, err);
        }
      }
    })().finally(() => (job.running = undefined));
  }

  private retryLater(job: TrackedJob, err: unknown): void {
    const delay = Math.min(30_000, 500 * 2 ** Math.min(job.retries++, 6));
    this.logger.error({ job: job.ident.id, err: errorMessage(err), retryInMs: delay }, 'could not bring the job\'s files up to date; retrying');
    clearTimeout(job.retryTimer);
    job.retryTimer = setTimeout(() => this.kick(job), delay);
    job.retryTimer.unref();
  }

  private async reconcile(job: TrackedJob): Promise<void> {
    const phase = job.status.phase;
    if (FINAL_PHASES.includes(phase) || phase === 'probing') return;
    const view = job.watch?.view();
    if (!view) return;
    const better = job.watch?.workflowName();
    if (better && better !== job.workflowName) job.workflowName = better;
    const wf = view.kind === 'absent' ? undefined : view.workflow;
    if (view.kind !== 'absent') job.seenWorkflow = true;
    if (wf) job.lastSeen = wf;
    switch (view.kind) {
      case 'absent':
        if (job.seenWorkflow) return this.fail(job, undefined, 'WORKFLOW_DELETED', `workflow ${job.namespace}/${job.workflowName} was deleted before PreRun finished`);
        return this.noWorkflow(job);
      case 'failed':
        return this.fail(job, wf, view.code, view.message);
      case 'waiting':
        return this.waiting(job, wf);
      case 'ready':
        return this.deliver(job, view);
    }
  }

  private setStatus(job: TrackedJob, status: DaemonJobStatus): void {
    const before = job.status;
    job.status = status;
    if (FINAL_PHASES.includes(status.phase) && before.phase !== status.phase) this.opts.metrics?.jobOutcomes.inc({ phase: status.phase });
    this.publish(job);
  }

  private publish(job: TrackedJob): void {
    this.opts.events.publish({ type: 'job', job: job.status });
  }

  private statusOf(job: TrackedJob, wf: Workflow | undefined, phase: JobPhase, extra: Partial<Parameters<typeof buildJobStatus>[0]> = {}): DaemonJobStatus {
    return buildJobStatus({
      job: job.ident,
      workflowRef: { namespace: job.namespace, name: job.workflowName },
      workflow: wf,
      phase,
      rabbit: this.opts.rabbit(),
      timings: { ...job.status.timings },
      ...extra,
    });
  }

  private async noWorkflow(job: TrackedJob): Promise<void> {
    await this.stopWatch(job);
    // Files left from before a restart belong to a workflow that is gone now.
    if (await this.removeFiles(job.id)) this.logger.info({ job: job.ident.id }, 'removed files of a job whose workflow is gone');
    this.logger.info({ job: job.ident.id, workflow: `${job.namespace}/${job.workflowName}` }, 'no workflow for this job');
    this.setStatus(job, this.statusOf(job, undefined, 'no-workflow'));
  }

  private async fail(job: TrackedJob, wf: Workflow | undefined, code: string, message: string): Promise<void> {
    const status = this.statusOf(job, wf ?? job.lastSeen, 'failed', { error: { code, message } });
    const files = jobFiles(this.opts.jobsDir, job.id);
    // Never a delivery. An env file from before a restart goes first and the status file is
    // written before the new env file, so that no reader ever sees a "delivered" status next
    // to the failed job's env file (the reverse of a delivery's order, on purpose).
    await removeFileNoFollow(files.env);
    await this.writeFile(job, files.status, renderStatusFile(status), wf);
    // No variables, only the facts: the shell plugin reads nothing else to warn the user from.
    await this.writeFile(job, files.env, renderFailedEnvFile(status), wf);
    // After the writes: if one fails, the retry needs the watch's store to decide again.
    await this.stopWatch(job);
    this.logger.warn({ job: job.ident.id, code, message }, 'job failed: no environment delivered');
    this.setStatus(job, status);
  }

  private async waiting(job: TrackedJob, wf: Workflow | undefined): Promise<void> {
    const status = this.statusOf(job, wf, 'waiting');
    const prev = job.status.workflow;
    const changed = !prev || prev.state !== status.workflow?.state || prev.ready !== status.workflow?.ready || prev.status !== status.workflow?.status;
    if (!job.waitingFileWritten) {
      // Once: lets the helper tell "not delivered yet" from "no workflow"; updates are not worth an fsync each.
      await this.writeFile(job, jobFiles(this.opts.jobsDir, job.id).status, renderStatusFile(status), wf);
      job.waitingFileWritten = true;
    }
    if (changed) this.setStatus(job, status);
    else job.status = status;
  }

  private async ownerGid(job: TrackedJob, wf: Workflow | undefined): Promise<number> {
    if (job.gid !== undefined) return job.gid;
    const uid = job.ident.userID;
    let gid: number | undefined;
    if (wf && wf.spec?.userID === uid && isValidId(wf.spec?.groupID)) gid = wf.spec.groupID;
    gid ??= await primaryGidOf(uid, this.opts.userDb).catch(() => undefined);
    job.gid = gid ?? uid;
    return job.gid;
  }

  private async writeFile(job: TrackedJob, path: string, data: string, wf: Workflow | undefined): Promise<void> {
    const owner = this.chownFiles ? { uid: job.ident.userID, gid: await this.ownerGid(job, wf) } : {};
    await writeFileAtomic(path, data, { mode: 0o600, ...owner });
  }

  private async deliver(job: TrackedJob, view: Extract<SourceView, { kind: 'ready' }>): Promise<void> {
    const seenAt = performance.now();
    const wf = view.workflow;
    const timings = { ...job.status.timings, preRunFinishedAt: new Date().toISOString() };
    const { token, warning, excluded, containerLogHint } = await view.extras(job.abort.signal);
    const cfg = this.config;
    const maxTotal = cfg.ENV_MAX_TOTAL_BYTES;
    const env = validateWorkflowEnv(view.env, {
      allowedPrefixes: cfg.ENV_ALLOWED_PREFIXES,
      maxVariables: cfg.ENV_MAX_VARIABLES,
      maxValueBytes: cfg.ENV_MAX_VALUE_BYTES,
      maxTotalBytes: maxTotal,
      reservedBytes: Math.min(RESERVED_ENV_BYTES, Math.floor(maxTotal / 4)),
    });
    for (const r of env.rejected) this.logger.warn({ job: job.ident.id, variable: r.name, reason: r.reason }, 'workflow variable rejected');
    const warnings = warning ? [warning] : [];
    if (excluded !== undefined) {
      // No mounts here: no paths that would point into this node's own root file system.
      const { kept, removed } = withoutMountPaths(env.accepted);
      env.accepted = kept;
      warnings.push(`${excluded}: ${removed.length > 0 ? removed.join(', ') : 'no DW_JOB_* variables'} not set on this node`);
      this.logger.warn({ job: job.ident.id, removed, why: excluded }, 'this node is not in the workflow: rabbit mount paths withheld');
    }
    const rabbit = this.opts.rabbit();
    const plan = planDelivery({ job: job.ident, env, token, rabbit });

    // Ports probed before a restart are not probed again.
    const prev = job.previous;
    const reuse = prev?.phase === 'delivered' && prev.ports?.target === plan.containerTarget && samePorts(prev.ports?.results, plan.ports) ? prev : undefined;
    const probing = cfg.PROBE_PORTS && plan.ports.length > 0 && !reuse;
    const files = jobFiles(this.opts.jobsDir, job.id);

    let status = this.statusOf(job, wf, probing ? 'probing' : 'delivered', {
      plan,
      warnings,
      timings,
      ports: reuse?.ports ?? (probing ? { target: plan.containerTarget, address: null, results: [] } : null),
    });
    if (reuse) status.timings = { ...reuse.timings, trackedAt: timings.trackedAt };
    else {
      status.timings.filesWrittenAt = new Date().toISOString();
      if (!probing) status.timings.deliveredAt = status.timings.filesWrittenAt;
    }
    // The env file first: a reader that sees the status file finds the env file complete.
    await this.writeFile(job, files.env, renderJobEnvFile(plan, status), wf);
    await this.writeFile(job, files.status, renderStatusFile(status), wf);
    const written = performance.now();
    this.opts.metrics?.filesWritten.observe((written - seenAt) / 1000);
    this.logger.info({ job: job.ident.id, variables: plan.variables.length, rejected: plan.rejected.length, phase: status.phase, ms: Math.round(written - seenAt) }, 'job environment written');
    // The environment is final: nothing more to learn from this workflow (later events find a
    // final or probing phase and change nothing). Torn down on the next turn of the event loop:
    // that costs more than writing the files, and the other jobs whose PreRun finished in the
    // same turn should have theirs first (BENCHMARKS.md, delivery latency). Idempotent with
    // untrack() and stop(), which stop it themselves if they come first.
    setImmediate(() => void this.stopWatch(job).catch(() => undefined));
    if (!probing) {
      this.opts.metrics?.delivered.observe((written - seenAt) / 1000);
      this.setStatus(job, status);
      return;
    }
    this.setStatus(job, status);

    const ports = await this.probeTarget(job, plan, rabbit);
    if (job.removed || this.stopping) return;
    this.opts.metrics?.recordProbe(ports.results);
    const unreachable = ports.results.filter((r) => !r.reachable).map((r) => r.port);
    if (unreachable.length > 0) this.logger.warn({ job: job.ident.id, target: ports.target, address: ports.address, unreachable }, 'user container ports not reachable (the job is delivered; the user is told)');
    if (unreachable.length > 0 && containerLogHint) warnings.push(containerLogHint);
    status = this.statusOf(job, wf, 'delivered', { plan, warnings, ports, timings: { ...status.timings, deliveredAt: new Date().toISOString() } });
    // Both files again: the env file's facts tell the shell plugin about unreachable ports.
    await this.writeFile(job, files.env, renderJobEnvFile(plan, status), wf);
    await this.writeFile(job, files.status, renderStatusFile(status), wf);
    this.opts.metrics?.delivered.observe((performance.now() - seenAt) / 1000);
    this.setStatus(job, status);
  }

  private async probeTarget(job: TrackedJob, plan: DeliveryPlan, rabbit: RabbitFacts): Promise<NonNullable<JobStatus['ports']>> {
    const target = plan.containerTarget;
    const cfg = this.config;
    let address: string | null = null;
    let why = 'no container target';
    if (target !== null) {
      if (plan.targetIsLocalRabbit && rabbit.address) address = rabbit.address;
      else {
        const r = await this.opts.addresses.resolve(target, job.abort.signal);
        address = r.address;
        why = r.reason ?? `no address for ${target}`;
      }
    }
    if (address === null) {
      const results: PortResult[] = plan.ports.map((port) => ({ port, reachable: false, attempts: 0, timeToFirstSuccessMs: null, lastError: `address of ${target ?? 'the container host'} unknown: ${why}` }));
      return { target, address: null, results };
    }
    const results = await this.probe({
      host: address,
      ports: plan.ports,
      attemptTimeoutMs: cfg.PROBE_ATTEMPT_TIMEOUT,
      deadlineMs: cfg.PROBE_DEADLINE,
      backoffInitialMs: cfg.PROBE_BACKOFF_INITIAL,
      backoffMaxMs: Math.max(cfg.PROBE_BACKOFF_MAX, cfg.PROBE_BACKOFF_INITIAL),
      signal: job.abort.signal,
    });
    return { target, address, results };
  }

  // --- garbage collection

  /**
   * Removes what belongs to workflows that are gone: files of untracked jobs, and tracked jobs
   * in a final phase whose workflow was deleted (the epilog never came). Jobs still waiting
   * have their own watch and need no GC.
   */
  async gc(): Promise<void> {
    const dir = this.opts.jobsDir;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      this.logger.warn({ dir, err: errorMessage(err) }, 'GC: cannot list the jobs directory');
      return;
    }
    const ids = new Map<string, bigint>();
    for (const n of names) {
      const m = /^(f[1-9A-HJ-NP-Za-km-z]+)\.(env|json)$/.exec(n);
      if (!m) continue;
      const id = canonicalJobName(m[1]!);
      if (id !== undefined) ids.set(m[1]!, id);
    }
    const now = Date.now();
    for (const job of [...this.jobs.values()]) {
      if (this.stopping) return;
      const phase = job.status.phase;
      if (!FINAL_PHASES.includes(phase) || job.running || job.removed) continue;
      if (phase === 'no-workflow') {
        // Nothing on disk but the record; keep it for one interval so the epilog finds the job.
        if (now - Date.parse(job.trackedAt) > this.config.GC_INTERVAL) await this.untrack(job.id, 'GC: no workflow');
        continue;
      }
      if (await this.workflowGone(job.id, job.namespace, job.workflowName)) await this.untrack(job.id, 'GC: workflow gone');
    }
    for (const [name, id] of ids) {
      if (this.stopping) return;
      await cleanupStaleTemps(jobFiles(dir, id).env, 60_000).catch(() => 0);
      await cleanupStaleTemps(jobFiles(dir, id).status, 60_000).catch(() => 0);
      if (this.jobs.has(name)) continue;
      if (await this.workflowGone(id, this.config.WORKFLOW_NAMESPACE, workflowNameFor(this.config.WORKFLOW_NAME_TEMPLATE, id))) {
        if (await this.removeFiles(id)) this.logger.info({ job: name }, 'GC: removed files of an untracked job whose workflow is gone');
      }
    }
  }

  /** True only when the source is sure the workflow is gone (errors: keep the files). */
  private async workflowGone(id: bigint, namespace: string, name: string): Promise<boolean> {
    try {
      return await this.opts.source.gone(id, namespace, name);
    } catch (err) {
      this.logger.debug({ workflow: `${namespace}/${name}`, err: errorMessage(err) }, 'GC: workflow check failed; keeping files');
      return false;
    }
  }
}

function samePorts(results: PortResult[] | undefined, ports: number[]): boolean {
  if (!results) return ports.length === 0;
  const a = results.map((r) => r.port).sort((x, y) => x - y);
  const b = [...ports].sort((x, y) => x - y);
  return a.length === b.length && a.every((p, i) => p === b[i]);
}
