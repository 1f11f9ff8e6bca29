/**
 * `nnf-env prolog` and `nnf-env epilog` through the built CLI against a stand-in daemon on a
 * real unix socket: every outcome, the node-error policy, and the log line.
 * (With the real daemon and simulator: test/e2e/full-path.test.ts.)
 */
import t, { type Test } from 'tap';
import { chmod, lstat, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { formatJobId } from '../../src/contract/jobid.js';
import { jobFiles } from '../../src/contract/job-paths.js';
import { parseEnvFileWithFacts } from '../../src/contract/env-file.js';
import { LuaPluginHarness } from '../lua/harness.js';
import { repoRoot } from '../helpers/paths.js';
import { SHIPPED_LIB, shippedPerilogSource, writePerilogScript } from '../helpers/perilog-scripts.js';
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
  // perilog logs stderr at LOG_ERR (flux-core perilog.c io_cb): success goes to stdout.
  t.equal(r.stderr, '', 'nothing on stderr: not an error in flux dmesg');
  t.equal(r.stdout.split('\n').length, 2, 'one line');
  t.match(r.stdout, new RegExp(`^nnf-env prolog: job ${F58} `));
  t.equal(resultOf(r.stdout), 'delivered (2 variables)');
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
  t.equal(resultOf(r.stdout), 'delivered (1 variables; ports unreachable: 4001; rejected: LD_PRELOAD (prefix-not-allowed))');
  t.equal(r.stderr, '', 'a user job problem is not a node error');
  t.equal(d.seen.length, 2);
  t.match(d.seen[1]!.url, new RegExp(`^/v1/jobs/${JOB}\\?wait=delivered&timeout=\\d+ms$`));
});

t.test('failed workflow and no workflow: exit 0', async (t) => {
  let answer: JobStatus = statusFor(JOB, { phase: 'failed', error: { code: 'WORKFLOW_ERROR', message: 'could not allocate storage' } });
  await withDaemon(t, (_req, res) => reply(res, 200, answer));
  const failed = await runCli(['prolog'], { env: env() });
  t.equal(failed.code, 0);
  t.equal(failed.stderr, '', 'the user\'s failed workflow: stdout, not LOG_ERR');
  t.match(resultOf(failed.stdout), /^failed \(user job problem, job runs without variables\): WORKFLOW_ERROR: could not allocate storage$/);

  answer = statusFor(JOB, { phase: 'no-workflow', workflow: null });
  const none = await runCli(['prolog'], { env: env() });
  t.equal(none.code, 0);
  t.equal(resultOf(none.stdout), 'no workflow', 'workflow name from the configured template');
  t.equal(none.stderr, '');
});

t.test('node errors follow PROLOG_ON_NODE_ERROR (default pass)', async (t) => {
  // no daemon at all
  const down = await runCli(['prolog'], { env: env() });
  t.equal(down.code, 0, 'pass: the job runs');
  t.equal(down.stdout, '', 'a node error goes to stderr only');
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
  t.match(decimal.stdout, new RegExp(`job ${F58} `), 'housekeeping-style decimal id, logged as f58');
});

t.test('epilog: untrack; exit 0 whatever happens', async (t) => {
  const ELOG = /^nnf-env epilog: job ƒ\w+ workflow default\/fluxjob-321103304048246784 (.*) in \d+ms\n$/;
  let status = 200;
  const d = await startStandIn(socketPath, (_req, res) =>
    status === 200 ? reply(res, 200, statusFor(JOB)) : reply(res, status, { error: { code: status === 404 ? 'NOT_FOUND' : 'INTERNAL', message: 'x' } }),
  );
  const ok = await runCli(['epilog'], { env: env() });
  t.equal(ok.code, 0);
  t.match(ok.stdout, ELOG);
  t.match(ok.stdout, /untracked, files removed/);
  t.equal(ok.stderr, '', 'success: stdout (LOG_INFO), not stderr (LOG_ERR)');
  t.same(d.seen.at(-1), { method: 'DELETE', url: `/v1/jobs/${JOB}`, body: null });

  status = 404;
  const unknown = await runCli(['epilog'], { env: env() });
  t.equal(unknown.code, 0);
  t.match(unknown.stdout, /not tracked, nothing to remove/);

  status = 500;
  const broken = await runCli(['epilog'], { env: env() });
  t.equal(broken.code, 0);
  t.match(broken.stderr, /not untracked \(epilog still succeeds\)/);
  t.equal(broken.stdout, '');
  await d.close();

  const down = await runCli(['epilog'], { env: env({ NNF_ENV_PROLOG_ON_NODE_ERROR: 'fail' }) });
  t.equal(down.code, 0, 'daemon down: still 0');
  t.match(down.stderr, /nnf-envd is not running .* nnf-envd removes the files when it runs again/);
});

t.test('the Flux scripts in etc/flux/system/{prolog,epilog}.d', async (t) => {
  for (const which of ['prolog', 'epilog'] as const) {
    const source = await shippedPerilogSource(which);
    t.match(source, /^#!\/bin\/sh\n/);
    t.match(source, /^NNF_ENV=\/usr\/local\/bin\/nnf-env$/m, 'the path `nnf-env install --prefix` rewrites');
    t.ok(source.includes(`PERILOG_LIB=${SHIPPED_LIB}\n`), 'the shared functions, by the path install rewrites');
    // The script with the binary replaced by a stub that records its arguments and fails.
    const stub = join(sb.root, `stub-${which}`);
    const record = join(sb.root, `args-${which}`);
    await writeFile(stub, `#!/bin/sh\necho "$@" > ${record}\necho "\${NODE_EXTRA_CA_CERTS-unset}" > ${record}.ca\nexit 3\n`);
    await chmod(stub, 0o755);
    const script = await writePerilogScript(which, join(sb.root, `${which}.sh`), stub);
    // No runtime directory: the epilog cannot tell from files (never from this machine's /run).
    const noRun = { NNF_ENV_RUNTIME_DIR: join(sb.root, 'absent') };
    const r = await runShell('/bin/sh', script, { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', FLUX_JOB_ID: F58, NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt', ...noRun });
    t.equal((await readFile(record, 'utf8')).trim(), which, `${which}: runs nnf-env ${which}`);
    t.equal((await readFile(`${record}.ca`, 'utf8')).trim(), 'unset', `${which}: Node is not made to parse a CA bundle it does not use`);
    t.equal(r.code, which === 'prolog' ? 3 : 0, which === 'prolog' ? 'prolog: its exit code' : 'epilog: always 0');
    // Not installed: say so, exit 0 (a broken install must not drain the cluster).
    await writePerilogScript(which, script, join(sb.root, 'missing'));
    const missing = await runShell('/bin/sh', script, { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', FLUX_JOB_ID: F58, ...noRun });
    t.equal(missing.code, 0);
    t.match(missing.stderr, new RegExp(`nnf-env ${which}: .*missing is missing: job ${F58}`));
    // The shared functions missing (a partial install): the Node path, as when unsure, and no
    // shell error in the journal.
    await rm(record, { force: true });
    await writePerilogScript(which, script, stub, join(sb.root, 'no-such-lib.sh'));
    const noLib = await runShell('/bin/sh', script, { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', FLUX_JOB_ID: F58, FLUX_JOB_USERID: '0', ...noRun });
    t.equal((await readFile(record, 'utf8')).trim(), which, `${which} without perilog-lib.sh: nnf-env ${which} decides`);
    t.equal(noLib.stderr, '', `${which} without perilog-lib.sh: nothing on stderr`);
  }
});

/**
 * A jobspec as `flux job info ID jobspec` prints it in flux-core 0.88 (Python's json.dumps
 * separators; RFC 25 jobspec version 1; no environment in it), with or without
 * attributes.system.dw (flux-coral2's key for #DW directives).
 */
function jobspec(system: Record<string, unknown>): string {
  return JSON.stringify({
    resources: [{ type: 'node', count: 2, exclusive: true, with: [{ type: 'slot', count: 1, with: [{ type: 'core', count: 1 }], label: 'task' }] }],
    tasks: [{ command: ['sh', '-c', 'echo "dw": $DW_JOB_x'], slot: 'task', count: { per_slot: 1 } }],
    attributes: { system: { duration: 0, cwd: '/home/alice', shell: { options: { rlimit: { core: 0, nofile: 20000 } } }, ...system } },
    version: 1,
  }, null, 0).replace(/([,:])(?=[^\s])/g, '$1 ');
}

t.test('jobs without attributes.system.dw: the scripts answer from the jobspec, no Node, no daemon', async (t) => {
  // Issue 11: every job paid two Node starts and a daemon round trip (prolog + epilog).
  const bin = join(sb.root, 'flux-bin');
  await rm(bin, { recursive: true, force: true });
  const { mkdir } = await import('node:fs/promises');
  await mkdir(bin);
  const spec = join(sb.root, 'jobspec.json');
  // Stand-in `flux job info ID jobspec`: prints the file, or fails as flux does for an unknown job.
  await writeFile(join(bin, 'flux'), `#!/bin/sh\n[ "$1 $2 $4" = "job info jobspec" ] && [ "$3" = "$EXPECT_ID" ] || { echo "flux-job: $3: job not found" >&2; exit 1; }\n[ -f ${spec} ] || { echo "flux-job: job info: No such file or directory" >&2; exit 1; }\nexec cat ${spec}\n`, { mode: 0o755 });
  for (const which of ['prolog', 'epilog'] as const) {
    const stub = join(sb.root, `stub2-${which}`);
    const record = join(sb.root, `ran-${which}`);
    await writeFile(stub, `#!/bin/sh\necho ran >> ${record}\n`, { mode: 0o755 });
    const script = await writePerilogScript(which, join(sb.root, `${which}2.sh`), stub);
    const ran = async (specText: string | null, id = F58): Promise<boolean> => {
      await rm(record, { force: true });
      if (specText === null) await rm(spec, { force: true });
      else await writeFile(spec, specText);
      const r = await runShell('/bin/sh', script, { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, FLUX_JOB_ID: id, EXPECT_ID: F58, NNF_ENV_RUNTIME_DIR: join(sb.root, 'absent') });
      t.equal(r.code, 0);
      t.equal(r.stdout + r.stderr, '', 'nothing to log');
      return (await readFile(record, 'utf8').catch(() => '')) === 'ran\n';
    };
    t.equal(await ran(jobspec({})), false, `${which}: no dw: nnf-env not started`);
    t.equal(await ran(jobspec({ dw: '#DW jobdw type=xfs capacity=10GB name=scratch' })), true, `${which}: dw: nnf-env ${which} runs`);
    t.equal(await ran(jobspec({ dw: ['#DW jobdw type=gfs2 capacity=1TB name=a', '#DW copy_in source=/x destination=$DW_JOB_a/'] })), true, `${which}: dw as a list`);
    t.equal(await ran(jobspec({}).replace('"duration"', '"\\u0064w": "#DW jobdw type=xfs capacity=1GB name=s", "duration"')), true, `${which}: an escaped "dw" key is not missed`);
    t.equal(await ran(null), true, `${which}: jobspec unreadable: nnf-env decides`);
    t.equal(await ran(jobspec({}), 'ƒ2'), true, `${which}: flux fails for the id: nnf-env decides`);
  }
});

t.test('prolog: flux-job from FLUX_EXEC_PATH runs directly, without the flux front end', async (t) => {
  // The front end's own start was 5 ms of the no-#DW prolog's 12 ms in a real instance.
  const { mkdir } = await import('node:fs/promises');
  const root = join(sb.root, 'exec-path');
  await rm(root, { recursive: true, force: true });
  const [front, cmd, rel] = [join(root, 'bin'), join(root, 'libexec', 'cmd'), join(root, 'rel')];
  for (const d of [front, cmd, rel]) await mkdir(d, { recursive: true });
  const calls = join(root, 'calls');
  const spec = join(root, 'jobspec.json');
  await writeFile(spec, jobspec({}));
  // Both record their argv; only the right id gets the jobspec.
  const standIn = (who: string) => `#!/bin/sh\necho "${who} $*" >> ${calls}\n[ "$1 $2 $3" = "info ${F58} jobspec" ] || [ "$1 $2 $3 $4" = "job info ${F58} jobspec" ] || exit 1\nexec cat ${spec}\n`;
  await writeFile(join(front, 'flux'), standIn('flux'), { mode: 0o755 });
  await writeFile(join(cmd, 'flux-job'), standIn('flux-job'), { mode: 0o755 });
  await writeFile(join(rel, 'flux-job'), standIn('relative-flux-job'), { mode: 0o755 });
  const record = join(root, 'ran');
  const stub = join(root, 'nnf-env');
  await writeFile(stub, `#!/bin/sh\necho ran >> ${record}\n`, { mode: 0o755 });
  const script = await writePerilogScript('prolog', join(root, 'prolog.sh'), stub);
  const run = async (execPath: string | undefined): Promise<string[]> => {
    await rm(calls, { force: true });
    const env: Record<string, string> = { PATH: `${front}:/usr/sbin:/usr/bin:/sbin:/bin`, FLUX_JOB_ID: F58, NNF_ENV_RUNTIME_DIR: join(root, 'absent') };
    if (execPath !== undefined) env.FLUX_EXEC_PATH = execPath;
    const r = await runShell('/bin/sh', script, env);
    t.equal(r.code, 0);
    t.equal(r.stdout + r.stderr, '', 'nothing to log');
    return (await readFile(calls, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  };
  t.same(await run(`rel:/nonexistent/*:${join(root, 'libexec', '*')}:${cmd}`), [`flux-job info ${F58} jobspec`], 'the first absolute directory holding flux-job; relative and globbing entries ignored');
  t.same(await run('rel'), [`flux job info ${F58} jobspec`], 'only a relative directory: the front end');
  t.same(await run(undefined), [`flux job info ${F58} jobspec`], 'no FLUX_EXEC_PATH (the IMP clears it): the front end');
  t.notOk(existsSync(record), 'no #DW: nnf-env never started');
});

t.test('epilog: the job\'s files decide first; a job never tracked here costs no flux and no Node', async (t) => {
  // Issue 11: every job's epilog asked Flux for the jobspec (one flux process per node per job).
  const { mkdir, symlink } = await import('node:fs/promises');
  const root = join(sb.root, 'epilog-files');
  await rm(root, { recursive: true, force: true });
  const bin = join(root, 'bin');
  const rd = join(root, 'run');
  const jobs = join(rd, 'jobs');
  await mkdir(bin, { recursive: true });
  await mkdir(join(jobs, '.tracked'), { recursive: true, mode: 0o700 });
  await chmod(jobs, 0o711);
  const calls = join(root, 'calls');
  // Stand-in flux: records the call and prints a jobspec with #DW directives (so that reaching
  // it shows as a flux call followed by nnf-env epilog).
  await writeFile(join(bin, 'flux'), `#!/bin/sh\necho "flux $*" >> ${calls}\necho '{"attributes": {"system": {"dw": "#DW jobdw type=xfs capacity=1GB name=s"}}}'\n`, { mode: 0o755 });
  const stub = join(root, 'nnf-env');
  await writeFile(stub, `#!/bin/sh\necho "nnf-env $*" >> ${calls}\n`, { mode: 0o755 });
  const script = await writePerilogScript('epilog', join(root, 'epilog.sh'), stub);
  const conf = join(root, 'nnf-env.conf');
  const name = formatJobId(JOB, 'f58plain');
  const run = async (env: Record<string, string | undefined> = {}): Promise<string[]> => {
    await rm(calls, { force: true });
    const r = await runShell('/bin/sh', script, { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, FLUX_JOB_ID: F58, NNF_ENV_CONFIG: conf, ...env });
    t.equal(r.code, 0, 'exit 0');
    t.equal(r.stderr, '');
    return (await readFile(calls, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  };
  const FLUX_THEN_NODE = [`flux job info ${F58} jobspec`, 'nnf-env epilog'];

  await writeFile(conf, `# site config\n#RUNTIME_DIR=/elsewhere\nNODE_NAME=compute-01\nRUNTIME_DIR=${rd}\n`);
  t.same(await run(), [], 'no files for the job: neither flux nor nnf-env runs');
  t.same(await run({ FLUX_JOB_ID: `f${F58.slice(1)}` }), [], 'ASCII f58 (FLUX_F58_FORCE_ASCII): same');
  await rm(join(jobs, '.tracked'), { recursive: true });
  t.same(await run(), [], 'no .tracked directory yet (nothing ever tracked): same');
  await mkdir(join(jobs, '.tracked'), { mode: 0o700 });

  for (const file of [join(jobs, '.tracked', name), join(jobs, `${name}.env`), join(jobs, `${name}.json`)]) {
    await writeFile(file, '{}');
    t.same(await run(), ['nnf-env epilog'], `${file.slice(jobs.length + 1)}: untracked, without asking flux`);
    await rm(file);
  }
  await symlink(join(root, 'nowhere'), join(jobs, `${name}.env`));
  t.same(await run(), ['nnf-env epilog'], 'a dangling symlink in the job\'s name counts as a file');
  await rm(join(jobs, `${name}.env`));
  await writeFile(join(jobs, '.tracked', 'fOtherJob'), '{}');
  t.same(await run(), [], 'another job\'s record does not count');

  // The environment overrides the file, as in nnf-env's own config reader.
  await writeFile(join(jobs, '.tracked', name), '{}');
  const empty = join(root, 'other-run');
  await mkdir(join(empty, 'jobs'), { recursive: true });
  t.same(await run({ NNF_ENV_RUNTIME_DIR: empty }), [], 'NNF_ENV_RUNTIME_DIR names the runtime directory');
  t.same(await run({ NNF_ENV_RUNTIME_DIR: '' }), FLUX_THEN_NODE, 'set but empty: unsure');
  await rm(join(jobs, '.tracked', name));

  // Whatever the script cannot read for certain falls back to the jobspec, then nnf-env.
  const unsure: Array<[string, string, Record<string, string | undefined>?]> = [
    [`export RUNTIME_DIR=${rd}\n`, 'an export line'],
    [`RUNTIME_DIR='${rd}'\n`, 'a quoted value'],
    [`RUNTIME_DIR=${rd} # here\n`, 'a comment after the value'],
    [`RUNTIME_DIR=${rd}\nRUNTIME_DIR=${rd}\n`, 'the key twice'],
    [`  RUNTIME_DIR=${rd}\n`, 'leading blanks'],
    ['RUNTIME_DIR=run\n', 'a relative path'],
    [`RUNTIME_DIR=${rd}\n`, 'a decimal job id', { FLUX_JOB_ID: JOB.toString() }],
    [`RUNTIME_DIR=${rd}\n`, 'an id that is not base58', { FLUX_JOB_ID: 'f0OIl' }],
    [`RUNTIME_DIR=${rd}\n`, 'no FLUX_JOB_ID', { FLUX_JOB_ID: undefined }],
    [`RUNTIME_DIR=${rd}\n`, 'a config file named but missing', { NNF_ENV_CONFIG: join(root, 'missing.conf') }],
    [`RUNTIME_DIR=${join(root, 'absent')}\n`, 'no jobs directory'],
  ];
  for (const [text, what, env] of unsure) {
    await writeFile(conf, text);
    const expected = env && 'FLUX_JOB_ID' in env && env.FLUX_JOB_ID === undefined ? ['flux job info  jobspec', 'nnf-env epilog'] : env?.FLUX_JOB_ID ? [`flux job info ${env.FLUX_JOB_ID} jobspec`, 'nnf-env epilog'] : FLUX_THEN_NODE;
    t.same(await run(env), expected, `${what}: the jobspec decides`);
  }
  if (process.getuid?.() !== 0) {
    await writeFile(conf, `RUNTIME_DIR=${rd}\n`);
    await chmod(join(jobs, '.tracked'), 0o000);
    t.same(await run(), FLUX_THEN_NODE, '.tracked not searchable by this user: the jobspec decides');
    await chmod(join(jobs, '.tracked'), 0o700);
  }
});

t.test('flux-perilog: the perilog command with and without the IMP', async (t) => {
  const { mkdir } = await import('node:fs/promises');
  const root = join(sb.root, 'perilog-cmd');
  await rm(root, { recursive: true, force: true });
  const bin = join(root, 'bin');
  const libexec = join(root, 'libexec', 'flux');
  const confdir = join(root, 'etc', 'flux');
  for (const d of [bin, join(libexec, 'prolog.d'), join(confdir, 'system', 'prolog.d')]) await mkdir(d, { recursive: true });
  const log = join(root, 'log');
  // Stand-in flux: `config get --default= exec.imp` prints the IMP path or an empty line
  // (flux-config(1) --default); nothing else may be asked (one flux process per job).
  await writeFile(join(bin, 'flux'), [
    '#!/bin/sh',
    'case "$*" in',
    '  "config get --default= exec.imp") echo "$STAND_IN_IMP" ;;',
    '  *) echo "flux: $*: unexpected" >&2; exit 1 ;;',
    'esac',
    '',
  ].join('\n'), { mode: 0o755 });
  const script = (dir: string, name: string, rc: number) =>
    writeFile(join(dir, name), `#!/bin/sh\necho "${name} $FLUX_JOB_ID" >> ${log}\nexit ${rc}\n`, { mode: 0o755 });
  await script(join(libexec, 'prolog.d'), 'a-package', 0);
  await script(join(confdir, 'system', 'prolog.d'), 'nnf-env', 3);
  await script(join(confdir, 'system', 'prolog.d'), 'z-site', 1);
  await writeFile(join(confdir, 'system', 'prolog.d', 'not-executable'), '#!/bin/sh\nexit 9\n', { mode: 0o644 });
  // As `nnf-env install` writes it: Flux's directories from `flux config builtin`.
  const { withFluxDirs } = await import('../../src/cli/flux-instance.js');
  const cmd = join(root, 'flux-perilog');
  const shipped = await readFile(join(repoRoot, 'libexec', 'flux-perilog'), 'utf8');
  t.match(shipped, /^libexecdir=\/usr\/libexec\/flux$/m, 'flux-core\'s default libexecdir until install writes the instance\'s');
  await writeFile(cmd, withFluxDirs(shipped, { systemDir: join(confdir, 'system'), libexecDir: libexec }), { mode: 0o755 });
  const env = (imp: string) => ({ PATH: `${bin}:/usr/bin:/bin`, FLUX_JOB_ID: F58, STAND_IN_IMP: imp });

  const noImp = await runShell('/bin/sh', `exec ${cmd} prolog`, env(''));
  t.equal(noImp.code, 3, 'the highest exit code of the scripts');
  t.equal(noImp.stderr, '', 'no progress lines on stderr (perilog logs stderr at LOG_ERR)');
  t.equal(await readFile(log, 'utf8'), `a-package ${F58}\nnnf-env ${F58}\nz-site ${F58}\n`, 'the packages\' directory first, then the site\'s, in name order');

  // A legacy single script replaces the site's prolog.d, as in flux-run-system-scripts.
  await rm(log);
  await script(join(confdir, 'system'), 'prolog', 0);
  const legacy = await runShell('/bin/sh', `exec ${cmd} prolog`, env(''));
  t.equal(legacy.code, 0);
  t.equal(await readFile(log, 'utf8'), `a-package ${F58}\nprolog ${F58}\n`);

  // With the IMP: exactly what perilog runs by default, `<imp> run prolog`.
  const imp = join(root, 'flux-imp');
  await writeFile(imp, `#!/bin/sh\necho "imp $*" >> ${log}\nexit 4\n`, { mode: 0o755 });
  await rm(log);
  const withImp = await runShell('/bin/sh', `exec ${cmd} epilog`, env(imp));
  t.equal(withImp.code, 4, 'the IMP\'s exit code');
  t.equal(await readFile(log, 'utf8'), 'imp run epilog\n');

  // --no-imp: the site says there is no IMP, so Flux is not asked (one flux process less per
  // call). Proof: the IMP that flux would name is not run; the scripts are.
  await rm(log);
  await rm(join(confdir, 'system', 'prolog'));
  const noAsk = await runShell('/bin/sh', `exec ${cmd} prolog --no-imp`, env(imp));
  t.equal(noAsk.code, 3);
  t.equal(await readFile(log, 'utf8'), `a-package ${F58}\nnnf-env ${F58}\nz-site ${F58}\n`, '--no-imp: the scripts, not the IMP');

  const bad = await runShell('/bin/sh', `exec ${cmd} housekeeping`, env(''));
  t.equal(bad.code, 2);
  t.match(bad.stderr, /usage: flux-perilog prolog\|epilog/);
  const badFlag = await runShell('/bin/sh', `exec ${cmd} prolog --imp`, env(''));
  t.equal(badFlag.code, 2, 'an unknown second argument is refused, not ignored');
});
