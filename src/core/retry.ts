/**
 * The one retry policy of the daemon: exponential backoff with full jitter (./backoff.ts), every
 * wait abortable. The work queue retries a failed sync with it; retry() runs a bounded number of
 * attempts of one request. No other loop in src/ waits between attempts by itself.
 */
import { Backoff, sleep } from './backoff.js';

export interface RetryPolicy {
  /** The first pause's ceiling; each later one doubles, up to maxMs. */
  readonly initialMs: number;
  readonly maxMs: number;
}

export function backoffOf(policy: RetryPolicy, random?: () => number): Backoff {
  return new Backoff({ initialMs: policy.initialMs, maxMs: policy.maxMs, ...(random ? { random } : {}) });
}

export interface RetryOptions {
  policy: RetryPolicy;
  /** Tries in all (the first included). */
  attempts: number;
  signal?: AbortSignal;
  /** Whether an error is worth another try. Default: every error is. */
  retryable?: (err: unknown) => boolean;
  /** Before each pause (for a log line). */
  onRetry?: (err: unknown, delayMs: number, attempt: number) => void;
  random?: () => number;
}

/** `fn` until it succeeds, a non-retryable error, the last attempt, or the signal aborts. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const backoff = backoffOf(opts.policy, opts.random);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (opts.signal?.aborted || attempt >= opts.attempts || (opts.retryable && !opts.retryable(err))) throw err;
      const delay = backoff.next();
      opts.onRetry?.(err, delay, attempt);
      await sleep(delay, opts.signal);
    }
  }
}
