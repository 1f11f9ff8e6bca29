import { NnfEnvError } from '../core/errors.js';
import { formatJobId } from '../contract/jobid.js';

export class WorkflowNameTemplateError extends NnfEnvError {
  constructor(message: string) {
    super('WORKFLOW_NAME_TEMPLATE_INVALID', message, {
      hint: 'set WORKFLOW_NAME_TEMPLATE to a name with {jobid.dec}, {jobid.f58plain} or {jobid.hex}, e.g. fluxjob-{jobid.dec}',
    });
  }
}

const PLACEHOLDER = /\{jobid\.(dec|f58plain|hex)\}/g;
/** A Kubernetes object name (DNS subdomain, RFC 1123): what the template must produce. */
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Checks a template once (at start and on reload), so a bad one is a config error, not a job error. */
export function checkWorkflowNameTemplate(template: string): void {
  const stripped = template.replace(PLACEHOLDER, '');
  if (stripped === template) throw new WorkflowNameTemplateError(`WORKFLOW_NAME_TEMPLATE ${JSON.stringify(template)} has no {jobid.*} placeholder`);
  if (/[{}]/.test(stripped)) throw new WorkflowNameTemplateError(`WORKFLOW_NAME_TEMPLATE ${JSON.stringify(template)} has an unknown placeholder`);
  // Checked on the lower-cased sample: f58plain has upper-case letters, which only some servers refuse.
  const sample = workflowNameFor(template, 321103304048246784n);
  if (!OBJECT_NAME.test(sample.toLowerCase())) {
    throw new WorkflowNameTemplateError(`WORKFLOW_NAME_TEMPLATE ${JSON.stringify(template)} does not make a valid Kubernetes object name (got ${JSON.stringify(sample)})`);
  }
}

/** The workflow name of a job, e.g. `fluxjob-321103304048246784`. */
export function workflowNameFor(template: string, id: bigint): string {
  return template.replace(PLACEHOLDER, (_m, enc: 'dec' | 'f58plain' | 'hex') => {
    return formatJobId(id, enc);
  });
}
