/**
 * Client of nnf-envd's control socket (docs/FORMATS.md, "Control socket API"): HTTP/1.1 + JSON
 * over a unix socket. The Flux prolog imports this on every node of every job, so it uses only
 * node:net (./socket-http.ts says why not node:http) and nothing from node_modules.
 */
import { socketHttp } from './socket-http.js';
import { NnfEnvError, errnoCode } from '../core/errors.js';
import type { JobStatus } from '../contract/job-status.js';

/** The daemon is not there: no socket file, or nobody listening on it. */
export class DaemonUnavailableError extends NnfEnvError {
  readonly socketPath: string;
  constructor(socketPath: string, cause?: unknown) {
    super('DAEMON_UNAVAILABLE', `nnf-envd is not running (socket ${socketPath})`, {
      hint: 'systemctl status nnf-envd',
      cause,
    });
    this.socketPath = socketPath;
  }
}

/** The socket exists but this user may not use it (mode 0660, group SOCKET_GROUP). */
export class DaemonAccessError extends NnfEnvError {
  readonly socketPath: string;
  constructor(socketPath: string, cause?: unknown) {
    super('DAEMON_SOCKET_ACCESS', `permission denied on the nnf-envd socket ${socketPath}`, {
      hint: 'run as root or as a member of the group set by SOCKET_GROUP',
      cause,
    });
    this.socketPath = socketPath;
  }
}

/** The daemon did not answer in time (a hung daemon must not hang the prolog forever). */
export class DaemonTimeoutError extends NnfEnvError {
  constructor(socketPath: string, what: string, timeoutMs: number) {
    super('DAEMON_TIMEOUT', `nnf-envd did not answer ${what} within ${timeoutMs} ms (socket ${socketPath})`, {
      hint: 'systemctl status nnf-envd; journalctl -u nnf-envd',
    });
  }
}

/** The daemon answered with an error document `{"error": {"code", "message"}}` (or garbage). */
export class DaemonApiError extends NnfEnvError {
  readonly httpStatus: number;
  /** The daemon's own error code, e.g. BAD_JOB_ID. */
  readonly apiCode: string;
  constructor(httpStatus: number, apiCode: string, message: string) {
    super('DAEMON_API_ERROR', `nnf-envd answered ${httpStatus} ${apiCode}: ${message}`);
    this.httpStatus = httpStatus;
    this.apiCode = apiCode;
  }
}

export interface RequestOptions {
  /** Whole-request bound. Default 10 s; long polls add their own wait to it. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface RawAnswer {
  status: number;
  body: unknown;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** Room for the daemon to answer after its own long-poll timeout fired. */
const LONG_POLL_MARGIN_MS = 5_000;

/** One request; resolves with the HTTP status and the parsed JSON body (null when empty). */
export function requestJson(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  opts: RequestOptions = {},
): Promise<RawAnswer> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise<RawAnswer>((resolve, reject) => {
    let settled = false;
    const finish = (err: unknown, answer?: RawAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(answer as RawAnswer);
    };
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    // One short-lived connection per request, nothing left open to delay exit.
    const exchange = socketHttp(socketPath, { method, path, headers, body: payload });
    exchange.answer.then(
      (res) => {
        const text = res.body.toString('utf8');
        let parsed: unknown = null;
        if (text.trim() !== '') {
          try {
            parsed = JSON.parse(text);
          } catch {
            finish(new DaemonApiError(res.status, 'BAD_RESPONSE', `not JSON: ${text.slice(0, 200)}`));
            return;
          }
        }
        finish(undefined, { status: res.status, body: parsed });
      },
      (e: unknown) => {
        finish(errnoCode(e) === 'BAD_RESPONSE' ? new DaemonApiError(0, 'BAD_RESPONSE', (e as Error).message) : translateSocketError(socketPath, e));
      },
    );
    const timer = setTimeout(() => {
      finish(new DaemonTimeoutError(socketPath, `${method} ${path}`, timeoutMs));
      exchange.abort();
    }, timeoutMs);
    const onAbort = () => {
      finish(opts.signal?.reason ?? new Error('aborted'));
      exchange.abort();
    };
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function translateSocketError(socketPath: string, err: unknown): unknown {
  switch (errnoCode(err)) {
    case 'ENOENT':
    case 'ECONNREFUSED':
    case 'ENOTDIR':
    case 'ECONNRESET': // daemon died mid-request: same remedy
      return new DaemonUnavailableError(socketPath, err);
    case 'EACCES':
    case 'EPERM':
      return new DaemonAccessError(socketPath, err);
    default:
      return err;
  }
}

/** Turns a non-2xx answer into a DaemonApiError; returns the body of a 2xx one. */
function expectOk(answer: RawAnswer, okStatuses: readonly number[] = [200]): unknown {
  if (okStatuses.includes(answer.status)) return answer.body;
  const e = (answer.body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof e?.code === 'string' ? e.code : `HTTP_${answer.status}`;
  const message = typeof e?.message === 'string' ? e.message : JSON.stringify(answer.body);
  throw new DaemonApiError(answer.status, code, message);
}

function jobPath(id: string | bigint): string {
  return `/v1/jobs/${encodeURIComponent(String(id))}`;
}

export interface TrackResult {
  /** false when the daemon already tracked the job (a second prolog run, a retry). */
  created: boolean;
  status: JobStatus;
}

/** PUT /v1/jobs/{id}: ask the daemon to track a job for the given user. */
export async function trackJob(
  socketPath: string,
  id: string | bigint,
  userID: number,
  opts: RequestOptions = {},
): Promise<TrackResult> {
  const answer = await requestJson(socketPath, 'PUT', jobPath(id), { userID }, opts);
  const status = expectOk(answer, [200, 201]) as JobStatus;
  return { created: answer.status === 201, status };
}

export interface GetJobOptions extends RequestOptions {
  /** Long poll until the phase is final or `timeoutMs` passes (then the current status). */
  wait?: boolean;
}

/** GET /v1/jobs/{id}, optionally as a long poll. */
export async function getJob(socketPath: string, id: string | bigint, opts: GetJobOptions = {}): Promise<JobStatus> {
  let path = jobPath(id);
  let requestTimeout = opts.timeoutMs;
  if (opts.wait) {
    const waitMs = Math.max(0, Math.round(opts.timeoutMs ?? 30_000));
    path += `?wait=delivered&timeout=${waitMs}ms`;
    requestTimeout = waitMs + LONG_POLL_MARGIN_MS;
  }
  const answer = await requestJson(socketPath, 'GET', path, undefined, { ...opts, timeoutMs: requestTimeout });
  return expectOk(answer) as JobStatus;
}

/** DELETE /v1/jobs/{id}: true when the job was tracked and is now gone, false when unknown (404). */
export async function untrackJob(socketPath: string, id: string | bigint, opts: RequestOptions = {}): Promise<boolean> {
  const answer = await requestJson(socketPath, 'DELETE', jobPath(id), undefined, opts);
  if (answer.status === 404) return false;
  expectOk(answer, [200, 204]);
  return true;
}

/** GET /v1/status: the daemon's view of the node (shape owned by the daemon, see FORMATS.md). */
export async function getStatus(socketPath: string, opts: RequestOptions = {}): Promise<Record<string, unknown>> {
  const answer = await requestJson(socketPath, 'GET', '/v1/status', undefined, opts);
  return expectOk(answer) as Record<string, unknown>;
}

/** GET /v1/jobs. */
export async function listJobs(socketPath: string, opts: RequestOptions = {}): Promise<JobStatus[]> {
  const answer = await requestJson(socketPath, 'GET', '/v1/jobs', undefined, opts);
  const body = expectOk(answer) as { jobs?: JobStatus[] } | null;
  return Array.isArray(body?.jobs) ? body.jobs : [];
}

/** GET /healthz: true when the daemon says it is serving. */
export async function health(socketPath: string, opts: RequestOptions = {}): Promise<boolean> {
  const answer = await requestJson(socketPath, 'GET', '/healthz', undefined, opts);
  const body = expectOk(answer) as { ok?: unknown } | null;
  return body?.ok === true;
}

/** GET /v1/profiles: the daemon's cached NnfContainerProfiles (shape: ProfilesDocument, FORMATS.md). */
export async function getProfiles(socketPath: string, opts: RequestOptions = {}): Promise<Record<string, unknown>> {
  const answer = await requestJson(socketPath, 'GET', '/v1/profiles', undefined, opts);
  return expectOk(answer) as Record<string, unknown>;
}
