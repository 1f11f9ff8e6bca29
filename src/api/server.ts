import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { chmod, chown, lstat, unlink } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import type { WebSocketServer, WebSocket } from 'ws';
import { NnfEnvError, errnoCode, errorMessage } from '../core/errors.js';
import { JobIdError, parseJobId } from '../contract/jobid.js';
import { parseDuration } from '../config/duration.js';
import type { DaemonEvents } from './event-bus.js';
import { isValidId } from '../contract/ids.js';
import type { DaemonEvent, DaemonJobStatus } from '../contract/control-api.js';
import type { DaemonMetrics } from './metrics.js';

/**
 * The control socket (docs/FORMATS.md "Control socket API"): HTTP/1.1 + JSON on a unix socket,
 * plus a WebSocket of state changes. Everything from the client is untrusted: ids and bodies
 * are parsed strictly and answered with a 400 JSON error, never a crash.
 */
export interface ApiJobs {
  track(id: bigint, userID: number): Promise<{ created: boolean; status: DaemonJobStatus }>;
  untrack(id: bigint): Promise<boolean>;
  get(id: bigint): DaemonJobStatus | undefined;
  list(): DaemonJobStatus[];
  waitFinal(id: bigint, timeoutMs: number, signal?: AbortSignal): Promise<DaemonJobStatus | undefined>;
}

export interface ApiServerOptions {
  socketPath: string;
  /** File mode of the socket. Default 0660. */
  mode?: number;
  /** Group of the socket (numeric gid). Default: unchanged. */
  gid?: number;
  jobs: ApiJobs;
  /** GET /v1/status. */
  status: () => Record<string, unknown>;
  /** GET /v1/profiles: the cached NnfContainerProfiles (404 when the daemon has no cache). */
  profiles?: () => unknown;
  /** GET /healthz is 200 only while this says true. */
  healthy?: () => boolean;
  /** The first messages of a new WebSocket client (current state). */
  snapshot?: () => DaemonEvent[];
  events: DaemonEvents;
  metrics?: DaemonMetrics;
  logger?: Logger;
  /** Longest long poll. Default 1 h. */
  maxWaitMs?: number;
}

export class ApiServerError extends NnfEnvError {}

const MAX_BODY_BYTES = 64 * 1024;
const MAX_ID_SEGMENT = 512;
const DEFAULT_WAIT_MS = 30_000;
/** A WebSocket client further behind than this is dropped (it would hold our memory). */
const MAX_WS_BUFFER = 4 * 1024 * 1024;

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

/** Pure: a job id from a raw (still URL-encoded) path segment. */
export function jobIdFromSegment(segment: string): bigint {
  if (segment.length > MAX_ID_SEGMENT) throw new HttpError(400, 'BAD_JOB_ID', `job id longer than ${MAX_ID_SEGMENT} characters`);
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'BAD_JOB_ID', 'job id is not valid URL encoding');
  }
  try {
    return parseJobId(decoded);
  } catch (err) {
    if (err instanceof JobIdError) throw new HttpError(400, 'BAD_JOB_ID', err.message);
    throw err;
  }
}

/** Pure: the `{"userID": n}` body of a track request. */
export function parseTrackBody(text: string): { userID: number } {
  if (text.trim() === '') throw new HttpError(400, 'BAD_BODY', 'body must be JSON {"userID": <uid>}');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'BAD_BODY', 'body is not JSON; expected {"userID": <uid>}');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new HttpError(400, 'BAD_BODY', 'body must be a JSON object {"userID": <uid>}');
  const uid = (doc as { userID?: unknown }).userID;
  if (!isValidId(uid)) {
    throw new HttpError(400, 'BAD_BODY', `userID must be an integer uid from 0 to 4294967294 (got ${JSON.stringify(uid) ?? 'nothing'})`);
  }
  return { userID: uid };
}

/** Pure: `?wait=delivered&timeout=30s` -> milliseconds to wait (0: do not wait). */
export function parseWait(query: URLSearchParams, maxWaitMs: number): number {
  const wait = query.get('wait');
  const timeout = query.get('timeout');
  if (wait === null) {
    if (timeout !== null) throw new HttpError(400, 'BAD_QUERY', 'timeout is only meaningful with wait=delivered');
    return 0;
  }
  if (wait !== 'delivered') throw new HttpError(400, 'BAD_QUERY', `wait must be "delivered" (got ${JSON.stringify(wait.slice(0, 40))})`);
  if (timeout === null) return Math.min(DEFAULT_WAIT_MS, maxWaitMs);
  const ms = parseDuration(timeout);
  if (ms === null) throw new HttpError(400, 'BAD_QUERY', `timeout ${JSON.stringify(timeout.slice(0, 40))} is not a duration (30s, 250ms, 5m)`);
  return Math.min(ms, maxWaitMs);
}

/** Removes a socket file left by a dead daemon; refuses when someone still listens or it is not a socket. */
export async function clearStaleSocket(path: string): Promise<boolean> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
  if (!st.isSocket()) {
    throw new ApiServerError('SOCKET_PATH_NOT_SOCKET', `${path} exists and is not a socket`, { hint: 'remove it or set SOCKET_PATH to another path' });
  }
  const alive = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.once('connect', () => done(true));
    s.once('error', (err) => done(errnoCode(err) !== 'ECONNREFUSED' && errnoCode(err) !== 'ENOENT'));
    s.setTimeout(2000, () => done(true));
  });
  if (alive) {
    throw new ApiServerError('DAEMON_ALREADY_RUNNING', `another process serves ${path}`, { hint: 'is nnf-envd already running? (systemctl status nnf-envd)' });
  }
  await unlink(path).catch((err: unknown) => {
    if (errnoCode(err) !== 'ENOENT') throw err;
  });
  return true;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) return reject(new HttpError(413, 'BODY_TOO_LARGE', `body larger than ${MAX_BODY_BYTES} bytes`));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, 'BODY_TOO_LARGE', `body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export class ApiServer {
  readonly socketPath: string;
  private readonly server: Server;
  /** Made on the first WebSocket client: most daemons never have one, and ws is loaded then. */
  private wssLazy: WebSocketServer | undefined;
  private readonly logger: Logger;
  private readonly polls = new Set<AbortController>();
  private readonly unsubscribes = new Set<() => void>();
  private closing = false;

  private constructor(private readonly opts: ApiServerOptions) {
    this.socketPath = opts.socketPath;
    this.logger = opts.logger ?? pino({ level: 'silent' });
    this.server = createServer({ requestTimeout: 0, headersTimeout: 10_000 }, (req, res) => void this.handle(req, res));
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n{"error":{"code":"BAD_REQUEST","message":"malformed HTTP request"}}');
      else socket.destroy();
    });
  }

  static async start(opts: ApiServerOptions): Promise<ApiServer> {
    const api = new ApiServer(opts);
    await clearStaleSocket(opts.socketPath);
    // The socket is created with the umask's mode; keep it private until chmod/chown below.
    // Node binds a unix socket synchronously inside listen(): the umask is back at once.
    await new Promise<void>((resolve, reject) => {
      api.server.once('error', reject);
      const oldMask = process.umask(0o177);
      try {
        api.server.listen(opts.socketPath, () => {
          api.server.off('error', reject);
          resolve();
        });
      } finally {
        process.umask(oldMask);
      }
    });
    try {
      if (opts.gid !== undefined) await chown(opts.socketPath, process.getuid?.() ?? 0, opts.gid);
      await chmod(opts.socketPath, opts.mode ?? 0o660);
    } catch (err) {
      await api.close();
      throw new ApiServerError('SOCKET_SETUP_FAILED', `cannot set owner/mode of ${opts.socketPath}: ${errorMessage(err)}`, { hint: 'check SOCKET_GROUP and SOCKET_MODE', cause: err });
    }
    return api;
  }

  private get wss(): WebSocketServer {
    if (!this.wssLazy) {
      // A literal require() in a CommonJS bundle (which inlines ws), createRequire as an ES module.
      const { WebSocketServer: Wss } = (typeof require === 'function' ? require('ws') : createRequire(import.meta.url)('ws')) as typeof import('ws');
      this.wssLazy = new Wss({ noServer: true, maxPayload: 64 * 1024 });
    }
    return this.wssLazy;
  }

  /** Answers open long polls with the current status, closes WebSockets, stops listening. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const p of this.polls) p.abort();
    for (const u of this.unsubscribes) u();
    for (const ws of this.wssLazy?.clients ?? []) ws.close(1001, 'nnf-envd stopping');
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      // Anything still open after a moment is cut (a client that never reads).
      setTimeout(() => {
        this.server.closeAllConnections();
        for (const ws of this.wssLazy?.clients ?? []) ws.terminate();
      }, 1000).unref();
    });
    this.wssLazy?.close();
    await unlink(this.socketPath).catch(() => undefined);
  }

  private send(res: ServerResponse, status: number, body: unknown, route: string, method: string, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body) + '\n';
    if (!res.headersSent) {
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    }
    res.end(text);
    this.opts.metrics?.apiRequests.inc({ method, route, code: String(status) });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const raw = req.url ?? '/';
    // The raw path, never normalized: `/v1/jobs/../x` must not become `/v1/x`.
    const q = raw.indexOf('?');
    const path = q >= 0 ? raw.slice(0, q) : raw;
    const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
    let route = 'other';
    try {
      if (path === '/healthz') {
        route = 'healthz';
        allow(method, ['GET']);
        const ok = this.opts.healthy ? this.opts.healthy() : true;
        return this.send(res, ok ? 200 : 503, { ok }, route, method);
      }
      if (path === '/v1/status') {
        route = 'status';
        allow(method, ['GET']);
        return this.send(res, 200, this.opts.status(), route, method);
      }
      if (path === '/v1/profiles') {
        route = 'profiles';
        allow(method, ['GET']);
        if (!this.opts.profiles) throw new HttpError(404, 'NOT_FOUND', 'this daemon does not cache container profiles');
        return this.send(res, 200, this.opts.profiles(), route, method);
      }
      if (path === '/v1/jobs') {
        route = 'jobs';
        allow(method, ['GET']);
        return this.send(res, 200, { jobs: this.opts.jobs.list() }, route, method);
      }
      if (path === '/metrics') {
        route = 'metrics';
        allow(method, ['GET']);
        if (!this.opts.metrics) throw new HttpError(404, 'NOT_FOUND', 'metrics are not enabled');
        const m = await this.opts.metrics.render();
        res.writeHead(200, { 'content-type': m.contentType, 'content-length': Buffer.byteLength(m.body) });
        res.end(m.body);
        this.opts.metrics.apiRequests.inc({ method, route, code: '200' });
        return;
      }
      if (path === '/v1/events') {
        route = 'events';
        throw new HttpError(426, 'UPGRADE_REQUIRED', 'GET /v1/events is a WebSocket: send Upgrade: websocket', { upgrade: 'websocket' });
      }
      const m = /^\/v1\/jobs\/([^/]+)$/.exec(path);
      if (m) {
        route = 'job';
        allow(method, ['GET', 'PUT', 'DELETE']);
        const id = jobIdFromSegment(m[1]!);
        if (method === 'PUT') {
          const { userID } = parseTrackBody(await readBody(req));
          const r = await this.opts.jobs.track(id, userID);
          return this.send(res, r.created ? 201 : 200, r.status, route, method);
        }
        if (method === 'DELETE') {
          const removed = await this.opts.jobs.untrack(id);
          if (!removed) throw new HttpError(404, 'JOB_NOT_TRACKED', 'job is not tracked');
          return this.send(res, 200, { untracked: true }, route, method);
        }
        const waitMs = parseWait(query, this.opts.maxWaitMs ?? 3_600_000);
        if (this.opts.jobs.get(id) === undefined) throw new HttpError(404, 'JOB_NOT_TRACKED', 'job is not tracked (PUT it first)');
        const status = waitMs > 0 ? await this.longPoll(id, waitMs, req, res) : this.opts.jobs.get(id);
        if (status === undefined) throw new HttpError(404, 'JOB_NOT_TRACKED', 'job was untracked');
        if (res.destroyed) return;
        return this.send(res, 200, status, route, method);
      }
      throw new HttpError(404, 'NOT_FOUND', `no such endpoint: ${method} ${path.slice(0, 100)}`);
    } catch (err) {
      if (err instanceof HttpError) return this.send(res, err.status, { error: { code: err.code, message: err.message } }, route, method, err.headers);
      const nnf = err instanceof NnfEnvError ? err : undefined;
      const status = nnf?.code === 'JOB_USER_CONFLICT' ? 409 : nnf?.code === 'DAEMON_STOPPING' ? 503 : nnf?.code === 'BAD_USER_ID' ? 400 : 500;
      if (status === 500) this.logger.error({ method, path: path.slice(0, 200), err: errorMessage(err) }, 'control request failed');
      return this.send(res, status, { error: { code: nnf?.code ?? 'INTERNAL', message: nnf ? nnf.describe() : errorMessage(err) } }, route, method);
    }
  }

  private async longPoll(id: bigint, waitMs: number, req: IncomingMessage, res: ServerResponse): Promise<DaemonJobStatus | undefined> {
    const ac = new AbortController();
    this.polls.add(ac);
    // A client that goes away ends its wait (no timer left behind for it).
    const onClose = () => ac.abort();
    res.once('close', onClose);
    req.socket.once('close', onClose);
    try {
      return await this.opts.jobs.waitFinal(id, waitMs, ac.signal);
    } finally {
      this.polls.delete(ac);
      res.off('close', onClose);
      req.socket.off('close', onClose);
    }
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/v1/events' || this.closing) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n{"error":{"code":"NOT_FOUND","message":"only /v1/events is a WebSocket"}}\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.serveEvents(ws));
  }

  private serveEvents(ws: WebSocket): void {
    this.opts.metrics?.apiRequests.inc({ method: 'GET', route: 'events', code: '101' });
    const sendEvent = (ev: DaemonEvent) => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > MAX_WS_BUFFER) {
        this.logger.warn('event stream client too slow; disconnected');
        ws.terminate();
        return;
      }
      ws.send(JSON.stringify(ev));
    };
    for (const ev of this.opts.snapshot?.() ?? []) sendEvent(ev);
    const unsubscribe = this.opts.events.subscribe(sendEvent);
    this.unsubscribes.add(unsubscribe);
    let alive = true;
    ws.on('pong', () => (alive = true));
    const ping = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, 30_000);
    ping.unref();
    // Clients only listen; anything they send is ignored.
    ws.on('message', () => undefined);
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      clearInterval(ping);
      unsubscribe();
      this.unsubscribes.delete(unsubscribe);
    });
  }
}

function allow(method: string, allowed: string[]): void {
  if (!allowed.includes(method)) throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} not allowed here (allowed: ${allowed.join(', ')})`, { allow: allowed.join(', ') });
}

export const startApiServer = (opts: ApiServerOptions): Promise<ApiServer> => ApiServer.start(opts);
