/**
 * The simulated Flux's record of each job it submitted: what flux-coral2 does to the job when
 * its workflow changes (src/modules/coral2_dws.py). A workflow in Error raises one fatal job
 * exception, "DWS/Rabbit interactions failed: workflow hit an error: <message>"
 * (handle_workflow_errors); a job whose workflow failed before PreRun finished never gets its
 * environment and no shell starts on any node. PreRun finished releases the job: flux-coral2
 * posts `dws_environment` and the shells (after every prolog) may start.
 */
export interface FluxJobException {
  type: 'exception';
  /** 0: fatal. */
  severity: 0;
  note: string;
  /** The workflow state the error happened in. */
  workflowState: string;
  at: string;
}

export interface FluxJobRecord {
  /** Workflow name, fluxjob-<decimal id>. */
  workflow: string;
  /** 'pending': waiting on its workflow; 'released': PreRun finished, shells may start; 'failed': fatal exception, no shell ever starts. */
  phase: 'pending' | 'released' | 'failed';
  exceptions: FluxJobException[];
}

export const FLUX_DWS_ERROR_PREFIX = 'DWS/Rabbit interactions failed: workflow hit an error: ';

export class FluxJobs {
  private readonly jobs = new Map<string, FluxJobRecord>();

  submitted(workflow: string): void {
    this.jobs.set(workflow, { workflow, phase: 'pending', exceptions: [] });
  }

  get(workflow: string): FluxJobRecord | undefined {
    const r = this.jobs.get(workflow);
    return r && structuredClone(r);
  }

  /** PreRun finished: flux-coral2 hands the environment over. */
  released(workflow: string): void {
    const r = this.jobs.get(workflow);
    if (r && r.phase === 'pending') r.phase = 'released';
  }

  /** Workflow in Error: one fatal exception per job (flux-coral2 sees the same error on every poll, the job raises once). */
  workflowError(workflow: string, state: string, message: string): boolean {
    const r = this.jobs.get(workflow);
    if (!r || r.exceptions.length > 0) return false;
    r.exceptions.push({ type: 'exception', severity: 0, note: FLUX_DWS_ERROR_PREFIX + message, workflowState: state, at: new Date().toISOString() });
    // A fatal exception before release ends the job before any shell; after release it is running already.
    if (r.phase === 'pending') r.phase = 'failed';
    return true;
  }
}
