// What a job's eventlog means for its files (flux-coral2's events), and the mount-path variables.
import t from 'tap';
import { assessEventlog, coral2HandlesJob, jobspecHasDw, workflowNameFromEvents } from '../../src/domain/eventlog-assessment.js';
import { isMountPathVariable, withoutMountPaths } from '../../src/domain/mount-paths.js';
import type { FluxEvent } from '../../src/contract/flux-eventlog.js';

let ts = 1764748800;
const ev = (name: string, context: Record<string, unknown> = {}): FluxEvent => ({ timestamp: ts++, name, context });
const upToRun = [ev('submit', { userid: 1050 }), ev('dependency-add', { description: 'dws-create' }), ev('memo', { rabbit_workflow: 'fluxjob-42' }), ev('depend'), ev('alloc'), ev('prolog-start', { description: 'dws-setup' })];

t.test('waiting, ready, failed', async (t) => {
  t.match(assessEventlog(upToRun, 'c1'), { kind: 'waiting' });
  const vars = { DW_JOB_a: '/mnt/nnf/a' };
  t.same(assessEventlog([...upToRun, ev('dws_environment', { variables: vars })], 'c1'), { kind: 'ready', variables: vars, excluded: null });
  t.match(assessEventlog([...upToRun, ev('exception', { type: 'exception', severity: 0, note: 'DWS/Rabbit interactions failed: workflow hit an error: x' })], 'c1'),
    { kind: 'failed', code: 'JOB_EXCEPTION', message: /workflow hit an error: x/ });
  t.match(assessEventlog([...upToRun, ev('exception', { type: 'cancel', severity: 0, note: '' }), ev('dws_environment', { variables: vars })], 'c1'), { kind: 'failed' }, 'a fatal exception first: never delivered');
  t.match(assessEventlog([...upToRun, ev('dws_environment', { variables: vars }), ev('exception', { type: 'cancel', severity: 0 })], 'c1'), { kind: 'ready' }, 'the environment first: delivered');
  t.match(assessEventlog([...upToRun, ev('exception', { type: 'timeout', severity: 1, note: 'x' })], 'c1'), { kind: 'waiting' }, 'a non-fatal exception changes nothing');
  t.match(assessEventlog([...upToRun, ev('dws_environment', { variables: ['x'] })], 'c1'), { kind: 'failed', code: 'BAD_EVENT' });
  t.match(assessEventlog([...upToRun, ev('clean')], 'c1'), { kind: 'failed', code: 'JOB_ENDED' });
});

t.test('dw_failure_tolerance: dws-node-failure names the nodes that lost their file systems', async (t) => {
  const failure = ev('exception', { type: 'dws-node-failure', severity: 1, userid: 0, note: 'c[1-3]' });
  const env = ev('dws_environment', { variables: {} });
  t.match(assessEventlog([...upToRun, failure, env], 'c2'), { kind: 'ready', excluded: /this node \(c2\) lost its rabbit file systems/ });
  t.match(assessEventlog([...upToRun, failure, env], 'c4'), { kind: 'ready', excluded: null });
});

t.test('flux-coral2 marks, workflow name, jobspec', async (t) => {
  t.ok(coral2HandlesJob(upToRun));
  t.notOk(coral2HandlesJob([ev('submit'), ev('depend'), ev('alloc'), ev('prolog-start', { description: 'job-manager.prolog' })]));
  t.equal(workflowNameFromEvents(upToRun), 'fluxjob-42');
  t.ok(jobspecHasDw({ attributes: { system: { dw: '#DW jobdw type=xfs capacity=1GiB name=x' } } }));
  t.ok(jobspecHasDw({ attributes: { system: { dw: ['#DW a', '#DW b'] } } }));
  t.notOk(jobspecHasDw({ attributes: { system: { duration: 0 } } }));
  t.notOk(jobspecHasDw({ version: 1 }));
  t.notOk(jobspecHasDw(null));
});

t.test('mount-path variables', async (t) => {
  for (const n of ['DW_JOB_my_xfs', 'DW_JOB_XFS', 'DW_JOBS', 'DW_PERSISTENT_p1', 'DW_PERSISTENTS']) t.ok(isMountPathVariable(n), n);
  for (const n of ['DW_WORKFLOW_NAME', 'DW_WORKFLOW_TOKEN', 'NNF_CONTAINER_PORTS', 'DW_JOBSX']) t.notOk(isMountPathVariable(n), n);
  t.same(withoutMountPaths({ DW_JOBS: 'a:/x', DW_JOB_a: '/x', NNF_CONTAINER_PORTS: '4000' }), { kept: { NNF_CONTAINER_PORTS: '4000' }, removed: ['DW_JOBS', 'DW_JOB_a'] });
});
