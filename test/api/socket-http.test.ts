/**
 * The prolog's HTTP/1.1 exchange on node:net (src/api/socket-http.ts) against real servers on
 * real unix sockets: node:http's server (what nnf-envd runs) and a raw socket server that sends
 * exactly the bytes of each case (framings node:http would not produce, broken responses).
 */
import t, { type Test } from 'tap';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { socketHttp, MAX_RESPONSE_BYTES } from '../../src/api/socket-http.js';
import { getJob, DaemonApiError, DaemonUnavailableError } from '../../src/api/client.js';

let dir: string;
t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nnf-env-socket-http-'));
});
t.teardown(() => rm(dir, { recursive: true, force: true }));

let n = 0;
async function listen(server: Server | HttpServer): Promise<string> {
  const path = join(dir, `s${n++}.sock`);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return path;
}

/** A raw server: reads the request head, then sends `response` (bytes as given) and closes. */
/** Writes `text` in pieces of `size` bytes, `ms` apart: a response that arrives slowly. */
function dribble(s: Socket, text: string, size: number, ms: number): void {
  const bytes = Buffer.from(text);
  let i = 0;
  const step = () => {
    if (i >= bytes.length) return;
    s.write(bytes.subarray(i, i + size));
    i += size;
    setTimeout(step, ms);
  };
  step();
}

async function rawServer(t: Test, response: string | Buffer | ((s: Socket) => void)): Promise<{ path: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createNetServer((s) => {
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      requests.push(text);
      if (typeof response === 'function') response(s);
      else s.end(response);
    });
    s.on('error', () => undefined);
  });
  const path = await listen(server);
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { path, requests };
}

const get = (path: string, p = '/v1/jobs/1') => socketHttp(path, { method: 'GET', path: p, headers: { accept: 'application/json' } }).answer;

t.test('against node:http\'s server: request line, headers and body arrive; the request is not half-closed', async (t) => {
  const seen: Array<{ method?: string; url?: string; headers: Record<string, unknown>; body: string; endedEarly: boolean }> = [];
  const server = createHttpServer((req, res) => {
    let body = '';
    let endedEarly = false;
    req.socket.once('end', () => (endedEarly = true));
    req.on('data', (d: Buffer) => (body += d));
    req.on('end', () => {
      // Answer a little later, as a long poll does: a half-closed request would be aborted.
      setTimeout(() => {
        seen.push({ method: req.method, url: req.url, headers: req.headers, body, endedEarly });
        res.end(JSON.stringify({ ok: true, echo: body }));
      }, 50);
    });
  });
  const path = await listen(server);
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const payload = JSON.stringify({ userID: 1050, name: 'ƒ' });
  const a = await socketHttp(path, { method: 'PUT', path: '/v1/jobs/321?x=1', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }, body: payload }).answer;
  t.equal(a.status, 200);
  t.same(JSON.parse(a.body.toString('utf8')), { ok: true, echo: payload }, 'UTF-8 body both ways');
  t.equal(seen[0]?.method, 'PUT');
  t.equal(seen[0]?.url, '/v1/jobs/321?x=1');
  t.equal(seen[0]?.headers.connection, 'close', 'Connection: close, so that the response ends the exchange');
  t.equal(seen[0]?.endedEarly, false, 'no FIN before the answer');
});

t.test('body framings: content-length, chunked, end of connection, 204', async (t) => {
  const cl = await rawServer(t, 'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a":"bc"}\nEXTRA');
  t.same(await get(cl.path).then((a) => [a.status, a.body.toString()]), [201, '{"a":"bc"}\n'], 'content-length: exactly that many bytes');
  t.match(cl.requests[0], /^GET \/v1\/jobs\/1 HTTP\/1\.1\r\nhost: localhost\r\nconnection: close\r\naccept: application\/json\r\n\r\n$/);

  const chunked = await rawServer(t, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n6;ext=1\r\n:"bc"}\r\n0\r\n\r\n');
  t.equal((await get(chunked.path)).body.toString(), '{"a":"bc"}', 'chunked: decoded, extensions ignored');

  const eof = await rawServer(t, 'HTTP/1.0 200 OK\r\n\r\n{"x":1}');
  t.equal((await get(eof.path)).body.toString(), '{"x":1}', 'no length: the body ends with the connection');

  const none = await rawServer(t, 'HTTP/1.1 204 No Content\r\n\r\n');
  const a = await get(none.path);
  t.same([a.status, a.body.length], [204, 0]);

  // Split across many writes: the parser waits for the whole body.
  const slow = await rawServer(t, (s) => dribble(s, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello', 3, 2));
  t.equal((await get(slow.path)).body.toString(), 'hello', 'a response in 3-byte pieces');
});

t.test('broken responses: errors that say what was wrong', async (t) => {
  const cases: Array<[string | Buffer, string, RegExp]> = [
    ['', 'ECONNRESET', /no response/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n', 'ECONNRESET', /inside the response headers/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort', 'ECONNRESET', /before the end of the response body/],
    ['SSH-2.0-OpenSSH\r\n\r\n', 'BAD_RESPONSE', /not an HTTP\/1\.x status line: "SSH-2\.0-OpenSSH"/],
    ['HTTP/1.1 200 OK\r\nno colon here\r\n\r\n', 'BAD_RESPONSE', /malformed header line/],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 'BAD_RESPONSE', /bad content-length "-1"/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 'BAD_RESPONSE', /bad content-length/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', 'BAD_RESPONSE', /unsupported transfer-encoding "gzip"/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'BAD_RESPONSE', /bad chunk size "zz"/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n', 'BAD_RESPONSE', /chunk not followed by CRLF/],
    ['HTTP/1.1 100 Continue\r\n\r\n', 'BAD_RESPONSE', /unexpected interim response 100/],
    [`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70 * 1024)}`, 'BAD_RESPONSE', /headers longer than 64 KiB/],
  ];
  for (const [response, code, message] of cases) {
    const s = await rawServer(t, response);
    const err = await get(s.path).then(() => null, (e: unknown) => e as { code?: string; message?: string });
    t.equal(err?.code, code, `${JSON.stringify(response.toString().slice(0, 40))}: ${code}`);
    t.match(err?.message, message);
  }
  t.ok(MAX_RESPONSE_BYTES >= 16 * 1024 * 1024, 'room for the largest answer (a long job list)');
});

t.test('through the client: a broken response is a DaemonApiError, a closed socket DaemonUnavailableError', async (t) => {
  const bad = await rawServer(t, 'garbage\r\n\r\n');
  const e1 = await getJob(bad.path, 1n).catch((e: unknown) => e);
  t.ok(e1 instanceof DaemonApiError);
  t.match((e1 as Error).message, /BAD_RESPONSE: not an HTTP\/1\.x status line/);
  const closed = await rawServer(t, (s) => s.destroy());
  const e2 = await getJob(closed.path, 1n).catch((e: unknown) => e);
  t.ok(e2 instanceof DaemonUnavailableError, 'the daemon died mid-request: same remedy as not running');
  const e3 = await getJob(join(dir, 'absent.sock'), 1n).catch((e: unknown) => e);
  t.ok(e3 instanceof DaemonUnavailableError);
});

t.test('large answers in many chunks: content-length and chunked arrive whole', async (t) => {
  const big = Buffer.alloc(8 * 1024 * 1024, 'x');
  big.write('first', 0);
  big.write('last', big.length - 4);
  for (const framing of ['content-length', 'chunked'] as const) {
    const server = createHttpServer((_req, res) => {
      if (framing === 'content-length') res.setHeader('content-length', big.length);
      // Many writes, so that chunked framing arrives in many pieces with its end split too.
      for (let at = 0; at < big.length; at += 100_000) res.write(big.subarray(at, at + 100_000));
      res.end();
    });
    const path = await listen(server);
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const a = await get(path);
    t.equal(a.status, 200, framing);
    t.ok(a.body.equals(big), `${framing}: all ${big.length} bytes, in order`);
  }

  // The end of a chunked message split across pieces: the last chunk's CRLF CRLF in 1-byte writes.
  const split = await rawServer(t, (s) => dribble(s, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 1, 1));
  t.equal((await get(split.path)).body.toString(), 'hello', 'chunked in 1-byte pieces');
});
