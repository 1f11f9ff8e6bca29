import { EventEmitter } from 'node:events';
import { pino, type Logger } from 'pino';
import { NnfEnvError, errorMessage } from '../core/errors.js';
import { Backoff, jitter, sleep } from '../core/backoff.js';
import type { KubeClient } from './client.js';
import { KubeApiError, type KubeRequestContext, type KubeStatus } from './errors.js';
import { DEFAULT_MAX_LINE_BYTES, LineSplitter } from './line-splitter.js';
import { apiVersionOf, collectionPath, objectKey, resourceName, type KubeObject, type ResourceType } from './resource.js';
import { ObjectStore, type ReadonlyObjectStore } from './store.js';
import { silenceMonitor } from './silence-monitor.js';

export type ReflectorState = 'connecting' | 'listing' | 'watching' | 'backoff' | 'stopped';

export type ReflectorEvents<T extends KubeObject> = {
  added: [obj: T];
  updated: [obj: T, old: T];
  /** The object's last state (from the DELETED event, or from the store for a relist). */
  deleted: [obj: T];
  /** The first complete list is in the store. Emitted once. */
  synced: [];
  state: [state: ReflectorState];
};

export interface ReflectorCounters {
  /** ADDED, MODIFIED and DELETED watch events applied. */
  events: number;
  bookmarks: number;
  /** Lists after the first one (410s, expired continue tokens). */
  relists: number;
  /** Watches started after the first one, for any reason. */
  reconnects: number;
  /** Watch body bytes received. */
  bytes: number;
  /** Failed lists and watches (not counting clean ends and 410s). */
  errors: number;
  malformedLines: number;
  oversizedLines: number;
  /** Watches dropped because they sent nothing for silenceTimeoutMs. */
  silences: number;
}

export interface ReflectorOptions<T extends KubeObject = KubeObject> {
  client: Pick<KubeClient, 'list' | 'watch'>;
  resource: ResourceType;
  namespace?: string;
  fieldSelector?: string;
  labelSelector?: string;
  /** Objects per list page. Default 500. */
  pageSize?: number;
  /** Asked of the server per watch, jittered +-20%. Default 5 min. */
  watchTimeoutMs?: number;
  /** A watch that sends no byte this long is dropped and resumed. Default 150 s. */
  silenceTimeoutMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** A run without failures this long resets the backoff. Default 4 x backoffMaxMs. */
  backoffResetAfterMs?: number;
  /** A watch ending sooner than this without a new resourceVersion is followed by a backoff pause. Default 1 s. */
  minWatchMs?: number;
  /** Cap on a server's Retry-After. Default 10 min. */
  maxRetryAfterMs?: number;
  maxLineBytes?: number;
  /** Where the objects are kept (an informer passes its own). Written only by this reflector. */
  store?: ObjectStore<T>;
  signal?: AbortSignal;
  logger?: Logger;
  random?: () => number;
}

/** Reflector timings and limits from the configuration (durations in ms, as `Config` holds them). */
/** The configuration keys every reflector takes its timing and bounds from. */
export interface ReflectorSettings {
  readonly LIST_PAGE_SIZE: number;
  readonly WATCH_TIMEOUT: number;
  readonly WATCH_SILENCE_TIMEOUT: number;
  readonly BACKOFF_INITIAL: number;
  readonly BACKOFF_MAX: number;
  readonly MAX_LINE_BYTES: number;
}

export function reflectorOptionsFromConfig(
  cfg: ReflectorSettings,
): Pick<ReflectorOptions, 'pageSize' | 'watchTimeoutMs' | 'silenceTimeoutMs' | 'backoffInitialMs' | 'backoffMaxMs' | 'maxLineBytes'> {
  return {
    pageSize: cfg.LIST_PAGE_SIZE,
    watchTimeoutMs: cfg.WATCH_TIMEOUT,
    silenceTimeoutMs: cfg.WATCH_SILENCE_TIMEOUT,
    backoffInitialMs: cfg.BACKOFF_INITIAL,
    backoffMaxMs: Math.max(cfg.BACKOFF_MAX, cfg.BACKOFF_INITIAL),
    maxLineBytes: cfg.MAX_LINE_BYTES,
  };
}

type Resolved = Required<Omit<ReflectorOptions, 'namespace' | 'fieldSelector' | 'labelSelector' | 'signal' | 'store'>> &
  Pick<ReflectorOptions, 'namespace' | 'fieldSelector' | 'labelSelector' | 'signal'>;

function invalid(message: string): NnfEnvError {
  return new NnfEnvError('KUBE_REFLECTOR_OPTION_INVALID', message, { hint: 'a programming error in the caller' });
}

/** Checks every option at construction, so a bad value fails at start and not hours later. */
export function validateReflectorOptions(opts: ReflectorOptions): Resolved {
  if (typeof opts !== 'object' || opts === null) throw invalid('reflector options must be an object');
  const c = opts.client as unknown as { list?: unknown; watch?: unknown } | undefined;
  if (!c || typeof c.list !== 'function' || typeof c.watch !== 'function') throw invalid('options.client must have list() and watch()');
  const rt = opts.resource;
  if (!rt || typeof rt.plural !== 'string' || !rt.plural || typeof rt.version !== 'string' || !rt.version || typeof rt.group !== 'string') {
    throw invalid('options.resource must be a ResourceType (group, version, plural)');
  }
  for (const k of ['namespace', 'fieldSelector', 'labelSelector'] as const) {
    const v = opts[k];
    if (v !== undefined && (typeof v !== 'string' || v === '')) throw invalid(`options.${k} must be a non-empty string when given`);
  }
  if (opts.namespace !== undefined && !rt.namespaced) throw invalid(`options.namespace given for cluster-scoped ${rt.plural}`);
  const int = (k: keyof ReflectorOptions, def: number, min: number): number => {
    const v = opts[k] ?? def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw invalid(`options.${k} must be a finite number >= ${min} (got ${String(v)})`);
    return v;
  };
  const backoffInitialMs = int('backoffInitialMs', 500, 1);
  const backoffMaxMs = int('backoffMaxMs', Math.max(30_000, backoffInitialMs), backoffInitialMs);
  const pageSize = int('pageSize', 500, 1);
  if (!Number.isInteger(pageSize)) throw invalid(`options.pageSize must be an integer (got ${pageSize})`);
  const maxLineBytes = int('maxLineBytes', DEFAULT_MAX_LINE_BYTES, 1);
  if (!Number.isInteger(maxLineBytes)) throw invalid(`options.maxLineBytes must be an integer (got ${maxLineBytes})`);
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw invalid('options.signal must be an AbortSignal');
  if (opts.random !== undefined && typeof opts.random !== 'function') throw invalid('options.random must be a function');
  const resolved: Resolved = {
    client: opts.client,
    resource: rt,
    pageSize,
    watchTimeoutMs: int('watchTimeoutMs', 300_000, 1000),
    silenceTimeoutMs: int('silenceTimeoutMs', 150_000, 1),
    backoffInitialMs,
    backoffMaxMs,
    backoffResetAfterMs: int('backoffResetAfterMs', 4 * backoffMaxMs, 0),
    minWatchMs: int('minWatchMs', 1000, 0),
    maxRetryAfterMs: int('maxRetryAfterMs', 600_000, 0),
    maxLineBytes,
    logger: opts.logger ?? pino({ level: 'silent' }),
    random: opts.random ?? Math.random,
  };
  if (opts.namespace !== undefined) resolved.namespace = opts.namespace;
  if (opts.fieldSelector !== undefined) resolved.fieldSelector = opts.fieldSelector;
  if (opts.labelSelector !== undefined) resolved.labelSelector = opts.labelSelector;
  if (opts.signal !== undefined) resolved.signal = opts.signal;
  return resolved;
}

interface WatchOutcome {
  reason: 'ended' | 'silence';
  lines: number;
  durationMs: number;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hasName(v: unknown): v is KubeObject {
  return isObj(v) && isObj(v.metadata) && typeof v.metadata.name === 'string' && v.metadata.name !== '';
}

/**
 * Keeps `store` equal to the server's objects of one type: paginated list, then watch from
 * the list's resourceVersion, resuming from the last resourceVersion seen (bookmarks included),
 * relisting on 410 and emitting the difference. Never gives up, never hot-loops: failures back
 * off exponentially with jitter (Retry-After honoured), silence drops and resumes the watch.
 */
export class Reflector<T extends KubeObject> extends EventEmitter<ReflectorEvents<T>> {
  readonly counters: ReflectorCounters = { events: 0, bookmarks: 0, relists: 0, reconnects: 0, bytes: 0, errors: 0, malformedLines: 0, oversizedLines: 0, silences: 0 };
  private readonly objects: ObjectStore<T>;
  private readonly opts: Resolved;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly abort = new AbortController();
  private readonly ctx: KubeRequestContext;
  private loop: Promise<void> | undefined;
  private rv = '';
  private synced = false;
  private listedOnce = false;
  private watchesStarted = 0;
  private expiredStreak = 0;
  private currentState: ReflectorState = 'stopped';
  private lastErr: { code: string; message: string; at: string } | undefined;

  constructor(options: ReflectorOptions<T>) {
    super();
    const { store, ...rest } = options;
    this.objects = store ?? new ObjectStore<T>();
    this.opts = validateReflectorOptions(rest);
    const rt = this.opts.resource;
    this.log = this.opts.logger.child({ resource: resourceName(rt), ...(this.opts.namespace ? { namespace: this.opts.namespace } : {}) });
    this.backoff = new Backoff({
      initialMs: this.opts.backoffInitialMs,
      maxMs: this.opts.backoffMaxMs,
      resetAfterMs: this.opts.backoffResetAfterMs,
      random: this.opts.random,
    });
    this.ctx = {
      verb: 'watch',
      path: collectionPath(rt, this.opts.namespace),
      resource: resourceName(rt),
      ...(this.opts.namespace !== undefined ? { namespace: this.opts.namespace } : {}),
    };
    const outer = this.opts.signal;
    if (outer) {
      if (outer.aborted) this.abort.abort(outer.reason);
      else outer.addEventListener('abort', () => void this.stop(), { once: true });
    }
  }

  get store(): ReadonlyObjectStore<T> {
    return this.objects;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** The last resourceVersion seen: from the last list, event or bookmark. */
  get lastSyncResourceVersion(): string {
    return this.rv;
  }

  get state(): ReflectorState {
    return this.currentState;
  }

  /** The last failure, for status displays. */
  get lastError(): { code: string; message: string; at: string } | undefined {
    return this.lastErr;
  }

  /** Starts the list/watch loop (once). */
  start(): this {
    if (this.loop) return this;
    this.loop = this.run().finally(() => this.setState('stopped'));
    return this;
  }

  /** Stops and resolves when no request is left open. */
  async stop(): Promise<void> {
    if (!this.abort.signal.aborted) this.abort.abort(new NnfEnvError('KUBE_REFLECTOR_STOPPED', 'reflector stopped'));
    await this.loop;
  }

  /** Resolves on the first complete list; rejects when the signal aborts or the reflector stops first. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        this.off('synced', onSynced);
        signal?.removeEventListener('abort', onAbort);
        this.abort.signal.removeEventListener('abort', onStop);
      };
      const onSynced = () => {
        cleanup();
        resolve();
      };
      const onAbort = () => {
        cleanup();
        reject(signal?.reason);
      };
      const onStop = () => {
        cleanup();
        reject(new NnfEnvError('KUBE_REFLECTOR_STOPPED', `the ${resourceName(this.opts.resource)} reflector stopped before its first list`));
      };
      if (signal?.aborted) return onAbort();
      if (this.abort.signal.aborted) return onStop();
      this.once('synced', onSynced);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.abort.signal.addEventListener('abort', onStop, { once: true });
    });
  }

  private setState(state: ReflectorState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.fire('state', state);
  }

  /** Emits without letting a throwing listener break the loop. */
  private fire<K extends keyof ReflectorEvents<T>>(event: K, ...args: ReflectorEvents<T>[K]): void {
    try {
      (this.emit as (e: K, ...a: ReflectorEvents<T>[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ event, err: errorMessage(err) }, 'a reflector listener threw; continuing');
    }
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) {
          this.setState('listing');
          await this.listAll();
          needList = false;
        }
        const rvBefore = this.rv;
        const out = await this.watchOnce(rvBefore);
        if (out.reason === 'silence') {
          this.counters.silences++;
          this.log.warn({ silenceTimeoutMs: this.opts.silenceTimeoutMs, resourceVersion: this.rv }, 'watch silent too long: dropped, resuming');
        } else if (this.rv === rvBefore && out.durationMs < this.opts.minWatchMs) {
          // 200 and no progress: a server or proxy closing at once must not make us spin.
          const delay = this.backoff.next();
          this.log.debug({ durationMs: Math.round(out.durationMs), lines: out.lines, delay }, 'watch ended at once without progress; pausing');
          await this.pause(delay);
        }
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof KubeApiError && err.status === 410) {
          needList = true;
          this.expiredStreak++;
          this.log.info({ resourceVersion: this.rv, reason: err.reason }, this.currentState === 'listing' ? 'continue token expired: restarting the list' : 'resourceVersion expired (410): relisting');
          // One immediate relist; repeated 410s without progress back off.
          if (this.expiredStreak > 1) await this.pause(this.backoff.next());
          continue;
        }
        this.counters.errors++;
        this.lastErr = { code: (err as { code?: string }).code ?? 'ERROR', message: errorMessage(err), at: new Date().toISOString() };
        let delay = this.backoff.next();
        if (err instanceof KubeApiError && err.retryAfterMs !== undefined) delay = Math.max(delay, Math.min(err.retryAfterMs, this.opts.maxRetryAfterMs));
        this.log.warn({ err: errorMessage(err), code: this.lastErr.code, delay, listing: needList }, needList ? 'list failed; retrying' : 'watch failed; resuming');
        await this.pause(delay);
      }
    }
  }

  private async pause(ms: number): Promise<void> {
    this.setState('backoff');
    try {
      await sleep(ms, this.abort.signal);
    } catch {
      // stopped
    }
  }

  private fillTypeMeta(obj: T): void {
    obj.apiVersion ??= apiVersionOf(this.opts.resource);
    obj.kind ??= this.opts.resource.kind;
  }

  private async listAll(): Promise<void> {
    const o = this.opts;
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await o.client.list<T>(o.resource, {
        ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
        ...(o.fieldSelector !== undefined ? { fieldSelector: o.fieldSelector } : {}),
        ...(o.labelSelector !== undefined ? { labelSelector: o.labelSelector } : {}),
        limit: o.pageSize,
        ...(cont !== undefined ? { continue: cont } : {}),
        signal: this.abort.signal,
      });
      for (const item of page.items ?? []) {
        if (!hasName(item)) {
          this.log.warn({ item: JSON.stringify(item).slice(0, 200) }, 'list item without metadata.name skipped');
          continue;
        }
        this.fillTypeMeta(item);
        items.push(item);
      }
      rv = page.metadata?.resourceVersion ?? '';
      cont = page.metadata?.continue || undefined;
    } while (cont !== undefined);
    if (this.abort.signal.aborted) return;

    const diff = this.objects.replace(items);
    this.rv = rv;
    if (this.listedOnce) this.counters.relists++;
    this.listedOnce = true;
    this.log.debug({ resourceVersion: rv, items: items.length, added: diff.added.length, updated: diff.updated.length, deleted: diff.deleted.length }, 'listed');
    for (const obj of diff.deleted) this.fire('deleted', obj);
    for (const [obj, old] of diff.updated) this.fire('updated', obj, old);
    for (const obj of diff.added) this.fire('added', obj);
    if (!this.synced) {
      this.synced = true;
      this.fire('synced');
    }
  }

  private async watchOnce(rvBefore: string): Promise<WatchOutcome> {
    const o = this.opts;
    let connectedAt: number | undefined;
    const stop = this.abort.signal;
    const ac = new AbortController();
    const onStop = () => ac.abort(stop.reason);
    stop.addEventListener('abort', onStop, { once: true });
    // stop() may have been called by a listener of the list that just ended.
    if (stop.aborted) ac.abort(stop.reason);
    if (this.watchesStarted++ > 0) this.counters.reconnects++;

    let silenced = false;
    // One timer for all watches (./silence-monitor.ts): nothing fires while bytes flow.
    const silence = silenceMonitor.add(o.silenceTimeoutMs, (idle) => {
      silenced = true;
      ac.abort(new NnfEnvError('KUBE_WATCH_SILENT', `no bytes for ${Math.round(idle)} ms`));
    });

    const started = performance.now();
    let lines = 0;
    const timeoutSeconds = Math.max(1, Math.round(jitter(o.watchTimeoutMs, 0.2, o.random) / 1000));
    this.setState('connecting');
    try {
      const stream = await o.client.watch(o.resource, {
        ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
        ...(o.fieldSelector !== undefined ? { fieldSelector: o.fieldSelector } : {}),
        ...(o.labelSelector !== undefined ? { labelSelector: o.labelSelector } : {}),
        resourceVersion: this.rv,
        timeoutSeconds,
        allowWatchBookmarks: true,
        signal: ac.signal,
      });
      this.setState('watching');
      connectedAt = performance.now();
      silence.watch.lastByte = connectedAt;
      const splitter = new LineSplitter({
        maxLineBytes: o.maxLineBytes,
        // Decoded straight from the received chunk: no Buffer per line, and JSON.parse gets a string.
        onText: (line) => {
          lines++;
          this.handleLine(line);
        },
        onTooLong: (bytes) => {
          lines++;
          this.counters.oversizedLines++;
          this.log.error({ bytes, maxLineBytes: o.maxLineBytes, resourceVersion: this.rv }, 'watch event line too long: dropped (raise MAX_LINE_BYTES if objects are really this big)');
        },
      });
      for await (const chunk of stream) {
        silence.watch.lastByte = performance.now();
        this.counters.bytes += chunk.byteLength;
        splitter.push(chunk);
      }
      splitter.end();
      return { reason: 'ended', lines, durationMs: performance.now() - started };
    } catch (err) {
      if (silenced && !stop.aborted) return { reason: 'silence', lines, durationMs: performance.now() - started };
      throw err;
    } finally {
      // Served for at least minWatchMs, or the resourceVersion moved: the server was healthy, so
      // the next failure is a new outage and its backoff starts again from BACKOFF_INITIAL (else
      // the attempt count only reset after 4 x BACKOFF_MAX without a failure, and a second outage
      // within minutes of the first waited up to BACKOFF_MAX after the server was back).
      if (this.rv !== rvBefore || (connectedAt !== undefined && performance.now() - connectedAt >= o.minWatchMs)) this.backoff.reset();
      silence.remove();
      stop.removeEventListener('abort', onStop);
      // Leaves no socket behind when a handler threw (ERROR event) mid-stream.
      ac.abort();
    }
  }

  private malformed(line: string, why: string): void {
    this.counters.malformedLines++;
    this.log.warn({ line: line.slice(0, 200), bytes: Buffer.byteLength(line, 'utf8'), why, resourceVersion: this.rv }, 'malformed watch line skipped');
  }

  /** Applies one watch event line. Throws KubeApiError for an ERROR event (410 -> relist). */
  private handleLine(line: string): void {
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch (err) {
      return this.malformed(line, `not JSON: ${errorMessage(err)}`);
    }
    if (!isObj(ev) || typeof ev.type !== 'string' || !isObj(ev.object)) return this.malformed(line, 'not a watch event ({type, object})');
    const object = ev.object;
    switch (ev.type) {
      case 'ADDED':
      case 'MODIFIED': {
        if (!hasName(object)) return this.malformed(line, `${ev.type} object without metadata.name`);
        const obj = object as T;
        this.fillTypeMeta(obj);
        this.counters.events++;
        this.expiredStreak = 0;
        if (obj.metadata.resourceVersion) this.rv = obj.metadata.resourceVersion;
        const old = this.objects.upsert(obj);
        if (old === undefined) this.fire('added', obj);
        else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion || old.metadata.resourceVersion === undefined) this.fire('updated', obj, old);
        return;
      }
      case 'DELETED': {
        if (!hasName(object)) return this.malformed(line, 'DELETED object without metadata.name');
        const obj = object as T;
        this.fillTypeMeta(obj);
        this.counters.events++;
        this.expiredStreak = 0;
        if (obj.metadata.resourceVersion) this.rv = obj.metadata.resourceVersion;
        const old = this.objects.remove(objectKey(obj));
        if (old !== undefined) this.fire('deleted', obj);
        return;
      }
      case 'BOOKMARK': {
        const rv = isObj(object.metadata) ? object.metadata.resourceVersion : undefined;
        if (typeof rv === 'string' && rv !== '') this.rv = rv;
        this.counters.bookmarks++;
        this.expiredStreak = 0;
        return;
      }
      case 'ERROR':
        throw KubeApiError.fromStatus(this.ctx, object as KubeStatus);
      default:
        this.log.warn({ type: ev.type, resourceVersion: this.rv }, 'unknown watch event type skipped');
    }
  }
}
