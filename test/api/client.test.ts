/** The control-socket client against a tiny real HTTP server on a real unix socket. */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DaemonAccessError,
  DaemonApiError,
  DaemonTimeoutError,
  DaemonUnavailableError,
  getJob,
  getStatus,
  health,
  listJobs,
  trackJob,
  untrackJob,
} from '../../src/api/client.js';
import { reply, startStandIn, type StandInDaemon } from '../cli/stand-in-daemon.js';
import { statusFor } from '../cli/job-files.js';

let dir: string;
let d: StandInDaemon;
let sock: string;
t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nnf-env-client-'));
  sock = join(dir, 'd.sock');
  d = await startStandIn(sock, (_req, res) => reply(res, 500, {}));
});
t.teardown(async () => {
  await d.close();
  await rm(dir, { recursive: true, force: true });
});

t.test('track, get, long poll, untrack, list, status, health', async (t) => {
  d.handler = (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'PUT') return reply(res, (req.body as { userID: number }).userID === 1 ? 201 : 200, statusFor(5n, { phase: 'waiting' }));
    if (req.method === 'GET' && url.pathname === '/v1/jobs/5') {
      return reply(res, 200, statusFor(5n, { phase: url.searchParams.get('wait') === 'delivered' ? 'delivered' : 'waiting' }));
    }
    if (req.method === 'DELETE') return url.pathname === '/v1/jobs/5' ? reply(res, 200, statusFor(5n)) : reply(res, 404, { error: { code: 'NOT_FOUND', message: 'unknown job' } });
    if (url.pathname === '/v1/jobs') return reply(res, 200, { jobs: [statusFor(5n), statusFor(6n)] });
    if (url.pathname === '/v1/status') return reply(res, 200, { node: 'compute-01' });
    if (url.pathname === '/healthz') return reply(res, 200, { ok: true });
    reply(res, 404, { error: { code: 'NOT_FOUND', message: req.url } });
  };
  const created = await trackJob(sock, 5n, 1);
  t.equal(created.created, true);
  t.equal(created.status.phase, 'waiting');
  t.equal((await trackJob(sock, 'ƒ6', 2)).created, false);
  t.same(d.seen.at(-1), { method: 'PUT', url: '/v1/jobs/%C6%926', body: { userID: 2 } }, 'any encoding, URL-encoded');

  t.equal((await getJob(sock, 5n)).phase, 'waiting');
  t.equal((await getJob(sock, 5n, { wait: true, timeoutMs: 1500 })).phase, 'delivered');
  t.equal(d.seen.at(-1)!.url, '/v1/jobs/5?wait=delivered&timeout=1500ms');

  t.equal(await untrackJob(sock, 5n), true);
  t.equal(await untrackJob(sock, 7n), false, '404: nothing to remove');
  t.same((await listJobs(sock)).map((j) => j.job.dec), ['5', '6']);
  t.same(await getStatus(sock), { node: 'compute-01' });
  t.equal(await health(sock), true);
});

t.test('API errors carry the daemon\'s code and message', async (t) => {
  d.handler = (_req, res) => reply(res, 400, { error: { code: 'BAD_JOB_ID', message: 'invalid Flux job id "x"' } });
  const err = await getJob(sock, 'x').catch((e: unknown) => e);
  t.type(err, DaemonApiError);
  t.equal((err as DaemonApiError).httpStatus, 400);
  t.equal((err as DaemonApiError).apiCode, 'BAD_JOB_ID');
  t.equal((err as DaemonApiError).code, 'DAEMON_API_ERROR');
  t.match((err as Error).message, 'nnf-envd answered 400 BAD_JOB_ID: invalid Flux job id "x"');

  d.handler = (_req, res) => {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('bad gateway');
  };
  const garbage = await getStatus(sock).catch((e: unknown) => e);
  t.type(garbage, DaemonApiError);
  t.equal((garbage as DaemonApiError).apiCode, 'BAD_RESPONSE');
});

t.test('a daemon that does not answer: DaemonTimeoutError, connection closed', async (t) => {
  d.handler = () => undefined; // never answers
  const started = Date.now();
  const err = await getStatus(sock, { timeoutMs: 200 }).catch((e: unknown) => e);
  t.type(err, DaemonTimeoutError);
  t.match((err as Error).message, /did not answer GET \/v1\/status within 200 ms/);
  t.ok(Date.now() - started < 5000);
  // a long poll gets its wait plus a margin before the client gives up
  d.handler = (_req, res) => {
    setTimeout(() => reply(res, 200, statusFor(5n)), 300);
  };
  t.equal((await getJob(sock, 5n, { wait: true, timeoutMs: 100 })).phase, 'delivered');
});

t.test('abort signal', async (t) => {
  d.handler = () => undefined;
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('stop')), 50);
  await t.rejects(getStatus(sock, { signal: ac.signal }), { message: 'stop' });
});

t.test('no daemon: DaemonUnavailableError says what to do', async (t) => {
  const missing = join(dir, 'missing.sock');
  const err = await health(missing).catch((e: unknown) => e);
  t.type(err, DaemonUnavailableError);
  t.equal((err as DaemonUnavailableError).describe(), `nnf-envd is not running (socket ${missing}) (systemctl status nnf-envd)`);

  // A socket file nobody listens on (the daemon was killed): ECONNREFUSED.
  const stale = join(dir, 'stale.sock');
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => child.stdout!.once('data', r));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  t.ok(existsSync(stale), 'the socket file stays behind');
  t.type(await trackJob(stale, 1n, 1).catch((e: unknown) => e), DaemonUnavailableError);

  // Not a socket at all.
  const plain = join(dir, 'plain');
  await writeFile(plain, '');
  t.type(await health(plain).catch((e: unknown) => e), DaemonUnavailableError);
});

t.test('permission denied on the socket', { skip: process.getuid?.() !== 0 ? 'needs root to switch users' : false }, async (t) => {
  const { chmod } = await import('node:fs/promises');
  await chmod(dir, 0o755);
  await chmod(sock, 0o600);
  d.handler = (_req, res) => reply(res, 200, { ok: true });
  // Run the client as nobody in a child process.
  const script = `
    import(${JSON.stringify(new URL('../../src/api/client.js', import.meta.url).href)}).then(async (c) => {
      try { await c.health(${JSON.stringify(sock)}); console.log('OK'); }
      catch (e) { console.log(e.constructor.name + ': ' + e.describe()); }
    });`;
  const child = spawn(process.execPath, ['-e', script], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  await new Promise((r) => child.once('exit', r));
  t.equal(out.trim(), `${DaemonAccessError.name}: permission denied on the nnf-envd socket ${sock} (run as root or as a member of the group set by SOCKET_GROUP)`);
});
