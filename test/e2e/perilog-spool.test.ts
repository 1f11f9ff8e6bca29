/**
 * The Node-free perilog (docs/FORMATS.md "Perilog without Node"): the shipped prolog and epilog
 * scripts run with /bin/sh against a real nnf-envd process on the simulator. The fast path must
 * answer without starting Node (the scripts' NNF_ENV points at a program that records that it
 * ran and fails); everything unusual must end in the Node path, which here is the real
 * `nnf-env` (a wrapper that also records that it ran).
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { chmod, chown, lstat, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatJobId } from '../../src/contract/jobid.js';
import { eventually, exists, newJobId, startHarness, type Harness } from '../daemon/harness.js';
import { nnfEnvBin, nnfEnvdBin } from '../helpers/paths.js';
import { writePerilogScript } from '../helpers/perilog-scripts.js';
import { listJobs } from '../../src/api/client.js';
import type { JobStatus } from '../../src/contract/job-status.js';

const USER = 1050;
const PROLOG_TIMEOUT_S = 20;

let h: Harness;
let bin: string;
let ranLog: string;
let prologSh: string;
let epilogSh: string;
let nodeProlog: string;
let nodeEpilog: string;

t.before(async () => {
  h = await startHarness({ backend: 'sim', daemonBin: nnfEnvdBin, noDaemon: true, config: { PROLOG_TIMEOUT: `${PROLOG_TIMEOUT_S}s`, PROBE_DEADLINE: '1s' } });
  await chmod(h.dir, 0o755);
  await h.startDaemon();
  bin = join(h.dir, 'bin');
  await mkdir(bin);
  ranLog = join(h.dir, 'ran');
  // Stand-in `flux job info ID jobspec` as flux-core prints a jobspec with #DW directives.
  await writeFile(join(bin, 'flux'), `#!/bin/sh\n[ "$1 $2 $4" = "job info jobspec" ] || exit 1\necho '{"resources": [], "attributes": {"system": {"duration": 0, "dw": "#DW jobdw type=xfs capacity=1GB name=s"}}, "version": 1}'\n`, { mode: 0o755 });
  // Must not run on the fast path: records and fails loudly.
  const refuse = join(h.dir, 'no-node');
  await writeFile(refuse, `#!/bin/sh\necho "no-node $*" >> ${ranLog}\necho "Node was started" >&2\nexit 99\n`, { mode: 0o755 });
  // The Node path: the real nnf-env, on the daemon's config file.
  const real = join(h.dir, 'nnf-env');
  await writeFile(real, `#!/bin/sh\necho "node $*" >> ${ranLog}\nexec '${process.execPath}' '${nnfEnvBin}' "$@"\n`, { mode: 0o755 });
  const script = (which: 'prolog' | 'epilog', nnfEnv: string, name: string) => writePerilogScript(which, join(h.dir, name), nnfEnv);
  prologSh = await script('prolog', refuse, 'prolog-fast');
  epilogSh = await script('epilog', refuse, 'epilog-fast');
  nodeProlog = await script('prolog', real, 'prolog-node');
  nodeEpilog = await script('epilog', real, 'epilog-node');
});
t.teardown(() => h?.close());

/** The daemon's view of one job (undefined: not tracked). */
async function tracked(id: bigint): Promise<JobStatus | undefined> {
  return (await listJobs(h.socketPath)).find((j) => j.job.id === formatJobId(id, 'f58plain'));
}

const spoolDir = () => join(h.runtimeDir, 'prolog');
const endedDir = () => join(h.jobsDir, '.ended');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a script with /bin/sh as perilog would (FLUX_* variables, a bare PATH); `onStart` gets the pid. */
function run(script: string, id: bigint, opts: { onStart?: (pid: number) => void; env?: Record<string, string> } = {}): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', [script], {
      env: { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, FLUX_JOB_ID: formatJobId(id, 'f58'), FLUX_JOB_USERID: String(USER), NNF_ENV_CONFIG: join(h.dir, 'nnf-envd.conf'), ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (child.pid !== undefined) opts.onStart?.(child.pid);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

async function ran(): Promise<string[]> {
  const text = await readFile(ranLog, 'utf8').catch(() => '');
  await rm(ranLog, { force: true });
  return text.split('\n').filter(Boolean);
}

const LINE = (id: bigint) => new RegExp(`^nnf-env prolog: job ${formatJobId(id, 'f58')} workflow default/fluxjob-${id} (.*) in \\d+ms\\n$`);

async function spoolEntries(): Promise<string[]> {
  return (await readdir(spoolDir())).filter((n) => n !== '.nnf-envd');
}

async function daemonDown(): Promise<void> {
  const child = h.child!;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

t.test('delivered job: the answer line, exit 0, no Node; the epilog marker untracks it', async (t) => {
  const id = newJobId();
  await h.cluster.submitJob({ jobId: id, userID: USER, groupID: USER });
  const p = await run(prologSh, id);
  t.equal(p.code, 0, p.stderr);
  t.match(p.stdout, LINE(id));
  t.match(p.stdout, /delivered \(\d+ variables; 2 ports reachable\)/);
  t.equal(p.stderr, '');
  t.same(await ran(), [], 'nnf-env (Node) never ran');
  t.ok(await exists(h.files(id).env), 'env file written');
  t.equal((await tracked(id))?.phase, 'delivered', 'tracked, delivered');
  t.same(await spoolEntries(), [], 'nothing left in the spool');

  const e = await run(epilogSh, id);
  t.equal(e.code, 0);
  t.match(e.stdout, /^nnf-env epilog: job ƒ\w+ end recorded for nnf-envd/);
  t.same(await ran(), [], 'the epilog did not start Node either');
  // The controller removes the files, then the record, then forgets the job.
  await eventually('job untracked', async () => !(await exists(h.files(id).env)) && !(await exists(h.files(id).status)) && (await tracked(id)) === undefined, 15_000);
  t.pass('untracked, files removed');
  t.same(await readdir(endedDir()), [], 'the marker is removed');
});

t.test('failed workflow, unreachable ports, no workflow: exit 0 with the same text as nnf-env prolog', async (t) => {
  const failed = newJobId();
  await h.cluster.submitJob({ jobId: failed, userID: USER, groupID: USER, failAt: 'PreRun' });
  const f = await run(prologSh, failed);
  t.equal(f.code, 0);
  t.match(f.stdout, /failed \(user job problem, job runs without variables\): /);
  t.equal(f.stderr, '');

  const closed = newJobId();
  await h.cluster.submitJob({ jobId: closed, userID: USER, groupID: USER, listen: false });
  const c = await run(prologSh, closed);
  t.equal(c.code, 0);
  t.match(c.stdout, /delivered \(\d+ variables; ports unreachable: \d+,\d+\)/);

  // The jobspec has #DW but no workflow exists: the daemon's source says so.
  const none = newJobId();
  const n = await run(prologSh, none);
  t.equal(n.code, 0);
  t.match(n.stdout, /no workflow in \d+ms\n$/);
  t.same(await ran(), [], 'no Node for any of them');
  for (const id of [failed, closed, none]) t.equal((await run(epilogSh, id)).code, 0);
  await eventually('condition', async () => (await readdir(endedDir())).length === 0, 15_000);
});

t.test('jobspec not certain: the Node path, as before', async (t) => {
  const id = newJobId();
  await h.cluster.submitJob({ jobId: id, userID: USER, groupID: USER });
  // A "dw" key that is not flux's form of directives: the script cannot be sure.
  await writeFile(join(bin, 'flux'), `#!/bin/sh\necho '{"attributes": {"user": {"dw": 1}}}'\n`, { mode: 0o755 });
  try {
    const p = await run(nodeProlog, id);
    t.equal(p.code, 0, p.stderr);
    t.match(p.stdout, /delivered/);
    t.same(await ran(), ['node prolog'], 'nnf-env prolog decided');
  } finally {
    await writeFile(join(bin, 'flux'), `#!/bin/sh\necho '{"attributes": {"system": {"dw": "#DW jobdw type=xfs capacity=1GB name=s"}}}'\n`, { mode: 0o755 });
  }
  t.equal((await run(epilogSh, id)).code, 0);
});

t.test('forged spool entries are never followed, and never stop the daemon', async (t) => {
  const victim = join(h.dir, 'victim');
  await writeFile(victim, 'untouched\n');
  const a = formatJobId(newJobId(), 'f58plain');
  await symlink(victim, join(spoolDir(), `${a}.${USER}.1`));
  await writeFile(join(spoolDir(), `${formatJobId(newJobId(), 'f58plain')}.${USER}.2`), 'a regular file\n');
  await writeFile(join(spoolDir(), 'evil; rm -rf'), '');
  await writeFile(join(spoolDir(), `${a}.01.3`), '');
  await writeFile(join(spoolDir(), `${a}.${USER}`), '');
  await mkdir(join(spoolDir(), `${formatJobId(newJobId(), 'f58plain')}.7.7`));
  const { execFileSync } = await import('node:child_process');
  const fifo = join(spoolDir(), `${formatJobId(newJobId(), 'f58plain')}.${USER}.4`);
  // Made under a dot name (the daemon skips those) and renamed in, as the script does.
  const tmp = join(spoolDir(), '.forged');
  execFileSync('mkfifo', ['-m', '600', tmp]);
  if (process.getuid?.() === 0) await chown(tmp, USER, USER); // a FIFO the daemon's user does not own
  const { rename } = await import('node:fs/promises');
  await rename(tmp, fifo);
  await writeFile(join(endedDir(), 'not-a-job'), '');
  await eventually('condition', async () => (await spoolEntries()).filter((n) => !n.endsWith('.7.7')).length === 0 && (await readdir(endedDir())).length === 0, 15_000);
  t.equal(await readFile(victim, 'utf8'), 'untouched\n', 'the symlink\'s target is not written');
  t.same((await spoolEntries()), (await spoolEntries()).filter((n) => n.endsWith('.7.7')), 'every file entry removed (a directory is left: rmdir is not unlink)');
  await rm(join(spoolDir(), (await spoolEntries())[0] ?? 'none'), { recursive: true, force: true });
  t.equal(h.child?.exitCode, null, 'the daemon still runs');
  const id = newJobId();
  await h.cluster.submitJob({ jobId: id, userID: USER, groupID: USER });
  const p = await run(prologSh, id);
  t.match(p.stdout, /delivered/, 'and serves the next prolog');
  t.equal((await run(epilogSh, id)).code, 0);
});

t.test('two ranks of one job on one node (a test instance): both answered', async (t) => {
  const id = newJobId();
  await h.cluster.submitJob({ jobId: id, userID: USER, groupID: USER, stopAt: 'DataIn' });
  const both = Promise.all([run(prologSh, id), run(prologSh, id)]);
  await eventually('both FIFOs taken', async () => (await tracked(id))?.phase === 'waiting' && (await spoolEntries()).length === 0, 15_000);
  await h.cluster.advance(`fluxjob-${id}`, 'PreRun');
  for (const r of await both) {
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /delivered/);
  }
  t.same(await ran(), []);
  t.equal((await run(epilogSh, id)).code, 0);
});

t.test('50 concurrent prologs, then 50 epilogs', async (t) => {
  const ids = Array.from({ length: 50 }, () => newJobId());
  for (const id of ids) await h.cluster.submitJob({ jobId: id, userID: USER, groupID: USER, numPorts: 1 });
  const runs = await Promise.all(ids.map((id) => run(prologSh, id)));
  runs.forEach((r, i) => {
    t.equal(r.code, 0, `job ${i}`);
    t.match(r.stdout, LINE(ids[i]!));
    t.match(r.stdout, /delivered/);
  });
  t.same(await ran(), [], 'no Node');
  const ends = await Promise.all(ids.map((id) => run(epilogSh, id)));
  t.ok(ends.every((e) => e.code === 0));
  await eventually('condition', async () => (await readdir(h.jobsDir)).filter((n) => !n.startsWith('.')).length === 0, 15_000);
  t.same(await spoolEntries(), []);
});

t.test('job canceled while its prolog waits: the wait and the FIFO end with the epilog', async (t) => {
  const id = newJobId();
  await h.cluster.submitJob({ jobId: id, userID: USER, groupID: USER, stopAt: 'DataIn' });
  let pid = 0;
  const p = run(prologSh, id, { onStart: (n) => (pid = n) });
  await eventually('the prolog waits in nnf-envd', async () => (await tracked(id))?.phase === 'waiting' && (await spoolEntries()).length === 0, 15_000);
  process.kill(pid, 'SIGKILL'); // Flux kills the prolog
  const killed = await p;
  t.equal(killed.code, null);
  const e = await run(epilogSh, id);
  t.equal(e.code, 0);
  t.match(e.stdout, /end recorded/, 'the epilog left a marker');
  // Bounded generously: once (a loaded machine, other test files running) 5 s were not enough.
  await eventually('job untracked after the marker', async () => (await tracked(id)) === undefined && !(await exists(h.files(id).status)), 20_000)
    .catch(async (err: unknown) => {
      t.comment(`markers: ${JSON.stringify(await readdir(endedDir()))}; tracked: ${JSON.stringify(await tracked(id))}`);
      throw err;
    });
  t.same(await spoolEntries(), [], 'no FIFO left');
  t.same(await readdir(endedDir()), []);
  t.equal(h.child?.exitCode, null, 'a write to a gone reader is not an error');
  t.same(await ran(), []);
});

t.test('daemon killed while a prolog waits: the script falls back to Node at once', async (t) => {
  const id = newJobId();
  await h.cluster.submitJob({ jobId: id, userID: USER, groupID: USER, stopAt: 'DataIn' });
  const p = run(nodeProlog, id);
  await eventually('the prolog waits in nnf-envd', async () => (await tracked(id))?.phase === 'waiting' && (await spoolEntries()).length === 0, 15_000);
  await daemonDown();
  const r = await p;
  t.equal(r.code, 0, 'PROLOG_ON_NODE_ERROR=pass');
  t.ok(r.ms < (PROLOG_TIMEOUT_S * 1000) / 2, `ended in ${Math.round(r.ms)} ms, well before PROLOG_TIMEOUT (${PROLOG_TIMEOUT_S}s)`);
  t.match(r.stderr, /NODE ERROR: nnf-envd is not running/, 'the Node path said why');
  t.same(await ran(), ['node prolog']);
  // The daemon had written the job's waiting status: its files win over the notice.
  t.match(r.stderr, /job shell (not )?warned/);

  // Daemon down: another prolog takes the Node path (the pid in .nnf-envd is gone).
  const other = newJobId();
  const d = await run(nodeProlog, other);
  t.equal(d.code, 0);
  t.match(d.stderr, /NODE ERROR: nnf-envd is not running/);
  t.same(await ran(), ['node prolog']);
  t.match(await readFile(h.files(other).env, 'utf8'), /nnf-envd was not running/, 'notice written');

  // Epilog markers while it is down wait for the next start.
  for (const j of [id, other]) {
    const e = await run(epilogSh, j);
    t.equal(e.code, 0);
    t.match(e.stdout, /end recorded/);
  }
  t.equal((await readdir(endedDir())).length, 2, 'two markers wait');
  await h.startDaemon();
  await eventually('condition', async () => (await readdir(endedDir())).length === 0, 10_000);
  t.notOk(await exists(h.files(id).env), 'processed at start: files removed');
  t.notOk(await exists(h.files(other).env));
  t.equal(await tracked(id), undefined);
});

t.test('daemon-side PROLOG_TIMEOUT: the timeout line and the job shell\'s notice', async (t) => {
  await daemonDown();
  await h.startDaemon({ PROLOG_TIMEOUT: '2s' });
  t.teardown(async () => {
    await daemonDown();
    await h.startDaemon();
  });
  const id = newJobId();
  await h.cluster.submitJob({ jobId: id, userID: USER, groupID: USER, stopAt: 'DataIn' });
  const r = await run(prologSh, id);
  t.equal(r.code, 0, 'pass: the job runs');
  t.equal(r.stdout, '');
  t.match(r.stderr, LINE(id));
  t.match(r.stderr, /NODE ERROR: timed out after 2s in phase waiting .*; job shell warned \(/);
  t.same(await ran(), [], 'answered by the daemon');
  const text = await readFile(h.files(id).env, 'utf8');
  t.match(text, /had not finished PreRun when the job started on .* \(nnf-env prolog gave up after 2s\)/);
  const st = await lstat(h.files(id).env);
  t.equal(st.mode & 0o777, 0o600);
  t.equal((await run(epilogSh, id)).code, 0);
  await eventually('condition', async () => !(await exists(h.files(id).env)), 15_000);
});

t.test('no spool (an older daemon, or none ever ran): the Node path', async (t: Test) => {
  const id = newJobId();
  await h.cluster.submitJob({ jobId: id, userID: USER, groupID: USER });
  const p = await run(nodeProlog, id, { env: { NNF_ENV_RUNTIME_DIR: join(h.dir, 'elsewhere') } });
  t.same(await ran(), ['node prolog'], 'no spool there: nnf-env prolog');
  t.equal(p.code, 0);
  // The .ended directory missing: the epilog asks Node too.
  const e = await run(nodeEpilog, id, { env: { NNF_ENV_RUNTIME_DIR: join(h.dir, 'elsewhere') } });
  t.equal(e.code, 0);
});

t.test('.nnf-envd: the daemon\'s pid and PROLOG_TIMEOUT, rewritten when a reload changes it', async (t) => {
  const file = join(spoolDir(), '.nnf-envd');
  t.equal(await readFile(file, 'utf8'), `${h.child!.pid} ${PROLOG_TIMEOUT_S}\n`);
  t.equal((await lstat(file)).mode & 0o777, 0o600);
  t.equal((await lstat(spoolDir())).mode & 0o777, 0o700, 'the spool is the daemon\'s alone');
  t.equal((await lstat(endedDir())).mode & 0o777, 0o700);
  const conf = join(h.dir, 'nnf-envd.conf');
  await writeFile(conf, (await readFile(conf, 'utf8')).replace(/^PROLOG_TIMEOUT=.*$/m, 'PROLOG_TIMEOUT=7s'));
  h.child!.kill('SIGHUP');
  await eventually('.nnf-envd rewritten', async () => (await readFile(file, 'utf8')) === `${h.child!.pid} 7\n`, 15_000);
});
