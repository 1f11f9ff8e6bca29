import type { Workflow, WorkflowState } from './dws-types.js';
import { WORKFLOW_STATES } from './dws-types.js';

/**
 * What a job's workflow means for the job's files, decided from one snapshot of the object.
 * Pure: the job controller calls it on every change (level-triggered) and acts on the answer.
 */
export type WorkflowAssessment =
  /** No workflow object (the controller decides between "never existed" and "deleted"). */
  | { kind: 'absent' }
  /** PreRun not finished yet: nothing may be delivered. */
  | { kind: 'waiting'; reason: string }
  /** The environment is final (PreRun finished, or the workflow is already past it). */
  | { kind: 'ready'; reason: string }
  /** Never a delivery: spec mismatch, workflow error, teardown before PreRun finished. */
  | { kind: 'failed'; code: WorkflowFailureCode; message: string };

export type WorkflowFailureCode =
  | 'WLM_MISMATCH'
  | 'JOBID_MISMATCH'
  | 'USER_MISMATCH'
  | 'WORKFLOW_ERROR'
  | 'WORKFLOW_TEARDOWN'
  | 'WORKFLOW_DELETING';

/** The job as the daemon knows it (from the track request, canonical encodings). */
export interface JobIdentity {
  /** Decimal form of the 64-bit id. */
  dec: string;
  /** f58plain form (ASCII `f` + base58). */
  f58plain: string;
  userID: number;
}

const PRERUN_INDEX = WORKFLOW_STATES.indexOf('PreRun');

function stateIndex(s: unknown): number {
  return typeof s === 'string' ? WORKFLOW_STATES.indexOf(s as WorkflowState) : -1;
}

/**
 * Does spec.jobID name this job? Flux writes f58plain; other WLMs an integer (JSON number, or a
 * decimal string). A `ƒ` prefix is accepted as the same F58 value.
 */
export function jobIdMatches(specJobId: unknown, job: Pick<JobIdentity, 'dec' | 'f58plain'>): boolean {
  if (typeof specJobId === 'string') {
    const s = specJobId.trim();
    if (s === job.f58plain) return true;
    if (s.startsWith('\u0192') && 'f' + s.slice(1) === job.f58plain) return true;
    if (/^[0-9]+$/.test(s)) {
      try {
        return BigInt(s).toString() === job.dec;
      } catch {
        return false;
      }
    }
    return false;
  }
  if (typeof specJobId === 'number' && Number.isInteger(specJobId) && specJobId >= 0) {
    // JSON numbers above 2^53 have already lost precision in transit: compare as well as they allow.
    if (Number.isSafeInteger(specJobId)) return String(specJobId) === job.dec;
    return Number(BigInt(job.dec)) === specJobId;
  }
  return false;
}

/** `spec.desiredState == status.state == 'PreRun' && status.ready && status.status == 'Completed'`. */
export function preRunFinished(wf: Workflow): boolean {
  const st = wf.status;
  return wf.spec?.desiredState === 'PreRun' && st?.state === 'PreRun' && st.ready === true && st.status === 'Completed';
}

function describeState(wf: Workflow): string {
  const st = wf.status;
  const state = st?.state ?? '(none)';
  const parts = [`state ${state}`, `desired ${wf.spec?.desiredState ?? '(none)'}`, `ready ${st?.ready === true}`];
  if (st?.status) parts.push(`status ${st.status}`);
  return parts.join(', ');
}

export function assessWorkflow(wf: Workflow | undefined, job: JobIdentity, wlmID: string): WorkflowAssessment {
  if (wf === undefined) return { kind: 'absent' };
  const name = `${wf.metadata?.namespace ?? ''}/${wf.metadata?.name ?? ''}`;
  const spec = (wf.spec ?? {}) as Partial<Workflow['spec']>;

  // Identity first: a workflow that is not this job's is never delivered, whatever its state.
  if (spec.wlmID !== wlmID) {
    return { kind: 'failed', code: 'WLM_MISMATCH', message: `workflow ${name} has spec.wlmID ${JSON.stringify(spec.wlmID)}, expected ${JSON.stringify(wlmID)}` };
  }
  if (!jobIdMatches(spec.jobID, job)) {
    return { kind: 'failed', code: 'JOBID_MISMATCH', message: `workflow ${name} has spec.jobID ${JSON.stringify(spec.jobID)}, expected ${job.f58plain} (${job.dec})` };
  }
  if (spec.userID !== job.userID) {
    return { kind: 'failed', code: 'USER_MISMATCH', message: `workflow ${name} belongs to user ${JSON.stringify(spec.userID)}, but the job runs as user ${job.userID}` };
  }

  const st = wf.status ?? {};
  if (st.status === 'Error') {
    return { kind: 'failed', code: 'WORKFLOW_ERROR', message: st.message ? `workflow ${name} failed in ${st.state ?? 'an unknown state'}: ${st.message}` : `workflow ${name} failed in ${st.state ?? 'an unknown state'} (no message)` };
  }

  const desired = stateIndex(spec.desiredState);
  const current = stateIndex(st.state);
  const teardown = WORKFLOW_STATES.indexOf('Teardown');
  const pastPreRun = (i: number) => i > PRERUN_INDEX && i < teardown;

  if (preRunFinished(wf)) return { kind: 'ready', reason: 'PreRun finished' };
  // A daemon that (re)started late sees a workflow already past PreRun: its environment is final.
  if (pastPreRun(current)) return { kind: 'ready', reason: `workflow already in ${st.state}` };
  // DWS accepts a new desiredState only once the current state is finished, so a desired state past
  // PreRun means PreRun finished even if the controller has not moved status.state yet.
  if (pastPreRun(desired) && current === PRERUN_INDEX) return { kind: 'ready', reason: `PreRun finished, ${spec.desiredState} requested` };

  if (desired === teardown || current === teardown) {
    return { kind: 'failed', code: 'WORKFLOW_TEARDOWN', message: `workflow ${name} is being torn down before PreRun finished${st.message ? `: ${st.message}` : ''}` };
  }
  if (wf.metadata?.deletionTimestamp) {
    return { kind: 'failed', code: 'WORKFLOW_DELETING', message: `workflow ${name} is being deleted before PreRun finished` };
  }
  return { kind: 'waiting', reason: describeState(wf) };
}
