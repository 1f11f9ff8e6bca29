/**
 * ENV_SOURCE=flux end to end: nnf-envd takes each job's environment from the
 * `dws_environment` event of its eventlog, read through a stand-in `flux` command that prints
 * what flux-core prints (../flux/stand-in-flux.ts), and makes no Kubernetes request at all
 * (every request the simulator receives is recorded; it must see none, although a kubeconfig
 * for it is configured). The same full-path checks as the kube source (full-path.test.ts):
 * `nnf-env prolog` as Flux runs it, the Lua plugin on the files, the helper as the job's user,
 * real TCP listeners for the user container's ports. Also: a job without #DW costs one
 * `flux job info` and nothing else, a fatal exception is reported and never added to, a node
 * removed under dw_failure_tolerance gets no DW_JOB_* paths, a late event after several
 * wait-event timeouts is still delivered.
 */
import t, { type Test } from 'tap';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { formatJobId } from '../../src/contract/jobid.js';
import type { RequestInfo } from '../../src/sim/index.js';
import { parseEnvFile } from '../../src/contract/env-file.js';
import { getJob, getStatus, trackJob } from '../../src/api/client.js';
import { startHarness, newJobId, exists, eventually, NODE, type Harness } from '../daemon/harness.js';
import { LuaPluginHarness } from '../lua/harness.js';
import { jobSide } from './job-side.js';
import { runCli, type CliResult } from '../cli/job-files.js';
import { makeStandInFlux, type StandInFlux } from '../flux/stand-in.js';

const USER = 1050;
const RABBIT = 'rabbit-flux-1';

let h: Harness;
let flux: StandInFlux;
let lua: LuaPluginHarness;
let conf: string;
const kubeRequests: RequestInfo[] = [];
const listeners: net.Server[] = [];
let ports: number[] = [];

t.before(async () => {
  h = await startHarness({ noDaemon: true });
  await chmod(h.dir, 0o755);
  // Every request that reaches the API server, whatever it is (the rule never fails one).
  h.sim.faults.failNext({ status: 500, count: Infinity, match: (r) => { kubeRequests.push(r); return false; } });
  flux = await makeStandInFlux(h.dir);
  // The rabbit from `flux rabbitmapping`'s file, its address from configuration: no API.
  await writeFile(h.flags.RABBIT_MAPPING_FILE!, JSON.stringify({ computes: { [NODE]: RABBIT }, rabbits: { [RABBIT]: { hostlist: NODE, capacity: 1 } } }));
  const extra = { ENV_SOURCE: 'flux', FLUX_COMMAND: flux.command, RABBIT_ADDRESS: '127.0.0.1', WATCH_TIMEOUT: '1s' };
  Object.assign(h.flags, extra);
  conf = join(h.dir, 'nnf-env.conf');
  await writeFile(conf, Object.entries(h.flags).map(([k, v]) => `${k}=${v}\n`).join(''));
  await h.startDaemon();
  lua = await LuaPluginHarness.create();
  // The user container: two real listeners on loopback.
  for (let i = 0; i < 2; i++) {
    const s = net.createServer((c) => c.end());
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    listeners.push(s);
  }
  ports = listeners.map((s) => (s.address() as net.AddressInfo).port);
});
t.teardown(async () => {
  for (const s of listeners) s.close();
  await h.close();
});

function prolog(id: bigint, which: 'prolog' | 'epilog' = 'prolog'): Promise<CliResult> {
  return runCli([which], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', FLUX_JOB_ID: formatJobId(id, 'f58'), FLUX_JOB_USERID: String(USER), NNF_ENV_CONFIG: conf } });
}

const { helper, plugin } = jobSide(() => h, () => lua, USER);

/** status.env as flux-coral2's coral2_dws.py sends it (plus DW_WORKFLOW_TOKEN from the Secret). */
function workflowEnv(id: bigint): Record<string, string> {
  return {
    DW_WORKFLOW_NAME: `fluxjob-${id}`,
    DW_WORKFLOW_NAMESPACE: 'default',
    DW_JOB_my_xfs: `/mnt/nnf/6b1f0a2e-${id}-0`,
    DW_JOBS: `my_xfs:/mnt/nnf/6b1f0a2e-${id}-0`,
    NNF_CONTAINER_PORTS: ports.join(','),
    NNF_CONTAINER_HOSTNAMES: `${RABBIT}`,
    DW_WORKFLOW_TOKEN: 'tok-from-the-event',
  };
}

t.test('a delivered job: prolog, Lua plugin and helper agree with the event, variable by variable; no Kubernetes request', async (t) => {
  const id = newJobId();
  await flux.addJob(id, { userID: USER, dw: '#DW jobdw type=xfs capacity=1GiB name=my_xfs' });
  const env = workflowEnv(id);
  // The event comes while the prolog waits, once a wait-event has timed out (WATCH_TIMEOUT=1s)
  // and the daemon has started the next one.
  const waitsFor = async () => (await flux.calls()).filter((c) => c[1] === 'wait-event' && c.includes(id.toString())).length;
  const posting = eventually('a second wait-event', async () => (await waitsFor()) >= 2, 30_000, 50)
    .then(() => flux.post(id, 'dws_environment', { variables: env }))
    .then(() => flux.post(id, 'prolog-finish', { description: 'dws-setup', status: 0 }));
  const p = await prolog(id);
  await posting;
  t.equal(p.code, 0, p.stderr);
  t.match(p.stdout + p.stderr, new RegExp(`job ${formatJobId(id, 'f58')} workflow default/fluxjob-${id} delivered \\(\\d+ variables; 2 ports reachable\\)`));

  const expected = { ...env, NNF_ENV_LOCAL_RABBIT: RABBIT, NNF_ENV_LOCAL_RABBIT_ADDRESS: '127.0.0.1', NNF_ENV_CONTAINER_TARGET: RABBIT, NNF_ENV_JOB_ID: formatJobId(id, 'f58plain') };
  const run = await plugin(id);
  const set: Record<string, string> = {};
  for (const s of run.setenv) set[s.name] = s.value.toString('utf8');
  t.same(Object.keys(set).sort(), Object.keys(expected).sort(), 'the plugin sets exactly the expected variables');
  for (const [name, value] of Object.entries(expected)) t.equal(set[name], value, `plugin: ${name}`);
  t.same(run.errors, []);

  const exp = await helper(id, ['export', '--format', 'json']);
  t.equal(exp.code, 0, exp.stderr);
  t.same(JSON.parse(exp.stdout), expected, 'nnf-env export: the same variables');
  t.equal((await helper(id, ['endpoint', '--all'])).stdout, ports.map((p) => `${RABBIT}:${p}\n`).join(''), 'endpoint: the rabbit\'s name');
  const cp = await helper(id, ['check-ports']);
  t.equal(cp.code, 0, cp.stdout + cp.stderr);

  const calls = await flux.calls();
  const waits = calls.filter((c) => c[1] === 'wait-event' && c.includes(id.toString()));
  t.ok(waits.length >= 2, `wait-event resumed after its timeout (${waits.length} calls)`);
  t.ok(waits.every((c) => c.includes('-v') && c.includes('json') && c.at(-1) === 'dws_environment'));

  const e = await prolog(id, 'epilog');
  t.equal(e.code, 0);
  t.notOk(await exists(h.files(id).env));
  t.same(kubeRequests, [], 'no request reached the Kubernetes API server');
});

t.test('a job without #DW: one flux job info, no eventlog watch, no API request', async (t) => {
  const id = newJobId();
  await flux.addJob(id, { userID: USER });
  const before = (await flux.calls()).length;
  const p = await prolog(id);
  t.equal(p.code, 0);
  t.match(p.stdout + p.stderr, /no workflow in \d+ms/);
  const calls = (await flux.calls()).slice(before);
  t.same(calls, [['job', 'info', id.toString(), 'jobspec']], 'the jobspec alone answered');
  const run = await plugin(id);
  t.same(run.setenv, []);
  t.same(run.logs, []);
  t.equal((await helper(id, ['export'])).code, 5);
  await prolog(id, 'epilog');
  t.same(kubeRequests, []);
});

t.test('flux-coral2\'s fatal exception: reported to the user, never added to', async (t) => {
  const id = newJobId();
  await flux.addJob(id, { userID: USER, dw: '#DW jobdw type=xfs capacity=1GiB name=x' });
  await flux.post(id, 'exception', { type: 'exception', severity: 0, note: 'DWS/Rabbit interactions failed: workflow hit an error: bad things', userid: 0 });
  const p = await prolog(id);
  t.equal(p.code, 0, 'the prolog does not fail (no second exception, no drain)');
  t.match(p.stdout + p.stderr, /failed \(user job problem/);
  const st = await getJob(h.socketPath, id.toString());
  t.equal(st.phase, 'failed');
  t.match(st.error?.message, /workflow hit an error: bad things/);
  t.match(st.error?.message, new RegExp(`flux job info ${formatJobId(id, 'f58')} rabbit_workflow`), 'points at flux-coral2\'s record');
  const run = await plugin(id);
  t.same(run.setenv, []);
  const calls = (await flux.calls()).filter((c) => c.includes(id.toString()));
  t.notOk(calls.some((c) => c[1] === 'raise' || c[1] === 'cancel' || c[0] === 'resource'), 'nnf-env raises nothing, drains nothing');
  await prolog(id, 'epilog');
});

t.test('dw_failure_tolerance: this node was removed, so no DW_JOB_* paths, and the user is told', async (t) => {
  const id = newJobId();
  await flux.addJob(id, { userID: USER, dw: '#DW jobdw type=xfs capacity=1GiB name=my_xfs', failureTolerance: 2 });
  await flux.post(id, 'exception', { type: 'dws-node-failure', severity: 1, note: `compute[1-3],${NODE}`, userid: 0 });
  await flux.post(id, 'dws_environment', { variables: workflowEnv(id) });
  await trackJob(h.socketPath, id.toString(), USER);
  const st = (await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 10_000 })) as Awaited<ReturnType<typeof getJob>> & { warnings?: string[] };
  t.equal(st.phase, 'delivered');
  const vars = parseEnvFile(await readFile(h.files(id).env, 'utf8'), 'env');
  t.notOk('DW_JOB_my_xfs' in vars, 'the mount path is withheld');
  t.notOk('DW_JOBS' in vars);
  t.equal(vars.NNF_CONTAINER_PORTS, ports.join(','), 'the rest is delivered');
  t.match(st.warnings?.join('\n'), /removed from the workflow \(dws-node-failure .*; see flux job info \S+ rabbit_workflow\): DW_JOBS, DW_JOB_my_xfs not set on this node/);
  const run = await plugin(id);
  t.match(run.logs.join('\n'), /DW_JOB_my_xfs/, 'the shell tells the user on this node');

  // Another node's failure changes nothing here.
  const id2 = newJobId();
  await flux.addJob(id2, { userID: USER, dw: '#DW jobdw type=xfs capacity=1GiB name=my_xfs', failureTolerance: 2 });
  await flux.post(id2, 'exception', { type: 'dws-node-failure', severity: 1, note: 'compute-[1-9]', userid: 0 });
  await flux.post(id2, 'dws_environment', { variables: workflowEnv(id2) });
  await trackJob(h.socketPath, id2.toString(), USER);
  await getJob(h.socketPath, id2.toString(), { wait: true, timeoutMs: 10_000 });
  t.ok('DW_JOB_my_xfs' in parseEnvFile(await readFile(h.files(id2).env, 'utf8'), 'env'));
  t.same(kubeRequests, []);
});

t.test('a container port that does not answer: the user is pointed at rabbit_container_log', async (t) => {
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const id = newJobId();
  await flux.addJob(id, { userID: USER, dw: '#DW container name=c profile=p' });
  await flux.post(id, 'dws_environment', { variables: { NNF_CONTAINER_PORTS: String(port) } });
  await trackJob(h.socketPath, id.toString(), USER);
  const st = (await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 20_000 })) as Awaited<ReturnType<typeof getJob>> & { warnings?: string[] };
  t.equal(st.phase, 'delivered');
  t.equal(st.ports?.results[0]?.reachable, false);
  t.match(st.warnings?.join('\n'), new RegExp(`flux job info ${formatJobId(id, 'f58')} rabbit_container_log`));
  const run = await plugin(id);
  t.match(run.logs.join('\n'), /rabbit_container_log/, 'the shell says it');
});

t.test('the daemon reports flux mode and no connection', async (t) => {
  const s = await getStatus(h.socketPath);
  t.equal(s.envSource, 'flux');
  t.match(s.connection, { state: 'none', server: null });
  t.same(kubeRequests, [], 'still no request');
});

t.test('flux mode starts with no Kubernetes credentials anywhere', async (t: Test) => {
  const h2 = await startHarness({ noDaemon: true });
  t.teardown(() => h2.close());
  await writeFile(h2.flags.RABBIT_MAPPING_FILE!, JSON.stringify({ computes: { [NODE]: RABBIT }, rabbits: {} }));
  // auto would try explicit, kubeconfig, in-cluster: none exists.
  const d = await h2.startDaemon({ ENV_SOURCE: 'flux', FLUX_COMMAND: flux.command, KUBE_CONNECTION: 'auto', KUBECONFIG: join(h2.dir, 'no-such-kubeconfig'), RABBIT_ADDRESS: '127.0.0.1' });
  t.equal(d.dwsVersion, '');
  t.equal(d.rabbit.current.rabbit, RABBIT, 'the rabbit from the rabbitmapping file');
});
