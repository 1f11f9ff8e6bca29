/**
 * Hostile requests on the real daemon's control socket (the unit test of the API server,
 * test/api/server.test.ts, covers the parsers with a stand-in job table): raw bytes on the unix
 * socket, so that nothing is normalised by a client library on the way. Every one gets a JSON
 * error with a message that says what is wrong, and the daemon keeps serving.
 */
import t from 'tap';
import net from 'node:net';
import { readdir } from 'node:fs/promises';
import { health } from '../../src/api/client.js';
import { startHarness } from '../daemon/harness.js';

/** One raw HTTP/1.1 exchange; answers status and parsed JSON body (or the raw text). */
function raw(socketPath: string, request: Buffer | string): Promise<{ status: number; body: unknown; text: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => (buf = Buffer.concat([buf, d])));
    s.on('error', reject);
    s.on('close', () => {
      const text = buf.toString('utf8');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      const bodyText = text.slice(text.indexOf('\r\n\r\n') + 4);
      let body: unknown = null;
      try {
        body = JSON.parse(bodyText);
      } catch {
        // chunked or not JSON: keep the text
      }
      resolve({ status, body, text });
    });
    s.setTimeout(5000, () => s.destroy(new Error('no answer within 5 s')));
    s.end(request);
  });
}

const req = (method: string, path: string | Buffer, body = '', headers: Record<string, string> = {}): Buffer => {
  const head = Object.entries({ host: 'localhost', connection: 'close', ...(body ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return Buffer.concat([Buffer.from(`${method} `), Buffer.isBuffer(path) ? path : Buffer.from(path), Buffer.from(` HTTP/1.1\r\n${head}\r\n${body}`)]);
};

t.test('bad ids, bodies, paths and encodings: 4xx with a clear JSON error; the daemon keeps serving', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const sock = h.socketPath;
  const cases: Array<{ name: string; request: Buffer; status: number; code?: string; message?: RegExp }> = [
    { name: 'path traversal, encoded', request: req('GET', '/v1/jobs/..%2F..%2Fetc%2Fpasswd'), status: 400, code: 'BAD_JOB_ID' },
    { name: 'path traversal, plain', request: req('GET', '/v1/jobs/../../etc/passwd'), status: 404 },
    { name: 'traversal on PUT', request: req('PUT', '/v1/jobs/..%2F.tracked%2Fx', '{"userID":1050}'), status: 400, code: 'BAD_JOB_ID' },
    { name: 'overlong id', request: req('GET', `/v1/jobs/${'f'.repeat(5000)}`), status: 400, code: 'BAD_JOB_ID', message: /longer than/ },
    { name: 'id out of 64-bit range', request: req('GET', '/v1/jobs/18446744073709551616'), status: 400, code: 'BAD_JOB_ID' },
    { name: 'broken percent-encoding', request: req('GET', '/v1/jobs/%E0%A4%A'), status: 400, code: 'BAD_JOB_ID', message: /URL encoding/ },
    { name: 'invalid UTF-8 in the path (raw bytes)', request: req('GET', Buffer.from([0x2f, 0x76, 0x31, 0x2f, 0x6a, 0x6f, 0x62, 0x73, 0x2f, 0xff, 0xfe, 0x41])), status: 400 },
    { name: 'encoded NUL', request: req('GET', '/v1/jobs/f%00'), status: 400, code: 'BAD_JOB_ID' },
    { name: 'empty id', request: req('PUT', '/v1/jobs/', '{"userID":1050}'), status: 404 },
    { name: 'bad JSON body', request: req('PUT', '/v1/jobs/fNH', '{"userID":'), status: 400, code: 'BAD_BODY', message: /not JSON/ },
    { name: 'JSON of the wrong type', request: req('PUT', '/v1/jobs/fNH', '[1050]'), status: 400, code: 'BAD_BODY' },
    { name: 'userID a string', request: req('PUT', '/v1/jobs/fNH', '{"userID":"1050"}'), status: 400, code: 'BAD_BODY', message: /userID/ },
    { name: 'userID negative', request: req('PUT', '/v1/jobs/fNH', '{"userID":-1}'), status: 400, code: 'BAD_BODY' },
    { name: 'userID 2^32-1 (the invalid uid)', request: req('PUT', '/v1/jobs/fNH', '{"userID":4294967295}'), status: 400, code: 'BAD_BODY' },
    { name: 'body too large', request: req('PUT', '/v1/jobs/fNH', JSON.stringify({ userID: 1, pad: 'x'.repeat(100_000) })), status: 413 },
    { name: 'bad wait query', request: req('GET', '/v1/jobs/fNH?wait=forever'), status: 400, code: 'BAD_QUERY' },
    { name: 'bad timeout', request: req('GET', '/v1/jobs/fNH?wait=delivered&timeout=soon'), status: 400, code: 'BAD_QUERY' },
    { name: 'method not allowed', request: req('POST', '/v1/status', '{}'), status: 405 },
    { name: 'unknown route', request: req('GET', '/v2/everything'), status: 404 },
  ];
  for (const c of cases) {
    const r = await raw(sock, c.request);
    t.equal(r.status, c.status, `${c.name}: ${c.status}`);
    if (c.status >= 400 && c.status !== 413) {
      const e = (r.body as { error?: { code?: string; message?: string } } | null)?.error;
      t.ok(e && typeof e.message === 'string' && e.message.length > 5, `${c.name}: JSON error with a message (${e?.message ?? r.text.slice(0, 120)})`);
      if (c.code) t.equal(e?.code, c.code, `${c.name}: code ${c.code}`);
      if (c.message) t.match(e?.message ?? '', c.message, `${c.name}: message`);
    }
  }
  // Not HTTP at all.
  const garbage = await raw(sock, Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0a, 0x0d, 0x0a, 0x0d, 0x0a]));
  t.equal(garbage.status, 400, 'binary garbage: 400');
  t.ok(await health(sock), 'still serving');
  t.same((await readdir(h.jobsDir)).filter((n) => n !== '.tracked' && n !== '.ended'), [], 'no file was created by any of it');
});
