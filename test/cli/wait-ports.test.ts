/** `nnf-env wait` and `nnf-env check-ports` through the built CLI, with real files and listeners. */
import t from 'tap';
import { createServer, type Server } from 'node:net';
import { chmod, writeFile } from 'node:fs/promises';
import { formatJobId } from '../../src/contract/jobid.js';
import { jobFiles } from '../../src/contract/job-paths.js';
import { renderDaemonDownEnvFile } from '../../src/fs/prolog-notice.js';
import { baseEnv, makeSandbox, runCli, writeJob, type Sandbox } from './job-files.js';

let sb: Sandbox;
t.before(async () => {
  sb = await makeSandbox();
});
t.teardown(async () => {
  await sb.cleanup();
});

const jobEnv = (id: bigint, extra: Record<string, string | undefined> = {}) => baseEnv(sb, { FLUX_JOB_ID: formatJobId(id, 'f58'), ...extra });

async function listen(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

/** A port nobody listens on: bind one, note it, close it. */
async function closedPort(): Promise<number> {
  const { server, port } = await listen();
  await new Promise((r) => server.close(r));
  return port;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('wait returns when the files appear later (inotify on the jobs directory)', async (t) => {
  const id = 7001n;
  const started = Date.now();
  const waiting = runCli(['wait', '--timeout', '20s'], { env: jobEnv(id) });
  await sleep(300);
  await writeJob(sb.jobsDir, id, { status: { phase: 'waiting' }, envFile: false });
  await sleep(300);
  await writeJob(sb.jobsDir, id, { vars: { DW_JOB_a: 'x' } });
  const r = await waiting;
  t.equal(r.code, 0, r.stderr);
  t.ok(Date.now() - started < 15_000, 'did not run into its timeout');
});

t.test('wait as the job\'s user, who cannot watch the 0711 jobs directory', { skip: process.getuid?.() !== 0 ? 'needs root to switch users' : false }, async (t) => {
  const id = 7002n;
  await chmod(sb.jobsDir, 0o711);
  const waiting = runCli(['wait', '--timeout', '20s'], { env: jobEnv(id), uid: 1050, gid: 1050 });
  await sleep(300);
  await writeJob(sb.jobsDir, id, { vars: { DW_JOB_a: 'x' }, uid: 1050, gid: 1050 });
  const r = await waiting;
  t.equal(r.code, 0, r.stderr);
});

t.test('wait: already delivered returns at once; failed and no-workflow are errors; timeout', async (t) => {
  await writeJob(sb.jobsDir, 7010n, { vars: { DW_JOB_a: 'x' } });
  t.equal((await runCli(['wait'], { env: jobEnv(7010n) })).code, 0);

  await writeJob(sb.jobsDir, 7011n, { status: { phase: 'failed', error: { code: 'WORKFLOW_ERROR', message: 'no space on rabbit' } } });
  const failed = await runCli(['wait'], { env: jobEnv(7011n) });
  t.equal(failed.code, 4);
  t.match(failed.stderr, /failed: no space on rabbit/);

  await writeJob(sb.jobsDir, 7012n, { status: { phase: 'no-workflow', workflow: null }, envFile: false });
  t.equal((await runCli(['wait'], { env: jobEnv(7012n) })).code, 5);

  await writeJob(sb.jobsDir, 7013n, { status: { phase: 'probing' } });
  const slow = await runCli(['wait', '--timeout', '700ms'], { env: jobEnv(7013n) });
  t.equal(slow.code, 3, 'probing is not final');
  t.match(slow.stderr, /gave up after 700ms: phase probing/);

  const nothing = await runCli(['wait', '--timeout', '300ms'], { env: jobEnv(7014n) });
  t.equal(nothing.code, 3);
  t.match(nothing.stderr, /no status file/);

  const bad = await runCli(['wait', '--timeout', 'soon'], { env: jobEnv(7014n) });
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--timeout "soon" is not a duration/);
});

t.test('wait: the prolog\'s daemon-down notice fails at once, as the other commands do', async (t) => {
  // Already there: the same error (and exit code) as `export` gives for it.
  const id = 7040n;
  await writeFile(jobFiles(sb.jobsDir, id).env, renderDaemonDownEnvFile(id, { namespace: 'default', name: `fluxjob-${id}` }, 'node-x'), { mode: 0o600 });
  const r = await runCli(['wait', '--timeout', '60s'], { env: jobEnv(id) });
  const exp = await runCli(['export'], { env: jobEnv(id) });
  t.equal(r.code, 1, 'not 3 (timed out)');
  t.match(r.stderr, /^nnf-env wait: no nnf-env variables for job f\w+ on this node: nnf-envd was not running on node-x when the job started/);
  t.notMatch(r.stderr, /no status file|gave up/);
  t.equal(exp.code, r.code, 'export: the same exit code');
  t.equal(exp.stderr.replace(/^nnf-env export:/, 'nnf-env wait:'), r.stderr, 'export: the same message');

  // Written while waiting (the prolog is still running when the job script starts `wait`).
  const later = 7041n;
  const waiting = runCli(['wait', '--timeout', '60s'], { env: jobEnv(later) });
  await sleep(300);
  await writeFile(jobFiles(sb.jobsDir, later).env, renderDaemonDownEnvFile(later, null, 'node-y'), { mode: 0o600 });
  const w = await waiting;
  t.equal(w.code, 1);
  t.match(w.stderr, /nnf-envd was not running on node-y when the job started/);
});

t.test('wait --ports: until the ports accept connections from here', async (t) => {
  const a = await listen();
  const portB = await closedPort();
  const id = 7020n;
  await writeJob(sb.jobsDir, id, {
    vars: { NNF_CONTAINER_PORTS: `${a.port},${portB}`, NNF_ENV_LOCAL_RABBIT: 'rabbit-node-1', NNF_ENV_LOCAL_RABBIT_ADDRESS: '127.0.0.1' },
  });
  const waiting = runCli(['wait', '--ports', '--timeout', '20s'], { env: jobEnv(id) });
  await sleep(500);
  const b = createServer((s) => s.destroy());
  await new Promise<void>((r) => b.listen(portB, '127.0.0.1', r));
  const r = await waiting;
  t.equal(r.code, 0, r.stderr);

  // and a port that never opens: exit 1 with the table on stderr
  await new Promise((r) => b.close(r));
  const never = await runCli(['wait', '--ports', '--timeout', '600ms'], { env: jobEnv(id) });
  t.equal(never.code, 1);
  t.match(never.stderr, new RegExp(`^${portB}\\s+NO`, 'm'));
  t.match(never.stderr, new RegExp(`port ${portB} on rabbit-node-1 \\(127\\.0\\.0\\.1\\) did not accept a connection`));
  await new Promise((r) => a.server.close(r));
});

t.test('check-ports against real listeners', async (t) => {
  const a = await listen();
  const b = await listen();
  const id = 7030n;
  await writeJob(sb.jobsDir, id, {
    vars: { NNF_CONTAINER_PORTS: `${a.port},${b.port}`, NNF_ENV_LOCAL_RABBIT: 'rabbit-node-1', NNF_ENV_LOCAL_RABBIT_ADDRESS: '127.0.0.1' },
  });
  const ok = await runCli(['check-ports'], { env: jobEnv(id) });
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /^ports on rabbit-node-1 \(127\.0\.0\.1\)$/m);
  t.match(ok.stdout, new RegExp(`^${a.port}\\s+yes\\s+1\\s+\\d+ ms\\s+-$`, 'm'));
  t.match(ok.stdout, new RegExp(`^${b.port}\\s+yes`, 'm'));

  await new Promise((r) => b.server.close(r));
  const bad = await runCli(['check-ports', '--timeout', '400ms'], { env: jobEnv(id) });
  t.equal(bad.code, 1);
  t.match(bad.stdout, new RegExp(`^${a.port}\\s+yes`, 'm'));
  t.match(bad.stdout, new RegExp(`^${b.port}\\s+NO\\s+\\d+\\s+-\\s+ECONNREFUSED`, 'm'));
  t.match(bad.stderr, new RegExp(`port ${b.port} on rabbit-node-1 \\(127\\.0\\.0\\.1\\) did not accept a connection`));

  const json = await runCli(['check-ports', '--json', '--timeout', '300ms'], { env: jobEnv(id) });
  const parsed = JSON.parse(json.stdout);
  t.equal(parsed.target, '127.0.0.1');
  t.same(parsed.results.map((r: { port: number; reachable: boolean }) => [r.port, r.reachable]), [[a.port, true], [b.port, false]]);

  // MPI: the launcher is probed, at the address the daemon resolved for it
  await writeJob(sb.jobsDir, 7031n, {
    vars: { NNF_CONTAINER_PORTS: String(a.port), NNF_CONTAINER_LAUNCHER: 'rabbit-node-2', NNF_ENV_LOCAL_RABBIT_ADDRESS: '192.0.2.1' },
    status: { ports: { target: 'rabbit-node-2', address: '127.0.0.1', results: [] } },
  });
  const mpi = await runCli(['check-ports'], { env: jobEnv(7031n) });
  t.equal(mpi.code, 0, mpi.stderr);
  t.match(mpi.stdout, /^ports on rabbit-node-2 \(127\.0\.0\.1\)$/m);

  await writeJob(sb.jobsDir, 7032n, { vars: { DW_JOB_a: 'x' } });
  const none = await runCli(['check-ports'], { env: jobEnv(7032n) });
  t.equal(none.code, 1);
  t.match(none.stderr, /has no container ports/);
  await new Promise((r) => a.server.close(r));
});
