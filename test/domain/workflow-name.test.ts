import t from 'tap';
import { checkWorkflowNameTemplate, workflowNameFor } from '../../src/domain/workflow-name.js';

t.test('templates', async (t) => {
  t.equal(workflowNameFor('fluxjob-{jobid.dec}', 321103304048246784n), 'fluxjob-321103304048246784');
  t.equal(workflowNameFor('job-{jobid.f58plain}', 1234n), 'job-fNH');
  t.equal(workflowNameFor('j-{jobid.hex}', 1234n), 'j-0x4d2');
  t.equal(workflowNameFor('{jobid.dec}-{jobid.dec}', 1n), '1-1');
  t.doesNotThrow(() => checkWorkflowNameTemplate('fluxjob-{jobid.dec}'));
  t.doesNotThrow(() => checkWorkflowNameTemplate('job-{jobid.f58plain}'));
  t.throws(() => checkWorkflowNameTemplate('fluxjob'), { code: 'WORKFLOW_NAME_TEMPLATE_INVALID', message: /no \{jobid/ });
  t.throws(() => checkWorkflowNameTemplate('fluxjob-{jobid.words}'), { code: 'WORKFLOW_NAME_TEMPLATE_INVALID' });
  t.throws(() => checkWorkflowNameTemplate('flux_job-{jobid.dec}'), { code: 'WORKFLOW_NAME_TEMPLATE_INVALID', message: /valid Kubernetes object name/ });
  t.throws(() => checkWorkflowNameTemplate('-{jobid.dec}'), { code: 'WORKFLOW_NAME_TEMPLATE_INVALID' });
});
