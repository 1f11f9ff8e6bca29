/**
 * `nnf-env prolog` and `nnf-env epilog` through the built CLI against a stand-in daemon on a
 * real unix socket: every outcome, the node-error policy, and the log line.
 * (With the real daemon and simulator: test/e2e/full-path.test.ts.)
 */
import t, { type Test } from 'tap';
import { chmod, lstat, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { formatJobId } from '../../src/contract/jobid.js';
import { jobFiles } from '../../src/contract/job-paths.js';
import { parseEnvFileWithFacts } from '../../src/contract/env-file.js';
import { LuaPluginHarness } from '../lua/harness.js';
import { repoRoot } from '../helpers/paths.js';
import { baseEnv, makeSandbox, runCli, runShell, statusFor, writeJob, type Sandbox } from './job-files.js';
import { reply, startStandIn, type StandInDaemon } from './stand-in-daemon.js';
import type { JobStatus } from '../../src/contract/job-status.js';

const JOB = 321103304048246784n;
const F58 = formatJobId(JOB, 'f58');

let sb: Sandbox;
let socketPath: string;
t.before(async () => {
  sb = await makeSandbox();
  socketPath = join(sb.runtimeDir, 'nnf-envd.sock');
});
t.teardown(async () => {
  await sb.cleanup();
});

const env = (extra: Record<string, string | undefined> = {}) =>
  baseEnv(sb, { FLUX_JOB_ID: F58, FLUX_JOB_USERID: '1050', ...extra });

async function withDaemon(t: Test, handler: Parameters<typeof startStandIn>[1]): Promise<StandInDaemon> {
  const d = await startStandIn(socketPath, handler);
  t.teardown(() => d.close());
  return d;
}

const LOG = /^nnf-env prolog: job ƒ\w+ workflow default\/fluxjob-321103304048246784 (.*) in \d+ms$/;

function resultOf(stderr: string): string {
  const line = stderr.trim();
  const m = LOG.exec(line);
  return m ? (m[1] as string) : `unexpected log line: ${JSON.stringify(line)}`;
}

t.test('delivered at once: one PUT with the user id, exit 0, one log line', async (t) => {
  const d = await withDaemon(t, (req, res) =>
    reply(res, 201, statusFor(JOB, { variables: ['DW_JOBS', 'NNF_ENV_LOCAL_RABBIT'] })),
  );
  const r = await runCli(['prolog'], { env: env() });
  t.equal(r.code, 0);
  t.equal(r.stdout, '');
  t.equal(r.stderr.split('\n').length, 2, 'one line');
  t.match(r.stderr, new RegExp(`^nnf-env prolog: job ${F58} `));
  t.equal(resultOf(r.stderr), 'delivered (2 variables)');
  t.same(d.seen, [{ method: 'PUT', url: `/v1/jobs/${JOB}`, body: { userID: 1050 } }]);
});

t.test('waiting, then a long poll until delivered', async (t) => {
  const d = await withDaemon(t, (req, res) => {
    if (req.method === 'PUT') return reply(res, 201, statusFor(JOB, { phase: 'waiting' }));
    setTimeout(() => reply(res, 200, statusFor(JOB, {
      variables: ['A'],
      rejected: [{ name: 'LD_PRELOAD', reason: 'prefix-not-allowed' }],
      ports: { target: 'rabbit-node-1', address: '10.0.0.1', results: [
        { port: 4000, reachable: true, attempts: 1, timeToFirstSuccessMs: 3, lastError: null },
        { port: 4001, reachable: false, attempts: 9, timeToFirstSuccessMs: null, lastError: 'ECONNREFUSED' },
      ] },
    })), 200);
  });
  const r = await runCli(['prolog'], { env: env() });
  t.equal(r.code, 0, 'unreachable ports and rejected variables never fail the prolog');
  t.equal(resultOf(r.stderr), 'delivered (1 variables; ports unreachable: 4001; rejected: LD_PRELOAD (prefix-not-allowed))');
  t.equal(d.seen.length, 2);
  t.match(d.seen[1]!.url, new RegExp(`^/v1/jobs/${JOB}\\?wait=delivered&timeout=\\d+ms$`));
});

t.test('failed workflow and no workflow: exit 0', async (t) => {
  let answer: JobStatus = statusFor(JOB, { phase: 'failed', error: { code: 'WORKFLOW_ERROR', message: 'could not allocate storage' } });
  await withDaemon(t, (_req, res) => reply(res, 200, answer));
  const failed = await runCli(['prolog'], { env: env() });
  t.equal(failed.code, 0);
  t.match(resultOf(failed.stderr), /^failed \(user job problem, job runs without variables\): WORKFLOW_ERROR: could not allocate storage$/);

  answer = statusFor(JOB, { phase: 'no-workflow', workflow: null });
  const none = await runCli(['prolog'], { env: env() });
  t.equal(none.code, 0);
  t.equal(resultOf(none.stderr), 'no workflow', 'workflow name from the configured template');
});

t.test('node errors follow PROLOG_ON_NODE_ERROR (default pass)', async (t) => {
  // no daemon at all
  const down = await runCli(['prolog'], { env: env() });
  t.equal(down.code, 0, 'pass: the job runs');
  t.match(resultOf(down.stderr), /^NODE ERROR: nnf-envd is not running \(socket .*nnf-envd\.sock\) \(systemctl status nnf-envd\) \(PROLOG_ON_NODE_ERROR=pass/);
  await rm(jobFiles(sb.jobsDir, JOB).env, { force: true }); // its warning file: test below
  const downFail = await runCli(['prolog'], { env: env({ NNF_ENV_PROLOG_ON_NODE_ERROR: 'fail' }) });
  t.equal(downFail.code, 1, 'fail: the prolog fails');
  t.notOk(await present(jobFiles(sb.jobsDir, JOB).env), 'fail: no warning file (the job does not run)');
  t.match(downFail.stderr, /PROLOG_ON_NODE_ERROR=fail: failing the prolog, Flux drains this node/);

  // the policy from the config file
  const conf = join(sb.root, 'fail.conf');
  await writeFile(conf, 'PROLOG_ON_NODE_ERROR=fail\n');
  t.equal((await runCli(['prolog'], { env: env({ NNF_ENV_CONFIG: conf }) })).code, 1, 'policy from the config file');
  t.equal((await runCli(['prolog', '--config', conf], { env: env() })).code, 1, 'and from --config');
  // A config the loader refuses (an unknown key) still has its policy honoured.
  const broken = join(sb.root, 'broken.conf');
  await writeFile(broken, 'PROLOG_ON_NODE_ERROR=fail\nNO_SUCH_KEY=1\n');
  const brokenRun = await runCli(['prolog', '--config', broken], { env: env() });
  t.equal(brokenRun.code, 1, 'fail from a config file that does not load');
  t.match(brokenRun.stderr, /NODE ERROR: .*NO_SUCH_KEY/);

  // an API error
  const d = await startStandIn(socketPath, (_req, res) => reply(res, 500, { error: { code: 'INTERNAL', message: 'disk full' } }));
  const apiErr = await runCli(['prolog'], { env: env() });
  t.equal(apiErr.code, 0);
  t.match(resultOf(apiErr.stderr), /^NODE ERROR: nnf-envd answered 500 INTERNAL: disk full/);
  t.equal((await runCli(['prolog'], { env: env({ NNF_ENV_PROLOG_ON_NODE_ERROR: 'fail' }) })).code, 1);
  t.notOk(await present(jobFiles(sb.jobsDir, JOB).env), 'API error: the daemon is up, the prolog writes nothing');

  // PROLOG_TIMEOUT: the daemon keeps saying "waiting"
  d.handler = (req, res) => {
    if (req.method === 'PUT') return reply(res, 200, statusFor(JOB, { phase: 'waiting', error: { code: 'API_UNREACHABLE', message: 'connect ECONNREFUSED 10.0.0.9:6443' } }));
    const m = /timeout=(\d+)ms/.exec(req.url);
    setTimeout(() => reply(res, 200, statusFor(JOB, { phase: 'waiting' })), Math.min(Number(m?.[1] ?? 0), 5000));
  };
  const slow = await runCli(['prolog'], { env: env({ NNF_ENV_PROLOG_TIMEOUT: '1s' }) });
  t.equal(slow.code, 0);
  t.match(resultOf(slow.stderr), /^NODE ERROR: timed out after 1s in phase waiting/);
  t.ok(await present(jobFiles(sb.jobsDir, JOB).env), 'timeout with pass: the job shell\'s notice (test below)');
  await rm(jobFiles(sb.jobsDir, JOB).env);
  const slowFail = await runCli(['prolog'], { env: env({ NNF_ENV_PROLOG_TIMEOUT: '500ms', NNF_ENV_PROLOG_ON_NODE_ERROR: 'fail' }) });
  t.equal(slowFail.code, 1);
  await d.close();
  t.notOk(await present(jobFiles(sb.jobsDir, JOB).env), 'timeout with fail: no notice (the job does not run)');
});

async function present(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}

t.test('daemon down with pass: a warning-only env file the job shell logs', async (t) => {
  const id = JOB + 1n;
  const files = jobFiles(sb.jobsDir, id);
  const jobEnv = env({ FLUX_JOB_ID: formatJobId(id, 'f58') });
  const r = await runCli(['prolog'], { env: jobEnv });
  t.equal(r.code, 0, 'pass: the job runs');
  t.match(r.stderr, /NODE ERROR: nnf-envd is not running .*\(PROLOG_ON_NODE_ERROR=pass: the job runs without its nnf-env variables\); job shell warned \(.*\.env\) in \d+ms\n$/);

  const st = await stat(files.env);
  t.equal(st.mode & 0o777, 0o600, 'mode 0600');
  if (process.getuid?.() === 0) t.equal(st.uid, 1050, 'owned by FLUX_JOB_USERID');
  t.notOk(await present(files.status), 'no status file (the daemon writes those)');
  const text = await readFile(files.env);
  const { vars, facts } = parseEnvFileWithFacts(text, files.env);
  t.same(vars, {}, 'no variables');
  t.same(facts.map((f) => f.key), ['phase', 'warning']);
  t.equal(facts[0]!.value, 'node-error');
  t.match(facts[1]!.value, new RegExp(`^nnf-envd was not running on ${hostname().replace(/[.]/g, '\\.')} when the job started: DW_\\*/NNF_\\* variables are not set on this node`));
  t.match(text.toString(), new RegExp(`^# nnf-env: job ${formatJobId(id, 'f58plain')} workflow default/fluxjob-${id} \\(generated, do not edit\\)\n`));

  // The Flux shell plugin on this file: the warning on every rank, nothing set.
  const lua = await LuaPluginHarness.create();
  await lua.writeFile(files.env, text);
  for (const rank of [0, 3]) {
    const run = await lua.run({ env: { FLUX_JOB_ID: formatJobId(id, 'f58'), NNF_ENV_JOBS_DIR: sb.jobsDir }, info: { rank } });
    t.same(run.setenv, [], `rank ${rank}: nothing set`);
    t.same(run.errors, [], `rank ${rank}: no error`);
    t.same(run.logs, [`nnf-env: ${facts[1]!.value}`], `rank ${rank}: the warning logged`);
  }

  // The helper says what happened instead of "not delivered yet".
  const exp = await runCli(['export'], { env: baseEnv(sb, { FLUX_JOB_ID: formatJobId(id, 'f58') }), ...(process.getuid?.() === 0 ? { uid: 1050, gid: 1050 } : {}) });
  t.equal(exp.code, 1);
  t.match(exp.stderr, /no nnf-env variables for job f\w+ on this node: nnf-envd was not running on /);

  // Again (a second prolog, or the daemon's files): never overwritten.
  await writeFile(files.env, text.toString().replace('node-error', 'node-error-x'));
  const again = await runCli(['prolog'], { env: jobEnv });
  t.equal(again.code, 0);
  t.match(again.stderr, /job shell not warned: .*\.env already exists/);
  t.match(await readFile(files.env, 'utf8'), /node-error-x/, 'left alone');
  await rm(files.env);

  const withStatus = JOB + 2n;
  await writeJob(sb.jobsDir, withStatus, { envFile: false, status: { phase: 'waiting' } });
  const s2 = await runCli(['prolog'], { env: env({ FLUX_JOB_ID: formatJobId(withStatus, 'f58') }) });
  t.equal(s2.code, 0);
  t.match(s2.stderr, /job shell not warned: .*\.json already exists/);
  t.notOk(await present(jobFiles(sb.jobsDir, withStatus).env), 'a job with a status file gets no warning file');

  // No jobs directory (nnf-envd never ran here): nothing created.
  const elsewhere = join(sb.root, 'never-ran');
  const s3 = await runCli(['prolog'], { env: env({ FLUX_JOB_ID: formatJobId(id, 'f58'), NNF_ENV_RUNTIME_DIR: elsewhere }) });
  t.equal(s3.code, 0);
  t.match(s3.stderr, /job shell not warned: .*never-ran\/jobs does not exist/);
  t.notOk(await present(elsewhere), 'the prolog creates no directory');

  // No user id: no file (it could not be given to the job's user), still exit 0.
  const s5 = await runCli(['prolog'], { env: { ...jobEnv, FLUX_JOB_USERID: 'bob' } });
  t.equal(s5.code, 0);
  t.notOk(await present(files.env), 'bad FLUX_JOB_USERID: no file');
});

t.test('timeout with pass: a warning-only env file the job shell logs, never over the daemon\'s', async (t) => {
  const id = JOB + 10n;
  const files = jobFiles(sb.jobsDir, id);
  const jobEnv = env({ FLUX_JOB_ID: formatJobId(id, 'f58'), NNF_ENV_PROLOG_TIMEOUT: '1s' });
  // The daemon says "waiting" forever, and has written the status file as it does while waiting.
  let onPoll: () => Promise<void> = async () => undefined;
  await withDaemon(t, async (req, res) => {
    if (req.method === 'PUT') return reply(res, 201, statusFor(id, { phase: 'waiting' }));
    await onPoll();
    const m = /timeout=(\d+)ms/.exec(req.url);
    setTimeout(() => reply(res, 200, statusFor(id, { phase: 'waiting' })), Math.min(Number(m?.[1] ?? 0), 5000));
  });
  await writeJob(sb.jobsDir, id, { envFile: false, status: { phase: 'waiting' } });

  const r = await runCli(['prolog'], { env: jobEnv });
  t.equal(r.code, 0, 'pass: the job runs');
  t.match(resultOf(r.stderr.replace(`fluxjob-${id}`, 'fluxjob-321103304048246784')),
    /^NODE ERROR: timed out after 1s in phase waiting \(PROLOG_ON_NODE_ERROR=pass: the job runs without its nnf-env variables\); job shell warned \(.*\.env\)$/);
  const st = await stat(files.env);
  t.equal(st.mode & 0o777, 0o600, 'mode 0600');
  if (process.getuid?.() === 0) t.equal(st.uid, 1050, 'owned by FLUX_JOB_USERID');
  t.equal(st.nlink, 1, 'published by link, the temp name removed');
  t.same((await readdir(sb.jobsDir)).filter((n) => n.endsWith('.nnf-tmp')), [], 'no temp file left');
  const text = await readFile(files.env);
  const { vars, facts } = parseEnvFileWithFacts(text, files.env);
  t.same(vars, {}, 'no variables');
  t.same(facts.map((f) => [f.key, f.key === 'phase' ? f.value : '']), [['phase', 'waiting'], ['warning', '']], 'the daemon\'s phase; a node warning');
  const warning = facts[1]!.value;
  t.equal(warning, `workflow default/fluxjob-${id} had not finished PreRun when the job started on ${hostname()} (nnf-env prolog gave up after 1s): DW_*/NNF_* variables are not set on this node; run "nnf-env wait" in the job, then eval "$(nnf-env export)"`);

  // The Flux shell plugin: the warning on every rank (each node's prolog timed out on its own).
  const lua = await LuaPluginHarness.create();
  await lua.writeFile(files.env, text);
  for (const rank of [0, 3]) {
    const run = await lua.run({ env: { FLUX_JOB_ID: formatJobId(id, 'f58'), NNF_ENV_JOBS_DIR: sb.jobsDir }, info: { rank } });
    t.same(run.setenv, [], `rank ${rank}: nothing set`);
    t.same(run.errors, [], `rank ${rank}: no error`);
    t.same(run.logs, [`nnf-env: ${warning}`], `rank ${rank}: the warning logged`);
  }

  // The helpers go by the daemon's status file: not delivered yet (and `wait` waits).
  const exp = await runCli(['export'], { env: baseEnv(sb, { FLUX_JOB_ID: formatJobId(id, 'f58') }) });
  t.equal(exp.code, 3);
  t.match(exp.stderr, /not delivered yet \(phase waiting/);

  // The daemon's env file, there before the prolog gives up: never replaced.
  await rm(files.env);
  onPoll = async () => {
    await writeJob(sb.jobsDir, id, { vars: { DW_JOB_x: 'daemon' }, status: { phase: 'delivered' } });
  };
  const raced = await runCli(['prolog'], { env: jobEnv });
  t.equal(raced.code, 0);
  t.match(raced.stderr, /; job shell not warned: .*\.env already exists in \d+ms\n$/);
  t.match(await readFile(files.env, 'utf8'), /^DW_JOB_x='daemon'$/m, 'the daemon\'s file left alone');
  t.same((await readdir(sb.jobsDir)).filter((n) => n.endsWith('.nnf-tmp')), [], 'no temp file left');
  await rm(files.env);
  await rm(files.status);
});

t.test('bad input from Flux', async (t) => {
  await withDaemon(t, (_req, res) => reply(res, 200, statusFor(JOB)));
  const noId = await runCli(['prolog'], { env: env({ FLUX_JOB_ID: undefined }) });
  t.equal(noId.code, 0);
  t.match(noId.stderr, /^nnf-env prolog: job \? workflow - NODE ERROR: FLUX_JOB_ID is not set/);
  const badUser = await runCli(['prolog'], { env: env({ FLUX_JOB_USERID: 'bob' }) });
  t.equal(badUser.code, 0);
  t.match(badUser.stderr, /FLUX_JOB_USERID "bob" is not a user id/);
  const decimal = await runCli(['prolog'], { env: env({ FLUX_JOB_ID: JOB.toString() }) });
  t.equal(decimal.code, 0);
  t.match(decimal.stderr, new RegExp(`job ${F58} `), 'housekeeping-style decimal id, logged as f58');
});

t.test('epilog: untrack; exit 0 whatever happens', async (t) => {
  const ELOG = /^nnf-env epilog: job ƒ\w+ workflow default\/fluxjob-321103304048246784 (.*) in \d+ms\n$/;
  let status = 200;
  const d = await startStandIn(socketPath, (_req, res) =>
    status === 200 ? reply(res, 200, statusFor(JOB)) : reply(res, status, { error: { code: status === 404 ? 'NOT_FOUND' : 'INTERNAL', message: 'x' } }),
  );
  const ok = await runCli(['epilog'], { env: env() });
  t.equal(ok.code, 0);
  t.match(ok.stderr, ELOG);
  t.match(ok.stderr, /untracked, files removed/);
  t.same(d.seen.at(-1), { method: 'DELETE', url: `/v1/jobs/${JOB}`, body: null });

  status = 404;
  const unknown = await runCli(['epilog'], { env: env() });
  t.equal(unknown.code, 0);
  t.match(unknown.stderr, /not tracked, nothing to remove/);

  status = 500;
  const broken = await runCli(['epilog'], { env: env() });
  t.equal(broken.code, 0);
  t.match(broken.stderr, /not untracked \(epilog still succeeds\)/);
  await d.close();

  const down = await runCli(['epilog'], { env: env({ NNF_ENV_PROLOG_ON_NODE_ERROR: 'fail' }) });
  t.equal(down.code, 0, 'daemon down: still 0');
  t.match(down.stderr, /nnf-envd is not running .* nnf-envd removes the files when it runs again/);
});

t.test('the Flux scripts in etc/flux/system/{prolog,epilog}.d', async (t) => {
  for (const which of ['prolog', 'epilog'] as const) {
    const source = await readFile(join(repoRoot, 'etc', 'flux', 'system', `${which}.d`, 'nnf-env'), 'utf8');
    t.match(source, /^#!\/bin\/sh\n/);
    t.match(source, /\/usr\/local\/bin\/nnf-env/, 'the path `nnf-env install --prefix` rewrites');
    // The script with the binary replaced by a stub that records its arguments and fails.
    const stub = join(sb.root, `stub-${which}`);
    const record = join(sb.root, `args-${which}`);
    await writeFile(stub, `#!/bin/sh\necho "$@" > ${record}\nexit 3\n`);
    await chmod(stub, 0o755);
    const script = join(sb.root, `${which}.sh`);
    await writeFile(script, source.replace('/usr/local/bin/nnf-env', stub), { mode: 0o755 });
    const r = await runShell('/bin/sh', script, { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', FLUX_JOB_ID: F58 });
    t.equal((await readFile(record, 'utf8')).trim(), which, `${which}: runs nnf-env ${which}`);
    t.equal(r.code, which === 'prolog' ? 3 : 0, which === 'prolog' ? 'prolog: its exit code' : 'epilog: always 0');
    // Not installed: say so, exit 0 (a broken install must not drain the cluster).
    await writeFile(script, source.replace('/usr/local/bin/nnf-env', join(sb.root, 'missing')), { mode: 0o755 });
    const missing = await runShell('/bin/sh', script, { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', FLUX_JOB_ID: F58 });
    t.equal(missing.code, 0);
    t.match(missing.stderr, new RegExp(`nnf-env ${which}: .*missing is missing: job ${F58}`));
  }
});
