/**
 * The control socket, spoken to as raw HTTP over the unix socket (what a client may send,
 * not only what our client sends), against a daemon on the simulator.
 */
import t from 'tap';
import { request } from 'node:http';
import { stat, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { formatJobId } from '../../src/contract/jobid.js';
import { clearStaleSocket, jobIdFromSegment, parseTrackBody, parseWait } from '../../src/api/server.js';
import { startHarness, newJobId } from '../daemon/harness.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

function call(socketPath: string, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, agent: false, headers: body === undefined ? headers : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

t.test('pure parsers', async (t) => {
  t.equal(jobIdFromSegment('1234'), 1234n);
  t.equal(jobIdFromSegment('fNH'), 1234n);
  t.equal(jobIdFromSegment(encodeURIComponent('\u0192NH')), 1234n);
  for (const bad of ['..%2F..', '%2e%2e', 'garbage', 'x'.repeat(600), '%E0%A4%A', '-1', '18446744073709551616', '']) {
    t.throws(() => jobIdFromSegment(bad), { code: 'BAD_JOB_ID' }, `rejects ${bad.slice(0, 20)}`);
  }
  t.same(parseTrackBody('{"userID": 1050}'), { userID: 1050 });
  for (const bad of ['', 'null', '[]', '{}', '{"userID": -1}', '{"userID": 1.5}', '{"userID": "1050"}', '{"userID": 4294967295}', '{bad json']) {
    t.throws(() => parseTrackBody(bad), { code: 'BAD_BODY' }, `rejects body ${bad}`);
  }
  t.equal(parseWait(new URLSearchParams(''), 60_000), 0);
  t.equal(parseWait(new URLSearchParams('wait=delivered'), 60_000), 30_000);
  t.equal(parseWait(new URLSearchParams('wait=delivered&timeout=250ms'), 60_000), 250);
  t.equal(parseWait(new URLSearchParams('wait=delivered&timeout=2h'), 60_000), 60_000, 'capped');
  t.throws(() => parseWait(new URLSearchParams('wait=soon'), 60_000), { code: 'BAD_QUERY' });
  t.throws(() => parseWait(new URLSearchParams('wait=delivered&timeout=abc'), 60_000), { code: 'BAD_QUERY' });
});

t.test('stale socket handling', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'plain');
  await writeFile(file, 'x');
  await t.rejects(clearStaleSocket(file), { code: 'SOCKET_PATH_NOT_SOCKET' }, 'a regular file is never removed');
  const live = join(dir, 'live.sock');
  const srv = createServer().listen(live);
  await new Promise((r) => srv.once('listening', r));
  await t.rejects(clearStaleSocket(live), { code: 'DAEMON_ALREADY_RUNNING' }, 'a served socket is never removed');
  // A socket nobody serves any more: what a daemon killed with SIGKILL leaves.
  const stale = join(dir, 'stale.sock');
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => child.stdout!.once('data', r));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  t.ok((await stat(stale)).isSocket(), 'the killed server left its socket file');
  t.equal(await clearStaleSocket(stale), true, 'stale socket removed');
  t.equal(await clearStaleSocket(stale), false, 'nothing left');
  srv.close();
});

t.test('HTTP API over the unix socket', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const s = h.socketPath;
  const st = await stat(s);
  t.ok(st.isSocket());
  t.equal(st.mode & 0o777, 0o660, 'socket mode SOCKET_MODE');

  t.same((await call(s, 'GET', '/healthz')).json, { ok: true });
  const status = (await call(s, 'GET', '/v1/status')).json;
  t.equal(status.node, 'compute-test');
  t.equal(status.rabbit.name, 'rabbit-sim');
  t.equal(status.connection.state, 'ok');
  t.ok(status.hosts.entry);
  t.same(status.jobs, { total: 0, byPhase: { waiting: 0, probing: 0, delivered: 0, failed: 0, 'no-workflow': 0 } });

  for (const bad of ['..%2F..', '..%2F..%2Fetc%2Fpasswd', 'garbage', 'f0OIl', 'x'.repeat(700), '%ZZ']) {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const a = await call(s, method, `/v1/jobs/${bad}`, method === 'PUT' ? '{"userID":1}' : undefined);
      t.equal(a.status, 400, `${method} ${bad.slice(0, 20)}: 400`);
      t.equal(a.json?.error?.code, 'BAD_JOB_ID');
      t.type(a.json?.error?.message, 'string');
    }
  }
  t.equal((await call(s, 'GET', '/v1/jobs/../status')).status, 404, 'no path normalization');
  t.equal((await call(s, 'GET', '/v1/jobs/1/2')).status, 404);
  const id = newJobId();
  for (const body of ['', 'nope', '{"userID":"1"}', '{"userID":-5}', '[]', '{"user":1}']) {
    const a = await call(s, 'PUT', `/v1/jobs/${id}`, body);
    t.equal(a.status, 400, `body ${JSON.stringify(body)}: 400`);
    t.equal(a.json?.error?.code, 'BAD_BODY');
  }
  const big = await call(s, 'PUT', `/v1/jobs/${id}`, JSON.stringify({ userID: 1, pad: 'x'.repeat(100_000) }));
  t.equal(big.status, 413);
  t.equal((await call(s, 'GET', `/v1/jobs/${id}?wait=nope`)).status, 400);
  t.equal((await call(s, 'POST', `/v1/jobs/${id}`, '{}')).status, 405);
  t.equal((await call(s, 'POST', '/v1/jobs/1', '{}')).headers.allow, 'GET, PUT, DELETE');
  t.equal((await call(s, 'GET', `/v1/jobs/${id}`)).status, 404, 'unknown job');
  t.equal((await call(s, 'DELETE', `/v1/jobs/${id}`)).status, 404, 'unknown job');
  t.equal((await call(s, 'GET', '/nope')).status, 404);
  t.equal((await call(s, 'GET', '/v1/events')).status, 426, 'events need a WebSocket upgrade');
  t.equal((await call(s, 'GET', '/healthz')).status, 200, 'still serving after all that');

  // Track: 201, then 200; another user: 409.
  const jid = formatJobId(id, 'f58');
  const put1 = await call(s, 'PUT', `/v1/jobs/${encodeURIComponent(jid)}`, '{"userID":1050}');
  t.equal(put1.status, 201);
  t.equal(put1.json.job.id, formatJobId(id, 'f58plain'));
  const put2 = await call(s, 'PUT', `/v1/jobs/${id}`, '{"userID":1050}');
  t.equal(put2.status, 200);
  const put3 = await call(s, 'PUT', `/v1/jobs/${id}`, '{"userID":1051}');
  t.equal(put3.status, 409);
  t.equal(put3.json.error.code, 'JOB_USER_CONFLICT');
  const polled = await call(s, 'GET', `/v1/jobs/${id}?wait=delivered&timeout=10s`);
  t.equal(polled.status, 200);
  t.equal(polled.json.phase, 'no-workflow');
  const list = (await call(s, 'GET', '/v1/jobs')).json;
  t.equal(list.jobs.length, 1);

  // Long poll on a waiting job answers at its timeout with phase waiting.
  const wid = newJobId();
  h.sim.submitJob({ jobId: wid, userID: 1050, stopAt: 'Setup' });
  await call(s, 'PUT', `/v1/jobs/${wid}`, '{"userID":1050}');
  const t0 = Date.now();
  const lp = await call(s, 'GET', `/v1/jobs/${wid}?wait=delivered&timeout=300ms`);
  t.equal(lp.status, 200);
  t.equal(lp.json.phase, 'waiting');
  t.ok(Date.now() - t0 >= 250, 'waited');
  // A long poll ends when the job is untracked.
  const pending = call(s, 'GET', `/v1/jobs/${wid}?wait=delivered&timeout=20s`);
  await new Promise((r) => setTimeout(r, 50));
  t.equal((await call(s, 'DELETE', `/v1/jobs/${wid}`)).status, 200);
  t.equal((await pending).status, 404, 'long poll of an untracked job: 404');

  const metrics = await call(s, 'GET', '/metrics');
  t.equal(metrics.status, 200);
  t.match(metrics.headers['content-type'], /text\/plain/);
  for (const name of ['nnf_envd_watch_events_total', 'nnf_envd_watch_relists_total', 'nnf_envd_watch_reconnects_total', 'nnf_envd_delivery_files_written_seconds', 'nnf_envd_delivery_seconds', 'nnf_envd_port_probes_total', 'nnf_envd_hosts_writes_total', 'nnf_envd_tracked_jobs', 'nnf_envd_api_requests_total']) {
    t.match(metrics.text, new RegExp(`^# TYPE ${name} `, 'm'), `metric ${name}`);
  }
  t.match(metrics.text, /^nnf_envd_watch_events_total \d+/m);
  t.match(metrics.text, /nnf_envd_tracked_jobs\{phase="no-workflow"\} 1/);
  t.match(metrics.text, /nnf_envd_hosts_writes_total\{result="written"\} 1/);
});

t.test('WebSocket events', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const ws = new WebSocket('ws+unix://' + h.socketPath + ':/v1/events');
  const messages: any[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(String(data))));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const waitFor = async (pred: (m: any) => boolean) => {
    for (let i = 0; i < 1000; i++) {
      const m = messages.find(pred);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('no such event');
  };
  const conn = await waitFor((m) => m.type === 'connection');
  t.equal(conn.connection.state, 'ok', 'snapshot: connection');
  const rabbit = await waitFor((m) => m.type === 'rabbit');
  t.equal(rabbit.rabbit.rabbit, 'rabbit-sim', 'snapshot: rabbit');
  const id = newJobId();
  h.sim.submitJob({ jobId: id, userID: 1050 });
  const f58 = formatJobId(id, 'f58plain');
  await call(h.socketPath, 'PUT', `/v1/jobs/${id}`, '{"userID":1050}');
  const delivered = await waitFor((m) => m.type === 'job' && m.job.job.id === f58 && m.job.phase === 'delivered');
  t.equal(delivered.job.rabbit.name, 'rabbit-sim');
  const phases = messages.filter((m) => m.type === 'job' && m.job.job.id === f58).map((m) => m.job.phase);
  t.equal(phases[0], 'waiting');
  t.ok(phases.includes('probing'), 'probing announced');
  await call(h.socketPath, 'DELETE', `/v1/jobs/${id}`);
  await waitFor((m) => m.type === 'job' && m.job.job.id === f58 && m.untracked === true);
  const closed = new Promise((r) => ws.once('close', r));
  ws.close();
  await closed;
});
