import { pino, type Logger } from 'pino';
import { NnfEnvError, errorMessage } from '../core/errors.js';
import type { RetryPolicy } from '../core/retry.js';
import { formatJobId } from '../contract/jobid.js';
import { isValidId } from '../contract/ids.js';
import { FINAL_PHASES, type JobPhase } from '../contract/job-status.js';
import type { DaemonJobStatus } from '../contract/control-api.js';
import { workflowNameFor } from '../domain/workflow-name.js';
import { buildJobStatus, type RabbitFacts } from '../domain/delivery-plan.js';
import { readFileNoFollow } from '../fs/atomic-file.js';
import type { UserDbOptions } from '../fs/user-db.js';
import { probePorts } from '../net/port-probe.js';
import type { HostAddressResolver } from '../net/host-address.js';
import type { DaemonMetrics } from '../api/metrics.js';
import type { DaemonEvents } from '../api/event-bus.js';
import type { JobEnvSource } from './env-source.js';
import type { JobControllerConfig } from './job-controller-config.js';
import { JobFileWriter } from './job-files.js';
import { collectGarbage } from './job-gc.js';
import { JobSync } from './job-sync.js';
import type { TrackSource, TrackedJob } from './tracked-job.js';
import { TrackedRecords, canonicalJobName, type TrackedRecord } from './tracked-records.js';
import { WorkQueue } from './work-queue.js';

export type { JobControllerConfig } from './job-controller-config.js';

export interface JobControllerOptions {
  /** Where jobs' environments come from (./kube-env-source.ts, ./flux-env-source.ts, chosen by ./source-selection.ts). */
  source: JobEnvSource;
  config: JobControllerConfig;
  jobsDir: string;
  /** This node's rabbit, as the rabbit controller knows it now. */
  rabbit: () => RabbitFacts;
  addresses: HostAddressResolver;
  events: DaemonEvents;
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
  source?: TrackSource;
  /** Known workflow name (computes discovery); else from WORKFLOW_NAME_TEMPLATE. */
  workflowName?: string;
  /** The caller read the jobspec and it has #DW directives: the source need not read it again. */
  hasDw?: boolean;
}

export interface TrackResult {
  created: boolean;
  status: DaemonJobStatus;
}

const MAX_STATUS_BYTES = 4 * 1024 * 1024;

/** A sync that failed (a write, a token read) is tried again after 0.5 s, doubling up to 30 s, jittered. */
const SYNC_RETRY: RetryPolicy = { initialMs: 500, maxMs: 30_000 };

/**
 * The jobs of this node: which are tracked (the prolog's track, the epilog's untrack, the records
 * that survive a restart), one watch per job on only its environment (its Workflow, field selector
 * on the name, or its Flux eventlog: ./env-source.ts), and a work queue that runs the job's sync (./job-sync.ts) on every change of it. GC of files
 * whose workflow is gone: ./job-gc.ts. Files: ./job-files.ts.
 */
export class JobController {
  private readonly jobs = new Map<string, TrackedJob>();
  private readonly records: TrackedRecords;
  private readonly logger: Logger;
  private readonly files: JobFileWriter;
  private readonly syncer: JobSync;
  private readonly queue: WorkQueue<string>;
  private config: JobControllerConfig;
  private stopping = false;
  private gcTimer: NodeJS.Timeout | undefined;
  private gcRunning: Promise<void> | undefined;

  constructor(private readonly opts: JobControllerOptions) {
    this.config = opts.config;
    this.logger = opts.logger ?? pino({ level: 'silent' });
    this.records = new TrackedRecords(opts.jobsDir);
    this.files = new JobFileWriter(opts.jobsDir, opts.chown ?? process.getuid?.() === 0, opts.userDb);
    this.syncer = new JobSync({
      config: () => this.config,
      files: this.files,
      rabbit: opts.rabbit,
      addresses: opts.addresses,
      probe: opts.probe ?? probePorts,
      metrics: opts.metrics,
      logger: this.logger,
      setStatus: (job, status) => this.setStatus(job, status),
      stopWatch: (job) => this.stopWatch(job),
      // Torn down on the next turn of the event loop: that costs more than writing the files, and
      // the other jobs whose PreRun finished in the same turn should have theirs first
      // (BENCHMARKS.md, delivery latency). Idempotent with untrack() and stop().
      stopWatchSoon: (job) => void setImmediate(() => void this.stopWatch(job).catch(() => undefined)),
      isStopping: () => this.stopping,
    });
    this.queue = new WorkQueue<string>({
      sync: (name) => this.syncJob(name),
      retry: SYNC_RETRY,
      onError: (name, err, retryInMs) => this.logger.error({ job: name, err: errorMessage(err), retryInMs }, 'could not bring the job\'s files up to date; retrying'),
    });
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
    for (const job of all) job.abort.abort(new ControllerStoppedError());
    await Promise.all(all.map((job) => this.stopWatch(job)));
    await this.queue.shutdown();
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
    const job = this.newJob(id, userID, new Date().toISOString(), opts.source ?? 'api', opts.workflowName);
    if (opts.hasDw) job.hasDw = true;
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
    const job = this.newJob(id, rec.userID, rec.trackedAt, rec.source, rec.workflowName);
    // The status file says what was delivered before the restart (ports already probed).
    job.recorded = readFileNoFollow(this.files.paths(id).status, MAX_STATUS_BYTES)
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

  private newJob(id: bigint, userID: number, trackedAt: string, source: TrackSource, workflowName: string | undefined): TrackedJob {
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
      previous: undefined,
      gid: undefined,
      removed: false,
      waitingFileWritten: false,
      abort: new AbortController(),
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
      await job.recorded.catch(() => undefined);
      await this.stopWatch(job);
      await this.queue.forget(name);
    }
    const removedFiles = await this.files.remove(id);
    await this.records.remove(name);
    if (job) {
      this.jobs.delete(name);
      this.logger.info({ job: name, why }, 'job untracked, files removed');
      this.opts.events.publish({ type: 'job', job: job.status, untracked: true });
    }
    return job !== undefined || removedFiles;
  }

  // --- the watch of one job's environment

  private startWatch(job: TrackedJob): void {
    if (job.watch || job.removed || this.stopping) return;
    const key = job.ident.id;
    job.watch = this.opts.source.watch(
      { id: job.id, ident: job.ident, namespace: job.namespace, workflowName: job.workflowName, trackedBy: job.source, ...(job.hasDw ? { hasDw: true } : {}), logger: this.logger.child({ job: key }) },
      () => this.queue.add(key),
    );
  }

  private async stopWatch(job: TrackedJob): Promise<void> {
    const w = job.watch;
    if (!w) return;
    job.watch = undefined;
    await w.stop();
  }

  private async syncJob(name: string): Promise<void> {
    const job = this.jobs.get(name);
    if (!job || job.removed || this.stopping) return;
    await this.syncer.sync(job);
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

  /** Removes what belongs to workflows (or, in flux mode, jobs) that are gone (./job-gc.ts). */
  gc(): Promise<void> {
    return collectGarbage({
      jobsDir: this.opts.jobsDir,
      source: this.opts.source,
      config: () => this.config,
      files: this.files,
      jobs: () => [...this.jobs.values()],
      isTracked: (name) => this.jobs.has(name),
      busy: (job) => this.queue.busy(job.ident.id),
      untrack: (id, why) => this.untrack(id, why),
      isStopping: () => this.stopping,
      logger: this.logger,
    });
  }
}
