/**
 * For the files that run long fault scenarios against real servers: once tap's root test has
 * ended, a process still alive 5 s later is held by something the scenario left behind. Say
 * what (Node's active resources) on stderr and exit with the status the run already has, so
 * a leak costs 5 s and a visible line, not tap's whole file timeout.
 * Seen once on the real-server chaos run (cause not found yet); the line is the lead.
 */
import t from 'tap';

export function exitWhenDone(graceMs = 5000): void {
  t.teardown(() => {
    setTimeout(() => {
      process.stderr.write(`${process.argv[1] ?? 'test'}: still running ${graceMs} ms after its tests ended; held by: ${process.getActiveResourcesInfo().join(', ')}\n`);
      process.exit(process.exitCode ?? 0);
    }, graceMs).unref();
  });
}
