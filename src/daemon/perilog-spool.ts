/**
 * The Node-free perilog (docs/FORMATS.md "Perilog without Node"): the Flux prolog and epilog
 * scripts hand nnf-envd a job through two root-only directories instead of starting Node.
 *
 * - Prolog spool, `RUNTIME_DIR/prolog/`: the script makes a FIFO, opens it read-write (never
 *   blocks), renames it to `<f58plain>.<uid>.<pid>` and reads one line. nnf-envd sees the name (inotify,
 *   plus a listing whenever the watch opens), checks it strictly (name, a FIFO, owned by the
 *   daemon's user, opened O_NONBLOCK|O_NOFOLLOW, the same inode), unlinks it, tracks the job as
 *   the HTTP track request does, waits until the job is final or PROLOG_TIMEOUT, and writes one
 *   answer line `<exit> <out|err> <log line>` (the same line `nnf-env prolog` prints).
 *   `.nnf-envd` in it holds `<pid> <PROLOG_TIMEOUT s>`: the script checks the daemon is alive.
 * - Ended markers, `RUNTIME_DIR/jobs/.ended/<f58plain>`: the epilog script records the job's end;
 *   nnf-envd untracks the job through the same path as the HTTP untrack, then removes the marker.
 *   A marker written while the daemon is down waits for the next start.
 *
 * Level-triggered and quiet when idle: no timer runs unless a job is waiting (its own timeout)
 * or a watch failed (one reopen).
 */
import { constants, watch, type FSWatcher } from 'node:fs';
import { lstat, open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { errnoCode, errorMessage } from '../core/errors.js';
import { formatJobId } from '../contract/jobid.js';
import type { JobStatus } from '../contract/job-status.js';
import { PROLOG_FIFO_NAME, endedDirOf, prologSpoolDirOf, spoolDaemonFileOf } from '../contract/job-paths.js';
import {
  describeFinal, isFinalStatus, nodeErrorOutcome, perilogLogLine, timeoutOutcome, workflowLabel, type NodeErrorPolicy, type PrologOutcome,
} from '../domain/prolog-outcome.js';
import { removeFileNoFollow, writeFileAtomic } from '../fs/atomic-file.js';
import { writePrologTimeoutNotice } from '../fs/prolog-notice.js';
import type { UserDbOptions } from '../fs/user-db.js';
import type { JobController } from './job-controller.js';
import { canonicalJobName } from './tracked-records.js';

export interface PerilogSpoolConfig {
  PROLOG_TIMEOUT: number;
  PROLOG_ON_NODE_ERROR: string;
  WORKFLOW_NAMESPACE: string;
  WORKFLOW_NAME_TEMPLATE: string;
}

export interface PerilogSpoolOptions {
  runtimeDir: string;
  jobsDir: string;
  jobs: Pick<JobController, 'track' | 'untrack' | 'waitFinal'>;
  config: () => PerilogSpoolConfig;
  logger: Logger;
  /** chown the timeout notice to the job's user. Default: when running as root. */
  chown?: boolean;
  userDb?: UserDbOptions;
}

/** One answer must reach the reader in one write: below PIPE_BUF (4096 on Linux). */
const MAX_ANSWER_BYTES = 3800;
/** A watch that failed is reopened once after this long (then listed: level-triggered). */
const REOPEN_MS = 2000;

type Dir = 'prolog' | 'ended';

export class PerilogSpool {
  readonly spoolDir: string;
  readonly endedDir: string;
  private readonly watchers = new Map<Dir, FSWatcher>();
  private readonly reopenTimers = new Map<Dir, NodeJS.Timeout>();
  private readonly busy = new Set<string>();
  private readonly waits = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly uid = process.getuid?.() ?? 0;
  private stopped = false;

  constructor(private readonly opts: PerilogSpoolOptions) {
    this.spoolDir = prologSpoolDirOf(opts.runtimeDir);
    this.endedDir = endedDirOf(opts.jobsDir);
  }

  /** The directories must exist (0700, the daemon's). Opens both watches, lists both, then writes `.nnf-envd`. */
  async start(): Promise<void> {
    this.open('ended');
    this.open('prolog');
    // Last: a script takes the fast path only once the spool is served.
    await this.announce();
  }

  /** (Re)writes `.nnf-envd`: at start, and when PROLOG_TIMEOUT changes (the scripts' watchdogs are bounded by it). */
  async announce(): Promise<void> {
    if (this.stopped) return;
    const cfg = this.opts.config();
    await writeFileAtomic(spoolDaemonFileOf(this.spoolDir), `${process.pid} ${Math.ceil(cfg.PROLOG_TIMEOUT / 1000)}\n`, { mode: 0o600, fsyncDir: false });
  }

  /** Closes the watches; waiting prologs get no answer (their script sees the daemon gone and falls back to `nnf-env prolog`). */
  async stop(): Promise<void> {
    this.stopped = true;
    await removeFileNoFollow(spoolDaemonFileOf(this.spoolDir)).catch(() => false);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    for (const t of this.reopenTimers.values()) clearTimeout(t);
    this.reopenTimers.clear();
    this.abort.abort();
    await Promise.all([...this.waits]);
  }

  private open(which: Dir): void {
    if (this.stopped) return;
    const dir = which === 'prolog' ? this.spoolDir : this.endedDir;
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        if (typeof name === 'string') this.handle(which, name);
      });
      w.on('error', (err) => {
        this.opts.logger.warn({ dir, err: errorMessage(err) }, 'watch of the perilog directory failed; reopening');
        w.close();
        this.watchers.delete(which);
        this.reopenLater(which);
      });
      this.watchers.set(which, w);
    } catch (err) {
      this.opts.logger.warn({ dir, err: errorMessage(err) }, 'cannot watch the perilog directory; reopening');
      this.reopenLater(which);
      return;
    }
    // What arrived before the watch (daemon down, or the watch was closed): level-triggered.
    void readdir(dir)
      .then((names) => {
        for (const name of names) {
          if (which === 'prolog') this.removeStaleTemp(name);
          this.handle(which, name);
        }
      })
      .catch((err: unknown) => this.opts.logger.warn({ dir, err: errorMessage(err) }, 'cannot list the perilog directory'));
  }

  /** A script killed between its mkfifo and its rename leaves `.tmp.<pid>`: removed once that pid is gone. */
  private removeStaleTemp(name: string): void {
    const m = /^\.tmp\.([1-9][0-9]{0,9})$/.exec(name);
    if (!m) return;
    void lstat(join('/proc', m[1]!))
      .then(() => undefined, () => removeFileNoFollow(join(this.spoolDir, name)))
      .catch(() => undefined);
  }

  private reopenLater(which: Dir): void {
    if (this.stopped || this.reopenTimers.has(which)) return;
    this.reopenTimers.set(which, setTimeout(() => {
      this.reopenTimers.delete(which);
      this.open(which);
    }, REOPEN_MS));
  }

  /** Every event and listed name comes here; names in progress are skipped (inotify repeats). */
  private handle(which: Dir, name: string): void {
    // Dot names: the scripts' temporary names and `.nnf-envd`.
    if (this.stopped || name.startsWith('.')) return;
    const key = `${which}/${name}`;
    if (this.busy.has(key)) return;
    this.busy.add(key);
    const done = (which === 'prolog' ? this.answerProlog(name) : this.jobEnded(name))
      .catch((err: unknown) => this.opts.logger.error({ entry: key, err: errorMessage(err) }, 'perilog spool entry failed'))
      .finally(() => {
        this.busy.delete(key);
        this.waits.delete(done);
      });
    this.waits.add(done);
  }

  // --- the epilog's markers

  private async jobEnded(name: string): Promise<void> {
    const path = join(this.endedDir, name);
    const id = canonicalJobName(name);
    if (id === undefined) {
      this.opts.logger.warn({ entry: path }, 'removed a job-end marker that is not named by a canonical job id');
      await removeFileNoFollow(path).catch(() => false);
      return;
    }
    try {
      await lstat(path);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return; // already handled
      throw err;
    }
    await this.opts.jobs.untrack(id, 'epilog (job-end marker)');
    // Last: a daemon stopped before this line finds the marker again at its next start.
    await removeFileNoFollow(path);
  }

  // --- the prolog's FIFOs

  private async answerProlog(name: string): Promise<void> {
    const path = join(this.spoolDir, name);
    const m = PROLOG_FIFO_NAME.exec(name);
    const id = m ? canonicalJobName(m[1]!) : undefined;
    const userID = m ? Number(m[2]) : NaN;
    if (!m || id === undefined || !(userID <= 4294967294)) return this.reject(path, 'not named <f58plain job id>.<uid>.<pid>');
    let st;
    try {
      st = await lstat(path);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    if (!st.isFIFO()) return this.reject(path, st.isSymbolicLink() ? 'a symbolic link' : 'not a FIFO');
    if (st.uid !== this.uid) return this.reject(path, `owned by uid ${st.uid}, not the daemon's ${this.uid}`);
    let fh: FileHandle;
    try {
      // Never blocks, never follows a link; ENXIO: nobody reads it (the script is gone).
      fh = await open(path, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') return;
      if (code === 'ENXIO') {
        this.opts.logger.debug({ entry: path }, 'prolog FIFO without a reader removed');
        await removeFileNoFollow(path).catch(() => false);
        return;
      }
      return this.reject(path, `cannot open it (${code ?? errorMessage(err)})`);
    }
    try {
      const now = await fh.stat();
      if (!now.isFIFO() || now.ino !== st.ino || now.dev !== st.dev) return await this.reject(path, 'replaced while being opened');
      // The name is done with: a re-listing never answers it twice, and nothing is left behind.
      await unlink(path).catch(() => undefined);
      const answer = await this.prologAnswer(id, userID);
      if (answer === null) return;
      await fh.write(answer).catch((err: unknown) => {
        // The prolog was killed (job canceled) or its script gave up: not an error.
        const code = errnoCode(err);
        if (code === 'EPIPE' || code === 'EAGAIN') this.opts.logger.debug({ job: formatJobId(id, 'f58plain'), code }, 'the prolog was gone before its answer');
        else throw err;
      });
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  private async reject(path: string, why: string): Promise<void> {
    this.opts.logger.warn({ entry: path, why }, 'removed a prolog spool entry that is not a prolog\'s FIFO');
    await removeFileNoFollow(path).catch(() => false);
  }

  /** Track, wait, answer: `<exit> <out|err> <line>\n`, never more than one write's worth. */
  private async prologAnswer(id: bigint, userID: number): Promise<string | null> {
    const started = performance.now();
    const cfg = this.opts.config();
    const policy = cfg.PROLOG_ON_NODE_ERROR as NodeErrorPolicy;
    let status: JobStatus | undefined;
    let outcome: PrologOutcome;
    let untracked = false;
    try {
      status = (await this.opts.jobs.track(id, userID, { hasDw: true })).status;
      if (!isFinalStatus(status)) {
        const left = cfg.PROLOG_TIMEOUT - (performance.now() - started);
        const seen = await this.opts.jobs.waitFinal(id, left, this.abort.signal);
        // Untracked meanwhile: the job ended (canceled) and its epilog ran; nobody reads this.
        if (seen === undefined) untracked = true;
        else status = seen;
      }
      if (untracked) outcome = { result: 'not waited for: the job was untracked (it ended) before its environment was final', exitCode: 0 };
      else if (isFinalStatus(status)) outcome = { result: describeFinal(status), exitCode: 0 };
      // Stopping: no answer. The script sees this process gone and asks again with `nnf-env
      // prolog`, which reaches the restarted daemon (or writes the daemon-down notice).
      else if (this.abort.signal.aborted) return null;
      else {
        outcome = timeoutOutcome(status, cfg.PROLOG_TIMEOUT, policy);
        if (policy === 'pass') {
          const notice = await writePrologTimeoutNotice({
            jobsDir: this.opts.jobsDir,
            id,
            userID,
            workflow: status.workflow ? { namespace: status.workflow.namespace, name: status.workflow.name } : null,
            phase: status.phase,
            timeoutSeconds: Math.round(cfg.PROLOG_TIMEOUT / 100) / 10,
            ...(this.opts.chown !== undefined ? { chown: this.opts.chown } : {}),
            ...(this.opts.userDb ? { userDb: this.opts.userDb } : {}),
          });
          outcome.result += `; ${notice}`;
        }
      }
    } catch (err) {
      if (this.abort.signal.aborted) return null;
      outcome = nodeErrorOutcome(errorMessage(err), policy);
    }
    const wf = workflowLabel(status, id, { namespace: cfg.WORKFLOW_NAMESPACE, template: cfg.WORKFLOW_NAME_TEMPLATE });
    return answerLine(outcome, perilogLogLine('prolog', formatJobId(id, 'f58'), wf, outcome.result, performance.now() - started));
  }
}

/**
 * Pure: the line the script reads. Control characters (a workflow's message is not ours) become
 * spaces, so it is one line that the script prints as it is, and it fits one atomic pipe write.
 */
export function answerLine(outcome: PrologOutcome, line: string): string {
  // eslint-disable-next-line no-control-regex
  let text = line.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ');
  const head = `${outcome.exitCode} ${outcome.problem ? 'err' : 'out'} `;
  while (Buffer.byteLength(head + text + '\n') > MAX_ANSWER_BYTES) text = `${text.slice(0, Math.floor(text.length * 0.9))}...`;
  return `${head}${text}\n`;
}
