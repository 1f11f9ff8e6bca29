/**
 * Job file details end to end: ownership and mode (as root), another user cannot read them,
 * the workflow token, rejected variables, GC at start, and discovery=computes.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { chmod, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { getJob, trackJob } from '../../src/api/client.js';
import { SECRETS, dwsResource } from '../../src/kube/resource.js';
import { formatJobId } from '../../src/contract/jobid.js';
import { parseEnvFile, parseEnvFileWithFacts } from '../../src/contract/env-file.js';
import type { Workflow } from '../../src/domain/dws-types.js';
import type { JobStatus } from '../../src/contract/job-status.js';
import { NODE, startHarness, exists, eventually, readJson, newJobId } from '../daemon/harness.js';

const WF = dwsResource('workflows', 'v1alpha7');
const isRoot = process.getuid?.() === 0;

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

function workflow(id: bigint, userID: number, env: Record<string, string>, extra: Partial<NonNullable<Workflow['status']>> = {}, groupID = userID): Workflow {
  const name = `fluxjob-${id}`;
  return {
    metadata: { name, namespace: 'default', uid: 'u-1' },
    spec: { desiredState: 'PreRun', wlmID: 'flux', jobID: formatJobId(id, 'f58plain'), userID, groupID, hurry: false, forceReady: false },
    status: { state: 'PreRun', ready: true, status: 'Completed', message: '', env: { DW_WORKFLOW_NAME: name, DW_WORKFLOW_NAMESPACE: 'default', ...env }, ...extra },
  };
}

t.test('files are owned by the job user and group, mode 0600, unreadable to others', { skip: !isRoot && 'needs root' }, async (t) => {
  const h = await startHarness({ sim: { controllers: false } });
  t.teardown(() => h.close());
  // The sandbox is 0700 (mkdtemp); open it like /run so only file modes decide.
  await chmod(h.dir, 0o755);
  const id = newJobId();
  h.sim.create(WF, workflow(id, 4242, { DW_JOB_x: '/mnt/nnf/a' }, {}, 4343));
  await trackJob(h.socketPath, id.toString(), 4242);
  t.equal((await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 10_000 })).phase, 'delivered');
  const f = h.files(id);
  for (const p of [f.env, f.status]) {
    const st = await stat(p);
    t.equal(st.uid, 4242, `${p} uid`);
    t.equal(st.gid, 4343, `${p} gid from spec.groupID`);
    t.equal(st.mode & 0o7777, 0o600, `${p} mode`);
  }
  const jobsDir = await stat(h.jobsDir);
  t.equal(jobsDir.mode & 0o7777, 0o711, 'jobs dir traversable, not listable');
  t.equal(jobsDir.uid, 0);
  t.equal((await stat(h.runtimeDir)).mode & 0o7777, 0o755);
  t.equal((await stat(join(h.jobsDir, '.tracked'))).mode & 0o7777, 0o700);

  const other = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'cat', f.env]);
  t.not(other.code, 0, 'another user cannot read the env file');
  t.match(other.stderr, /Permission denied/);
  const otherList = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'ls', h.jobsDir]);
  t.not(otherList.code, 0, 'another user cannot list the jobs directory');
  const owner = await run('setpriv', ['--reuid=4242', '--regid=4343', '--clear-groups', 'cat', f.env]);
  t.equal(owner.code, 0, 'the job user reads its own file');
  t.match(owner.stdout, /DW_JOB_x='\/mnt\/nnf\/a'/);

  // A failed job (user mismatch): status file for the tracked user, group from the user database.
  const bad = newJobId();
  h.sim.create(WF, workflow(bad, 1, {}));
  await trackJob(h.socketPath, bad.toString(), 65534);
  t.equal((await getJob(h.socketPath, bad.toString(), { wait: true, timeoutMs: 10_000 })).phase, 'failed');
  const st = await stat(h.files(bad).status);
  t.equal(st.uid, 65534);
  t.equal(st.gid, 65534, 'primary gid of nobody from /etc/passwd (the workflow\'s group is not trusted)');
});

t.test('workflow token (WORKFLOW_TOKEN=true), rejected variables', async (t) => {
  const h = await startHarness({ sim: { controllers: false }, config: { WORKFLOW_TOKEN: 'true' } });
  t.teardown(() => h.close());
  h.sim.create(SECRETS, { metadata: { name: 'tok', namespace: 'default' }, data: { token: Buffer.from('s3cr3t-token').toString('base64') } });
  const id = newJobId();
  h.sim.create(WF, workflow(id, 1050, {
    DW_JOB_ok: '/mnt/nnf/ok',
    LD_PRELOAD: '/tmp/evil.so',
    PATH: '/tmp',
    NNF_NL: 'a\nb',
    DW_BOTH: `it's "$HOME"`,
    'DW_BAD-NAME': 'x',
    // The old per-node name, now an ordinary NNF_ variable; the new one is reserved.
    NNF_LOCAL_RABBIT: 'from-the-workflow',
    NNF_ENV_LOCAL_RABBIT: 'spoofed',
  }, { workflowToken: { secretName: 'tok', secretNamespace: 'default' } }));
  await trackJob(h.socketPath, id.toString(), 1050);
  const st = await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 10_000 });
  t.equal(st.phase, 'delivered');
  const { vars, facts } = parseEnvFileWithFacts(await readFile(h.files(id).env, 'utf8'), 'env');
  t.equal(vars.DW_WORKFLOW_TOKEN, 's3cr3t-token', 'token from the secret');
  t.equal(vars.DW_JOB_ok, '/mnt/nnf/ok');
  t.equal(vars.NNF_ENV_LOCAL_RABBIT, 'rabbit-sim', 'a workflow cannot set the per-node variables');
  t.equal(vars.NNF_LOCAL_RABBIT, 'from-the-workflow', 'a name in nnf-sos\'s NNF_ namespace is the workflow\'s, never shadowed');
  for (const n of ['LD_PRELOAD', 'PATH', 'NNF_NL', 'DW_BOTH', 'DW_BAD-NAME']) t.notOk(n in vars, `${n} not written`);
  const reasons = Object.fromEntries(st.rejected.map((r) => [r.name, r.reason]));
  t.same(reasons, { LD_PRELOAD: 'prefix-not-allowed', PATH: 'prefix-not-allowed', NNF_NL: 'control-character', DW_BOTH: 'unrepresentable', 'DW_BAD-NAME': 'invalid-name', NNF_ENV_LOCAL_RABBIT: 'reserved-name' });
  t.ok(st.variables.includes('DW_WORKFLOW_TOKEN'), 'the token is listed by name');
  const statusText = await readFile(h.files(id).status, 'utf8');
  t.notMatch(statusText, /s3cr3t/, 'the token value is not in the status file');
  t.ok(facts.some((f) => f.key === 'job-warning' && /LD_PRELOAD/.test(f.value)), 'rejections told in the env file');

  // Secret missing: delivered without the token, with a warning.
  const id2 = newJobId();
  h.sim.create(WF, workflow(id2, 1050, {}, { workflowToken: { secretName: 'missing', secretNamespace: 'default' } }));
  await trackJob(h.socketPath, id2.toString(), 1050);
  const st2 = (await getJob(h.socketPath, id2.toString(), { wait: true, timeoutMs: 10_000 })) as JobStatus & { warnings?: string[] };
  t.equal(st2.phase, 'delivered');
  t.notOk(parseEnvFile(await readFile(h.files(id2).env, 'utf8'), 'env').DW_WORKFLOW_TOKEN);
  t.match(st2.warnings?.join(' '), /workflow token secret default\/missing unavailable/);
});

t.test('WORKFLOW_TOKEN is off by default: the token stays out', async (t) => {
  const h = await startHarness({ sim: { controllers: false } });
  t.teardown(() => h.close());
  h.sim.create(SECRETS, { metadata: { name: 'tok', namespace: 'default' }, data: { token: Buffer.from('zzz').toString('base64') } });
  const id = newJobId();
  h.sim.create(WF, workflow(id, 1050, {}, { workflowToken: { secretName: 'tok', secretNamespace: 'default' } }));
  await trackJob(h.socketPath, id.toString(), 1050);
  t.equal((await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 10_000 })).phase, 'delivered');
  t.notOk(parseEnvFile(await readFile(h.files(id).env, 'utf8'), 'env').DW_WORKFLOW_TOKEN);
});

t.test('GC at start: files of untracked jobs whose workflow is gone are removed, others kept', async (t) => {
  const h = await startHarness({ noDaemon: true, sim: { controllers: false } });
  t.teardown(() => h.close());
  await mkdir(h.jobsDir, { recursive: true });
  const gone = newJobId();
  const alive = newJobId();
  h.sim.create(WF, workflow(alive, 1050, {}));
  for (const id of [gone, alive]) {
    await writeFile(h.files(id).env, "DW_X='1'\n");
    await writeFile(h.files(id).status, '{}\n');
  }
  await writeFile(join(h.jobsDir, 'not-a-job.env'), 'x');
  await h.startDaemon({ GC_INTERVAL: '1s' });
  await eventually('gone files removed', async () => !(await exists(h.files(gone).env)) && !(await exists(h.files(gone).status)));
  t.ok(await exists(h.files(alive).env), 'files of a job whose workflow exists are kept');
  t.ok(await exists(join(h.jobsDir, 'not-a-job.env')), 'foreign names are left alone');
  // Periodic GC: the workflow of a delivered, tracked job goes away (no epilog came).
  const id = newJobId();
  h.sim.create(WF, workflow(id, 1050, {}));
  await trackJob(h.socketPath, id.toString(), 1050);
  t.equal((await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 10_000 })).phase, 'delivered');
  h.sim.delete(WF, 'default', `fluxjob-${id}`);
  await eventually('periodic GC untracks it', async () => !(await exists(h.files(id).env)) && !(await exists(h.files(id).tracked)), 10_000, 50);
});

t.test('discovery=computes: a Computes that lists this node tracks its job', async (t) => {
  const h = await startHarness({ config: { DISCOVERY: 'computes' } });
  t.teardown(() => h.close());
  const mine = newJobId();
  const other = newJobId();
  h.sim.submitJob({ jobId: mine, userID: 1050, computes: [NODE, 'compute-99'] });
  h.sim.submitJob({ jobId: other, userID: 1050, computes: ['compute-99'] });
  const f = h.files(mine);
  await eventually('delivered without a prolog', async () => (await exists(f.status)) && (await readJson<JobStatus>(f.status)).phase === 'delivered', 15_000);
  const st = await readJson<JobStatus>(f.status);
  t.equal(st.job.userID, 1050, 'user from the workflow spec');
  t.notOk(await exists(h.files(other).status), 'a job of other nodes is not tracked');
  t.notOk(h.daemon!.jobs.get(other));
  const record = JSON.parse(await readFile(f.tracked, 'utf8'));
  t.equal(record.source, 'computes');
  // Workflow deletion removes the Computes: the job is untracked and its files removed.
  h.sim.delete(WF, 'default', `fluxjob-${mine}`);
  await eventually('untracked after the Computes went away', async () => !(await exists(f.env)) && !h.daemon!.jobs.get(mine), 10_000);
  t.pass('untracked');
});
