import { objectKey, type KubeObject } from './resource.js';

/** What consumers of a reflector may read. */
export interface ReadonlyObjectStore<T extends KubeObject> {
  /** By key: `ns/name`, or `name` for cluster-scoped objects (see objectKey). */
  get(key: string): T | undefined;
  getObject(namespace: string | undefined, name: string): T | undefined;
  has(key: string): boolean;
  list(): T[];
  keys(): string[];
  readonly size: number;
}

/** The difference between a store and a fresh list: what a relist must emit. */
export interface StoreDiff<T extends KubeObject> {
  added: T[];
  /** [new, old] pairs whose resourceVersion changed. */
  updated: Array<[T, T]>;
  /** The last known state of objects that are gone. */
  deleted: T[];
}

/** Pure: compares the current objects with a complete fresh list. */
export function diffObjects<T extends KubeObject>(current: ReadonlyMap<string, T>, items: readonly T[]): StoreDiff<T> {
  const diff: StoreDiff<T> = { added: [], updated: [], deleted: [] };
  const seen = new Set<string>();
  for (const item of items) {
    const key = objectKey(item);
    seen.add(key);
    const old = current.get(key);
    if (old === undefined) diff.added.push(item);
    else if (old.metadata.resourceVersion !== item.metadata.resourceVersion || old.metadata.uid !== item.metadata.uid) diff.updated.push([item, old]);
  }
  for (const [key, old] of current) if (!seen.has(key)) diff.deleted.push(old);
  return diff;
}

/** Objects of one type keyed by `ns/name`; written only by its reflector. */
export class ObjectStore<T extends KubeObject> implements ReadonlyObjectStore<T> {
  private map = new Map<string, T>();

  get(key: string): T | undefined {
    return this.map.get(key);
  }

  getObject(namespace: string | undefined, name: string): T | undefined {
    return this.map.get(objectKey({ metadata: namespace ? { name, namespace } : { name } }));
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  list(): T[] {
    return [...this.map.values()];
  }

  keys(): string[] {
    return [...this.map.keys()];
  }

  get size(): number {
    return this.map.size;
  }

  /** Puts the object; answers the one it replaced. */
  upsert(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.map.get(key);
    this.map.set(key, obj);
    return old;
  }

  /** Removes by key; answers what was there. */
  remove(key: string): T | undefined {
    const old = this.map.get(key);
    if (old !== undefined) this.map.delete(key);
    return old;
  }

  /** Replaces everything with a fresh list and answers the difference. */
  replace(items: readonly T[]): StoreDiff<T> {
    const diff = diffObjects(this.map, items);
    const next = new Map<string, T>();
    for (const item of items) next.set(objectKey(item), item);
    this.map = next;
    return diff;
  }
}
