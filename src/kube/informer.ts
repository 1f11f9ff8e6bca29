/**
 * An informer, as client-go's tools/cache has it: a reflector that keeps an injected store up to
 * date, and handlers told of each change afterwards, from a buffer. The reflector only appends
 * to the buffer; the buffer is drained on a later turn of the event loop, so a slow or throwing
 * handler never holds up the watch stream's line loop, and a burst of events on one object
 * reaches a level-triggered handler as one notification per event without blocking the parse.
 */
import { errorMessage } from '../core/errors.js';
import { Reflector, type ReflectorCounters, type ReflectorOptions, type ReflectorState } from './reflector.js';
import { objectKey, type KubeObject } from './resource.js';
import { ObjectStore, type ReadonlyObjectStore } from './store.js';

export type InformerNotification<T extends KubeObject> =
  | { type: 'added' | 'updated' | 'deleted'; key: string; object: T }
  | { type: 'synced' }
  | { type: 'state'; state: ReflectorState };

export type InformerHandler<T extends KubeObject> = (n: InformerNotification<T>) => void;

export class Informer<T extends KubeObject> {
  readonly reflector: Reflector<T>;
  private readonly objects: ObjectStore<T>;
  private readonly handlers = new Set<InformerHandler<T>>();
  private readonly buffer: InformerNotification<T>[] = [];
  private draining: NodeJS.Immediate | undefined;
  private readonly log: ReflectorOptions['logger'];

  constructor(options: ReflectorOptions<T>) {
    this.objects = options.store ?? new ObjectStore<T>();
    this.reflector = new Reflector<T>({ ...options, store: this.objects });
    this.log = options.logger;
    const r = this.reflector;
    r.on('added', (o) => this.push({ type: 'added', key: objectKey(o), object: o }));
    r.on('updated', (o) => this.push({ type: 'updated', key: objectKey(o), object: o }));
    r.on('deleted', (o) => this.push({ type: 'deleted', key: objectKey(o), object: o }));
    r.on('synced', () => this.push({ type: 'synced' }));
    r.on('state', (state) => this.push({ type: 'state', state }));
  }

  /** Adds a handler; returns its removal. */
  addHandler(fn: InformerHandler<T>): () => void {
    this.handlers.add(fn);
    return () => this.handlers.delete(fn);
  }

  get store(): ReadonlyObjectStore<T> {
    return this.objects;
  }

  get hasSynced(): boolean {
    return this.reflector.hasSynced;
  }

  get state(): ReflectorState {
    return this.reflector.state;
  }

  get lastError(): Reflector<T>['lastError'] {
    return this.reflector.lastError;
  }

  get counters(): ReflectorCounters {
    return this.reflector.counters;
  }

  start(): this {
    this.reflector.start();
    return this;
  }

  /** Stops the reflector; notifications still buffered are dropped (nobody acts on a stopped informer). */
  async stop(): Promise<void> {
    await this.reflector.stop();
    if (this.draining) clearImmediate(this.draining);
    this.draining = undefined;
    this.buffer.length = 0;
  }

  waitForSync(signal?: AbortSignal): Promise<void> {
    return this.reflector.waitForSync(signal);
  }

  private push(n: InformerNotification<T>): void {
    this.buffer.push(n);
    this.draining ??= setImmediate(() => this.drain());
  }

  private drain(): void {
    this.draining = undefined;
    // Handlers may cause more notifications: those are drained on the next turn.
    for (const n of this.buffer.splice(0)) {
      for (const fn of this.handlers) {
        try {
          fn(n);
        } catch (err) {
          this.log?.error({ notification: n.type, err: errorMessage(err) }, 'an informer handler threw; continuing');
        }
      }
    }
  }
}
