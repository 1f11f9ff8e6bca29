/**
 * The HTTP face of the simulator: routing, authentication, verbs, content negotiation and
 * Status errors, as kube-apiserver answers them for the resources in ./resources.ts. No
 * framework: one request handler over node:http / node:https.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import YAML from 'yaml';
import type { KubeObject } from '../kube/resource.js';
import type { FaultState, RequestInfo } from './faults.js';
import { applyJsonPatch, applyMergePatch, parseJsonPatch } from './patch.js';
import {
  apiGroupDoc,
  apiGroupListDoc,
  apiResourceListDoc,
  apiVersionString,
  apiVersionsDoc,
  versionDoc,
  type ResourceRegistry,
  type ServedResource,
} from './resources.js';
import { openApiV2Doc, openApiV3Doc, openApiV3Root } from './openapi.js';
import { applyDefaults, prune, validate } from './schema.js';
import { parseSelectors, type Selector } from './selectors.js';
import { SimApiError, errors, statusBody, type StatusReason } from './status.js';
import type { ObjectStore } from './store.js';
import { tableRequested, toTable, type TableRequest } from './table.js';
import { present, type WatchHub } from './watch.js';

export interface ServerContext {
  store: ObjectStore;
  registry: ResourceRegistry;
  hub: WatchHub;
  faults: FaultState;
  token: string | undefined;
  logger: Logger;
  /** host:port clients use, for /api's serverAddressByClientCIDRs. */
  serverAddress: () => string;
  /** Bounds of the server-chosen watch timeout when the client sets none (ms). */
  defaultWatchTimeoutMs: () => number;
  /** Called when the handler sleeps (latency fault), so close() can cut the wait short. */
  sleep: (ms: number) => Promise<void>;
}

const MAX_BODY_BYTES = 16 * 1024 * 1024;

function notFoundPath(): SimApiError {
  return new SimApiError(404, 'NotFound', 'the server could not find the requested resource', {});
}

function send(res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

function sendStatus(res: ServerResponse, err: SimApiError, headers: Record<string, string> = {}): void {
  send(res, err.httpStatus, err.toStatus(), headers);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new SimApiError(413, 'RequestEntityTooLarge', `the request body is larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
}

async function readObjectBody(req: IncomingMessage): Promise<unknown> {
  const raw = await readBody(req);
  const type = mediaType(req);
  const text = raw.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    if (type === 'application/yaml' || type === 'application/x-yaml' || type === 'text/yaml') return YAML.parse(text);
    if (type === 'application/json' || type === '*/*' || type === '') return JSON.parse(text);
  } catch (err) {
    throw errors.badRequest(`the body of the request could not be decoded: ${(err as Error).message}`);
  }
  throw new SimApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml`);
}

/**
 * A boolean query parameter as kube-apiserver reads it (apimachinery's string-to-bool
 * conversion): absent, "0" and "false" (any case) are false; anything else, even "", is true.
 */
export function isTrue(v: string | null): boolean {
  return v !== null && v !== '0' && v.toLowerCase() !== 'false';
}

/**
 * An integer query parameter as kube-apiserver reads it (Go's strconv.ParseInt, base 10):
 * undefined when absent; a 400 naming the value when it is not an integer (also for "").
 */
export function queryInt(v: string | null): number | undefined {
  if (v === null) return undefined;
  if (!/^[+-]?[0-9]+$/.test(v)) throw errors.badRequest(`strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`);
  return Number(v);
}

interface ContinueToken {
  rv: number;
  start: string;
}

export function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: t.rv, start: t.start })).toString('base64url');
}

export function decodeContinue(s: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as { v?: unknown; rv?: unknown; start?: unknown };
    if (t.v === 'meta.k8s.io/v1' && typeof t.rv === 'number' && typeof t.start === 'string') return { rv: t.rv, start: t.start };
  } catch {
    // fall through
  }
  throw errors.badRequest(`continue key is not valid: "${s}"`);
}

function parseRV(v: string | null, what = 'resourceVersion'): number | undefined {
  if (v === null || v === '' || v === '0') return undefined;
  if (!/^[0-9]+$/.test(v)) throw errors.badRequest(`${what}: Invalid value: "${v}": must be a non-negative integer`);
  return Number(v);
}

function keyOf(o: KubeObject): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

/** Where a resource request goes. */
interface Target {
  res: ServedResource;
  version: string;
  namespace: string | undefined;
  name: string | undefined;
  /** .../<name>/status of a resource with a status subresource. */
  status: boolean;
}

function resolveTarget(ctx: ServerContext, group: string, version: string, segs: string[]): Target {
  let namespace: string | undefined;
  let rest = segs;
  if (segs[0] === 'namespaces' && segs.length >= 3) {
    namespace = segs[1];
    rest = segs.slice(2);
  }
  const [plural, name, sub, ...more] = rest;
  if (!plural || more.length > 0) throw notFoundPath();
  const res = ctx.registry.find(group, version, plural);
  if (!res) throw notFoundPath();
  // The only subresource: status, where the CRD declares it (the Workflow CRD does not).
  if (sub !== undefined && !(sub === 'status' && res.statusSubresource)) {
    // kube-apiserver's custom resource handler answers an unknown subresource as a missing object.
    if (res.custom && name) throw errors.notFound(res.group, res.plural, name);
    throw notFoundPath();
  }
  if (namespace !== undefined && !res.namespaced) throw notFoundPath();
  return { res, version, namespace: res.namespaced ? namespace : undefined, name, status: sub === 'status' };
}

export function createHandler(ctx: ServerContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(ctx, req, res).catch((err: unknown) => {
      const e = err instanceof SimApiError ? err : errors.internal((err as Error)?.message ?? String(err));
      if (!(err instanceof SimApiError)) ctx.logger.error({ err, method: req.method, url: req.url }, 'simulator request failed');
      sendStatus(res, e);
    });
  };
}

function authorized(ctx: ServerContext, req: IncomingMessage): boolean {
  if (ctx.token === undefined) return true;
  const got = Buffer.from(req.headers.authorization ?? '');
  const want = Buffer.from(`Bearer ${ctx.token}`);
  return got.length === want.length && timingSafeEqual(got, want);
}

async function handle(ctx: ServerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sim.invalid');
  const method = (req.method ?? 'GET').toUpperCase();
  const q = url.searchParams;
  const info: RequestInfo = { method, path: url.pathname, watch: isTrue(q.get('watch')) };
  ctx.logger.debug({ method, url: req.url }, 'request');

  if (!authorized(ctx, req)) {
    // Drain the body so a keep-alive connection stays usable.
    req.resume();
    sendStatus(res, new SimApiError(401, 'Unauthorized', 'Unauthorized'));
    return;
  }
  const failure = ctx.faults.takeFailure(info);
  if (failure) {
    req.resume();
    const reasons: Record<number, [StatusReason, string]> = {
      429: ['TooManyRequests', 'Too many requests, please try again later.'],
      500: ['InternalError', 'Internal error occurred: injected fault'],
      503: ['ServiceUnavailable', 'The server is currently unable to handle the request (injected fault)'],
    };
    const [reason, message] = reasons[failure.status]!;
    const headers: Record<string, string> = {};
    const details = failure.retryAfterSeconds === undefined ? undefined : { retryAfterSeconds: failure.retryAfterSeconds };
    if (failure.retryAfterSeconds !== undefined) headers['Retry-After'] = String(failure.retryAfterSeconds);
    send(res, failure.status, statusBody(failure.status, reason, message, details), headers);
    return;
  }
  if (ctx.faults.latencyMs > 0) await ctx.sleep(ctx.faults.latencyMs);
  if (res.destroyed) return;

  const path = url.pathname.replace(/\/+$/, '') || '/';
  const segs = path.split('/').filter((s) => s !== '').map(decodeURIComponent);
  const table = tableRequested(req.headers.accept, q.get('includeObject'));

  // --- discovery and health
  if (method === 'GET') {
    if (path === '/version') return send(res, 200, versionDoc());
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    // Aggregated discovery (Accept ...as=APIGroupDiscoveryList) is answered in the legacy
    // format with Content-Type application/json; client-go then falls back to it.
    if (path === '/openapi/v2') return send(res, 200, openApiV2Doc(ctx.registry));
    if (path === '/openapi/v3') return send(res, 200, openApiV3Root(ctx.registry));
    if (segs[0] === 'openapi' && segs[1] === 'v3') {
      const [, , root, a, b] = segs;
      const doc = root === 'api' && a && segs.length === 4 ? openApiV3Doc(ctx.registry, '', a) : root === 'apis' && a && b && segs.length === 5 ? openApiV3Doc(ctx.registry, a, b) : undefined;
      return doc ? send(res, 200, doc) : sendStatus(res, notFoundPath());
    }
    if (path === '/api') return send(res, 200, apiVersionsDoc(ctx.serverAddress()));
    if (path === '/apis') return send(res, 200, apiGroupListDoc(ctx.registry));
    if (segs[0] === 'api' && segs.length === 2) {
      const doc = apiResourceListDoc(ctx.registry, '', segs[1]!);
      return doc ? send(res, 200, doc) : sendStatus(res, notFoundPath());
    }
    if (segs[0] === 'apis' && segs.length === 2) {
      const doc = apiGroupDoc(ctx.registry, segs[1]!);
      return doc ? send(res, 200, doc) : sendStatus(res, notFoundPath());
    }
    if (segs[0] === 'apis' && segs.length === 3) {
      const doc = apiResourceListDoc(ctx.registry, segs[1]!, segs[2]!);
      return doc ? send(res, 200, doc) : sendStatus(res, notFoundPath());
    }
  }

  // --- resources
  let target: Target;
  if (segs[0] === 'api' && segs[1] && segs.length > 2) target = resolveTarget(ctx, '', segs[1], segs.slice(2));
  else if (segs[0] === 'apis' && segs[1] && segs[2] && segs.length > 3) target = resolveTarget(ctx, segs[1], segs[2], segs.slice(3));
  else {
    req.resume();
    return sendStatus(res, notFoundPath());
  }

  const { res: r, name } = target;
  const dryRun = q.getAll('dryRun').includes('All');
  if (target.status && method !== 'GET' && method !== 'PUT' && method !== 'PATCH') {
    req.resume();
    return sendStatus(res, new SimApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
  }
  if (name === undefined) {
    switch (method) {
      case 'GET':
        if (info.watch) return startWatch(ctx, target, q, table, res);
        return send(res, 200, listResponse(ctx, target, q, table));
      case 'POST':
        return send(res, 201, present(await createFromBody(ctx, target, req, dryRun), r, target.version));
      case 'DELETE':
        return send(res, 200, deleteCollection(ctx, target, q, dryRun));
      default:
        req.resume();
        return sendStatus(res, new SimApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
    }
  }
  switch (method) {
    case 'GET': {
      const o = ctx.store.peek(r, target.namespace, name);
      if (!o) throw errors.notFound(r.group, r.plural, name);
      const shown = present(o, r, target.version);
      return send(res, 200, table ? toTable(r, [shown], { resourceVersion: shown.metadata.resourceVersion ?? '' }, table) : shown);
    }
    case 'PUT':
      return send(res, 200, present(await updateFromBody(ctx, target, name, req, dryRun), r, target.version));
    case 'PATCH':
      return send(res, 200, present(await patchFromBody(ctx, target, name, req, dryRun), r, target.version));
    case 'DELETE': {
      const body = (await readObjectBody(req)) as { preconditions?: { uid?: string; resourceVersion?: string }; dryRun?: string[] } | undefined;
      const { obj } = ctx.store.delete(r, target.namespace, name, {
        dryRun: dryRun || (body?.dryRun ?? []).includes('All'),
        ...(body?.preconditions ? { preconditions: body.preconditions } : {}),
      });
      return send(res, 200, present(obj, r, target.version));
    }
    default:
      req.resume();
      return sendStatus(res, new SimApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
  }
}

function selectorOf(q: URLSearchParams): Selector {
  return parseSelectors(q.get('fieldSelector'), q.get('labelSelector'));
}

function listResponse(ctx: ServerContext, t: Target, q: URLSearchParams, table: TableRequest | undefined): object {
  const { res: r } = t;
  const selector = selectorOf(q);
  const cont = q.get('continue');
  // kube treats a limit <= 0 as no limit.
  const limit = Math.max(0, queryInt(q.get('limit')) ?? 0);

  let rv = ctx.store.currentRV();
  let start: string | undefined;
  let objs: KubeObject[] | undefined;
  if (cont) {
    const tok = decodeContinue(cont);
    rv = tok.rv;
    start = tok.start;
    objs = ctx.store.snapshot(r, t.namespace, rv);
    if (!objs) {
      throw errors.expired(
        'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
      );
    }
  } else if (q.get('resourceVersionMatch') === 'Exact') {
    const want = parseRV(q.get('resourceVersion'));
    if (want === undefined) throw errors.badRequest('resourceVersionMatch: Exact needs a resourceVersion');
    objs = ctx.store.snapshot(r, t.namespace, want);
    if (!objs) throw errors.expired(`too old resource version: ${want} (${ctx.store.oldestRV()})`);
    rv = Math.min(want, rv);
  } else {
    objs = ctx.store.list(r, t.namespace);
  }
  let items = objs.filter((o) => (start === undefined || keyOf(o) > start) && selector(o));
  // Custom resource lists always carry continue ("" on the last page), as kube-apiserver's
  // unstructured lists do; core lists omit it then.
  const meta: { resourceVersion: string; continue?: string; remainingItemCount?: number } = r.custom ? { continue: '', resourceVersion: String(rv) } : { resourceVersion: String(rv) };
  if (limit > 0 && items.length > limit) {
    const remaining = items.length - limit;
    items = items.slice(0, limit);
    meta.continue = encodeContinue({ rv, start: keyOf(items[items.length - 1]!) });
    if (!q.get('fieldSelector') && !q.get('labelSelector')) meta.remainingItemCount = remaining;
  }
  const shown = items.map((o) => present(o, r, t.version));
  if (table) return toTable(r, shown, meta, table);
  return { kind: r.listKind, apiVersion: apiVersionString(r.group, t.version), metadata: meta, items: shown };
}

function startWatch(ctx: ServerContext, t: Target, q: URLSearchParams, table: TableRequest | undefined, res: ServerResponse): void {
  const selector = selectorOf(q);
  let timeoutMs = ctx.defaultWatchTimeoutMs();
  const timeoutSeconds = queryInt(q.get('timeoutSeconds'));
  if (timeoutSeconds !== undefined && timeoutSeconds > 0) timeoutMs = timeoutSeconds * 1000;
  const initial = isTrue(q.get('sendInitialEvents'));
  const fromRV = initial ? undefined : parseRV(q.get('resourceVersion'));
  ctx.hub.start(
    { res: t.res, version: t.version, namespace: t.namespace, selector, fromRV, bookmarks: isTrue(q.get('allowWatchBookmarks')), timeoutMs, table, initialEventsEnd: initial },
    res,
  );
}

async function createFromBody(ctx: ServerContext, t: Target, req: IncomingMessage, dryRun: boolean): Promise<KubeObject> {
  const body = (await readObjectBody(req)) as KubeObject | undefined;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw errors.badRequest('the request body must be an object');
  checkApiVersion(t, body);
  const md = (body.metadata ??= { name: '' });
  if (t.res.namespaced) {
    if (md.namespace && t.namespace && md.namespace !== t.namespace) {
      throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    md.namespace = t.namespace ?? md.namespace;
    if (!md.namespace) throw errors.badRequest('the namespace of the provided object is missing: POST to /namespaces/<ns>/' + t.res.plural);
  }
  // kube-apiserver refuses this too (exported manifests hit it).
  if (md.resourceVersion) throw errors.internal('resourceVersion should not be set on objects to be created');
  return ctx.store.create(t.res, admit(t, body, undefined), { dryRun });
}

function checkApiVersion(t: Target, body: KubeObject): void {
  const want = apiVersionString(t.res.group, t.version);
  if (body.apiVersion !== undefined && body.apiVersion !== want && !t.res.versions.some((v) => apiVersionString(t.res.group, v) === body.apiVersion)) {
    throw errors.badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${want})`);
  }
}

function checkNameAndNamespace(t: Target, name: string, body: KubeObject): void {
  const md = (body.metadata ??= { name });
  if (md.name !== undefined && md.name !== name) throw errors.badRequest(`the name of the object (${md.name}) does not match the name on the URL (${name})`);
  md.name = name;
  if (t.res.namespaced) {
    if (md.namespace && md.namespace !== t.namespace) throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    md.namespace = t.namespace;
  }
}

async function updateFromBody(ctx: ServerContext, t: Target, name: string, req: IncomingMessage, dryRun: boolean): Promise<KubeObject> {
  const body = (await readObjectBody(req)) as KubeObject | undefined;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw errors.badRequest('the request body must be an object');
  checkApiVersion(t, body);
  checkNameAndNamespace(t, name, body);
  const cur = ctx.store.peek(t.res, t.namespace, name);
  if (!cur) throw errors.notFound(t.res.group, t.res.plural, name);
  // CRDs do not allow unconditional updates; core types do.
  return ctx.store.update(t.res, admit(t, body, cur), { dryRun, requireResourceVersion: t.res.custom });
}

/**
 * What kube-apiserver does to an object before storing it: status only through the status
 * subresource (where there is one: CRDs that declare it, and Nodes), then the CRD schema's pruning, defaulting and
 * validation (422 with a cause per field).
 */
function admit(t: Target, obj: KubeObject, cur: KubeObject | undefined): KubeObject {
  let out = obj;
  if (t.res.statusSubresource) {
    if (t.status && cur) {
      out = { ...structuredClone(cur), metadata: { ...structuredClone(cur.metadata), resourceVersion: obj.metadata?.resourceVersion } };
      if (obj.status === undefined) delete out.status;
      else out.status = obj.status;
    } else {
      out = { ...obj };
      if (cur?.status !== undefined) out.status = structuredClone(cur.status);
      // A custom resource is created without status; a core one (a Node) keeps what it is given.
      else if (cur !== undefined || t.res.custom) delete out.status;
    }
  }
  const schema = t.res.schemas?.get(t.version);
  if (schema) {
    prune(schema, out);
    applyDefaults(schema, out);
    const causes = validate(schema, out);
    if (causes.length) throw errors.invalidCauses(t.res.kind, t.res.group, out.metadata?.name ?? '', causes);
  }
  return out;
}

const PATCH_TYPES = 'application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml';

async function patchFromBody(ctx: ServerContext, t: Target, name: string, req: IncomingMessage, dryRun: boolean): Promise<KubeObject> {
  const type = mediaType(req);
  const strategic = type === 'application/strategic-merge-patch+json';
  // Custom resources have no strategic merge patch. For the core types the simulator treats
  // it as a merge patch (the same for maps; lists are replaced instead of merged by key).
  if ((strategic && t.res.custom) || (!strategic && type !== 'application/merge-patch+json' && type !== 'application/json-patch+json')) {
    req.resume();
    throw new SimApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES}`);
  }
  const raw = await readBody(req);
  let patch: unknown;
  try {
    patch = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw errors.badRequest(`the body of the request could not be decoded as JSON: ${(err as Error).message}`);
  }
  const cur = ctx.store.peek(t.res, t.namespace, name);
  if (!cur) throw errors.notFound(t.res.group, t.res.plural, name);
  const base = present(cur, t.res, t.version);
  const patched = (type === 'application/json-patch+json' ? applyJsonPatch(base, parseJsonPatch(patch)) : applyMergePatch(base, patch)) as KubeObject;
  if (!patched || typeof patched !== 'object' || Array.isArray(patched)) throw errors.badRequest('the patch must leave an object');
  checkNameAndNamespace(t, name, patched);
  // A resourceVersion in the patch is a precondition (store.update answers 409 when stale).
  return ctx.store.update(t.res, admit(t, patched, cur), { dryRun });
}

function deleteCollection(ctx: ServerContext, t: Target, q: URLSearchParams, dryRun: boolean): object {
  const selector = selectorOf(q);
  const gone: KubeObject[] = [];
  for (const o of ctx.store.list(t.res, t.namespace)) {
    if (!selector(o)) continue;
    gone.push(present(ctx.store.delete(t.res, o.metadata.namespace, o.metadata.name, { dryRun }).obj, t.res, t.version));
  }
  return { kind: t.res.listKind, apiVersion: apiVersionString(t.res.group, t.version), metadata: { resourceVersion: String(ctx.store.currentRV()) }, items: gone };
}
