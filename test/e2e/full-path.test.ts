/**
 * The full path of a job's variables, with every real part: the simulator (API server + DWS
 * controllers + user-container listeners), nnf-envd, `nnf-env prolog` as Flux runs it (a
 * subprocess with FLUX_JOB_ID in the ƒ form), the Flux shell's Lua plugin in a Lua VM on the
 * files the daemon wrote, and the job-script helper (`export`, `get`, `endpoint`,
 * `check-ports`) run as the job's user. A non-MPI and an MPI job are checked variable by
 * variable against the workflow's status.env; a job without a workflow; a failed workflow.
 * With NNF_ENV_TEST_INSTALLED_ROOT (test/package/), the bins and plugin are an unpacked package's.
 */
import t, { type Test } from 'tap';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatJobId } from '../../src/contract/jobid.js';
import { dwsResource } from '../../src/kube/resource.js';
import type { Workflow } from '../../src/domain/dws-types.js';
import { startHarness, newJobId, exists, type Harness } from '../daemon/harness.js';
import { backends } from '../helpers/backends.js';
import { LuaPluginHarness } from '../lua/harness.js';
import { jobSide } from './job-side.js';
import { runCli, runShell, type CliResult } from '../cli/job-files.js';
import { installedRoot, nnfEnvBin, nnfEnvdBin } from '../helpers/paths.js';

const WF = dwsResource('workflows', 'v1alpha7');
const USER = 1050;

let h: Harness;
let lua: LuaPluginHarness;
let conf: string;


function prolog(id: bigint, which: 'prolog' | 'epilog' = 'prolog'): Promise<CliResult> {
  // What the IMP passes (FLUX_* only, a fixed PATH), plus where the config is.
  return runCli([which], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', FLUX_JOB_ID: formatJobId(id, 'f58'), FLUX_JOB_USERID: String(USER), NNF_ENV_CONFIG: conf },
  });
}

const { helper, plugin } = jobSide(() => h, () => lua, USER);

/** What the job must see: the workflow's status.env plus this node's own variables. */
async function expectedVariables(id: bigint, launcher?: string): Promise<Record<string, string>> {
  const wf = await h.cluster.get<Workflow>(WF, 'default', `fluxjob-${id}`);
  const env = { ...(wf?.status?.env ?? {}) };
  return {
    ...env,
    NNF_ENV_LOCAL_RABBIT: 'rabbit-sim',
    NNF_ENV_LOCAL_RABBIT_ADDRESS: '127.0.0.1',
    NNF_ENV_CONTAINER_TARGET: launcher ?? 'rabbit-sim',
    NNF_ENV_JOB_ID: formatJobId(id, 'f58plain'),
  };
}

const LOG = (id: bigint) => new RegExp(`^nnf-env prolog: job ${formatJobId(id, 'f58')} workflow default/fluxjob-${id} (.*) in (\\d+)ms\\n$`);

async function checkDeliveredJob(t: Test, id: bigint, mpi: boolean): Promise<void> {
  const started = Date.now();
  const p = await prolog(id);
  t.equal(p.code, 0, `prolog exits 0 (${p.stderr})`);
  t.match(p.stdout, LOG(id), 'one log line, on stdout (perilog logs stderr as errors)');
  t.equal(p.stderr, '');
  t.match(p.stdout, /delivered \(\d+ variables; 2 ports reachable\)/);
  t.comment(`prolog: ${Date.now() - started} ms from submission to delivered`);

  const wf = (await h.cluster.get<Workflow>(WF, 'default', `fluxjob-${id}`))!;
  const launcher = wf.status?.env?.NNF_CONTAINER_LAUNCHER;
  t.equal(Boolean(launcher), mpi, mpi ? 'MPI: the workflow names a launcher' : 'non-MPI: no launcher');
  const expected = await expectedVariables(id, launcher);
  t.ok(Object.keys(expected).some((k) => k.startsWith('DW_JOB_')), 'the workflow has DW_JOB_ variables');

  // The Lua plugin: every variable, byte for byte, nothing else; no complaints.
  const run = await plugin(id);
  const set: Record<string, string> = {};
  for (const s of run.setenv) set[s.name] = s.value.toString('utf8');
  t.same(Object.keys(set).sort(), Object.keys(expected).sort(), 'the plugin sets exactly the expected variables');
  for (const [name, value] of Object.entries(expected)) t.equal(set[name], value, `plugin: ${name}`);
  t.same(run.errors, [], 'no errors');
  t.same(run.dies, []);

  // The helper, as the job's user.
  const exp = await helper(id, ['export', '--format', 'json']);
  t.equal(exp.code, 0, exp.stderr);
  t.same(JSON.parse(exp.stdout), expected, 'nnf-env export: the same variables');
  const sh = await runShell('/usr/bin/bash', `eval "$("$NODE" "$BIN" export)" && printf '%s' "$DW_JOBS"`, {
    PATH: process.env.PATH, NODE: process.execPath, BIN: nnfEnvBin, FLUX_JOB_ID: formatJobId(id, 'f58'), NNF_ENV_RUNTIME_DIR: h.runtimeDir,
  });
  t.equal(sh.stdout, expected.DW_JOBS, 'eval "$(nnf-env export)" in bash');
  const get = await helper(id, ['get', 'NNF_ENV_LOCAL_RABBIT']);
  t.equal(get.stdout, 'rabbit-sim\n');

  const ports = (expected.NNF_CONTAINER_PORTS ?? '').split(',');
  const ep = await helper(id, ['endpoint', '--all']);
  t.equal(ep.code, 0, ep.stderr);
  t.equal(ep.stdout, ports.map((p) => `${mpi ? launcher : 'rabbit-sim'}:${p}\n`).join(''), 'endpoint: the name the container\'s certificate carries');
  const epAlias = await helper(id, ['endpoint', '--alias']);
  t.equal(epAlias.stdout, `${mpi ? launcher : 'local-rabbit'}:${ports[0]}\n`, 'the alias on request');
  const cp = await helper(id, ['check-ports']);
  t.equal(cp.code, 0, `the container's ports answer from here (${cp.stdout}${cp.stderr})`);

  // The epilog removes the files; the plugin and the helper then find nothing.
  const e = await prolog(id, 'epilog');
  t.equal(e.code, 0);
  t.match(e.stdout, /untracked, files removed/);
  t.notOk(await exists(h.files(id).env));
  t.equal((await helper(id, ['export'])).code, 5);
}

// An unpacked package (test/package/) is checked on the simulator; the dev tree on both servers.
for (const backend of installedRoot ? (['sim'] as const) : await backends()) {
  t.test(backend, async (t) => {
    t.before(async () => {
      // From test/package/ on an unpacked package: its nnf-envd as a process (see paths.ts).
      h = await startHarness(installedRoot ? { backend, daemonBin: nnfEnvdBin } : { backend });
      // The job's user must be able to reach the runtime directory (mkdtemp made it 0700).
      await chmod(h.dir, 0o755);
      // The prolog reads the same configuration as the daemon, from its config file.
      conf = join(h.dir, 'nnf-env.conf');
      await writeFile(conf, Object.entries(h.flags).map(([k, v]) => `${k}=${v}\n`).join(''));
      lua = await LuaPluginHarness.create();
    });
    t.teardown(async () => {
      await h.close();
    });

    t.test('non-MPI job: prolog, Lua plugin and helper agree with the workflow, variable by variable', async (t) => {
      const id = newJobId();
      await h.cluster.submitJob({ jobId: id, userID: USER, groupID: USER });
      await checkDeliveredJob(t, id, false);
    });

    t.test('MPI job: the launcher is the endpoint', async (t) => {
      const id = newJobId();
      await h.cluster.submitJob({ jobId: id, userID: USER, groupID: USER, mpi: true });
      await checkDeliveredJob(t, id, true);
    });

    t.test('a job without a workflow: the prolog answers at once, the plugin is silent', async (t) => {
      const id = newJobId();
      const started = Date.now();
      const p = await prolog(id);
      t.comment(`prolog for a job without a workflow: ${Date.now() - started} ms (process included)`);
      t.equal(p.code, 0);
      const m = LOG(id).exec(p.stdout);
      t.ok(m, p.stdout + p.stderr);
      t.equal(m?.[1], 'no workflow');
      const run = await plugin(id);
      t.same(run.setenv, [], 'nothing set');
      t.same(run.logs, [], 'nothing said');
      t.same(run.errors, []);
      const exp = await helper(id, ['export']);
      t.equal(exp.code, 5);
      t.match(exp.stderr, /has no workflow|no nnf-env variables/);
      t.equal((await prolog(id, 'epilog')).code, 0);
    });

    t.test('a failed workflow: the prolog exits 0, the plugin warns, the helper says why', async (t) => {
      const id = newJobId();
      await h.cluster.submitJob({ jobId: id, userID: USER, groupID: USER, failAt: 'PreRun' });
      const p = await prolog(id);
      t.equal(p.code, 0, 'a user-job problem never fails the prolog');
      const m = LOG(id).exec(p.stdout);
      t.ok(m, p.stdout + p.stderr);
      t.match(m?.[1] ?? '', /^failed \(user job problem, job runs without variables\): /);
      const wf = (await h.cluster.get<Workflow>(WF, 'default', `fluxjob-${id}`))!;
      const message = wf.status?.message ?? '';
      t.ok(message, 'the simulator gave the workflow a message');

      const run = await plugin(id);
      t.same(run.dies, [], 'the shell does not die');
      const said = [...run.logs, ...run.errors].join('\n');
      // The plugin reads only the env file: for a failed job nnf-envd writes one with no variables
      // and the job-warning fact (statusFacts).
      t.ok(await exists(h.files(id).env), 'an env file for the plugin');
      t.same(run.setenv, [], 'no variable set');
      t.match(said, /failed/, 'the plugin tells the user the workflow failed');
      t.ok(said.includes(message.slice(0, 40)), 'with the workflow\'s message');

      const exp = await helper(id, ['export']);
      t.equal(exp.code, 4);
      t.match(exp.stderr, new RegExp(`workflow default/fluxjob-${id} of job f\\w+ failed: `));
      t.equal((await prolog(id, 'epilog')).code, 0);
    });
  });
}
