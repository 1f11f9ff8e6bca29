/**
 * One line to stdout or stderr without creating `process.stdout`/`process.stderr`: for a pipe
 * (how Flux's perilog reads the prolog) the stream brings in node:net's pipe machinery, a few
 * million instructions on every node of every job. A short line written to a blocking fd is
 * complete after one write; whatever writeSync cannot finish (EAGAIN on a non-blocking pipe,
 * a partial write) goes through the stream, which waits as needed.
 */
import { writeSync } from 'node:fs';

export function writeLine(to: 'stdout' | 'stderr', line: string): void {
  const buf = Buffer.from(line + '\n', 'utf8');
  let done = 0;
  try {
    done = writeSync(to === 'stdout' ? 1 : 2, buf);
  } catch {
    done = 0;
  }
  if (done < buf.length) process[to].write(buf.subarray(done));
}
