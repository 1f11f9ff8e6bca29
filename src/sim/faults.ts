/**
 * Fault injection for tests: what can go wrong between a client and kube-apiserver. Watch
 * faults act on the watch hub, history faults on the store, request faults (failNext, latency)
 * are consulted by the HTTP server for every request.
 */
import type { ObjectStore } from './store.js';
import type { WatchHub } from './watch.js';

export interface RequestInfo {
  method: string;
  path: string;
  watch: boolean;
}

export interface FailNextOptions {
  status: 429 | 500 | 503;
  /** How many matching requests fail; default 1; Infinity for all of them. */
  count?: number;
  /** Sent as `Retry-After` and in the Status details. */
  retryAfterSeconds?: number;
  match?: (req: RequestInfo) => boolean;
}

export interface Faults {
  /** Destroy all watch connections now; returns how many. */
  dropWatches(): number;
  /** The current watches send nothing but keep their sockets open, until `ms` passes or resumeWatches(). New watches are not affected. */
  stallWatches(ms?: number): void;
  resumeWatches(): void;
  /** Forget history: any resourceVersion older than the current one gets 410 Expired. */
  compact(): void;
  failNext(opts: FailNextOptions): void;
  /** Delay every response (watches: their start) by `ms`; 0 turns it off. */
  setLatency(ms: number): void;
}

interface FailRule {
  status: 429 | 500 | 503;
  remaining: number;
  retryAfterSeconds: number | undefined;
  match: ((req: RequestInfo) => boolean) | undefined;
}

export class FaultState implements Faults {
  latencyMs = 0;
  private rules: FailRule[] = [];

  constructor(private readonly hub: WatchHub, private readonly store: ObjectStore) {}

  dropWatches(): number {
    return this.hub.dropAll();
  }

  stallWatches(ms?: number): void {
    this.hub.stallAll(ms);
  }

  resumeWatches(): void {
    this.hub.resumeAll();
  }

  compact(): void {
    this.store.compact();
  }

  failNext(opts: FailNextOptions): void {
    const count = opts.count ?? 1;
    if (!(count > 0)) throw new RangeError(`failNext count must be > 0 (got ${count})`);
    this.rules.push({ status: opts.status, remaining: count, retryAfterSeconds: opts.retryAfterSeconds, match: opts.match });
  }

  setLatency(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`latency must be >= 0 ms (got ${ms})`);
    this.latencyMs = ms;
  }

  /** The injected failure for this request, if one applies (and use it up). */
  takeFailure(req: RequestInfo): { status: 429 | 500 | 503; retryAfterSeconds: number | undefined } | undefined {
    for (const r of this.rules) {
      if (r.remaining <= 0) continue;
      if (r.match && !r.match(req)) continue;
      r.remaining--;
      this.rules = this.rules.filter((x) => x.remaining > 0);
      return { status: r.status, retryAfterSeconds: r.retryAfterSeconds };
    }
    return undefined;
  }
}
