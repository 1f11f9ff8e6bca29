import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { pino, type Logger } from 'pino';
import type { KubeConnection } from './connection.js';
import { connectionWarnings } from './connection.js';
import { KubeApiError, KubeConfigError, KubeConnectionError, type KubeRequestContext } from './errors.js';
import { collectionPath, objectPath, resourceName, type KubeList, type KubeObject, type ResourceType } from './resource.js';
import { TokenSource } from './token-source.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  method: HttpMethod;
  path: string;
  query?: Query;
  /** Objects are sent as JSON; strings and buffers as they are. */
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** Whole-request bound (headers and body). Default: the client's requestTimeoutMs. */
  timeoutMs?: number;
  /** For error messages; derived from method and path when absent. */
  context?: Partial<KubeRequestContext>;
}

export interface ListOptions {
  namespace?: string;
  fieldSelector?: string;
  labelSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  signal?: AbortSignal;
}

export interface WatchOptions {
  namespace?: string;
  resourceVersion: string;
  fieldSelector?: string;
  labelSelector?: string;
  timeoutSeconds: number;
  allowWatchBookmarks: true;
  /**
   * A watch list (kube-apiserver's WatchList, beta): the current objects come as ADDED events,
   * then a BOOKMARK annotated `k8s.io/initial-events-end`, with no list request before
   * (resourceVersionMatch=NotOlderThan is sent with it, as the API requires).
   */
  sendInitialEvents?: boolean;
  signal: AbortSignal;
}

/** The body of a watch: byte chunks until the server ends it. Abort through the watch's signal or destroy(). */
export interface WatchStream extends AsyncIterable<Uint8Array> {
  destroy(err?: Error): void;
}

export interface KubeClientOptions {
  connection: KubeConnection;
  /** Bound of one non-watch request, and of the wait for a watch's response headers. Default 30 s. */
  requestTimeoutMs?: number;
  /** Token file re-read interval. Default 60 s. */
  tokenRefreshMs?: number;
  userAgent?: string;
  logger?: Logger;
}

/**
 * Bytes a watch body may buffer before the socket is paused (undici's default is 64 KiB). A burst
 * of events then arrives in fewer pause/resume round trips; bounded, so a stalled consumer
 * still pushes back on the server.
 */
const WATCH_BODY_HIGH_WATER_MARK = 1024 * 1024;

export type PatchType = 'merge' | 'json';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
};

/** `workflows.dataworkflowservices.github.io`: how RBAC and kubectl name a resource. */
// In resource.ts (pure): the reflector names resources without loading undici.
export { resourceName };

function buildQuery(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

function verbOf(method: HttpMethod): string {
  return { GET: 'get', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }[method];
}

/**
 * A small Kubernetes API client on one undici keep-alive pool. TLS is verified unless the
 * connection says otherwise; bearer tokens come from a TokenSource and a 401 forces one token
 * file re-read and one retry.
 */
export class KubeClient {
  readonly connection: KubeConnection;
  private readonly pool: Pool;
  private readonly tokens: TokenSource;
  private readonly requestTimeoutMs: number;
  private readonly userAgent: string;
  private readonly logger: Logger;
  private readonly basePath: string;

  constructor(opts: KubeClientOptions) {
    const conn = opts.connection;
    this.connection = conn;
    this.logger = opts.logger ?? pino({ level: 'silent' });
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    if (!(this.requestTimeoutMs > 0)) throw new RangeError(`requestTimeoutMs must be > 0 (got ${opts.requestTimeoutMs})`);
    this.userAgent = opts.userAgent ?? 'nnf-env';
    const url = new URL(conn.server);
    // A server URL may carry a path prefix (behind a proxy); requests are appended to it.
    this.basePath = url.pathname.replace(/\/+$/, '');
    const tls = url.protocol === 'https:'
      ? {
          ...(conn.caPem !== undefined ? { ca: conn.caPem } : {}),
          ...(conn.certPem !== undefined ? { cert: conn.certPem } : {}),
          ...(conn.keyPem !== undefined ? { key: conn.keyPem } : {}),
          ...(conn.tlsServerName !== undefined ? { servername: conn.tlsServerName } : {}),
          rejectUnauthorized: !conn.insecureSkipTlsVerify,
        }
      : {};
    this.pool = new Pool(url.origin, {
      connect: { ...tls, timeout: Math.min(this.requestTimeoutMs, 30_000) },
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 120_000,
      // Watches hold a connection each for minutes; never queue a request behind one.
      pipelining: 1,
    });
    this.tokens = new TokenSource({
      ...(conn.token !== undefined ? { token: conn.token } : {}),
      ...(conn.tokenFile !== undefined ? { tokenFile: conn.tokenFile } : {}),
      ...(opts.tokenRefreshMs !== undefined ? { refreshMs: opts.tokenRefreshMs } : {}),
      logger: this.logger,
    });
    for (const w of connectionWarnings(conn)) this.logger.warn({ server: conn.server, source: conn.source }, w);
  }

  /** One API request; JSON in, JSON out. Throws KubeApiError for non-2xx, KubeConnectionError for transport failures. */
  async request<T>(opts: RequestOptions): Promise<T> {
    const ctx: KubeRequestContext = { verb: verbOf(opts.method), path: opts.path, ...opts.context };
    const timeoutMs = opts.timeoutMs ?? this.requestTimeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    try {
      const res = await this.send(opts, signal, ctx, { bodyTimeout: timeoutMs, headersTimeout: timeoutMs });
      const text = await res.body.text();
      if (res.statusCode < 200 || res.statusCode > 299) throw KubeApiError.fromResponse(ctx, res.statusCode, text, res.headers);
      if (text === '') return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch (err) {
        throw new KubeConnectionError('KUBE_BAD_RESPONSE', `the API server answered ${ctx.verb} ${opts.path} with non-JSON (${text.slice(0, 200)})`, {
          server: this.connection.server,
          hint: 'is KUBE_SERVER pointing at a Kubernetes API server?',
          cause: err,
        });
      }
    } catch (err) {
      throw this.classify(err, ctx, opts.signal, timeout, timeoutMs);
    }
  }

  async list<T extends KubeObject>(rt: ResourceType, opts: ListOptions = {}): Promise<KubeList<T>> {
    return this.request<KubeList<T>>({
      method: 'GET',
      path: collectionPath(rt, opts.namespace),
      query: {
        fieldSelector: opts.fieldSelector,
        labelSelector: opts.labelSelector,
        limit: opts.limit,
        continue: opts.continue,
        resourceVersion: opts.resourceVersion,
      },
      ...(opts.signal ? { signal: opts.signal } : {}),
      context: { verb: 'list', resource: resourceName(rt), ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}) },
    });
  }

  /** The object; KubeApiError (KUBE_NOT_FOUND) when it does not exist. */
  async get<T extends KubeObject>(rt: ResourceType, namespace: string | undefined, name: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>({
      method: 'GET',
      path: objectPath(rt, namespace, name),
      ...(signal ? { signal } : {}),
      context: this.objectContext('get', rt, namespace, name),
    });
  }

  /** The object, or undefined when it does not exist. */
  async tryGet<T extends KubeObject>(rt: ResourceType, namespace: string | undefined, name: string, signal?: AbortSignal): Promise<T | undefined> {
    try {
      return await this.get<T>(rt, namespace, name, signal);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  async create<T extends KubeObject>(rt: ResourceType, namespace: string | undefined, obj: T, signal?: AbortSignal): Promise<T> {
    return this.request<T>({
      method: 'POST',
      path: collectionPath(rt, namespace),
      body: obj,
      ...(signal ? { signal } : {}),
      context: this.objectContext('create', rt, namespace, obj.metadata?.name),
    });
  }

  /** PUT: the object must carry the resourceVersion it replaces (else last write wins). */
  async replace<T extends KubeObject>(rt: ResourceType, namespace: string | undefined, name: string, obj: T, signal?: AbortSignal): Promise<T> {
    return this.request<T>({
      method: 'PUT',
      path: objectPath(rt, namespace, name),
      body: obj,
      ...(signal ? { signal } : {}),
      context: this.objectContext('update', rt, namespace, name),
    });
  }

  async patch<T extends KubeObject>(rt: ResourceType, namespace: string | undefined, name: string, patch: unknown, type: PatchType, signal?: AbortSignal): Promise<T> {
    return this.request<T>({
      method: 'PATCH',
      path: objectPath(rt, namespace, name),
      body: patch,
      contentType: PATCH_CONTENT_TYPE[type],
      ...(signal ? { signal } : {}),
      context: this.objectContext('patch', rt, namespace, name),
    });
  }

  /** Answers what the server answers: the deleted object (finalizers pending) or a Status. */
  async delete(rt: ResourceType, namespace: string | undefined, name: string, opts: { propagationPolicy?: 'Foreground' | 'Background' | 'Orphan'; signal?: AbortSignal } = {}): Promise<unknown> {
    return this.request<unknown>({
      method: 'DELETE',
      path: objectPath(rt, namespace, name),
      ...(opts.propagationPolicy ? { body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: opts.propagationPolicy } } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      context: this.objectContext('delete', rt, namespace, name),
    });
  }

  /**
   * Starts a watch and answers its body once the server said 200. No whole-request timeout:
   * a watch lives for timeoutSeconds, and silence is the caller's (the reflector's) to detect.
   */
  async watch(rt: ResourceType, opts: WatchOptions): Promise<WatchStream> {
    const ctx: KubeRequestContext = { verb: 'watch', path: collectionPath(rt, opts.namespace), resource: resourceName(rt), ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}) };
    const req: RequestOptions = {
      method: 'GET',
      path: ctx.path,
      query: {
        watch: 1,
        resourceVersion: opts.resourceVersion,
        allowWatchBookmarks: opts.allowWatchBookmarks,
        timeoutSeconds: opts.timeoutSeconds,
        fieldSelector: opts.fieldSelector,
        labelSelector: opts.labelSelector,
        ...(opts.sendInitialEvents ? { sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan' } : {}),
      },
    };
    try {
      const res = await this.send(req, opts.signal, ctx, { headersTimeout: this.requestTimeoutMs, bodyTimeout: 0, highWaterMark: WATCH_BODY_HIGH_WATER_MARK });
      if (res.statusCode !== 200) {
        const text = await res.body.text();
        throw KubeApiError.fromResponse(ctx, res.statusCode, text, res.headers);
      }
      return res.body;
    } catch (err) {
      throw this.classify(err, ctx, opts.signal, undefined, this.requestTimeoutMs);
    }
  }

  /** Closes every connection, aborting watches still open: stop reflectors first. */
  async close(): Promise<void> {
    if (this.pool.destroyed) return;
    await this.pool.destroy();
  }

  private objectContext(verb: string, rt: ResourceType, namespace: string | undefined, name: string | undefined): Partial<KubeRequestContext> {
    return { verb, resource: resourceName(rt), ...(namespace !== undefined ? { namespace } : {}), ...(name !== undefined ? { name } : {}) };
  }

  /** Sends with auth; on 401 with a re-readable token, re-reads it and, if it changed, retries once. */
  private async send(opts: RequestOptions, signal: AbortSignal, ctx: KubeRequestContext, timeouts: { headersTimeout: number; bodyTimeout: number; highWaterMark?: number }): Promise<Dispatcher.ResponseData> {
    let body: string | Buffer | undefined;
    let contentType = opts.contentType;
    if (opts.body !== undefined) {
      if (typeof opts.body === 'string' || Buffer.isBuffer(opts.body)) body = opts.body;
      else body = JSON.stringify(opts.body);
      contentType ??= 'application/json';
    }
    const attempt = async (): Promise<Dispatcher.ResponseData> => {
      const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.userAgent };
      if (contentType) headers['content-type'] = contentType;
      const token = await this.tokens.get();
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      return this.pool.request({
        method: opts.method,
        path: this.basePath + opts.path + buildQuery(opts.query),
        headers,
        ...(body !== undefined ? { body } : {}),
        signal,
        ...timeouts,
      });
    };
    const res = await attempt();
    if (res.statusCode === 401 && this.tokens.refreshable) {
      const changed = await this.tokens.forceRefresh();
      if (changed) {
        await res.body.dump();
        this.logger.info({ verb: ctx.verb, path: ctx.path }, '401 Unauthorized: token file changed, retrying once with the new token');
        return attempt();
      }
    }
    return res;
  }

  private classify(err: unknown, ctx: KubeRequestContext, callerSignal: AbortSignal | undefined, timeout: AbortSignal | undefined, timeoutMs: number): unknown {
    if (err instanceof KubeApiError || err instanceof KubeConnectionError || err instanceof KubeConfigError) return err;
    // The caller's own abort propagates as-is: not a failure of the server.
    if (callerSignal?.aborted) return callerSignal.reason ?? err;
    if (timeout?.aborted) {
      return new KubeConnectionError('KUBE_REQUEST_TIMEOUT', `${ctx.verb} ${ctx.path} on ${this.connection.server} did not complete within ${timeoutMs} ms`, {
        server: this.connection.server,
        hint: 'the API server is slow, overloaded or unreachable; KUBE_REQUEST_TIMEOUT sets the bound',
        cause: err,
      });
    }
    return KubeConnectionError.from(err, { server: this.connection.server, verb: ctx.verb, path: ctx.path });
  }
}
