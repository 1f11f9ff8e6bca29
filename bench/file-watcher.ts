/**
 * An idle process that timestamps files appearing in a directory (inotify through fs.watch),
 * so that latency figures do not depend on how busy the process that caused them is:
 *   node dist/bench/file-watcher.js <dir> <suffix>
 * Prints `ready` once watching. On each stdin line `dump` it prints one JSON line
 * {"<file name>": <process.hrtime.bigint() ns as a string>} of the first event of each file
 * since the last dump. hrtime is CLOCK_MONOTONIC, the same clock in every process of the machine.
 */
import { watch } from 'node:fs';
import { createInterface } from 'node:readline';

const [dir, suffix] = process.argv.slice(2);
if (!dir || !suffix) {
  process.stderr.write('usage: file-watcher <dir> <suffix>\n');
  process.exit(2);
}
let seen = new Map<string, bigint>();
const w = watch(dir, (_event, name) => {
  const now = process.hrtime.bigint();
  const f = String(name);
  if (f.endsWith(suffix) && !seen.has(f)) seen.set(f, now);
});
process.stdout.write('ready\n');
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() !== 'dump') return;
  const out: Record<string, string> = {};
  for (const [k, v] of seen) out[k] = v.toString();
  seen = new Map();
  process.stdout.write(JSON.stringify(out) + '\n');
});
rl.on('close', () => {
  w.close();
  process.exit(0);
});
