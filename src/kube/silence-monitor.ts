/**
 * Silence detection for every watch of the process with one timer, instead of one per watch:
 * a healthy stream costs nothing between its events (no per-watch timer firing while bytes
 * flow), which is what keeps a node with many tracked jobs quiet.
 *
 * A watch notes when its last byte came (one assignment per chunk). The single timer is set for
 * the earliest moment any watch could have been silent for its timeout, and never sooner than
 * an eighth of the shortest timeout after the previous check; when it fires, every watch silent
 * that long is told, the rest wait for the next deadline. With bookmarks every minute and the
 * default 150 s timeout, the timer fires about once every 90 s however many watches there are.
 * A silent watch is caught between its timeout and 1.125 x its timeout.
 */
export interface SilenceWatch {
  /** performance.now() of the last byte (or of the start). */
  lastByte: number;
  readonly timeoutMs: number;
  /** Called once when the watch was silent for timeoutMs; the watch is then forgotten. */
  readonly onSilent: (idleMs: number) => void;
}

export class SilenceMonitor {
  private readonly watches = new Set<SilenceWatch>();
  private timer: NodeJS.Timeout | undefined;
  private dueAt = Infinity;
  private lastCheck = -Infinity;
  /** Times the timer fired (for tests and status). */
  checks = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  get size(): number {
    return this.watches.size;
  }

  /** Follows a watch from now; answers the function that forgets it (call it when the watch ends). */
  add(timeoutMs: number, onSilent: (idleMs: number) => void): { watch: SilenceWatch; remove: () => void } {
    const watch: SilenceWatch = { lastByte: this.now(), timeoutMs, onSilent };
    this.watches.add(watch);
    this.schedule(watch.lastByte + timeoutMs);
    return { watch, remove: () => this.remove(watch) };
  }

  private remove(watch: SilenceWatch): void {
    this.watches.delete(watch);
    if (this.watches.size === 0) this.cancel();
  }

  private cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dueAt = Infinity;
  }

  /** Makes sure the timer fires no later than `at` (and no sooner than the minimum gap). */
  private schedule(at: number): void {
    let minGap = Infinity;
    for (const w of this.watches) minGap = Math.min(minGap, w.timeoutMs / 8);
    const when = Math.max(at, this.lastCheck + minGap);
    if (this.timer !== undefined && this.dueAt <= when) return;
    clearTimeout(this.timer);
    this.dueAt = when;
    this.timer = setTimeout(() => this.check(), Math.max(0, when - this.now()));
    // The watches' sockets keep the process alive, not this timer.
    this.timer.unref();
  }

  private check(): void {
    this.checks++;
    this.timer = undefined;
    this.dueAt = Infinity;
    const now = this.now();
    this.lastCheck = now;
    let next = Infinity;
    for (const w of [...this.watches]) {
      const idle = now - w.lastByte;
      if (idle >= w.timeoutMs) {
        this.watches.delete(w);
        w.onSilent(idle);
      } else {
        next = Math.min(next, w.lastByte + w.timeoutMs);
      }
    }
    if (next !== Infinity) this.schedule(next);
  }
}

/** The one monitor of this process (every reflector uses it). */
export const silenceMonitor = new SilenceMonitor();
