import t from 'tap';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { validateWorkflowEnv } from '../../src/domain/env-policy.js';
import type { Workflow } from '../../src/domain/dws-types.js';
import { parseEnvFileWithFacts } from '../../src/contract/env-file.js';
import { buildJobStatus, planDelivery, renderFailedEnvFile, renderJobEnvFile, renderNoticeEnvFile, renderStatusFile } from '../../src/domain/delivery-plan.js';
import { fixture } from '../helpers/paths.js';

const load = (name: string): Workflow => parse(readFileSync(fixture(name), 'utf8')) as Workflow;
const policy = { allowedPrefixes: ['DW_', 'NNF_'], maxVariables: 1024, maxValueBytes: 65536, maxTotalBytes: 1 << 20 };
const job = { id: 'fkEPGJX8vhd', dec: '321103304048246784', f58plain: 'fkEPGJX8vhd', userID: 1050 };
const rabbit = { name: 'rabbit-node-1', address: '10.0.0.1' };

t.test('non-MPI: per-node variables, target is the local rabbit', async (t) => {
  const wf = load('workflow-prerun-ready.yaml');
  const plan = planDelivery({ job, workflow: wf, env: validateWorkflowEnv(wf.status!.env, policy), rabbit });
  t.equal(plan.vars.NNF_ENV_LOCAL_RABBIT, 'rabbit-node-1');
  t.equal(plan.vars.NNF_ENV_LOCAL_RABBIT_ADDRESS, '10.0.0.1');
  t.equal(plan.vars.NNF_ENV_CONTAINER_TARGET, 'rabbit-node-1');
  t.equal(plan.vars.NNF_ENV_JOB_ID, 'fkEPGJX8vhd');
  t.equal(plan.containerTarget, 'rabbit-node-1');
  t.equal(plan.targetIsLocalRabbit, true);
  t.same(plan.ports, [4000, 4001]);
  t.same(plan.variables, [...plan.variables].sort(), 'sorted');
  t.notOk('DW_WORKFLOW_TOKEN' in plan.vars);

  const status = buildJobStatus({ job, workflowRef: { namespace: 'default', name: wf.metadata.name }, workflow: wf, phase: 'delivered', plan, rabbit, ports: null, timings: { trackedAt: 't' } });
  t.match(status, { version: 1, phase: 'delivered', error: null, job: { id: 'fkEPGJX8vhd', dec: '321103304048246784', userID: 1050 }, workflow: { namespace: 'default', name: 'fluxjob-321103304048246784', uid: '6b1f0a2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b', state: 'PreRun', ready: true, status: 'Completed' }, rabbit });
  t.notOk('warnings' in status);
  const text = renderJobEnvFile(plan, status);
  t.match(text, /^# nnf-env: job fkEPGJX8vhd workflow default\/fluxjob-321103304048246784 \(generated, do not edit\)\n/);
  const parsed = parseEnvFileWithFacts(text, 'x');
  t.same(parsed.vars, plan.vars);
  t.same(parsed.facts, [{ key: 'phase', value: 'delivered' }]);
  t.same(JSON.parse(renderStatusFile(status)), status);
});

t.test('MPI: target is the launcher', async (t) => {
  const wf = load('workflow-mpi-prerun-ready.yaml');
  const plan = planDelivery({ job: { ...job, id: 'fkEPGJX8vhe', dec: '321103304048246785', f58plain: 'fkEPGJX8vhe' }, workflow: wf, env: validateWorkflowEnv(wf.status!.env, policy), rabbit });
  t.equal(plan.containerTarget, 'rabbit-node-2');
  t.equal(plan.vars.NNF_ENV_CONTAINER_TARGET, 'rabbit-node-2');
  t.equal(plan.targetIsLocalRabbit, false);
  t.same(plan.ports, [4100]);
});

t.test('workflow cannot spoof per-node variables; token; no rabbit; no container', async (t) => {
  const wf = load('workflow-prerun-ready.yaml');
  const env = validateWorkflowEnv({ ...wf.status!.env, NNF_ENV_LOCAL_RABBIT: 'evil', NNF_ENV_JOB_ID: 'f1' }, policy);
  const plan = planDelivery({ job, workflow: wf, env, token: 'tok', rabbit: { name: null, address: null } });
  t.notOk('NNF_ENV_LOCAL_RABBIT' in plan.vars, 'no rabbit: not set, and not the workflow\'s value');
  t.notOk('NNF_ENV_LOCAL_RABBIT_ADDRESS' in plan.vars);
  t.equal(plan.vars.NNF_ENV_JOB_ID, 'fkEPGJX8vhd');
  t.equal(plan.vars.DW_WORKFLOW_TOKEN, 'tok');
  t.equal(plan.containerTarget, null);
  t.match(plan.warnings.join(), /no rabbit/);
  const status = buildJobStatus({ job, workflowRef: { namespace: 'default', name: 'w' }, workflow: wf, phase: 'delivered', plan, rabbit: { name: null, address: null }, timings: { trackedAt: 't' } });
  t.match(status.warnings, [/no rabbit/]);
  const parsed = parseEnvFileWithFacts(renderJobEnvFile(plan, status), 'x');
  t.ok(parsed.facts.some((f) => f.key === 'warning' && /no rabbit/.test(f.value)), 'the warning reaches the shell plugin');

  const bad = planDelivery({ job, workflow: wf, env: validateWorkflowEnv({ DW_A: 'a' }, policy), token: 'a\nb', rabbit });
  t.same(bad.rejected, [{ name: 'DW_WORKFLOW_TOKEN', reason: 'control-character' }]);
  t.equal(bad.containerTarget, null, 'no container keys: no target');
  t.same(bad.ports, []);
  t.notOk('NNF_ENV_CONTAINER_TARGET' in bad.vars);

  const ports = planDelivery({ job, workflow: wf, env: validateWorkflowEnv({ NNF_CONTAINER_PORTS: '4000,x' }, policy), rabbit });
  t.same(ports.ports, []);
  t.match(ports.warnings.join(), /not a port list/);
});

t.test('no-workflow status', async (t) => {
  const s = buildJobStatus({ job, workflowRef: { namespace: 'default', name: 'w' }, workflow: undefined, phase: 'no-workflow', rabbit, timings: { trackedAt: 't' } });
  t.equal(s.workflow, null);
  t.same(s.variables, []);
  t.equal(s.ports, null);
});

t.test('failed: an env file with the facts and never a variable', async (t) => {
  // A ready workflow (variables in status.env) that fails for this job, e.g. USER_MISMATCH.
  const wf = load('workflow-prerun-ready.yaml');
  t.ok(Object.keys(wf.status!.env ?? {}).length > 0, 'the workflow has variables');
  const status = buildJobStatus({
    job, workflowRef: { namespace: 'default', name: wf.metadata.name }, workflow: wf, phase: 'failed',
    error: { code: 'USER_MISMATCH', message: 'workflow belongs to user 2000, not 1050' }, rabbit, timings: { trackedAt: 't' },
  });
  const text = renderFailedEnvFile(status);
  t.match(text, /^# nnf-env: job fkEPGJX8vhd workflow default\/fluxjob-321103304048246784 \(generated, do not edit\)\n/);
  const parsed = parseEnvFileWithFacts(text, 'x');
  t.same(parsed.vars, {}, 'no variable');
  t.same(parsed.facts, [
    { key: 'phase', value: 'failed' },
    { key: 'job-warning', value: 'workflow default/fluxjob-321103304048246784 failed, its variables are not set: workflow belongs to user 2000, not 1050' },
  ]);
  for (const name of Object.keys(wf.status!.env ?? {})) t.notOk(text.includes(`${name}=`), `${name} not in the file`);
});

t.test('notice file: facts only, with or without a workflow', async (t) => {
  const text = renderNoticeEnvFile({ id: 'fkEPGJX8vhd' }, null, { phase: 'node-error', warning: 'w' });
  t.equal(text, '# nnf-env: job fkEPGJX8vhd (generated, do not edit)\n# nnf-env:phase=node-error\n# nnf-env:warning=w\n');
  const named = renderNoticeEnvFile({ id: 'fkEPGJX8vhd' }, { namespace: 'default', name: 'fluxjob-1' }, { warning: 'w' });
  t.equal(named, '# nnf-env: job fkEPGJX8vhd workflow default/fluxjob-1 (generated, do not edit)\n# nnf-env:warning=w\n');
});
