import type { JobIdentity } from './workflow-assessment.js';
import type { Workflow } from './dws-types.js';
import type { EnvValidation } from './env-policy.js';
import { valueProblem } from './env-policy.js';
import { renderEnvFile, statusFacts, type EnvFileFacts } from '../contract/env-file.js';
import { parsePortList } from '../contract/port-list.js';
import type { JobPhase, JobStatus, PortResult, RejectedVariable } from '../contract/job-status.js';
import type { DaemonJobStatus } from '../contract/control-api.js';

/**
 * What one job's files should contain, computed from the workflow, the validated env and this
 * node's rabbit. Pure: the job controller writes what this returns.
 */


export interface RabbitFacts {
  name: string | null;
  address: string | null;
}

export interface DeliveryPlanInput {
  job: JobIdentity & { id: string };
  /** Unused by the plan; kept for callers that have one. */
  workflow?: Workflow | undefined;
  env: EnvValidation;
  /** DW_WORKFLOW_TOKEN's value, when allowed and read. */
  token?: string | undefined;
  rabbit: RabbitFacts;
}

export interface DeliveryPlan {
  /** Every variable of the env file, by name (workflow ones, the token, per-node ones). */
  vars: Record<string, string>;
  /** Sorted names of `vars` (the status file lists them; the token's name too, never its value). */
  variables: string[];
  /** Variables the daemon dropped, including per-node ones it could not write. */
  rejected: RejectedVariable[];
  /** Host the user container listens on for this node (launcher for MPI, else the local rabbit). */
  containerTarget: string | null;
  /** True when the target is the local rabbit (its address is already known). */
  targetIsLocalRabbit: boolean;
  /** Ports to probe (from NNF_CONTAINER_PORTS); empty: nothing to probe. */
  ports: number[];
  warnings: string[];
}

export const PER_NODE_VARIABLES = ['NNF_ENV_LOCAL_RABBIT', 'NNF_ENV_LOCAL_RABBIT_ADDRESS', 'NNF_ENV_CONTAINER_TARGET', 'NNF_ENV_JOB_ID'] as const;

/** Room kept in the env file for the daemon's own lines (header, token, per-node variables). */
export const RESERVED_ENV_BYTES = 8192;

export function planDelivery(input: DeliveryPlanInput): DeliveryPlan {
  const { job, env, rabbit } = input;
  const warnings: string[] = [];
  const rejected: RejectedVariable[] = [...env.rejected];
  const vars: Record<string, string> = { ...env.accepted };

  if (input.token !== undefined) {
    const problem = valueProblem(input.token);
    if (problem) rejected.push({ name: 'DW_WORKFLOW_TOKEN', reason: problem });
    else vars.DW_WORKFLOW_TOKEN = input.token;
  }

  const launcher = env.accepted.NNF_CONTAINER_LAUNCHER;
  const hasContainer = launcher !== undefined || env.accepted.NNF_CONTAINER_PORTS !== undefined;
  let containerTarget: string | null = null;
  let targetIsLocalRabbit = false;
  if (launcher !== undefined && launcher !== '') {
    containerTarget = launcher;
    targetIsLocalRabbit = launcher === rabbit.name;
  } else if (hasContainer) {
    containerTarget = rabbit.name;
    targetIsLocalRabbit = rabbit.name !== null;
    if (rabbit.name === null) warnings.push('the job has a user container but this node has no rabbit to reach it on');
  }

  // Per-node variables override the workflow's: a workflow cannot pretend to be this node's rabbit.
  const perNode: Record<(typeof PER_NODE_VARIABLES)[number], string | null> = {
    NNF_ENV_LOCAL_RABBIT: rabbit.name,
    NNF_ENV_LOCAL_RABBIT_ADDRESS: rabbit.address,
    NNF_ENV_CONTAINER_TARGET: containerTarget,
    NNF_ENV_JOB_ID: job.id,
  };
  for (const name of PER_NODE_VARIABLES) {
    delete vars[name];
    const value = perNode[name];
    if (value === null) continue;
    const problem = valueProblem(value);
    if (problem) rejected.push({ name, reason: problem });
    else vars[name] = value;
  }

  let ports: number[] = [];
  const portList = env.accepted.NNF_CONTAINER_PORTS;
  if (portList !== undefined && portList.trim() !== '') {
    try {
      ports = [...new Set(parsePortList(portList))];
    } catch (err) {
      warnings.push(`NNF_CONTAINER_PORTS ${JSON.stringify(portList)} is not a port list: ${(err as Error).message}`);
    }
  }

  const sorted: Record<string, string> = {};
  for (const k of Object.keys(vars).sort()) sorted[k] = vars[k]!;
  return { vars: sorted, variables: Object.keys(sorted), rejected, containerTarget, targetIsLocalRabbit, ports, warnings };
}

export function envFileHeader(job: { id: string }, workflow: { namespace: string; name: string }): string {
  return `nnf-env: job ${job.id} workflow ${workflow.namespace}/${workflow.name} (generated, do not edit)`;
}

/** The env file's text: header comment, the facts the shell plugin shows, then the variables. */
export function renderJobEnvFile(plan: DeliveryPlan, status: DaemonJobStatus): string {
  const wf = status.workflow ?? { namespace: '', name: '' };
  return renderEnvFile(plan.vars, envFileHeader(status.job, wf), envFileFacts(status));
}

/**
 * An env file that sets nothing and only tells the user: the header and `facts`, never a
 * variable. For jobs the shell plugin must warn about although they get no environment.
 */
export function renderNoticeEnvFile(job: { id: string }, workflow: { namespace: string; name: string } | null, facts: EnvFileFacts): string {
  const header = workflow ? envFileHeader(job, workflow) : `nnf-env: job ${job.id} (generated, do not edit)`;
  return renderEnvFile({}, header, facts);
}

/**
 * The env file of a failed job: phase=failed and the job-warning with the workflow's message,
 * and no variable whatever the workflow holds (a USER_MISMATCH workflow's variables belong to
 * another user; an Error workflow's may be half set).
 */
export function renderFailedEnvFile(status: DaemonJobStatus): string {
  return renderNoticeEnvFile(status.job, status.workflow, envFileFacts(status));
}

export interface StatusInput {
  job: JobIdentity & { id: string };
  workflowRef: { namespace: string; name: string };
  workflow: Workflow | undefined;
  phase: JobPhase;
  error?: { code: string; message: string } | null;
  plan?: DeliveryPlan;
  rabbit: RabbitFacts;
  ports?: { target: string | null; address: string | null; results: PortResult[] } | null;
  timings: JobStatus['timings'];
  warnings?: string[];
}

export function buildJobStatus(input: StatusInput): DaemonJobStatus {
  const wf = input.workflow;
  const st = wf?.status;
  const status: DaemonJobStatus = {
    version: 1,
    job: { id: input.job.id, dec: input.job.dec, userID: input.job.userID },
    workflow: wf === undefined && input.phase === 'no-workflow'
      ? null
      : {
          namespace: input.workflowRef.namespace,
          name: input.workflowRef.name,
          ...(wf?.metadata?.uid !== undefined ? { uid: wf.metadata.uid } : {}),
          ...(st?.state !== undefined ? { state: st.state } : {}),
          ...(st?.ready !== undefined ? { ready: st.ready } : {}),
          ...(st?.status !== undefined ? { status: st.status } : {}),
          ...(st?.message !== undefined ? { message: st.message } : {}),
        },
    phase: input.phase,
    error: input.error ?? null,
    variables: input.plan?.variables ?? [],
    rejected: input.plan?.rejected ?? [],
    rabbit: { name: input.rabbit.name, address: input.rabbit.address },
    ports: input.ports ?? null,
    timings: { ...input.timings },
  };
  const warnings = [...(input.plan?.warnings ?? []), ...(input.warnings ?? [])];
  if (warnings.length > 0) status.warnings = [...new Set(warnings)];
  return status;
}

export function renderStatusFile(status: DaemonJobStatus): string {
  return JSON.stringify(status, null, 2) + '\n';
}

/** Facts written as comments at the top of the env file (never the token). */
export function envFileFacts(status: DaemonJobStatus): EnvFileFacts {
  const facts: Record<string, string | readonly string[]> = { ...statusFacts(status) };
  if (status.warnings && status.warnings.length > 0) {
    const existing = facts.warning;
    facts.warning = [...(existing === undefined ? [] : typeof existing === 'string' ? [existing] : existing), ...status.warnings];
  }
  return facts;
}
