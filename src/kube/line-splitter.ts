export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

export interface LineSplitterOptions {
  /** Longest line kept, without its newline. Default 16 MiB. */
  maxLineBytes?: number;
  /** A complete line, without `\n` (and without a trailing `\r`). Empty lines are skipped. */
  onLine: (line: Buffer) => void;
  /** A line longer than maxLineBytes was dropped; `bytes` is its full length. */
  onTooLong: (bytes: number) => void;
}

/**
 * Splits a byte stream into newline-terminated lines. Works on bytes, so chunk boundaries
 * inside a line or inside a multi-byte UTF-8 character do not matter. Memory stays bounded: a
 * line that grows past maxLineBytes is discarded up to its newline and reported, never buffered.
 *
 * Lines handed to onLine may share memory with the pushed chunk: use them before returning.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private partsLength = 0;
  private discarding = false;
  private discarded = 0;
  private readonly max: number;
  private readonly onLine: (line: Buffer) => void;
  private readonly onTooLong: (bytes: number) => void;

  constructor(opts: LineSplitterOptions) {
    this.max = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    if (!Number.isInteger(this.max) || this.max < 1) throw new RangeError(`maxLineBytes must be a positive integer (got ${opts.maxLineBytes})`);
    this.onLine = opts.onLine;
    this.onTooLong = opts.onTooLong;
  }

  /** Bytes held for an unfinished line (never more than maxLineBytes). */
  get bufferedBytes(): number {
    return this.partsLength;
  }

  push(chunk: Uint8Array): void {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl === -1) {
        this.hold(buf.subarray(start));
        return;
      }
      this.finish(buf.subarray(start, nl));
      start = nl + 1;
    }
  }

  /** The stream ended: a last line without a newline is still a line. */
  end(): void {
    if (this.discarding || this.partsLength > 0) this.finish(Buffer.alloc(0));
  }

  private hold(rest: Buffer): void {
    if (rest.length === 0) return;
    if (this.discarding) {
      this.discarded += rest.length;
    } else if (this.partsLength + rest.length > this.max) {
      this.discarding = true;
      this.discarded = this.partsLength + rest.length;
      this.parts = [];
      this.partsLength = 0;
    } else {
      // Copy: the tail of a large chunk should not pin the whole chunk.
      this.parts.push(Buffer.from(rest));
      this.partsLength += rest.length;
    }
  }

  private finish(seg: Buffer): void {
    if (this.discarding) {
      const total = this.discarded + seg.length;
      this.discarding = false;
      this.discarded = 0;
      this.onTooLong(total);
      return;
    }
    const total = this.partsLength + seg.length;
    if (total > this.max) {
      this.parts = [];
      this.partsLength = 0;
      this.onTooLong(total);
      return;
    }
    let line = this.partsLength === 0 ? seg : Buffer.concat([...this.parts, seg], total);
    this.parts = [];
    this.partsLength = 0;
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    if (line.length > 0) this.onLine(line);
  }
}
