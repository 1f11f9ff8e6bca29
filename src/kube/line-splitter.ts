export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

/** A held-line buffer larger than this is let go after its line, so one big object does not pin memory. */
const KEEP_SCRATCH_BYTES = 1024 * 1024;

interface CommonOptions {
  /** Longest line kept, in bytes, without its newline. Default 16 MiB. */
  maxLineBytes?: number;
  /** A line longer than maxLineBytes was dropped; `bytes` is its full length. */
  onTooLong: (bytes: number) => void;
}

export type LineSplitterOptions = CommonOptions &
  (
    | {
        /** A complete line as bytes, without `\n` (and without a trailing `\r`). Empty lines are skipped. */
        onLine: (line: Buffer) => void;
        onText?: never;
      }
    | {
        /** The same line decoded as UTF-8, straight from the received bytes (no intermediate Buffer). */
        onText: (line: string) => void;
        onLine?: never;
      }
  );

/**
 * Splits a byte stream into newline-terminated lines. Works on bytes (a `\n` byte never occurs
 * inside a multi-byte UTF-8 character), so chunk boundaries inside a line or inside a character
 * do not matter, and the bound is exact in bytes. Memory stays bounded: a line that grows past
 * maxLineBytes is discarded up to its newline and reported, never buffered.
 *
 * A line inside one chunk is handed over (or decoded) in place; only a line cut by a chunk
 * boundary is copied, into one reused buffer. Lines handed to onLine share memory with the
 * pushed chunk or that buffer: use them before returning.
 */
export class LineSplitter {
  /** The unfinished line's bytes are scratch[0, held). */
  private scratch: Buffer = Buffer.alloc(0);
  private held = 0;
  private discarding = false;
  private discarded = 0;
  private readonly max: number;
  private readonly emit: (buf: Buffer, start: number, end: number) => void;
  private readonly onTooLong: (bytes: number) => void;

  constructor(opts: LineSplitterOptions) {
    this.max = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    if (!Number.isInteger(this.max) || this.max < 1) throw new RangeError(`maxLineBytes must be a positive integer (got ${opts.maxLineBytes})`);
    this.onTooLong = opts.onTooLong;
    const { onLine, onText } = opts;
    if (onText) this.emit = (buf, start, end) => onText(buf.toString('utf8', start, end));
    else if (onLine) this.emit = (buf, start, end) => onLine(buf.subarray(start, end));
    else throw new TypeError('LineSplitter needs onLine or onText');
  }

  /** Bytes held for an unfinished line (never more than maxLineBytes). */
  get bufferedBytes(): number {
    return this.held;
  }

  push(chunk: Uint8Array): void {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl === -1) {
        if (start < buf.length) this.hold(buf, start, buf.length);
        return;
      }
      if (this.held === 0 && !this.discarding) this.line(buf, start, nl);
      else this.finish(buf, start, nl);
      start = nl + 1;
    }
  }

  /** The stream ended: a last line without a newline is still a line. */
  end(): void {
    if (this.discarding || this.held > 0) this.finish(this.scratch, 0, 0);
  }

  /** A complete line at buf[start, end), within the bound. */
  private line(buf: Buffer, start: number, end: number): void {
    if (end - start > this.max) return this.onTooLong(end - start);
    if (end > start && buf[end - 1] === 0x0d) end--;
    if (end > start) this.emit(buf, start, end);
  }

  private hold(buf: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.discarding) {
      this.discarded += n;
    } else if (this.held + n > this.max) {
      this.discarding = true;
      this.discarded = this.held + n;
      this.release();
    } else {
      // Copied: the tail of a large chunk should not pin the whole chunk.
      this.reserve(this.held + n);
      buf.copy(this.scratch, this.held, start, end);
      this.held += n;
    }
  }

  /** Ends the held line with buf[start, end). */
  private finish(buf: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.discarding) {
      const total = this.discarded + n;
      this.discarding = false;
      this.discarded = 0;
      this.onTooLong(total);
      return;
    }
    const total = this.held + n;
    if (total > this.max) {
      this.release();
      this.onTooLong(total);
      return;
    }
    if (n > 0) {
      this.reserve(total);
      buf.copy(this.scratch, this.held, start, end);
    }
    // Reset before emitting: a handler that throws must not leave a stale line behind.
    this.held = 0;
    try {
      this.line(this.scratch, 0, total);
    } finally {
      if (this.scratch.length > KEEP_SCRATCH_BYTES) this.release();
    }
  }

  /** Grows the scratch buffer (doubling, never past maxLineBytes) to hold `bytes`. */
  private reserve(bytes: number): void {
    if (bytes <= this.scratch.length) return;
    const size = Math.min(this.max, Math.max(bytes, 2 * this.scratch.length, 64 * 1024));
    const next = Buffer.allocUnsafe(size);
    this.scratch.copy(next, 0, 0, this.held);
    this.scratch = next;
  }

  private release(): void {
    this.scratch = Buffer.alloc(0);
    this.held = 0;
  }
}
