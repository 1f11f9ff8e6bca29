/**
 * `nnf-env wait [--timeout DUR] [--ports]`: block until the job's environment is final
 * (delivered, failed or no workflow), then, with `--ports`, until its container ports accept
 * connections from here.
 *
 * It watches the jobs directory with inotify (fs.watch) and re-reads the status file when it
 * changes, with a slow safety re-check in case an event is missed. A job's user usually cannot
 * watch the jobs directory (mode 0711: traversable, not listable, and inotify needs read
 * permission); then it re-reads the status file every 250 ms: one small read, no busy loop.
 *
 * While there is no status file it also reads the env file: the prolog's daemon-down notice
 * (`phase=node-error`) means no status file will come, and `wait` fails at once with the error
 * the other commands give for it instead of waiting out its timeout.
 */
import { Command } from 'commander';
import { watch, type FSWatcher } from 'node:fs';
import { dirname, basename } from 'node:path';
import { FINAL_PHASES, type JobStatus } from '../../contract/job-status.js';
import { exitCodesHelp } from '../exit-codes.js';

const SAFETY_RECHECK_MS = 2000;
const POLL_MS = 250;

/** Resolves when something may have changed, or after the re-check interval. */
export interface ChangeSignal {
  next(maxMs: number): Promise<void>;
  close(): void;
  /** true when inotify works here (else plain re-reads at POLL_MS). */
  readonly watching: boolean;
}

export function watchForChanges(file: string): ChangeSignal {
  const dir = dirname(file);
  const name = basename(file);
  let wake: (() => void) | null = null;
  let pending = false;
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(dir, { persistent: true }, (_event, filename) => {
      // Atomic writes rename a temp file onto `name` (events name the target); a null name
      // may be anything. Only events about other jobs' files are skipped.
      if (filename !== null && !String(filename).includes(name)) return;
      pending = true;
      wake?.();
    });
    watcher.on('error', () => {
      watcher?.close();
      watcher = null;
      wake?.();
    });
  } catch {
    watcher = null; // EACCES (0711 jobs dir), ENOENT (daemon never ran): fall back to re-reads
  }
  return {
    get watching() {
      return watcher !== null;
    },
    next(maxMs: number): Promise<void> {
      if (pending) {
        pending = false;
        return Promise.resolve();
      }
      const interval = watcher ? SAFETY_RECHECK_MS : POLL_MS;
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(0, Math.min(interval, maxMs)));
        function done() {
          clearTimeout(timer);
          wake = null;
          pending = false;
          resolve();
        }
        wake = done;
      });
    },
    close() {
      watcher?.close();
      watcher = null;
      wake?.();
    },
  };
}

export function command(): Command {
  return new Command('wait')
    .description('wait until the job\'s nnf-env variables are delivered (and, with --ports, its container ports reachable from here)')
    .option('--job <id>', 'job id (default: $NNF_ENV_JOB_ID, the job whose variables the environment holds, else $FLUX_JOB_ID)')
    .option('--timeout <duration>', 'give up after this long', '10m')
    .option('--ports', 'then wait until the container ports accept connections from this node')
    .addHelpText('after', '\n' + exitCodesHelp({ 0: 'delivered (and ports reachable)', 1: 'ports unreachable (or nnf-envd was not running here at job start)', 3: 'timed out' }))
    .action(async (opts: { job?: string; timeout: string; ports?: boolean }) => {
      const ctx = await import('../job-context.js');
      const timeoutMs = await ctx.parseDurationMs(opts.timeout);
      const deadline = Date.now() + timeoutMs;
      const ref = ctx.resolveJobRef(opts.job);
      const jobsDir = await ctx.resolveJobsDir();
      const { jobFiles } = await import('../../contract/job-paths.js');
      const paths = jobFiles(jobsDir, ref.id);

      // Watch before the first read, so that a write between the read and the watch is not missed.
      const changes = watchForChanges(paths.status);
      let status: JobStatus | null;
      try {
        for (;;) {
          status = ctx.readJobStatus(paths.status, ref);
          if (status !== null && FINAL_PHASES.includes(status.phase)) break;
          if (status === null) {
            const notSetUp = ctx.nodeNotSetUp(ctx.readJobFiles(jobsDir, ref));
            if (notSetUp) throw notSetUp;
          }
          const left = deadline - Date.now();
          if (left <= 0) {
            const detail = status === null ? `no status file in ${jobsDir}` : `phase ${status.phase}`;
            throw new ctx.NotDeliveredError(ref.name, `gave up after ${opts.timeout}: ${detail}`);
          }
          await changes.next(left);
        }
      } finally {
        changes.close();
      }
      // Final: the same decision as every other command (failed / no workflow become errors).
      const files = ctx.readJobFiles(jobsDir, ref);
      const variables = ctx.deliveredVariables(files);
      if (!opts.ports) return;

      const cp = await import('./check-ports.js');
      const { parsePortList } = await import('../../contract/port-list.js');
      const plan = cp.probePlan(variables, files.status, parsePortList);
      if (plan.ports.length === 0) return; // nothing to wait for
      const results = await cp.probeNow(plan, { deadlineMs: Math.max(0, deadline - Date.now()) });
      const bad = cp.unreachablePorts(results);
      if (bad.length > 0) {
        process.stderr.write(await cp.renderPortTable(results));
        throw new cp.PortsUnreachableError(plan.label, bad);
      }
    });
}
