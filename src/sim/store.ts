/**
 * The simulator's etcd: every object of every served resource, one global monotonically
 * increasing resourceVersion, and a bounded history of changes from which watches resume and
 * consistent list pages are rebuilt. A resourceVersion older than the history is "compacted"
 * (410 Expired), as in kube-apiserver.
 *
 * Committed objects are never mutated (a write stores a new object), so events may hand the
 * stored object to listeners without copying; callers of get/list get copies.
 */
import { randomUUID } from 'node:crypto';
import type { KubeObject } from '../kube/resource.js';
import { cloneJson } from './json-clone.js';
import { apiVersionString, resourceKey, type ServedResource } from './resources.js';
import { deepEqual } from './patch.js';
import { SimApiError, errors } from './status.js';

export type StoreEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  readonly rv: number;
  readonly type: StoreEventType;
  readonly res: ServedResource;
  /** The object after the change; for DELETED the last state, with the deletion's resourceVersion. */
  readonly obj: KubeObject;
  /** The object before the change (MODIFIED, DELETED). */
  readonly prev?: KubeObject;
}

export type StoreListener = (e: StoreEvent) => void;

export interface WriteOptions {
  dryRun?: boolean;
}

/** The initial resourceVersion: nothing older can be resumed from. */
const FIRST_RV = 1000;

const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function objKey(ns: string | undefined, name: string): string {
  return ns ? `${ns}/${name}` : name;
}

/** What generation counts: everything but metadata, and but status where it is a subresource. */
function generationFields(o: KubeObject, statusSubresource: boolean): Record<string, unknown> {
  const { metadata: _m, apiVersion: _a, kind: _k, ...rest } = o;
  if (statusSubresource) delete rest.status;
  return rest;
}

function microTimeNow(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class ObjectStore {
  private rv = FIRST_RV;
  /** Every change after `compactedRV`, oldest first, from index `historyStart`. */
  private history: StoreEvent[] = [];
  private historyStart = 0;
  private compactedRV = FIRST_RV;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly listeners = new Set<StoreListener>();
  private readonly queue: StoreEvent[] = [];
  private emitting = false;

  constructor(private readonly historySize: number, private readonly onListenerError: (err: unknown) => void = () => {}) {
    if (!(historySize >= 1)) throw new RangeError(`historySize must be >= 1 (got ${historySize})`);
  }

  currentRV(): number {
    return this.rv;
  }

  /** The oldest resourceVersion a watch or a list continuation can start from. */
  oldestRV(): number {
    return this.compactedRV;
  }

  on(l: StoreListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private bucket(res: ServedResource): Map<string, KubeObject> {
    const k = resourceKey(res.group, res.plural);
    let m = this.objects.get(k);
    if (!m) this.objects.set(k, (m = new Map()));
    return m;
  }

  /** The stored object (not a copy: do not mutate). */
  peek(res: ServedResource, ns: string | undefined, name: string): KubeObject | undefined {
    return this.bucket(res).get(objKey(res.namespaced ? ns : undefined, name));
  }

  get(res: ServedResource, ns: string | undefined, name: string): KubeObject | undefined {
    const o = this.peek(res, ns, name);
    return o && cloneJson(o);
  }

  /** Stored objects (not copies) in key order, like etcd returns them. */
  list(res: ServedResource, ns?: string): KubeObject[] {
    const out: Array<[string, KubeObject]> = [];
    for (const [k, o] of this.bucket(res)) if (ns === undefined || !res.namespaced || o.metadata.namespace === ns) out.push([k, o]);
    out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return out.map(([, o]) => o);
  }

  /** The objects of `res` as they were at `rv`, in key order; undefined when `rv` is compacted away. */
  snapshot(res: ServedResource, ns: string | undefined, rv: number): KubeObject[] | undefined {
    if (rv < this.compactedRV) return undefined;
    if (rv >= this.rv) return this.list(res, ns);
    const m = new Map(this.bucket(res));
    for (let i = this.history.length - 1; i >= this.historyStart; i--) {
      const e = this.history[i]!;
      if (e.rv <= rv) break;
      if (e.res !== res) continue;
      const k = objKey(e.obj.metadata.namespace, e.obj.metadata.name);
      if (e.type === 'ADDED') m.delete(k);
      else m.set(k, e.prev!);
    }
    return [...m.entries()]
      .filter(([, o]) => ns === undefined || !res.namespaced || o.metadata.namespace === ns)
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([, o]) => o);
  }

  /** Changes after `rv`, oldest first; undefined when some are compacted away (410). */
  eventsAfter(rv: number): StoreEvent[] | undefined {
    if (rv < this.compactedRV) return undefined;
    const out: StoreEvent[] = [];
    for (let i = this.history.length - 1; i >= this.historyStart; i--) {
      const e = this.history[i]!;
      if (e.rv <= rv) break;
      out.push(e);
    }
    return out.reverse();
  }

  /** Forget all history: any resourceVersion older than the current one is now expired. */
  compact(): void {
    this.history = [];
    this.historyStart = 0;
    this.compactedRV = this.rv;
  }

  private commit(type: StoreEventType, res: ServedResource, obj: KubeObject, prev?: KubeObject): KubeObject {
    const rv = ++this.rv;
    const stored: KubeObject = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(rv) } };
    const bucket = this.bucket(res);
    const k = objKey(stored.metadata.namespace, stored.metadata.name);
    if (type === 'DELETED') bucket.delete(k);
    else bucket.set(k, stored);
    const e: StoreEvent = prev ? { rv, type, res, obj: stored, prev } : { rv, type, res, obj: stored };
    this.history.push(e);
    if (this.history.length - this.historyStart > this.historySize) {
      this.compactedRV = this.history[this.historyStart]!.rv;
      this.historyStart++;
      // Drop the forgotten prefix now and then instead of shifting on every write.
      if (this.historyStart >= this.historySize) {
        this.history = this.history.slice(this.historyStart);
        this.historyStart = 0;
      }
    }
    this.emit(e);
    return stored;
  }

  private emit(e: StoreEvent): void {
    this.queue.push(e);
    if (this.emitting) return; // a listener wrote: deliver after the current event, in order
    this.emitting = true;
    try {
      for (let next = this.queue.shift(); next; next = this.queue.shift()) {
        for (const l of this.listeners) {
          try {
            l(next);
          } catch (err) {
            this.onListenerError(err);
          }
        }
      }
    } finally {
      this.emitting = false;
    }
  }

  /** Kind, apiVersion (storage version) and a copy of the caller's object, checked for name and kind. */
  private normalize(res: ServedResource, input: KubeObject): KubeObject {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) throw errors.badRequest('the object must be a JSON object');
    const obj = cloneJson(input);
    if (obj.kind !== undefined && obj.kind !== res.kind) {
      throw errors.badRequest(`the kind of the object (${String(obj.kind)}) does not match the resource (${res.kind})`);
    }
    if (obj.metadata === null || typeof obj.metadata !== 'object') obj.metadata = { name: '' };
    const { apiVersion: _a, kind: _k, metadata, ...rest } = obj;
    const out: KubeObject = { apiVersion: apiVersionString(res.group, res.versions[0]!), kind: res.kind, metadata, ...rest };
    if (!res.namespaced) delete out.metadata.namespace;
    if (res.group === '' && res.plural === 'secrets') secretStringData(out);
    return out;
  }

  private validateName(res: ServedResource, name: unknown): string {
    if (typeof name !== 'string' || name === '') throw errors.invalid(res.kind, res.group, '', 'metadata.name', 'Required value: name or generateName is required');
    if (name.length > 253 || !NAME_RE.test(name)) {
      throw errors.invalid(res.kind, res.group, name, 'metadata.name', `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`);
    }
    return name;
  }

  /**
   * Create. `keepUid` keeps a uid the caller set (the programmatic API, so fixtures keep the
   * uid their DW_JOB paths name); over HTTP a uid is always assigned, as kube-apiserver does.
   */
  create(res: ServedResource, input: KubeObject, opts: WriteOptions & { keepUid?: boolean } = {}): KubeObject {
    const obj = this.normalize(res, input);
    const md = obj.metadata;
    if ((md.name === undefined || md.name === '') && typeof md.generateName === 'string' && md.generateName !== '') {
      md.name = `${md.generateName}${randomUUID().slice(0, 5)}`;
    }
    const name = this.validateName(res, md.name);
    if (res.namespaced && !md.namespace) throw errors.badRequest('the namespace of the object is required');
    if (this.peek(res, md.namespace, name)) throw errors.alreadyExists(res.group, res.plural, name);
    if (!(opts.keepUid && typeof md.uid === 'string' && md.uid !== '')) md.uid = randomUUID();
    md.creationTimestamp = microTimeNow();
    delete md.deletionTimestamp;
    delete md.deletionGracePeriodSeconds;
    delete md.resourceVersion;
    if (res.custom) md.generation = 1;
    else delete md.generation;
    if (opts.dryRun) return { ...obj, metadata: { ...md, resourceVersion: String(this.rv) } };
    return this.commit('ADDED', res, obj);
  }

  /**
   * Replace (PUT). A stale resourceVersion is a 409 Conflict; without one the update is
   * unconditional unless `requireResourceVersion` (custom resources over HTTP, as kube does).
   */
  update(res: ServedResource, input: KubeObject, opts: WriteOptions & { requireResourceVersion?: boolean } = {}): KubeObject {
    const obj = this.normalize(res, input);
    const md = obj.metadata;
    const name = this.validateName(res, md.name);
    const cur = this.peek(res, md.namespace, name);
    if (!cur) throw errors.notFound(res.group, res.plural, name);
    const rv = md.resourceVersion;
    if (rv === undefined || rv === '') {
      if (opts.requireResourceVersion) throw errors.invalid(res.kind, res.group, name, 'metadata.resourceVersion', 'Invalid value: 0x0: must be specified for an update');
    } else if (rv !== cur.metadata.resourceVersion) {
      throw errors.conflict(res.group, res.plural, name);
    }
    // Fields the server owns.
    md.uid = cur.metadata.uid;
    md.creationTimestamp = cur.metadata.creationTimestamp;
    if (cur.metadata.deletionTimestamp) md.deletionTimestamp = cur.metadata.deletionTimestamp;
    else delete md.deletionTimestamp;
    if (res.custom) {
      // Workflows have no status subresource: any change outside metadata is a new generation.
      const changed = !deepEqual(generationFields(obj, res.statusSubresource), generationFields(cur, res.statusSubresource));
      md.generation = (cur.metadata.generation ?? 1) + (changed ? 1 : 0);
    }
    if (opts.dryRun) return { ...obj, metadata: { ...md, resourceVersion: cur.metadata.resourceVersion } };
    if (md.deletionTimestamp && (md.finalizers?.length ?? 0) === 0) {
      // The last finalizer is gone: the deletion completes now.
      this.commit('MODIFIED', res, obj, cur);
      return this.finishDelete(res, this.peek(res, md.namespace, name)!);
    }
    // A write that changes nothing keeps the resourceVersion and sends no event (as etcd3 does).
    if (deepEqual(stripRV(obj), stripRV(cur))) return cloneJson(cur);
    return this.commit('MODIFIED', res, obj, cur);
  }

  /**
   * Delete. With finalizers the object only gets a deletionTimestamp (and goes once they are
   * removed); `deleted` says whether it is gone. Preconditions as in DeleteOptions.
   */
  delete(
    res: ServedResource,
    ns: string | undefined,
    name: string,
    opts: WriteOptions & { preconditions?: { uid?: string; resourceVersion?: string } } = {},
  ): { obj: KubeObject; deleted: boolean } {
    const cur = this.peek(res, ns, name);
    if (!cur) throw errors.notFound(res.group, res.plural, name);
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== cur.metadata.uid) {
      throw errors.conflict(res.group, res.plural, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`);
    }
    if (pre?.resourceVersion && pre.resourceVersion !== cur.metadata.resourceVersion) {
      throw errors.conflict(res.group, res.plural, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${cur.metadata.resourceVersion}`);
    }
    if ((cur.metadata.finalizers?.length ?? 0) > 0) {
      if (cur.metadata.deletionTimestamp) return { obj: cloneJson(cur), deleted: false };
      const marked: KubeObject = { ...cur, metadata: { ...cur.metadata, deletionTimestamp: microTimeNow(), deletionGracePeriodSeconds: 0 } };
      if (opts.dryRun) return { obj: cloneJson(marked), deleted: false };
      return { obj: cloneJson(this.commit('MODIFIED', res, marked, cur)), deleted: false };
    }
    if (opts.dryRun) return { obj: cloneJson(cur), deleted: true };
    return { obj: this.finishDelete(res, cur), deleted: true };
  }

  private finishDelete(res: ServedResource, cur: KubeObject): KubeObject {
    return cloneJson(this.commit('DELETED', res, cur, cur));
  }
}

function stripRV(o: KubeObject): KubeObject {
  const { resourceVersion: _rv, ...md } = o.metadata;
  return { ...o, metadata: md as KubeObject['metadata'] };
}

/** kube-apiserver folds `stringData` into base64 `data` on write. */
function secretStringData(o: KubeObject): void {
  const sd = o.stringData;
  if (sd && typeof sd === 'object') {
    const data = { ...((o.data as Record<string, string> | undefined) ?? {}) };
    for (const [k, v] of Object.entries(sd as Record<string, unknown>)) data[k] = Buffer.from(String(v)).toString('base64');
    o.data = data;
    delete o.stringData;
  }
}

export { SimApiError };
