/**
 * End to end: simulator over HTTP + the daemon in-process + the control socket client the
 * prolog uses + real files + real TCP listeners.
 */
import t from 'tap';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { trackJob, getJob, untrackJob } from '../../src/api/client.js';
import { dwsResource } from '../../src/kube/resource.js';
import { formatJobId } from '../../src/contract/jobid.js';
import { parseEnvFile, parseEnvFileWithFacts } from '../../src/contract/env-file.js';
import type { Workflow } from '../../src/domain/dws-types.js';
import type { JobStatus } from '../../src/contract/job-status.js';
import { NODE, RABBIT, startHarness, exists, eventually, readJson, newJobId } from '../daemon/harness.js';

const WF = dwsResource('workflows', 'v1alpha7');

t.test('non-MPI job: tracked before PreRun, delivered after, ports probed on the local rabbit', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = newJobId();
  const f = h.files(id);
  h.sim.submitJob({ jobId: id, userID: 1050, groupID: 1051, stopAt: 'DataIn' });
  const tracked = await trackJob(h.socketPath, formatJobId(id, 'dec'), 1050);
  t.equal(tracked.created, true);
  t.equal(tracked.status.phase, 'waiting');
  // Waiting in DataIn: a status file may say waiting, never an env file.
  await eventually('waiting status', async () => (await exists(f.status)) && (await readJson<JobStatus>(f.status)).phase === 'waiting');
  t.notOk(await exists(f.env), 'no env file before PreRun');

  h.sim.advance(`fluxjob-${id}`, 'PreRun');
  const st = await getJob(h.socketPath, formatJobId(id, 'f58'), { wait: true, timeoutMs: 15_000 });
  t.equal(st.phase, 'delivered');
  t.equal(st.job.id, formatJobId(id, 'f58plain'));
  t.equal(st.job.dec, id.toString());
  t.equal(st.rabbit.name, RABBIT);
  t.equal(st.rabbit.address, '127.0.0.1');
  t.equal(st.ports?.target, RABBIT);
  t.equal(st.ports?.address, '127.0.0.1');
  t.equal(st.ports?.results.length, 2);
  t.ok(st.ports?.results.every((r) => r.reachable), 'simulated user container ports reachable');

  const vars = parseEnvFile(await readFile(f.env, 'utf8'), f.env);
  t.equal(vars.NNF_ENV_LOCAL_RABBIT, RABBIT);
  t.equal(vars.NNF_ENV_LOCAL_RABBIT_ADDRESS, '127.0.0.1');
  t.equal(vars.NNF_ENV_CONTAINER_TARGET, RABBIT);
  t.equal(vars.NNF_ENV_JOB_ID, formatJobId(id, 'f58plain'));
  t.ok(vars.DW_JOB_scratch, 'DW_JOB_* from the finished PreRun');
  t.equal(vars.DW_WORKFLOW_NAME, `fluxjob-${id}`);
  t.equal(vars.NNF_CONTAINER_PORTS, st.ports?.results.map((r) => r.port).join(','));
  const fileStatus = await readJson<JobStatus>(f.status);
  t.same(fileStatus, st, 'the API answers what the status file says');
  t.ok(fileStatus.timings.preRunFinishedAt && fileStatus.timings.filesWrittenAt && fileStatus.timings.deliveredAt);

  const mode = (await stat(f.env)).mode & 0o777;
  t.equal(mode, 0o600);
  // Untrack removes files.
  t.equal(await untrackJob(h.socketPath, formatJobId(id, 'f58plain')), true);
  t.notOk(await exists(f.env));
  t.notOk(await exists(f.status));
  t.notOk(await exists(f.tracked));
  t.equal(await untrackJob(h.socketPath, formatJobId(id, 'f58plain')), false, 'second untrack: 404');
});

t.test('MPI job: the target is the launcher rabbit, resolved through its Node', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = newJobId();
  h.sim.submitJob({ jobId: id, userID: 1050, mpi: true });
  await trackJob(h.socketPath, id.toString(), 1050);
  const st = await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 15_000 });
  t.equal(st.phase, 'delivered');
  const vars = parseEnvFile(await readFile(h.files(id).env, 'utf8'), 'env');
  t.ok(vars.NNF_CONTAINER_LAUNCHER, 'launcher set');
  t.equal(vars.NNF_ENV_CONTAINER_TARGET, vars.NNF_CONTAINER_LAUNCHER);
  t.equal(st.ports?.target, vars.NNF_CONTAINER_LAUNCHER);
  t.ok(st.ports?.results.every((r) => r.reachable));
});

t.test('MPI launcher on another rabbit: its own Node address is probed', async (t) => {
  const h = await startHarness({ sim: { controllers: false } });
  t.teardown(() => h.close());
  // Another rabbit whose Node says 127.0.0.2 (loopback); a listener there plays the launcher.
  h.sim.create({ group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false }, {
    metadata: { name: 'rabbit-launcher' },
    status: { addresses: [{ type: 'Hostname', address: 'rabbit-launcher' }, { type: 'InternalIP', address: '127.0.0.2' }] },
  });
  const srv = await listen('127.0.0.2');
  t.teardown(() => srv.close());
  const port = (srv.address() as { port: number }).port;
  const id = newJobId();
  const name = `fluxjob-${id}`;
  h.sim.create<Workflow>(WF, readyWorkflow(id, 1050, name, { NNF_CONTAINER_PORTS: String(port), NNF_CONTAINER_LAUNCHER: 'rabbit-launcher' }));
  await trackJob(h.socketPath, id.toString(), 1050);
  const st = await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 15_000 });
  t.equal(st.phase, 'delivered');
  t.equal(st.ports?.target, 'rabbit-launcher');
  t.equal(st.ports?.address, '127.0.0.2');
  t.same(st.ports?.results.map((r) => [r.port, r.reachable]), [[port, true]]);
});

t.test('in-progress PreRun is never delivered; finishing it delivers', async (t) => {
  const h = await startHarness({ sim: { controllers: false } });
  t.teardown(() => h.close());
  const srv = await listen('127.0.0.1');
  t.teardown(() => srv.close());
  const port = (srv.address() as { port: number }).port;
  const id = newJobId();
  const name = `fluxjob-${id}`;
  const wf = readyWorkflow(id, 1050, name, { NNF_CONTAINER_PORTS: String(port) });
  // The in-progress step (REFERENCE: container keys first, DW_JOB_* later, ready=false).
  const inProgress: Workflow = structuredClone(wf);
  inProgress.status = { ...inProgress.status, ready: false, status: 'DriverWait', env: { DW_WORKFLOW_NAME: name, DW_WORKFLOW_NAMESPACE: 'default', NNF_CONTAINER_PORTS: String(port) } };
  h.sim.create<Workflow>(WF, inProgress);
  await trackJob(h.socketPath, id.toString(), 1050);
  const early = await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 700 });
  t.equal(early.phase, 'waiting', 'long poll times out with phase waiting');
  t.equal(early.workflow?.state, 'PreRun');
  t.equal(early.workflow?.ready, false);
  t.notOk(await exists(h.files(id).env), 'no env file while PreRun is in progress');

  const waiting = getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 15_000 });
  h.sim.patchMerge(WF, 'default', name, { status: { ready: true, status: 'Completed', env: wf.status!.env } });
  const st = await waiting;
  t.equal(st.phase, 'delivered');
  const vars = parseEnvFile(await readFile(h.files(id).env, 'utf8'), 'env');
  t.equal(vars.DW_JOB_scratch, '/mnt/nnf/x-0');
});

t.test('ports that open late are reported reachable; ports that never open are reported, job still delivered', async (t) => {
  const h = await startHarness({ config: { PROBE_DEADLINE: '1500ms' } });
  t.teardown(() => h.close());
  const late = newJobId();
  h.sim.submitJob({ jobId: late, userID: 1050, listenDelayMs: 400 });
  const never = newJobId();
  h.sim.submitJob({ jobId: never, userID: 1050, listen: false });
  await trackJob(h.socketPath, late.toString(), 1050);
  await trackJob(h.socketPath, never.toString(), 1050);
  const a = await getJob(h.socketPath, late.toString(), { wait: true, timeoutMs: 15_000 });
  t.equal(a.phase, 'delivered');
  t.ok(a.ports?.results.every((r) => r.reachable), 'late ports reachable');
  t.ok(a.ports?.results.some((r) => r.attempts > 1), 'after failed attempts');
  const b = await getJob(h.socketPath, never.toString(), { wait: true, timeoutMs: 15_000 });
  t.equal(b.phase, 'delivered', 'unreachable ports do not fail the delivery');
  t.ok(b.ports?.results.length && b.ports.results.every((r) => !r.reachable && r.attempts > 0 && r.lastError), 'never-open ports unreachable with an error');
  const env = await readFile(h.files(never).env, 'utf8');
  t.match(env, /# nnf-env:warning=user container port/, 'the env file tells the shell plugin');
});

t.test('watch faults while waiting (drops, 410 after compaction, 503s) do not lose the PreRun update', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = newJobId();
  h.sim.submitJob({ jobId: id, userID: 1050, stopAt: 'DataIn' });
  await trackJob(h.socketPath, id.toString(), 1050);
  await eventually('watching the waiting workflow', () => h.daemon!.jobs.get(id)?.workflow?.state === 'DataIn');
  const before = h.daemon!.status() as { watches: { reconnects: number; relists: number } };
  h.sim.faults.failNext({ status: 503, count: 3, retryAfterSeconds: 0 });
  h.sim.faults.dropWatches();
  h.sim.faults.compact();
  h.sim.advance(`fluxjob-${id}`, 'PreRun');
  const st = await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 20_000 });
  t.equal(st.phase, 'delivered');
  const after = h.daemon!.status() as { watches: { reconnects: number; relists: number }; connection: { state: string } };
  t.ok(after.watches.reconnects > before.watches.reconnects, 'watches reconnected');
  await eventually('connection ok again', () => (h.daemon!.status() as { connection: { state: string } }).connection.state === 'ok');
  t.pass('recovered');
});

t.test('job without a workflow: no-workflow, no files', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = newJobId();
  const t0 = performance.now();
  await trackJob(h.socketPath, id.toString(), 1050);
  const st = await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 10_000 });
  t.comment(`no-workflow answered (track + long poll, as the prolog does) in ${(performance.now() - t0).toFixed(1)} ms`);
  t.equal(st.phase, 'no-workflow');
  t.equal(st.workflow, null);
  t.notOk(await exists(h.files(id).env));
  t.notOk(await exists(h.files(id).status));
});

t.test('mismatched user id: failed, never delivered', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = newJobId();
  h.sim.submitJob({ jobId: id, userID: 2000 });
  await trackJob(h.socketPath, id.toString(), 1050);
  const st = await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 10_000 });
  t.equal(st.phase, 'failed');
  t.equal(st.error?.code, 'USER_MISMATCH');
  t.equal((await readJson<JobStatus>(h.files(id).status)).phase, 'failed');
  // An env file for the shell plugin's warning, with none of the other user's variables.
  const wf = h.sim.get<Workflow>(WF, 'default', `fluxjob-${id}`);
  t.ok(Object.keys(wf?.status?.env ?? {}).length > 0, 'the other user\'s workflow has variables');
  const { vars, facts } = parseEnvFileWithFacts(await readFile(h.files(id).env), 'env');
  t.same(vars, {}, 'no variable at all');
  t.same(facts.filter((f) => f.key === 'phase'), [{ key: 'phase', value: 'failed' }]);
  t.match(facts.filter((f) => f.key === 'job-warning').map((f) => f.value).join('\n'), /failed, its variables are not set: /);
  const est = await stat(h.files(id).env);
  t.equal(est.mode & 0o777, 0o600, 'mode 0600');
  if (process.getuid?.() === 0) t.equal(est.uid, 1050, 'owned by the tracked job user');
});

t.test('workflow error: failed with the workflow message', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = newJobId();
  h.sim.submitJob({ jobId: id, userID: 1050, failAt: 'Setup' });
  await trackJob(h.socketPath, id.toString(), 1050);
  const st = await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 10_000 });
  t.equal(st.phase, 'failed');
  t.equal(st.error?.code, 'WORKFLOW_ERROR');
  t.ok(st.error?.message);
  const { vars, facts } = parseEnvFileWithFacts(await readFile(h.files(id).env), 'env');
  t.same(vars, {}, 'an env file without variables');
  t.ok(facts.some((f) => f.key === 'job-warning' && f.value.includes(st.error!.message.slice(0, 40))), 'its job-warning has the workflow\'s message');
});

t.test('hosts block and local-rabbit.conf', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const hosts = await readFile(h.hostsFile, 'utf8');
  t.match(hosts, /^127\.0\.0\.1\tlocalhost\n::1\tlocalhost ip6-localhost\n# admin entry\n10\.1\.2\.3 storage-gw\n/, 'admin lines kept');
  t.match(hosts, /# BEGIN nnf-env managed block[^\n]*\n127\.0\.0\.1\s+local-rabbit\n# END nnf-env managed block/);
  t.equal(await readFile(h.localRabbitConf, 'utf8'), `${RABBIT}\n`);
  const status = h.daemon!.status() as { rabbit: { name: string; source: string; address: string; addressSource: string } };
  t.equal(status.rabbit.name, RABBIT);
  t.equal(status.rabbit.source, 'systemconfiguration');
  t.equal(status.rabbit.addressSource, 'node');
  t.equal(NODE, 'compute-test');
});

function readyWorkflow(id: bigint, userID: number, name: string, env: Record<string, string>): Workflow {
  return {
    apiVersion: 'dataworkflowservices.github.io/v1alpha7',
    kind: 'Workflow',
    metadata: { name, namespace: 'default', uid: 'x' },
    spec: { desiredState: 'PreRun', wlmID: 'flux', jobID: formatJobId(id, 'f58plain'), userID, groupID: userID, hurry: false, forceReady: false, dwDirectives: [] },
    status: {
      state: 'PreRun',
      ready: true,
      status: 'Completed',
      message: '',
      env: { DW_WORKFLOW_NAME: name, DW_WORKFLOW_NAMESPACE: 'default', DW_JOB_scratch: '/mnt/nnf/x-0', ...env },
    },
  };
}

function listen(host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer((s) => s.destroy());
    srv.once('error', reject);
    srv.listen(0, host, () => resolve(srv));
  });
}
