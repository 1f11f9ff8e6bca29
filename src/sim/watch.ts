/**
 * Watch streams (REFERENCE.md section 6): chunked HTTP, one compact JSON event per line;
 * synthetic ADDED for an unset or "0" resourceVersion, replay from history for N, one ERROR
 * 410 Expired event when N is compacted away; bookmarks when asked; the end at timeoutSeconds;
 * objects leaving a selector arrive as DELETED, entering ones as ADDED.
 *
 * The hub also carries the watch faults: drop (destroy sockets) and stall (send nothing, keep
 * the socket open: the half-open TCP case).
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { KubeObject } from '../kube/resource.js';
import { apiVersionString, type ServedResource } from './resources.js';
import type { Selector } from './selectors.js';
import { statusBody } from './status.js';
import type { ObjectStore, StoreEvent } from './store.js';
import { toTable, type TableRequest } from './table.js';

export interface WatchSpec {
  res: ServedResource;
  version: string;
  namespace: string | undefined;
  selector: Selector;
  /** undefined: start with ADDED events for the current objects. */
  fromRV: number | undefined;
  bookmarks: boolean;
  timeoutMs: number;
  table: TableRequest | undefined;
  /** sendInitialEvents=true: after the initial ADDED events, a bookmark annotated `k8s.io/initial-events-end`. */
  initialEventsEnd?: boolean;
}

/** The object as served at `version` (objects are stored once, at the storage version). */
export function present(obj: KubeObject, res: ServedResource, version: string): KubeObject {
  const { apiVersion: _a, kind: _k, ...rest } = obj;
  return { apiVersion: apiVersionString(res.group, version), kind: res.kind, ...rest };
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

class Watcher {
  stalled = false;
  private buffer: string[] = [];
  private endPending = false;
  private ended = false;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(readonly spec: WatchSpec, readonly res: ServerResponse, private readonly hub: WatchHub) {}

  matches(o: KubeObject): boolean {
    if (this.spec.namespace !== undefined && this.spec.res.namespaced && o.metadata.namespace !== this.spec.namespace) return false;
    return this.spec.selector(o);
  }

  /** The event this watcher sees for a store change, if any. */
  transition(e: StoreEvent): { type: EventType; obj: KubeObject } | undefined {
    if (e.res !== this.spec.res) return undefined;
    if (this.spec.fromRV !== undefined && e.rv <= this.spec.fromRV) return undefined;
    switch (e.type) {
      case 'ADDED':
        return this.matches(e.obj) ? { type: 'ADDED', obj: e.obj } : undefined;
      case 'DELETED':
        return this.matches(e.obj) ? { type: 'DELETED', obj: e.obj } : undefined;
      case 'MODIFIED': {
        const now = this.matches(e.obj);
        const before = this.matches(e.prev!);
        if (now && before) return { type: 'MODIFIED', obj: e.obj };
        if (now) return { type: 'ADDED', obj: e.obj };
        // Left the selector: the old object, at the event's resourceVersion, as the cacher sends it.
        if (before) return { type: 'DELETED', obj: { ...e.prev!, metadata: { ...e.prev!.metadata, resourceVersion: String(e.rv) } } };
        return undefined;
      }
    }
  }

  line(type: string, obj: KubeObject): string {
    const shown = present(obj, this.spec.res, this.spec.version);
    const object = this.spec.table ? toTable(this.spec.res, [shown], { resourceVersion: shown.metadata.resourceVersion ?? '' }, this.spec.table) : shown;
    return JSON.stringify({ type, object }) + '\n';
  }

  bookmarkLine(rv: number, annotations?: Record<string, string>): string {
    const metadata = annotations ? { resourceVersion: String(rv), annotations } : { resourceVersion: String(rv) };
    const object = { kind: this.spec.res.kind, apiVersion: apiVersionString(this.spec.res.group, this.spec.version), metadata };
    return JSON.stringify({ type: 'BOOKMARK', object }) + '\n';
  }

  send(line: string): void {
    if (this.ended) return;
    if (this.stalled) {
      this.buffer.push(line);
      return;
    }
    this.res.write(line);
  }

  every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }

  after(ms: number, fn: () => void): void {
    const t = setTimeout(fn, ms);
    this.timers.push(t);
  }

  resume(): void {
    if (!this.stalled) return;
    this.stalled = false;
    const lines = this.buffer;
    this.buffer = [];
    for (const l of lines) this.send(l);
    if (this.endPending) this.end();
  }

  /** End cleanly (timeout, shutdown); a stalled watch stays silent until resumed. */
  end(): void {
    if (this.ended) return;
    if (this.stalled) {
      this.endPending = true;
      return;
    }
    this.ended = true;
    this.cleanup();
    this.res.end();
  }

  destroy(): void {
    this.ended = true;
    this.cleanup();
    this.res.socket?.destroy();
    this.res.destroy();
  }

  cleanup(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
    this.hub.remove(this);
  }
}

export interface WatchHubOptions {
  bookmarkIntervalMs: number;
  logger: Logger;
}

/** The watches of one resource: those that can match one name only, by that name, and the rest. */
interface ResourceWatches {
  byName: Map<string, Set<Watcher>>;
  other: Set<Watcher>;
}

export class WatchHub {
  private readonly watchers = new Set<Watcher>();
  /**
   * The same watches, by resource and by the one name their selector allows: a write is offered
   * to the watches that can see it, not to every watch open (nnf-envd opens one
   * `metadata.name=` watch per job, so with N jobs every write tested N selectors).
   */
  private readonly byResource = new Map<ServedResource, ResourceWatches>();
  private readonly unsubscribe: () => void;
  private stallTimer: NodeJS.Timeout | undefined;

  constructor(private readonly store: ObjectStore, private readonly opts: WatchHubOptions) {
    this.unsubscribe = store.on((e) => this.dispatch(e));
  }

  get count(): number {
    return this.watchers.size;
  }

  remove(w: Watcher): void {
    if (!this.watchers.delete(w)) return;
    const r = this.byResource.get(w.spec.res);
    const name = w.spec.selector.onlyName;
    if (!r) return;
    if (name === undefined) r.other.delete(w);
    else {
      const set = r.byName.get(name);
      set?.delete(w);
      if (set?.size === 0) r.byName.delete(name);
    }
  }

  private add(w: Watcher): void {
    this.watchers.add(w);
    let r = this.byResource.get(w.spec.res);
    if (!r) this.byResource.set(w.spec.res, (r = { byName: new Map(), other: new Set() }));
    const name = w.spec.selector.onlyName;
    if (name === undefined) r.other.add(w);
    else {
      let set = r.byName.get(name);
      if (!set) r.byName.set(name, (set = new Set()));
      set.add(w);
    }
  }

  private dispatch(e: StoreEvent): void {
    const r = this.byResource.get(e.res);
    if (!r) return;
    // Watches that see the same event at the same version get the same line: encode it once.
    const lines = new Map<string, string>();
    const offer = (w: Watcher): void => {
      const t = w.transition(e);
      if (!t) return;
      if (w.spec.table) return w.send(w.line(t.type, t.obj));
      const k = `${t.type} ${w.spec.version}`;
      let l = lines.get(k);
      if (l === undefined || t.obj !== e.obj) l = w.line(t.type, t.obj);
      if (t.obj === e.obj) lines.set(k, l);
      w.send(l);
    };
    const named = r.byName.get(e.obj.metadata.name);
    if (named) for (const w of [...named]) offer(w);
    for (const w of [...r.other]) offer(w);
  }

  /** Serve one watch on `res` (the request has been validated). */
  start(spec: WatchSpec, res: ServerResponse): void {
    res.on('error', (err) => this.opts.logger.debug({ err }, 'watch connection error'));
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    res.socket?.setNoDelay(true);
    // As kube-apiserver does: the client learns at once that the watch started, events or not.
    res.flushHeaders();
    const w = new Watcher(spec, res, this);
    if (spec.fromRV === undefined) {
      for (const o of this.store.list(spec.res, spec.namespace)) if (w.matches(o)) w.send(w.line('ADDED', o));
      if (spec.initialEventsEnd && spec.bookmarks) w.send(w.bookmarkLine(this.store.currentRV(), { 'k8s.io/initial-events-end': 'true' }));
    } else {
      const events = this.store.eventsAfter(spec.fromRV);
      if (!events) {
        const status = statusBody(410, 'Expired', `too old resource version: ${spec.fromRV} (${this.store.oldestRV()})`);
        res.end(JSON.stringify({ type: 'ERROR', object: status }) + '\n');
        return;
      }
      for (const e of events) {
        const t = w.transition(e);
        if (t) w.send(w.line(t.type, t.obj));
      }
    }
    this.add(w);
    res.on('close', () => w.cleanup());
    if (spec.bookmarks) w.every(this.opts.bookmarkIntervalMs, () => w.send(w.bookmarkLine(this.store.currentRV())));
    w.after(spec.timeoutMs, () => {
      if (spec.bookmarks) w.send(w.bookmarkLine(this.store.currentRV()));
      w.end();
    });
    this.opts.logger.debug({ resource: spec.res.plural, namespace: spec.namespace, fromRV: spec.fromRV, watchers: this.watchers.size }, 'watch started');
  }

  /** Fault: destroy every watch connection now. */
  dropAll(): number {
    const all = [...this.watchers];
    for (const w of all) w.destroy();
    return all.length;
  }

  /** Fault: the current watches send nothing (sockets stay open) until resumed or `ms` passes. */
  stallAll(ms?: number): void {
    for (const w of this.watchers) w.stalled = true;
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    if (ms !== undefined && ms > 0) {
      this.stallTimer = setTimeout(() => this.resumeAll(), ms);
      this.stallTimer.unref();
    }
  }

  resumeAll(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    for (const w of [...this.watchers]) w.resume();
  }

  /** Shutdown: end every watch cleanly. */
  close(): void {
    this.unsubscribe();
    if (this.stallTimer) clearTimeout(this.stallTimer);
    for (const w of [...this.watchers]) w.destroy();
  }
}
