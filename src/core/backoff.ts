/**
 * Exponential backoff with full jitter ("decorrelated" enough for 10,000 nodes that lost the
 * API server at the same instant not to come back in lockstep). Used by the watch loop and
 * the port prober.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** A run without failure this long resets the sequence. Default: 4 x maxMs. */
  resetAfterMs?: number;
  /** For tests: a source of randomness in [0, 1). */
  random?: () => number;
  now?: () => number;
}

export class Backoff {
  private attempt = 0;
  private lastFailureAt = 0;
  private readonly opts: Required<BackoffOptions>;

  constructor(opts: BackoffOptions) {
    if (!(opts.initialMs > 0) || !(opts.maxMs >= opts.initialMs)) {
      throw new RangeError(`backoff needs 0 < initialMs <= maxMs (got ${opts.initialMs}, ${opts.maxMs})`);
    }
    this.opts = { resetAfterMs: 4 * opts.maxMs, random: Math.random, now: Date.now, ...opts };
  }

  /** Delay before the next try: uniform in [ceiling/2, ceiling], ceiling doubling up to maxMs. */
  next(): number {
    const now = this.opts.now();
    if (this.attempt > 0 && now - this.lastFailureAt > this.opts.resetAfterMs) this.attempt = 0;
    this.lastFailureAt = now;
    const ceiling = Math.min(this.opts.maxMs, this.opts.initialMs * 2 ** Math.min(this.attempt, 52));
    this.attempt++;
    return Math.round(ceiling / 2 + this.opts.random() * (ceiling / 2));
  }

  /** Call after a stable period of success. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `value` scaled by a random factor in [1 - fraction, 1 + fraction]. */
export function jitter(value: number, fraction: number, random: () => number = Math.random): number {
  return Math.round(value * (1 - fraction + 2 * fraction * random()));
}
