/**
 * For the files that run long fault scenarios against real servers: once their tests are done,
 * a process still alive 5 s later is held by something a scenario left behind, and tap's root
 * test (which ends when the process would exit) would wait for its whole file timeout. Say
 * what holds it (Node's active resources) on stderr, end the root test so its plan and counts
 * are printed, and exit with the status the run already has.
 * Seen on the real-server chaos run (cause not found yet); the stderr line is the lead.
 */
import t from 'tap';

export function exitWhenDone(tests: Promise<unknown>[], graceMs = 5000): void {
  void Promise.allSettled(tests).then(() => {
    setTimeout(() => {
      process.stderr.write(`${process.argv[1] ?? 'test'}: still running ${graceMs} ms after its tests ended; held by: ${process.getActiveResourcesInfo().join(', ')}\n`);
      try {
        t.end();
      } catch {
        // already ending
      }
      setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref();
    }, graceMs).unref();
  });
}
