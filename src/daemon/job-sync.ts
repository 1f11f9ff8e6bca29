/**
 * One job's sync: from what the job's source knows now (./env-source.ts: its Workflow or its
 * Flux eventlog, already assessed), decide (pure: planDelivery) what the job's files must say,
 * and make them say it. Only the source differs between modes: the same policy, files, per-node
 * variables and port probe follow from either. Called by
 * the work queue, one call per job at a time; level-triggered and idempotent, so a retry or a
 * restart re-runs the same decision on the current state.
 */
import type { Logger } from 'pino';
import type { DaemonJobStatus } from '../contract/control-api.js';
import { FINAL_PHASES, type JobPhase, type JobStatus, type PortResult } from '../contract/job-status.js';
import type { Workflow } from '../domain/dws-types.js';
import { validateWorkflowEnv } from '../domain/env-policy.js';
import { withoutMountPaths } from '../domain/mount-paths.js';
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
import type { probePorts } from '../net/port-probe.js';
import type { HostAddressResolver } from '../net/host-address.js';
import type { DaemonMetrics } from '../api/metrics.js';
import type { SourceView } from './env-source.js';
import type { JobFileWriter } from './job-files.js';
import type { JobControllerConfig } from './job-controller-config.js';
import type { TrackedJob } from './tracked-job.js';

export interface JobSyncDeps {
  config: () => JobControllerConfig;
  files: JobFileWriter;
  rabbit: () => RabbitFacts;
  addresses: HostAddressResolver;
  probe: typeof probePorts;
  metrics: DaemonMetrics | undefined;
  logger: Logger;
  /** Record a new status and announce it. */
  setStatus: (job: TrackedJob, status: DaemonJobStatus) => void;
  /** The job's watch has nothing more to tell. */
  stopWatch: (job: TrackedJob) => Promise<void>;
  /** The job's watch has nothing more to tell, once the other jobs of this turn have their files. */
  stopWatchSoon: (job: TrackedJob) => void;
  isStopping: () => boolean;
}

export class JobSync {
  constructor(private readonly d: JobSyncDeps) {}

  async sync(job: TrackedJob): Promise<void> {
    const phase = job.status.phase;
    if (FINAL_PHASES.includes(phase) || phase === 'probing') return;
    const watch = job.watch;
    // Undefined until the source has its first answer (the kube watch's first list).
    const view = watch?.view();
    if (!watch || !view) return;
    // The eventlog may name the workflow better than WORKFLOW_NAME_TEMPLATE does.
    const better = watch.workflowName();
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

  /** The status of `job` in `phase`, from what is known of it now. */
  statusOf(job: TrackedJob, wf: Workflow | undefined, phase: JobPhase, extra: Partial<Parameters<typeof buildJobStatus>[0]> = {}): DaemonJobStatus {
    return buildJobStatus({
      job: job.ident,
      workflowRef: { namespace: job.namespace, name: job.workflowName },
      workflow: wf,
      phase,
      rabbit: this.d.rabbit(),
      timings: { ...job.status.timings },
      ...extra,
    });
  }

  private async noWorkflow(job: TrackedJob): Promise<void> {
    await this.d.stopWatch(job);
    // Files left from before a restart belong to a workflow that is gone now.
    if (await this.d.files.remove(job.id)) this.d.logger.info({ job: job.ident.id }, 'removed files of a job whose workflow is gone');
    this.d.logger.info({ job: job.ident.id, workflow: `${job.namespace}/${job.workflowName}` }, 'no workflow for this job');
    this.d.setStatus(job, this.statusOf(job, undefined, 'no-workflow'));
  }

  private async fail(job: TrackedJob, wf: Workflow | undefined, code: string, message: string): Promise<void> {
    const status = this.statusOf(job, wf ?? job.lastSeen, 'failed', { error: { code, message } });
    const files = this.d.files.paths(job.id);
    // Never a delivery. An env file from before a restart goes first and the status file is
    // written before the new env file, so that no reader ever sees a "delivered" status next
    // to the failed job's env file (the reverse of a delivery's order, on purpose).
    await this.d.files.removeEnv(job.id);
    await this.d.files.write(job, files.status, renderStatusFile(status), wf);
    // No variables, only the facts: the shell plugin reads nothing else to warn the user from.
    await this.d.files.write(job, files.env, renderFailedEnvFile(status), wf);
    // After the writes: if one fails, the retry needs the watch's store to decide again.
    await this.d.stopWatch(job);
    this.d.logger.warn({ job: job.ident.id, code, message }, 'job failed: no environment delivered');
    this.d.setStatus(job, status);
  }

  private async waiting(job: TrackedJob, wf: Workflow | undefined): Promise<void> {
    const status = this.statusOf(job, wf, 'waiting');
    const prev = job.status.workflow;
    const changed = !prev || prev.state !== status.workflow?.state || prev.ready !== status.workflow?.ready || prev.status !== status.workflow?.status;
    if (!job.waitingFileWritten) {
      // Once: lets the helper tell "not delivered yet" from "no workflow"; updates are not worth an fsync each.
      await this.d.files.write(job, this.d.files.paths(job.id).status, renderStatusFile(status), wf);
      job.waitingFileWritten = true;
    }
    if (changed) this.d.setStatus(job, status);
    else job.status = status;
  }

  private async deliver(job: TrackedJob, view: Extract<SourceView, { kind: 'ready' }>): Promise<void> {
    const seenAt = performance.now();
    const wf = view.workflow;
    const timings = { ...job.status.timings, preRunFinishedAt: new Date().toISOString() };
    const cfg = this.d.config();
    // The token (kube, WORKFLOW_TOKEN on), dw_failure_tolerance's exclusion, the container log's place.
    const { token, warning, excluded, containerLogHint } = await view.extras(job.abort.signal);
    const maxTotal = cfg.ENV_MAX_TOTAL_BYTES;
    const env = validateWorkflowEnv(view.env, {
      allowedPrefixes: cfg.ENV_ALLOWED_PREFIXES,
      maxVariables: cfg.ENV_MAX_VARIABLES,
      maxValueBytes: cfg.ENV_MAX_VALUE_BYTES,
      maxTotalBytes: maxTotal,
      reservedBytes: Math.min(RESERVED_ENV_BYTES, Math.floor(maxTotal / 4)),
    });
    for (const r of env.rejected) this.d.logger.warn({ job: job.ident.id, variable: r.name, reason: r.reason }, 'workflow variable rejected');
    const warnings = warning ? [warning] : [];
    if (excluded !== undefined) {
      // No mounts here: no paths that would point into this node's own root file system.
      const { kept, removed } = withoutMountPaths(env.accepted);
      env.accepted = kept;
      warnings.push(`${excluded}: ${removed.length > 0 ? removed.join(', ') : 'no DW_JOB_* variables'} not set on this node`);
      this.d.logger.warn({ job: job.ident.id, removed, why: excluded }, 'this node is not in the workflow: rabbit mount paths withheld');
    }
    const rabbit = this.d.rabbit();
    const plan = planDelivery({ job: job.ident, env, token, rabbit });

    // Ports probed before a restart are not probed again.
    const prev = job.previous;
    const reuse = prev?.phase === 'delivered' && prev.ports?.target === plan.containerTarget && samePorts(prev.ports?.results, plan.ports) ? prev : undefined;
    const probing = cfg.PROBE_PORTS && plan.ports.length > 0 && !reuse;
    const files = this.d.files.paths(job.id);

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
    await this.d.files.write(job, files.env, renderJobEnvFile(plan, status), wf);
    await this.d.files.write(job, files.status, renderStatusFile(status), wf);
    const written = performance.now();
    this.d.metrics?.filesWritten.observe((written - seenAt) / 1000);
    this.d.logger.info({ job: job.ident.id, variables: plan.variables.length, rejected: plan.rejected.length, phase: status.phase, ms: Math.round(written - seenAt) }, 'job environment written');
    // The environment is final: nothing more to learn from this workflow (later events find a
    // final or probing phase and change nothing).
    this.d.stopWatchSoon(job);
    if (!probing) {
      this.d.metrics?.delivered.observe((written - seenAt) / 1000);
      this.d.setStatus(job, status);
      return;
    }
    this.d.setStatus(job, status);

    const ports = await this.probeTarget(job, plan, rabbit);
    if (job.removed || this.d.isStopping()) return;
    this.d.metrics?.recordProbe(ports.results);
    const unreachable = ports.results.filter((r) => !r.reachable).map((r) => r.port);
    if (unreachable.length > 0) this.d.logger.warn({ job: job.ident.id, target: ports.target, address: ports.address, unreachable }, 'user container ports not reachable (the job is delivered; the user is told)');
    if (unreachable.length > 0 && containerLogHint) warnings.push(containerLogHint);
    status = this.statusOf(job, wf, 'delivered', { plan, warnings, ports, timings: { ...status.timings, deliveredAt: new Date().toISOString() } });
    // Both files again: the env file's facts tell the shell plugin about unreachable ports.
    await this.d.files.write(job, files.env, renderJobEnvFile(plan, status), wf);
    await this.d.files.write(job, files.status, renderStatusFile(status), wf);
    this.d.metrics?.delivered.observe((performance.now() - seenAt) / 1000);
    this.d.setStatus(job, status);
  }

  private async probeTarget(job: TrackedJob, plan: DeliveryPlan, rabbit: RabbitFacts): Promise<NonNullable<JobStatus['ports']>> {
    const target = plan.containerTarget;
    const cfg = this.d.config();
    let address: string | null = null;
    let why = 'no container target';
    if (target !== null) {
      if (plan.targetIsLocalRabbit && rabbit.address) address = rabbit.address;
      else {
        const r = await this.d.addresses.resolve(target, job.abort.signal);
        address = r.address;
        why = r.reason ?? `no address for ${target}`;
      }
    }
    if (address === null) {
      const results: PortResult[] = plan.ports.map((port) => ({ port, reachable: false, attempts: 0, timeToFirstSuccessMs: null, lastError: `address of ${target ?? 'the container host'} unknown: ${why}` }));
      return { target, address: null, results };
    }
    const results = await this.d.probe({
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
}

function samePorts(results: PortResult[] | undefined, ports: number[]): boolean {
  if (!results) return ports.length === 0;
  const a = results.map((r) => r.port).sort((x, y) => x - y);
  const b = [...ports].sort((x, y) => x - y);
  return a.length === b.length && a.every((p, i) => p === b[i]);
}
