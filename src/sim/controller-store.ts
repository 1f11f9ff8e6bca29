/**
 * What the simulated controllers read and write: a cache they read synchronously and writes
 * that may go over the network. Two implementations: the simulator's own ObjectStore
 * (in-process, writes commit at once) and an API-backed one (src/sim/api-store.ts: reflector
 * caches plus writes through the Kubernetes API), so the same controller logic drives the
 * simulator or a real kube-apiserver.
 */
import type { KubeObject } from '../kube/resource.js';
import type { ServedResource } from './resources.js';
import type { ObjectStore } from './store.js';

export interface ControllerEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly res: ServedResource;
  /** The object after the change; for DELETED its last state. */
  readonly obj: KubeObject;
}

export interface ControllerStore {
  on(listener: (e: ControllerEvent) => void): () => void;
  /** The cached object (do not mutate). */
  peek(res: ServedResource, ns: string | undefined, name: string): KubeObject | undefined;
  list(res: ServedResource): KubeObject[];
  /** Create; an object that exists already is left as it is. */
  create(res: ServedResource, obj: KubeObject): Promise<void>;
  /**
   * Read-modify-write: `mutate` changes a copy of the current object, which is then written
   * conditionally on its resourceVersion; on a conflict it runs again on the fresh object.
   * Nothing happens when the object is gone.
   */
  mutate(res: ServedResource, ns: string | undefined, name: string, mutate: (o: KubeObject) => void): Promise<void>;
  /** Delete; an object already gone is fine. */
  delete(res: ServedResource, ns: string | undefined, name: string): Promise<void>;
}

/** The simulator's store as seen by its controllers: every write commits synchronously, so reads are never stale. */
export function localControllerStore(store: ObjectStore): ControllerStore {
  return {
    on: (l) => store.on(l),
    peek: (res, ns, name) => store.peek(res, ns, name),
    list: (res) => store.list(res),
    create(res, obj) {
      if (!store.peek(res, obj.metadata.namespace, obj.metadata.name)) store.create(res, obj);
      return Promise.resolve();
    },
    mutate(res, ns, name, mutate) {
      const cur = store.peek(res, ns, name);
      if (cur) {
        const o = structuredClone(cur);
        mutate(o);
        store.update(res, o);
      }
      return Promise.resolve();
    },
    delete(res, ns, name) {
      if (store.peek(res, ns, name)) store.delete(res, ns, name);
      return Promise.resolve();
    },
  };
}
