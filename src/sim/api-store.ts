/**
 * The simulated controllers' store over the Kubernetes API: one reflector per resource they
 * read (an informer cache), writes through the API (PUT conditional on resourceVersion, retried
 * on 409 Conflict from a fresh GET). Works against the simulator or a real kube-apiserver.
 *
 * A write's answer goes into the cache at once, so the controller's next step reads its own
 * write even before the watch event arrives (read-your-writes, as client-go's informers do not
 * give but controller-runtime's cache mutation makes up for). The cache keeps, per object, the
 * state with the newest resourceVersion: on one etcd they increase, which is all a test
 * stand-in needs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { pino } from 'pino';
import type { KubeClient } from '../kube/client.js';
import { KubeApiError, KubeConnectionError } from '../kube/errors.js';
import { Reflector } from '../kube/reflector.js';
import { objectKey, type KubeObject, type ResourceType } from '../kube/resource.js';
import type { ControllerEvent, ControllerStore } from './controller-store.js';
import { deepEqual } from './patch.js';
import type { ServedResource } from './resources.js';

export interface ApiStoreOptions {
  client: KubeClient;
  /** Resources to cache; events are delivered for all of them. */
  resources: readonly ServedResource[];
  /** Retries of one write after conflicts, or after 429/5xx/connection failures, before it gives up. Default 10. */
  maxConflictRetries?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  logger?: Logger;
}

function typeOf(res: ServedResource): ResourceType {
  return { group: res.group, version: res.versions[0]!, plural: res.plural, kind: res.kind, namespaced: res.namespaced };
}

function keyOf(res: ServedResource, ns: string | undefined, name: string): string {
  return res.namespaced && ns ? `${ns}/${name}` : name;
}

/** a is newer than b (resourceVersions of one etcd are increasing integers; else trust arrival order). */
function newer(a: KubeObject, b: KubeObject): boolean {
  const ra = a.metadata.resourceVersion ?? '';
  const rb = b.metadata.resourceVersion ?? '';
  if (/^\d+$/.test(ra) && /^\d+$/.test(rb)) return BigInt(ra) > BigInt(rb);
  return true;
}

interface Cache {
  res: ServedResource;
  rt: ResourceType;
  reflector: Reflector<KubeObject>;
  objects: Map<string, KubeObject>;
  /** resourceVersion of deletions seen, so a late write answer does not bring an object back. */
  gone: Map<string, string>;
}

export class ApiControllerStore implements ControllerStore {
  private readonly caches = new Map<ServedResource, Cache>();
  private readonly listeners = new Set<(e: ControllerEvent) => void>();
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly maxRetries: number;
  /** Requests of writes made, the conflicts and 429s they met (for tests and benchmarks). */
  readonly counters = { writes: 0, conflicts: 0, throttled: 0 };
  private stopped = false;

  constructor(opts: ApiStoreOptions) {
    this.client = opts.client;
    this.log = opts.logger ?? pino({ level: 'silent' });
    this.maxRetries = opts.maxConflictRetries ?? 10;
    for (const res of opts.resources) {
      const rt = typeOf(res);
      const reflector = new Reflector<KubeObject>({
        client: opts.client,
        resource: rt,
        backoffInitialMs: opts.backoffInitialMs ?? 100,
        backoffMaxMs: opts.backoffMaxMs ?? 2000,
        logger: this.log,
      });
      const cache: Cache = { res, rt, reflector, objects: new Map(), gone: new Map() };
      reflector.on('added', (o) => this.observe(cache, 'ADDED', o));
      reflector.on('updated', (o) => this.observe(cache, 'MODIFIED', o));
      reflector.on('deleted', (o) => this.observe(cache, 'DELETED', o));
      this.caches.set(res, cache);
    }
  }

  /** Starts every reflector and resolves once each has listed. */
  async start(signal?: AbortSignal): Promise<void> {
    for (const c of this.caches.values()) c.reflector.start();
    await Promise.all([...this.caches.values()].map((c) => c.reflector.waitForSync(signal)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.caches.values()].map((c) => c.reflector.stop()));
  }

  /** Relists and reconnects of the reflectors (for fault tests). */
  reflectorCounters(): Array<{ resource: string; relists: number; reconnects: number; events: number; errors: number }> {
    return [...this.caches.values()].map((c) => ({ resource: c.res.plural, ...c.reflector.counters }));
  }

  on(listener: (e: ControllerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  peek(res: ServedResource, ns: string | undefined, name: string): KubeObject | undefined {
    return this.cache(res).objects.get(keyOf(res, ns, name));
  }

  list(res: ServedResource): KubeObject[] {
    return [...this.cache(res).objects.values()];
  }

  async create(res: ServedResource, obj: KubeObject): Promise<void> {
    const c = this.cache(res);
    try {
      const made = await this.retrying(() => this.client.create(c.rt, res.namespaced ? obj.metadata.namespace : undefined, { apiVersion: `${res.group ? res.group + '/' : ''}${c.rt.version}`, kind: res.kind, ...obj }));
      this.remember(c, made);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) return; // exists already
      throw err;
    }
  }

  async mutate(res: ServedResource, ns: string | undefined, name: string, mutate: (o: KubeObject) => void): Promise<void> {
    const c = this.cache(res);
    const nsArg = res.namespaced ? ns : undefined;
    let cur = this.peek(res, ns, name);
    for (let attempt = 0; cur; attempt++) {
      const o = structuredClone(cur);
      mutate(o);
      if (deepEqual(o, cur)) return;
      try {
        this.remember(c, await this.retrying(() => this.client.replace(c.rt, nsArg, name, o)));
        return;
      } catch (err) {
        if (!(err instanceof KubeApiError)) throw err;
        if (err.status === 404) return;
        if (err.status !== 409 || attempt >= this.maxRetries) throw err;
        this.counters.conflicts++;
        cur = await this.retrying(() => this.client.tryGet<KubeObject>(c.rt, nsArg, name));
        if (cur) this.remember(c, cur);
      }
    }
  }

  async delete(res: ServedResource, ns: string | undefined, name: string): Promise<void> {
    const c = this.cache(res);
    try {
      await this.retrying(() => this.client.delete(c.rt, res.namespaced ? ns : undefined, name));
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return;
      throw err;
    }
  }

  /**
   * One request, again after an overloaded or restarting server (429, 5xx, connection
   * failures), waiting what Retry-After says or a growing pause; other answers are the caller's.
   */
  async retrying<T>(send: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      this.counters.writes++;
      try {
        return await send();
      } catch (err) {
        const transient = err instanceof KubeConnectionError || (err instanceof KubeApiError && (err.status === 429 || err.status >= 500));
        if (!transient || attempt >= this.maxRetries || this.stopped) throw err;
        if (err instanceof KubeApiError && err.status === 429) this.counters.throttled++;
        const pause = err instanceof KubeApiError && err.retryAfterMs !== undefined ? err.retryAfterMs : Math.min(100 * 2 ** attempt, 2000);
        await sleep(pause);
      }
    }
  }

  private cache(res: ServedResource): Cache {
    const c = this.caches.get(res);
    if (!c) throw new RangeError(`the API store does not cache ${res.plural}`);
    return c;
  }

  /** A write's answer: cached unless the watch already brought something newer. */
  private remember(c: Cache, obj: KubeObject): void {
    const key = objectKey(obj);
    const cur = c.objects.get(key);
    const goneAt = c.gone.get(key);
    if (goneAt !== undefined && !newer(obj, { metadata: { name: key, resourceVersion: goneAt } })) return;
    if (!cur || newer(obj, cur)) c.objects.set(key, obj);
  }

  private observe(c: Cache, type: ControllerEvent['type'], obj: KubeObject): void {
    const key = objectKey(obj);
    if (type === 'DELETED') {
      c.objects.delete(key);
      if (obj.metadata.resourceVersion) c.gone.set(key, obj.metadata.resourceVersion);
    } else {
      c.gone.delete(key);
      const cur = c.objects.get(key);
      // A relist may bring an object back whose uid changed; otherwise keep the newest.
      if (!cur || cur.metadata.uid !== obj.metadata.uid || newer(obj, cur) || cur.metadata.resourceVersion === obj.metadata.resourceVersion) c.objects.set(key, obj);
    }
    const e: ControllerEvent = { type, res: c.res, obj };
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.log.error({ err }, 'controller store listener failed');
      }
    }
  }
}
