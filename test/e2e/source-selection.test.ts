/**
 * Which source answers a job, against the simulator with a stand-in `flux` command:
 * - kube mode reads the jobspec first: a job without #DW is answered `no-workflow` with no
 *   request about its workflow (and a failing flux command only falls back to the lookup);
 * - auto mode uses the eventlog for the jobs flux-coral2 handles, the Workflow for others;
 * - kube mode honours dw_failure_tolerance through the workflow's Computes.
 * Every request the simulator gets is recorded (the spy never fails one).
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { getJob, trackJob } from '../../src/api/client.js';
import { dwsResource } from '../../src/kube/resource.js';
import { formatJobId } from '../../src/contract/jobid.js';
import { parseEnvFile } from '../../src/contract/env-file.js';
import type { Computes, Workflow } from '../../src/domain/dws-types.js';
import type { RequestInfo } from '../../src/sim/index.js';
import { startHarness, newJobId, NODE, type Harness } from '../daemon/harness.js';
import { makeStandInFlux } from '../flux/stand-in.js';

const WF = dwsResource('workflows', 'v1alpha7');
const COMPUTES = dwsResource('computes', 'v1alpha7');
const USER = 1050;

function workflow(id: bigint, env: Record<string, string>, computes?: string): Workflow {
  const name = `fluxjob-${id}`;
  return {
    metadata: { name, namespace: 'default', uid: `u-${id}` },
    spec: { desiredState: 'PreRun', wlmID: 'flux', jobID: formatJobId(id, 'f58plain'), userID: USER, groupID: USER, hurry: false, forceReady: false },
    status: { state: 'PreRun', ready: true, status: 'Completed', message: '', env: { DW_WORKFLOW_NAME: name, DW_WORKFLOW_NAMESPACE: 'default', ...env }, ...(computes ? { computes: { name: computes, namespace: 'default' } } : {}) },
  };
}

async function rig(config: Record<string, string>): Promise<{ h: Harness; seen: RequestInfo[]; flux: Awaited<ReturnType<typeof makeStandInFlux>> }> {
  const h = await startHarness({ sim: { controllers: false }, noDaemon: true });
  const seen: RequestInfo[] = [];
  h.sim.faults.failNext({ status: 500, count: Infinity, match: (r) => { seen.push(r); return false; } });
  const flux = await makeStandInFlux(h.dir);
  await h.startDaemon({ FLUX_COMMAND: flux.command, ...config });
  return { h, seen, flux };
}

/** Requests about workflows since `from` (the watch names its workflow in a field selector, not the path). */
const about = (seen: RequestInfo[], from: number) => seen.slice(from).filter((r) => r.path.includes('/workflows'));

t.test('kube mode: a job without #DW costs no request about its workflow', async (t) => {
  const { h, seen, flux } = await rig({ ENV_SOURCE: 'kube' });
  t.teardown(() => h.close());
  const id = newJobId();
  await flux.addJob(id, { userID: USER });
  const mark = seen.length;
  await trackJob(h.socketPath, id.toString(), USER);
  const st = await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 10_000 });
  t.equal(st.phase, 'no-workflow');
  t.same(about(seen, mark), [], 'the jobspec answered; the API server heard nothing of this job');

  // A job with #DW: the workflow watch as before.
  const id2 = newJobId();
  await flux.addJob(id2, { userID: USER, dw: '#DW jobdw type=xfs capacity=1GiB name=a', coral2: false });
  h.sim.create(WF, workflow(id2, { DW_JOB_a: '/mnt/nnf/a' }));
  const mark2 = seen.length;
  await trackJob(h.socketPath, id2.toString(), USER);
  t.equal((await getJob(h.socketPath, id2.toString(), { wait: true, timeoutMs: 10_000 })).phase, 'delivered');
  t.ok(about(seen, mark2).length > 0, 'looked up in Kubernetes');
});

t.test('kube mode without a working flux command: the lookup answers as before', async (t) => {
  const { h, seen } = await rig({ ENV_SOURCE: 'kube', FLUX_COMMAND: '/nonexistent/flux' });
  t.teardown(() => h.close());
  const id = newJobId();
  const mark = seen.length;
  await trackJob(h.socketPath, id.toString(), USER);
  t.equal((await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 10_000 })).phase, 'no-workflow');
  t.ok(about(seen, mark).length > 0, 'the workflow lookup');
});

t.test('auto mode: flux-coral2\'s jobs from the eventlog, the others from their Workflow', async (t) => {
  const { h, seen, flux } = await rig({ ENV_SOURCE: 'auto' });
  t.teardown(() => h.close());
  const a = newJobId();
  await flux.addJob(a, { userID: USER, dw: '#DW jobdw type=xfs capacity=1GiB name=a' });
  await flux.post(a, 'dws_environment', { variables: { DW_JOB_a: '/mnt/nnf/from-event' } });
  const mark = seen.length;
  await trackJob(h.socketPath, a.toString(), USER);
  t.equal((await getJob(h.socketPath, a.toString(), { wait: true, timeoutMs: 10_000 })).phase, 'delivered');
  t.equal(parseEnvFile(await readFile(h.files(a).env, 'utf8'), 'env').DW_JOB_a, '/mnt/nnf/from-event');
  t.same(about(seen, mark), [], 'no request about a job flux-coral2 handles');

  const b = newJobId();
  await flux.addJob(b, { userID: USER, dw: '#DW jobdw type=xfs capacity=1GiB name=b', coral2: false });
  h.sim.create(WF, workflow(b, { DW_JOB_b: '/mnt/nnf/from-workflow' }));
  await trackJob(h.socketPath, b.toString(), USER);
  t.equal((await getJob(h.socketPath, b.toString(), { wait: true, timeoutMs: 10_000 })).phase, 'delivered');
  t.equal(parseEnvFile(await readFile(h.files(b).env, 'utf8'), 'env').DW_JOB_b, '/mnt/nnf/from-workflow');
});

t.test('kube mode: a node missing from the workflow\'s Computes gets no mount paths, and is told', async (t) => {
  const { h, flux } = await rig({ ENV_SOURCE: 'kube' });
  t.teardown(() => h.close());
  const id = newJobId();
  await flux.addJob(id, { userID: USER, dw: '#DW jobdw type=xfs capacity=1GiB name=a', coral2: false });
  h.sim.create<Computes>(COMPUTES, { metadata: { name: `fluxjob-${id}`, namespace: 'default' }, data: [{ name: 'compute-other' }] });
  h.sim.create(WF, workflow(id, { DW_JOB_a: '/mnt/nnf/a', DW_JOBS: 'a:/mnt/nnf/a', NNF_CONTAINER_HOSTNAMES: 'r1' }, `fluxjob-${id}`));
  await trackJob(h.socketPath, id.toString(), USER);
  const st = (await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 10_000 })) as Awaited<ReturnType<typeof getJob>> & { warnings?: string[] };
  t.equal(st.phase, 'delivered');
  const vars = parseEnvFile(await readFile(h.files(id).env, 'utf8'), 'env');
  t.notOk('DW_JOB_a' in vars);
  t.notOk('DW_JOBS' in vars);
  t.equal(vars.NNF_CONTAINER_HOSTNAMES, 'r1');
  t.match(st.warnings?.join('\n'), new RegExp(`this node \\(${NODE}\\) is not in the workflow's Computes default/fluxjob-${id}.*DW_JOBS, DW_JOB_a not set on this node`));

  // Listed: everything.
  const id2 = newJobId();
  await flux.addJob(id2, { userID: USER, dw: '#DW jobdw type=xfs capacity=1GiB name=a', coral2: false });
  h.sim.create<Computes>(COMPUTES, { metadata: { name: `fluxjob-${id2}`, namespace: 'default' }, data: [{ name: 'compute-other' }, { name: NODE }] });
  h.sim.create(WF, workflow(id2, { DW_JOB_a: '/mnt/nnf/a' }, `fluxjob-${id2}`));
  await trackJob(h.socketPath, id2.toString(), USER);
  await getJob(h.socketPath, id2.toString(), { wait: true, timeoutMs: 10_000 });
  t.equal(parseEnvFile(await readFile(h.files(id2).env, 'utf8'), 'env').DW_JOB_a, '/mnt/nnf/a');
});
