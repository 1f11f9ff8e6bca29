import { STATUS_CODES } from 'node:http';
import { NnfEnvError } from '../core/errors.js';

/** What a request was doing, so an error can say what failed and what to grant. */
export interface KubeRequestContext {
  /** Kubernetes verb: get, list, watch, create, update, patch, delete (or the HTTP method). */
  verb: string;
  /** URL path of the request, without the query. */
  path: string;
  /** `workflows.dataworkflowservices.github.io`, `nodes`; undefined for non-resource paths. */
  resource?: string;
  namespace?: string;
  name?: string;
}

/** The parts of a Kubernetes `Status` object nnf-env reads. */
export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; kind?: string; retryAfterSeconds?: number; [key: string]: unknown };
}

function isKubeStatus(v: unknown): v is KubeStatus {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'Status';
}

/**
 * `Retry-After` as milliseconds: delta-seconds or an HTTP date (RFC 9110). Undefined when
 * absent or unparseable. Pure, `now` for tests.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const at = Date.parse(s);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

function where(ctx: KubeRequestContext): string {
  const what = ctx.resource ?? ctx.path;
  const obj = ctx.name ? ` "${ctx.name}"` : '';
  const ns = ctx.namespace ? ` in namespace ${ctx.namespace}` : ctx.resource ? ' (all namespaces / cluster scope)' : '';
  return `${what}${obj}${ns}`;
}

function codeFor(status: number): string {
  switch (status) {
    case 400: return 'KUBE_BAD_REQUEST';
    case 401: return 'KUBE_UNAUTHORIZED';
    case 403: return 'KUBE_FORBIDDEN';
    case 404: return 'KUBE_NOT_FOUND';
    case 405: return 'KUBE_METHOD_NOT_ALLOWED';
    case 409: return 'KUBE_CONFLICT';
    case 410: return 'KUBE_GONE';
    case 415: return 'KUBE_UNSUPPORTED_MEDIA_TYPE';
    case 422: return 'KUBE_INVALID';
    case 429: return 'KUBE_TOO_MANY_REQUESTS';
    case 503: return 'KUBE_UNAVAILABLE';
    default: return status >= 500 ? 'KUBE_SERVER_ERROR' : 'KUBE_API_ERROR';
  }
}

function explain(status: number, ctx: KubeRequestContext, retryAfterMs: number | undefined): { summary: string; hint: string } {
  const target = where(ctx);
  const retry = retryAfterMs !== undefined ? `; the server asks to retry after ${Math.ceil(retryAfterMs / 1000)}s` : '';
  switch (status) {
    case 401:
      return {
        summary: `unauthorized to ${ctx.verb} ${target}`,
        hint: 'check the credentials: the bearer token (KUBE_TOKEN_FILE, kubeconfig token/tokenFile) may be wrong or expired, or the client certificate is not accepted',
      };
    case 403:
      return {
        summary: `forbidden: the account cannot ${ctx.verb} ${ctx.resource ?? ctx.path}${ctx.namespace ? ` in ${ctx.namespace}` : ' (cluster-wide)'}: grant it in RBAC`,
        hint: `a Role or ClusterRole with verb "${ctx.verb}" on ${ctx.resource ?? ctx.path}, bound to the account this node uses`,
      };
    case 404:
      return ctx.name
        ? { summary: `${target} not found`, hint: 'check the name and namespace' }
        : { summary: `${target} not found`, hint: 'is the resource served? (CRDs installed, API version served; see discovery)' };
    case 409:
      return { summary: `conflict on ${ctx.verb} ${target}`, hint: 'the object changed or already exists; re-read it and retry' };
    case 410:
      return { summary: `resource version too old for ${ctx.verb} ${target}`, hint: 'the history was compacted; relist' };
    case 415:
      return { summary: `unsupported content type for ${ctx.verb} ${target}`, hint: 'custom resources accept only merge and JSON patches' };
    case 422:
      return { summary: `invalid object for ${ctx.verb} ${target}`, hint: 'the server rejected the object; see its message' };
    case 429:
      return { summary: `too many requests to ${ctx.verb} ${target}${retry}`, hint: 'the API server is throttling; the request is retried after the delay' };
    case 503:
      return { summary: `API server unavailable for ${ctx.verb} ${target}${retry}`, hint: 'the API server or an aggregated API is down or overloaded; retried with backoff' };
    default:
      if (status >= 500) return { summary: `API server error ${status} on ${ctx.verb} ${target}${retry}`, hint: 'a server-side failure; retried with backoff, check the API server logs if it persists' };
      return { summary: `HTTP ${status} on ${ctx.verb} ${target}`, hint: 'see the server message' };
  }
}

/** An answer of the API server other than success: HTTP error or an ERROR watch event. */
export class KubeApiError extends NnfEnvError {
  readonly status: number;
  readonly reason: string;
  readonly kubeMessage: string;
  readonly retryAfterMs: number | undefined;
  readonly verb: string;
  readonly resource: string | undefined;
  readonly namespace: string | undefined;
  readonly path: string;

  constructor(init: KubeRequestContext & { status: number; reason: string; kubeMessage: string; retryAfterMs?: number }) {
    const { summary, hint } = explain(init.status, init, init.retryAfterMs);
    const server = init.kubeMessage ? `: ${init.kubeMessage}` : '';
    super(codeFor(init.status), `${summary} (HTTP ${init.status} ${init.reason}${server})`, { hint });
    this.status = init.status;
    this.reason = init.reason;
    this.kubeMessage = init.kubeMessage;
    this.retryAfterMs = init.retryAfterMs;
    this.verb = init.verb;
    this.resource = init.resource;
    this.namespace = init.namespace;
    this.path = init.path;
  }

  /** From an HTTP error answer: a `Status` body when there is one, else the raw text. */
  static fromResponse(
    ctx: KubeRequestContext,
    statusCode: number,
    bodyText: string,
    headers: Record<string, string | string[] | undefined> = {},
  ): KubeApiError {
    let parsed: unknown;
    try {
      parsed = JSON.parse(bodyText);
    } catch {
      parsed = undefined;
    }
    const headerRetry = parseRetryAfter(headers['retry-after']);
    if (isKubeStatus(parsed)) {
      const bodyRetry = typeof parsed.details?.retryAfterSeconds === 'number' ? parsed.details.retryAfterSeconds * 1000 : undefined;
      return new KubeApiError({
        ...ctx,
        status: statusCode,
        reason: parsed.reason || STATUS_CODES[statusCode] || 'Unknown',
        kubeMessage: parsed.message ?? '',
        retryAfterMs: headerRetry ?? bodyRetry,
      });
    }
    const text = bodyText.trim();
    return new KubeApiError({
      ...ctx,
      status: statusCode,
      reason: STATUS_CODES[statusCode] ?? 'Unknown',
      kubeMessage: text.length > 200 ? `${text.slice(0, 200)}...` : text,
      retryAfterMs: headerRetry,
    });
  }

  /** From the `Status` object of a watch ERROR event (HTTP status was 200; the code is inside). */
  static fromStatus(ctx: KubeRequestContext, status: KubeStatus): KubeApiError {
    const code = typeof status.code === 'number' ? status.code : 500;
    return new KubeApiError({
      ...ctx,
      status: code,
      reason: status.reason || STATUS_CODES[code] || 'Unknown',
      kubeMessage: status.message ?? '',
      retryAfterMs: typeof status.details?.retryAfterSeconds === 'number' ? status.details.retryAfterSeconds * 1000 : undefined,
    });
  }

  /** 410 Expired/Gone: the resourceVersion (or continue token) is too old; relist. */
  get isExpired(): boolean {
    return this.status === 410;
  }
}

/** The server could not be reached or spoken to: network, TLS, timeout. */
export class KubeConnectionError extends NnfEnvError {
  readonly server: string;
  constructor(code: string, message: string, options: { server: string; hint?: string; cause?: unknown }) {
    super(code, message, options);
    this.server = options.server;
  }

  /** Walks the cause chain for the first system or TLS error code. */
  static codeOf(err: unknown): string | undefined {
    for (let e: unknown = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
      const code = (e as { code?: unknown }).code;
      if (typeof code === 'string' && !code.startsWith('UND_ERR_') && code !== 'ABORT_ERR') return code;
    }
    for (let e: unknown = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
      const code = (e as { code?: unknown }).code;
      if (typeof code === 'string') return code;
    }
    return undefined;
  }

  /** Classifies a low-level failure into something an admin can act on. */
  static from(err: unknown, ctx: { server: string; verb: string; path: string }): KubeConnectionError {
    const code = KubeConnectionError.codeOf(err) ?? '';
    const detail = (err as Error | undefined)?.message ?? String(err);
    const doing = `${ctx.verb} ${ctx.path} on ${ctx.server}`;
    const make = (c: string, what: string, hint: string) =>
      new KubeConnectionError(c, `${what} (${doing}: ${code ? code + ' ' : ''}${detail})`, { server: ctx.server, hint, cause: err });
    switch (code) {
      case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      case 'UNABLE_TO_GET_ISSUER_CERT':
      case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      case 'SELF_SIGNED_CERT_IN_CHAIN':
      case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      case 'CERT_UNTRUSTED':
      case 'CERT_SIGNATURE_FAILURE':
      case 'CERT_REJECTED':
        return make('KUBE_TLS_UNTRUSTED', 'TLS verification failed: the API server\'s certificate not trusted: set KUBE_CA_FILE / certificate-authority', 'point KUBE_CA_FILE (or the kubeconfig\'s certificate-authority / -data) at the CA that signed the API server\'s certificate');
      case 'CERT_HAS_EXPIRED':
      case 'CERT_NOT_YET_VALID':
        return make('KUBE_TLS_CERT_EXPIRED', 'TLS: the API server\'s certificate is expired or not yet valid', 'check the server certificate and this node\'s clock');
      case 'ERR_TLS_CERT_ALTNAME_INVALID':
        return make('KUBE_TLS_NAME_MISMATCH', 'TLS: the API server\'s certificate does not name the host connected to', 'connect by a name the certificate carries, or set KUBE_TLS_SERVER_NAME / tls-server-name');
      case 'ERR_SSL_WRONG_VERSION_NUMBER':
      case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
      case 'EPROTO':
        return make('KUBE_TLS_HANDSHAKE', 'TLS handshake failed', 'is the server speaking TLS at this address? check http:// vs https:// in the server URL');
      case 'ECONNREFUSED':
        return make('KUBE_CONNECTION_REFUSED', 'connection refused by the API server address', 'check the server host and port, and that the API server is running');
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return make('KUBE_DNS', 'the API server host name does not resolve', 'check the server host name and DNS');
      case 'ETIMEDOUT':
      case 'UND_ERR_CONNECT_TIMEOUT':
        return make('KUBE_CONNECT_TIMEOUT', 'timed out connecting to the API server', 'check the network path and firewall to the API server');
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return make('KUBE_UNREACHABLE', 'the API server is unreachable', 'check routing to the API server');
      case 'UND_ERR_HEADERS_TIMEOUT':
        return make('KUBE_REQUEST_TIMEOUT', 'the API server did not answer in time', 'the server is slow or overloaded; KUBE_REQUEST_TIMEOUT sets the bound');
      default:
        if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
          return make('KUBE_TLS_ERROR', 'TLS failure talking to the API server', 'check the CA, client certificate and key (KUBE_CA_FILE, kubeconfig client-certificate/-key)');
        }
        return make('KUBE_CONNECTION_FAILED', 'connection to the API server failed', 'check the network path to the API server');
    }
  }
}

/** The settings that say how to reach Kubernetes are missing or wrong (kubeconfig, KUBE_*). */
export class KubeConfigError extends NnfEnvError {
  /** The file at fault, if one is. */
  readonly file: string | undefined;
  /** What is wrong, without the file name (for tests and JSON). */
  readonly problem: string;

  constructor(code: string, problem: string, options: { file?: string; hint?: string; cause?: unknown } = {}) {
    super(code, options.file ? `${options.file}: ${problem}` : problem, options);
    this.file = options.file;
    this.problem = problem;
  }
}

/** The API server does not serve what nnf-env needs (DWS group or version). */
export class KubeDiscoveryError extends NnfEnvError {}
