/**
 * A work queue of keys, as client-go's workqueue is used by its controllers: add(key) says "this
 * key may need work"; sync(key) brings the world in line with what the key's objects say now
 * (level-triggered, idempotent). A key is synced by one call at a time; adds that arrive during
 * a sync cause exactly one more. A sync that throws is retried after a per-key jittered backoff
 * (the one retry policy, core/retry.ts), which a successful sync resets.
 */
import type { Backoff } from '../core/backoff.js';
import { backoffOf, type RetryPolicy } from '../core/retry.js';

export interface WorkQueueOptions<K> {
  sync: (key: K) => Promise<void>;
  retry: RetryPolicy;
  /** Told of each failure before its retry is scheduled. */
  onError?: (key: K, err: unknown, retryInMs: number) => void;
  random?: () => number;
}

export class WorkQueue<K> {
  private readonly dirty = new Set<K>();
  private readonly running = new Map<K, Promise<void>>();
  private readonly retryTimers = new Map<K, NodeJS.Timeout>();
  private readonly backoffs = new Map<K, Backoff>();
  private closed = false;

  constructor(private readonly opts: WorkQueueOptions<K>) {}

  add(key: K): void {
    if (this.closed) return;
    this.dirty.add(key);
    if (!this.running.has(key)) this.run(key);
  }

  /** Whether a sync of `key` is in progress. */
  busy(key: K): boolean {
    return this.running.has(key);
  }

  /** The key is gone: no retry, no pending work. Resolves when a sync in progress has ended. */
  async forget(key: K): Promise<void> {
    this.dirty.delete(key);
    this.backoffs.delete(key);
    clearTimeout(this.retryTimers.get(key));
    this.retryTimers.delete(key);
    await this.running.get(key)?.catch(() => undefined);
  }

  /** Takes no more work; resolves when every sync in progress has ended. */
  async shutdown(): Promise<void> {
    this.closed = true;
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
    this.dirty.clear();
    await Promise.all([...this.running.values()].map((p) => p.catch(() => undefined)));
  }

  private run(key: K): void {
    const p = (async () => {
      while (this.dirty.has(key) && !this.closed) {
        this.dirty.delete(key);
        try {
          await this.opts.sync(key);
          this.backoffs.delete(key);
        } catch (err) {
          if (this.closed) break;
          this.retryLater(key, err);
        }
      }
    })().finally(() => this.running.delete(key));
    this.running.set(key, p);
  }

  private retryLater(key: K, err: unknown): void {
    let b = this.backoffs.get(key);
    if (!b) this.backoffs.set(key, (b = backoffOf(this.opts.retry, this.opts.random)));
    const delay = b.next();
    try {
      this.opts.onError?.(key, err, delay);
    } catch {
      /* a logging problem must not lose the retry */
    }
    clearTimeout(this.retryTimers.get(key));
    const t = setTimeout(() => {
      this.retryTimers.delete(key);
      this.add(key);
    }, delay);
    t.unref();
    this.retryTimers.set(key, t);
  }
}
