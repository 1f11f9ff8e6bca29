/**
 * A job as Flux submits it: the workflow object fluxjob-<id> and what the simulated Flux and
 * nnf-sos do with it. Shared by the simulator and the API-driven controllers.
 */
import { WORKFLOW_STATES, type Workflow, type WorkflowState } from '../domain/dws-types.js';
import { FLUX_FINALIZER, type JobOptions } from './controllers.js';
import type { ContainerProfile } from '../domain/container-profile.js';
import { containerOf, f58plain, parseDirectives } from './env.js';
import { implicitProfile } from './profiles.js';

export interface SubmitJobOptions {
  jobId: bigint;
  userID: number;
  /** Default: userID. */
  groupID?: number;
  /** Computes of the job (Flux fills Computes data with them). Default [computeName]. */
  computes?: string[];
  /** #DW directives. Default: one jobdw (xfs, name=scratch) and one container (name=containerName ?? 'sim-app'). */
  directives?: string[];
  /** MPI container profile: NNF_CONTAINER_LAUNCHER is set; hostnames are launcher/worker pods. */
  mpi?: boolean;
  /** The user container's name; a container directive is added when the directives have none. */
  containerName?: string;
  /** Ports per container. Default 2. */
  numPorts?: number;
  /** That state ends with status Error and a message. */
  failAt?: WorkflowState;
  /** Flux moves desiredState forward up to this state. Default 'PreRun'. */
  stopAt?: WorkflowState;
  /** Open the user container's ports. Default: the simulator's userContainers. */
  listen?: boolean;
  /** Delay between PreRun's first step and the listeners opening. Default 0. */
  listenDelayMs?: number;
  /** Add Flux's finalizer (the simulated Flux removes it on deletion). Default false. */
  finalizer?: boolean;
  /** Flux deletes the workflow when Teardown is done. Default false. */
  deleteAfterTeardown?: boolean;
}

/**
 * The workflow to create (namespace 'default'), the job's options for the controllers, and the
 * NnfContainerProfile its container options stand for (to create in nnf-system when missing;
 * none when the caller wrote the directives).
 */
export function jobWorkflow(job: SubmitJobOptions, defaults: { listen: boolean }): { workflow: Workflow; options: JobOptions; profile: ContainerProfile | undefined } {
  const name = `fluxjob-${job.jobId.toString()}`;
  const implicit = implicitProfile(job.containerName ?? 'sim-app', job.mpi ?? false, job.numPorts ?? 2);
  let directives = job.directives ?? ['#DW jobdw type=xfs capacity=10GB name=scratch', `#DW container name=${job.containerName ?? 'sim-app'} profile=${implicit.metadata.name}`];
  if (job.containerName && !containerOf(parseDirectives(directives))) {
    directives = [...directives, `#DW container name=${job.containerName} profile=${implicit.metadata.name}`];
  }
  const usesImplicit = job.directives === undefined || (job.containerName !== undefined && directives.length > job.directives.length);
  for (const s of [job.failAt, job.stopAt]) {
    if (s !== undefined && !WORKFLOW_STATES.includes(s)) throw new RangeError(`not a workflow state: ${String(s)}`);
  }
  const options: JobOptions = {
    flux: true,
    stopAt: job.stopAt ?? 'PreRun',
    computes: job.computes,
    mpi: job.mpi ?? false,
    containerName: job.containerName,
    numPorts: job.numPorts ?? 2,
    failAt: job.failAt,
    listen: job.listen ?? defaults.listen,
    listenDelayMs: job.listenDelayMs ?? 0,
    deleteAfterTeardown: job.deleteAfterTeardown ?? false,
  };
  const workflow: Workflow = {
    kind: 'Workflow',
    metadata: { name, namespace: 'default', ...(job.finalizer ? { finalizers: [FLUX_FINALIZER] } : {}) },
    spec: {
      desiredState: 'Proposal',
      wlmID: 'flux',
      jobID: f58plain(job.jobId),
      userID: job.userID,
      groupID: job.groupID ?? job.userID,
      hurry: false,
      forceReady: false,
      dwDirectives: directives,
    },
  };
  return { workflow, options, profile: usesImplicit ? implicit : undefined };
}
