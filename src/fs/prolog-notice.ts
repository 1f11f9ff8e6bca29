/**
 * What the prolog leaves for the job shell when PROLOG_ON_NODE_ERROR=pass lets the job run
 * without its variables: an env file with no variables and a `warning` fact (docs/FORMATS.md
 * "Env file"), which the shell plugin logs on this node. Without it the job would start without
 * DW_* / NNF_* variables and nobody would tell the user. Two cases:
 * - nnf-envd is down (no status file will come): `phase=node-error`;
 * - the daemon is up but PROLOG_TIMEOUT passed before the job was final: the phase the daemon
 *   reported (`waiting`, `probing`). A `warning`, not a `job-warning`: each node's prolog times
 *   out on its own, and a job-warning is logged by rank 0 only, so a timeout on any other node
 *   (rank 0's node delivered in time) would go unsaid. When all nodes time out, each logs one
 *   line naming its host.
 *
 * Written only where the daemon would write (RUNTIME_DIR/jobs, which must already exist: the
 * prolog never creates the daemon's directories) and only when the job has no env file yet
 * (the daemon's files always win: daemon down also requires no status file). Published with
 * link(2) (writeFileNoClobber), never over a file the daemon wrote meanwhile; the daemon's own
 * write later replaces the notice. Owned by the job's user, 0600, like the daemon's files.
 * The daemon's GC or the next epilog that reaches it removes the file as any other job file.
 *
 * Loaded only on that error path (the prolog runs on every node of every job).
 */
import { lstat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { errnoCode } from '../core/errors.js';
import { formatJobId } from '../contract/jobid.js';
import { writeFileNoClobber } from './atomic-file.js';
import { jobFiles } from '../contract/job-paths.js';
import { renderNoticeEnvFile } from '../domain/delivery-plan.js';
import { primaryGidOf, type UserDbOptions } from './user-db.js';

/** The phase fact of such a file: not a JobPhase (there is no status file), informational. */
export const NODE_ERROR_PHASE = 'node-error';

/** Pure: the text the shell plugin logs on this node. */
export function daemonDownWarning(host: string): string {
  return `nnf-envd was not running on ${host} when the job started: DW_*/NNF_* variables are not set on this node (ask your admin: systemctl status nnf-envd)`;
}

/** Pure: the file's text. */
export function renderDaemonDownEnvFile(id: bigint, workflow: { namespace: string; name: string } | null, host: string): string {
  return renderNoticeEnvFile({ id: formatJobId(id, 'f58plain') }, workflow, {
    phase: NODE_ERROR_PHASE,
    warning: daemonDownWarning(host),
  });
}

/** Pure: the text the shell plugin logs on this node when the prolog timed out. */
export function prologTimeoutWarning(workflow: { namespace: string; name: string } | null, timeoutSeconds: number, host: string): string {
  const wf = workflow ? `workflow ${workflow.namespace}/${workflow.name}` : 'the job\'s workflow';
  return `${wf} had not finished PreRun when the job started on ${host} (nnf-env prolog gave up after ${timeoutSeconds}s): DW_*/NNF_* variables are not set on this node; run "nnf-env wait" in the job, then eval "$(nnf-env export)"`;
}

/** Pure: the file's text; `phase` is the daemon's (waiting, probing). */
export function renderPrologTimeoutEnvFile(
  id: bigint,
  workflow: { namespace: string; name: string } | null,
  phase: string,
  timeoutSeconds: number,
  host: string,
): string {
  return renderNoticeEnvFile({ id: formatJobId(id, 'f58plain') }, workflow, {
    phase,
    warning: prologTimeoutWarning(workflow, timeoutSeconds, host),
  });
}

export interface DaemonDownNoticeInput {
  jobsDir: string;
  id: bigint;
  userID: number;
  workflow: { namespace: string; name: string } | null;
  /** Default: this host's name. */
  host?: string;
  /** chown to the job's user. Default: when running as root. */
  chown?: boolean;
  userDb?: UserDbOptions;
}

/**
 * Writes the file when it should be written. Never throws: answers what happened, for the
 * prolog's log line (`job shell warned (<path>)`, or why not).
 */
export async function writeDaemonDownNotice(input: DaemonDownNoticeInput): Promise<string> {
  const host = input.host ?? hostname();
  return writeNotice(input, 'daemon-down', renderDaemonDownEnvFile(input.id, input.workflow, host));
}

export interface PrologTimeoutNoticeInput extends DaemonDownNoticeInput {
  /** The phase the daemon last reported. */
  phase: string;
  timeoutSeconds: number;
}

/**
 * The timeout notice, when it should be written (the daemon's status file exists then: only
 * an env file stops it). Never throws; answers what happened, as writeDaemonDownNotice.
 */
export async function writePrologTimeoutNotice(input: PrologTimeoutNoticeInput): Promise<string> {
  const host = input.host ?? hostname();
  return writeNotice(input, 'timeout', renderPrologTimeoutEnvFile(input.id, input.workflow, input.phase, input.timeoutSeconds, host));
}

async function writeNotice(input: DaemonDownNoticeInput, why: 'daemon-down' | 'timeout', text: string): Promise<string> {
  try {
    const dir = await lstat(input.jobsDir).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return null;
      throw err;
    });
    if (dir === null) return `job shell not warned: ${input.jobsDir} does not exist`;
    if (!dir.isDirectory()) return `job shell not warned: ${input.jobsDir} is not a directory`;
    const files = jobFiles(input.jobsDir, input.id);
    // Daemon down: a status file means the daemon ran for this job after all; leave it be.
    const mustBeAbsent = why === 'daemon-down' ? [files.status, files.env] : [files.env];
    for (const path of mustBeAbsent) {
      if (await exists(path)) return `job shell not warned: ${path} already exists`;
    }
    const chown = input.chown ?? process.getuid?.() === 0;
    const owner = chown
      ? { uid: input.userID, gid: (await primaryGidOf(input.userID, input.userDb).catch(() => undefined)) ?? input.userID }
      : {};
    // No-clobber: the daemon may write the env file at any moment; its file wins.
    if (!(await writeFileNoClobber(files.env, text, { mode: 0o600, ...owner }))) {
      return `job shell not warned: ${files.env} already exists`;
    }
    return `job shell warned (${files.env})`;
  } catch (err) {
    return `job shell not warned: ${(err as Error)?.message ?? String(err)}`;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}
