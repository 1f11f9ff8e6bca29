/**
 * Security properties of a running daemon: another user reads neither job files nor the control
 * socket; a symlink planted in the runtime directory is not followed; the API token appears in
 * no log line, status answer or printed configuration; an untrusted TLS certificate is refused
 * with a message that says what to do.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, lstat, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { getJob, getStatus, health, requestJson, trackJob } from '../../src/api/client.js';
import { flagName, type ConfigKey } from '../../src/config/schema.js';
import { startDaemon } from '../../src/daemon/main.js';
import { formatJobId } from '../../src/contract/jobid.js';
import { KubeClient } from '../../src/kube/client.js';
import { resolveConnection } from '../../src/kube/connection.js';
import { writeKubeconfigFile } from '../../src/sim/kubeconfig.js';
import { nnfEnvdBin } from '../helpers/paths.js';
import { eventually, newJobId, startHarness } from '../daemon/harness.js';

function metricsText(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ socketPath, path: '/metrics', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject).end();
  });
}

const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;
const asNobody = (cmd: string[]) =>
  spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...cmd], { encoding: 'utf8', timeout: 20_000 });

t.test('another user reads neither job files nor the control socket', { skip: !isRoot || !hasSetpriv ? 'needs root and setpriv' : false }, async (t) => {
  const h = await startHarness({ sim: { userContainers: false }, config: { PROBE_PORTS: 'false' } });
  t.teardown(() => h.close());
  // Open the way down to the runtime dir: only the daemon's own modes may protect the files.
  await chmod(h.dir, 0o755);
  const id = newJobId();
  h.sim.submitJob({ jobId: id, userID: 1050 });
  await trackJob(h.socketPath, id.toString(), 1050);
  t.equal((await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 20_000 })).phase, 'delivered');
  const f = h.files(id);
  const cat = asNobody(['cat', f.env]);
  t.not(cat.status, 0, 'nobody cannot read the env file');
  t.match(cat.stderr, /Permission denied/);
  t.not(asNobody(['cat', f.status]).status, 0, 'nobody cannot read the status file');
  const ls = asNobody(['ls', h.jobsDir]);
  t.not(ls.status, 0, 'nobody cannot list the jobs directory (0711)');
  const conn = asNobody([process.execPath, '-e', `require('net').connect(${JSON.stringify(h.socketPath)}).on('connect',()=>process.exit(0)).on('error',e=>{console.error(e.code);process.exit(3)})`]);
  t.equal(conn.status, 3, 'nobody cannot connect to the control socket');
  t.match(conn.stderr, /EACCES/);
  t.equal((await stat(h.socketPath)).mode & 0o777, 0o660, 'socket mode 0660');
  t.equal((await stat(f.env)).mode & 0o777, 0o600, 'env file mode 0600');
  t.equal((await stat(f.env)).uid, 1050, 'env file owned by the job user');
});

t.test('a symlink planted in the jobs directory is not followed', async (t) => {
  const h = await startHarness({ sim: { userContainers: false }, config: { PROBE_PORTS: 'false' } });
  t.teardown(() => h.close());
  const shadow = join(h.dir, 'shadow');
  await writeFile(shadow, 'root:$6$secret:19000:0:99999:7:::\n', { mode: 0o600 });
  const before = await stat(shadow);
  const id = newJobId();
  const f = h.files(id);
  await symlink(shadow, f.env);
  await symlink(shadow, f.status);
  h.sim.submitJob({ jobId: id, userID: 1050 });
  await trackJob(h.socketPath, id.toString(), 1050);
  // The daemon refuses or replaces the links; either way the target is untouched.
  await new Promise((r) => setTimeout(r, 1500));
  const after = await stat(shadow);
  t.equal(await readFile(shadow, 'utf8'), 'root:$6$secret:19000:0:99999:7:::\n', 'target content unchanged');
  t.equal(after.mode, before.mode, 'target mode unchanged');
  t.equal(after.uid, before.uid, 'target owner unchanged');
  for (const p of [f.env, f.status]) {
    const st = await lstat(p).catch(() => undefined);
    if (st && !st.isSymbolicLink()) t.not(await readFile(p, 'utf8'), await readFile(shadow, 'utf8'), `${p} is our own file`);
  }
  t.ok(await health(h.socketPath), 'daemon still serving');
});

t.test('the API token appears in no log line, status answer or printed configuration', async (t) => {
  const token = 'tok-NNFSECRET-0123456789abcdef';
  const h = await startHarness({ noDaemon: true, sim: { token, userContainers: false }, config: { PROBE_PORTS: 'false' } });
  t.teardown(() => h.close());
  const args = [nnfEnvdBin];
  for (const [k, v] of Object.entries({ ...h.flags, LOG_LEVEL: 'trace', LOG_FORMAT: 'json' })) args.push(`${flagName(k as ConfigKey)}=${v}`);
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  t.teardown(() => proc.kill('SIGKILL'));
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await eventually('daemon healthy', () => health(h.socketPath, { timeoutMs: 1000 }).catch(() => false), 20_000, 50);
  const id = newJobId();
  h.sim.submitJob({ jobId: id, userID: 1050 });
  await trackJob(h.socketPath, id.toString(), 1050);
  t.equal((await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 20_000 })).phase, 'delivered', 'works with the token');
  h.sim.faults.failNext({ status: 500, count: 2 });
  h.sim.faults.dropWatches();
  await new Promise((r) => setTimeout(r, 500));
  const answers = [JSON.stringify(await getStatus(h.socketPath)), JSON.stringify((await requestJson(h.socketPath, 'GET', '/v1/jobs')).body), await metricsText(h.socketPath)];
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  t.ok(out.split('\n').length > 10, `the daemon logged (${out.split('\n').length} lines at trace level)`);
  t.notOk(out.includes(token), 'no log line holds the token');
  t.notOk(out.includes('NNFSECRET'), 'not even part of it');
  for (const a of answers) t.notOk(a.includes('NNFSECRET'), 'no API answer holds the token');
  const kc = await readFile(h.kubeconfig, 'utf8');
  t.ok(kc.includes(token), 'the kubeconfig does hold it (the test is meaningful)');
  const print = spawnSync(process.execPath, [nnfEnvdBin, '--print-config', ...Object.entries(h.flags).map(([k, v]) => `${flagName(k as ConfigKey)}=${v}`), `--kube-server=https://user:${token}@127.0.0.1:1`], { encoding: 'utf8' });
  t.equal(print.status, 0, 'print-config ran');
  t.notOk(print.stdout.includes('NNFSECRET') || print.stderr.includes('NNFSECRET'), '--print-config redacts credentials in KUBE_SERVER');
});

t.test('TLS: a server certificate not signed by a trusted CA is refused with a clear message', async (t) => {
  const h = await startHarness({ noDaemon: true, sim: { tls: true, userContainers: false } });
  t.teardown(() => h.close());
  const noCa = join(h.dir, 'kubeconfig-no-ca');
  await writeKubeconfigFile(noCa, { server: h.sim.url });
  const conn = await resolveConnection({ KUBE_CONNECTION: 'kubeconfig', KUBECONFIG: noCa, KUBE_SERVER: '', KUBE_TOKEN_FILE: '', KUBE_CA_FILE: '', KUBE_TLS_SERVER_NAME: '', KUBE_INSECURE_SKIP_TLS_VERIFY: false, KUBE_CONTEXT: '' }, {});
  const client = new KubeClient({ connection: conn, requestTimeoutMs: 5000 });
  t.teardown(() => client.close());
  await t.rejects(client.request({ method: 'GET', path: '/apis' }), { code: 'KUBE_TLS_UNTRUSTED', message: /TLS verification failed/ }, 'client: KUBE_TLS_UNTRUSTED');

  // The daemon says so in its log, and never reaches the API with the untrusted server.
  const lines: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } });
  const loaded = await h.loadConfig({ KUBECONFIG: noCa });
  const d = await startDaemon(loaded, pino({ level: 'warn' }, sink), { env: {}, startupApiWaitMs: 800, rabbitWaitMs: 800 }).catch((err: unknown) => err as Error);
  if (d instanceof Error) t.match(d.message, /TLS|certificate/, 'start refused with a TLS message');
  else {
    await eventually('a TLS warning in the log', () => lines.some((l) => /TLS verification failed/.test(l)), 10_000);
    t.pass('the log names the TLS failure and what to set');
    t.ok(lines.some((l) => /KUBE_CA_FILE|certificate-authority/.test(l)), 'and the setting to fix');
    await d.stop();
  }
  t.equal(formatJobId(1234n, 'f58plain'), 'fNH'); // (sanity of the import, keeps the file self-contained)
});
