import type { FluxEvent } from '../contract/flux-eventlog.js';
import { hostlistIncludes } from '../contract/hostlist.js';

/**
 * What a job's Flux eventlog says about its DWS environment, decided from the events seen so
 * far. Pure. The facts come from flux-coral2:
 * - src/job-manager/plugins/dws-jobtap.c posts `dws_environment` with context
 *   `{"variables": {NAME: value}}` (status.env plus DW_WORKFLOW_TOKEN) once PreRun is
 *   finished, then releases its `dws-setup` jobtap prolog;
 * - src/modules/coral2_dws.py raises fatal (severity 0) exceptions for a workflow in Error
 *   ("DWS/Rabbit interactions failed: ..."), and, within dw_failure_tolerance
 *   (src/python/flux_k8s/workflow.py notify_of_node_failure), a severity-1 `dws-node-failure`
 *   exception whose note is the hostlist of nodes that lost their rabbit file systems;
 * - dws-jobtap.c marks every job it handles: `dependency-add` `dws-create` at DEPEND and
 *   `prolog-start` `dws-setup` at RUN; coral2_dws.py posts the memo `rabbit_workflow`.
 */
export type EventlogAssessment =
  | { kind: 'waiting'; reason: string }
  | {
      kind: 'ready';
      variables: unknown;
      /** Why this node has no rabbit file systems (dw_failure_tolerance), or null. */
      excluded: string | null;
    }
  | { kind: 'failed'; code: 'JOB_EXCEPTION' | 'JOB_ENDED' | 'BAD_EVENT'; message: string };

export const DWS_ENVIRONMENT_EVENT = 'dws_environment';
export const NODE_FAILURE_EXCEPTION = 'dws-node-failure';

export function assessEventlog(events: readonly FluxEvent[], node: string): EventlogAssessment {
  let excluded: string | null = null;
  for (const ev of events) {
    const c = ev.context;
    if (ev.name === 'exception') {
      const severity = typeof c.severity === 'number' ? c.severity : 0;
      const type = typeof c.type === 'string' ? c.type : 'exception';
      const note = typeof c.note === 'string' ? c.note : '';
      if (severity === 0) {
        // flux-coral2 (or someone) already failed the job: it never runs; nnf-env adds nothing.
        return { kind: 'failed', code: 'JOB_EXCEPTION', message: `fatal job exception${type === 'exception' ? '' : ` (${type})`}: ${note || '(no note)'}` };
      }
      if (type === NODE_FAILURE_EXCEPTION && note !== '' && hostlistIncludes(note, node)) {
        excluded = `this node (${node}) lost its rabbit file systems and was removed from the workflow (dws-node-failure ${note}, within the job's dw_failure_tolerance)`;
      }
    } else if (ev.name === DWS_ENVIRONMENT_EVENT) {
      const vars = c.variables;
      if (vars === null || typeof vars !== 'object' || Array.isArray(vars)) {
        return { kind: 'failed', code: 'BAD_EVENT', message: 'the dws_environment event has no "variables" object in its context' };
      }
      return { kind: 'ready', variables: vars, excluded };
    } else if (ev.name === 'clean') {
      return { kind: 'failed', code: 'JOB_ENDED', message: 'the job ended before its dws_environment event was posted' };
    }
  }
  return { kind: 'waiting', reason: 'no dws_environment event yet' };
}

/** True when flux-coral2's dws-jobtap handles this job (its marks are in the eventlog). */
export function coral2HandlesJob(events: readonly FluxEvent[]): boolean {
  return events.some((ev) =>
    ev.name === DWS_ENVIRONMENT_EVENT
    || ((ev.name === 'dependency-add' || ev.name === 'dependency-remove') && ev.context.description === 'dws-create')
    || ((ev.name === 'prolog-start' || ev.name === 'prolog-finish') && ev.context.description === 'dws-setup')
    || (ev.name === 'memo' && typeof ev.context.rabbit_workflow === 'string'));
}

/** The workflow name flux-coral2 gave the job (memo `rabbit_workflow`), if posted. */
export function workflowNameFromEvents(events: readonly FluxEvent[]): string | undefined {
  for (const ev of events) if (ev.name === 'memo' && typeof ev.context.rabbit_workflow === 'string') return ev.context.rabbit_workflow;
  return undefined;
}

/**
 * Does the jobspec carry `#DW` directives? flux-coral2 acts only on jobs with
 * `attributes.system.dw` (dws-jobtap.c run_cb, dws_environment.c): without it nothing is
 * ever posted and no workflow exists.
 */
export function jobspecHasDw(jobspec: unknown): boolean {
  const sys = (jobspec as { attributes?: { system?: { dw?: unknown } } } | null)?.attributes?.system;
  return sys !== undefined && sys !== null && typeof sys === 'object' && sys.dw !== undefined && sys.dw !== null;
}
