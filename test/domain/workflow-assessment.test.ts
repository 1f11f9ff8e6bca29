import t from 'tap';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { assessWorkflow, jobIdMatches, preRunFinished, type JobIdentity } from '../../src/domain/workflow-assessment.js';
import type { Workflow } from '../../src/domain/dws-types.js';
import { fixture } from '../helpers/paths.js';

const load = (name: string): Workflow => parse(readFileSync(fixture(name), 'utf8')) as Workflow;
const ready = load('workflow-prerun-ready.yaml');
const inProgress = load('workflow-prerun-inprogress.yaml');
const mpi = load('workflow-mpi-prerun-ready.yaml');
const job: JobIdentity = { dec: '321103304048246784', f58plain: 'fkEPGJX8vhd', userID: 1050 };
const mpiJob: JobIdentity = { dec: '321103304048246785', f58plain: 'fkEPGJX8vhe', userID: 1050 };

function edit(wf: Workflow, f: (w: Workflow) => void): Workflow {
  const c = structuredClone(wf);
  f(c);
  return c;
}

t.test('fixtures', async (t) => {
  t.equal(assessWorkflow(ready, job, 'flux').kind, 'ready', 'PreRun finished');
  t.equal(assessWorkflow(mpi, mpiJob, 'flux').kind, 'ready', 'MPI PreRun finished');
  const a = assessWorkflow(inProgress, job, 'flux');
  t.equal(a.kind, 'waiting', 'in-progress PreRun must NOT be ready');
  t.match(a, { reason: /state PreRun/ });
  t.equal(preRunFinished(ready), true);
  t.equal(preRunFinished(inProgress), false);
  t.same(assessWorkflow(undefined, job, 'flux'), { kind: 'absent' });
});

t.test('table', async (t) => {
  const cases: Array<[string, Workflow, string, string?]> = [
    ['wrong wlmID', edit(ready, (w) => (w.spec.wlmID = 'slurm')), 'failed', 'WLM_MISMATCH'],
    ['wrong jobID', edit(ready, (w) => (w.spec.jobID = 'fkEPGJX8vhe')), 'failed', 'JOBID_MISMATCH'],
    ['jobID as decimal string', edit(ready, (w) => (w.spec.jobID = '321103304048246784')), 'ready'],
    ['jobID with the ƒ prefix', edit(ready, (w) => (w.spec.jobID = '\u0192kEPGJX8vhd')), 'ready'],
    ['wrong userID', edit(ready, (w) => (w.spec.userID = 1051)), 'failed', 'USER_MISMATCH'],
    ['userID as string', edit(ready, (w) => ((w.spec as { userID: unknown }).userID = '1050')), 'failed', 'USER_MISMATCH'],
    ['status Error', edit(inProgress, (w) => ((w.status!.status = 'Error'), (w.status!.message = 'boom'))), 'failed', 'WORKFLOW_ERROR'],
    ['Error even with ready', edit(ready, (w) => (w.status!.status = 'Error')), 'failed', 'WORKFLOW_ERROR'],
    ['mismatch wins over Error', edit(ready, (w) => ((w.status!.status = 'Error'), (w.spec.userID = 1))), 'failed', 'USER_MISMATCH'],
    ['Teardown requested in PreRun', edit(inProgress, (w) => (w.spec.desiredState = 'Teardown')), 'failed', 'WORKFLOW_TEARDOWN'],
    ['Teardown state', edit(inProgress, (w) => ((w.spec.desiredState = 'Teardown'), (w.status!.state = 'Teardown'))), 'failed', 'WORKFLOW_TEARDOWN'],
    ['Teardown after PostRun: env was final', edit(ready, (w) => ((w.spec.desiredState = 'Teardown'), (w.status!.state = 'PostRun'))), 'ready'],
    ['already in PostRun (late restart)', edit(ready, (w) => ((w.spec.desiredState = 'PostRun'), (w.status!.state = 'PostRun'), (w.status!.ready = false))), 'ready'],
    ['already in DataOut', edit(ready, (w) => ((w.spec.desiredState = 'DataOut'), (w.status!.state = 'DataOut'), (w.status!.ready = true))), 'ready'],
    ['PostRun requested, state still PreRun', edit(ready, (w) => (w.spec.desiredState = 'PostRun')), 'ready'],
    ['PreRun ready but DriverWait', edit(ready, (w) => (w.status!.status = 'DriverWait')), 'waiting'],
    ['PreRun desired, state DataIn', edit(ready, (w) => ((w.status!.state = 'DataIn'), (w.status!.ready = true))), 'waiting'],
    ['no status', edit(ready, (w) => delete w.status), 'waiting'],
    ['being deleted in PreRun', edit(inProgress, (w) => (w.metadata.deletionTimestamp = '2026-01-01T00:00:00Z')), 'failed', 'WORKFLOW_DELETING'],
    ['TransientCondition', edit(inProgress, (w) => (w.status!.status = 'TransientCondition')), 'waiting'],
  ];
  for (const [name, wf, kind, code] of cases) {
    const a = assessWorkflow(wf, job, 'flux');
    t.equal(a.kind, kind, name);
    if (code) t.equal((a as { code?: string }).code, code, `${name}: ${code}`);
  }
  const err = assessWorkflow(edit(inProgress, (w) => ((w.status!.status = 'Error'), (w.status!.message = 'no space on rabbit'))), job, 'flux');
  t.match(err, { kind: 'failed', message: /no space on rabbit/ }, 'the workflow message is kept');
});

t.test('jobIdMatches', async (t) => {
  const j = { dec: '1234', f58plain: 'fNH' };
  t.ok(jobIdMatches('fNH', j));
  t.ok(jobIdMatches('\u0192NH', j));
  t.ok(jobIdMatches(1234, j));
  t.ok(jobIdMatches('1234', j));
  t.notOk(jobIdMatches('fNJ', j));
  t.notOk(jobIdMatches(1235, j));
  t.notOk(jobIdMatches(-1234, j));
  t.notOk(jobIdMatches(null, j));
  t.notOk(jobIdMatches({}, j));
  t.notOk(jobIdMatches('0x4d2', j), 'only f58 and decimal spellings are accepted in spec.jobID');
  const big = { dec: '18446744073709551615', f58plain: 'fjpXCZedGfVQ' };
  t.ok(jobIdMatches('18446744073709551615', big), 'large decimal as a string: exact');
  t.ok(jobIdMatches(18446744073709551615, big), 'large number: as exact as JSON allows');
});
