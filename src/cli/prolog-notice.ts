/**
 * What the prolog leaves for the job shell when nnf-envd is down and PROLOG_ON_NODE_ERROR=pass
 * lets the job run without its variables: an env file with no variables and a `warning` fact
 * (docs/FORMATS.md "Env file"), which the shell plugin logs on this node. Without it the job
 * would start without DW_* / NNF_* variables and nobody would tell the user.
 *
 * Written only where the daemon would write (RUNTIME_DIR/jobs, which must already exist: the
 * prolog never creates the daemon's directories) and only when the job has no files yet (the
 * daemon's files always win). Owned by the job's user, 0600, atomically, like the daemon's.
 * The daemon's GC or the next epilog that reaches it removes the file as any other job file.
 *
 * Loaded only on that error path (the prolog runs on every node of every job).
 */
import { lstat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { errnoCode } from '../errors.js';
import { formatJobId } from '../flux/jobid.js';
import { writeFileAtomic } from '../node/atomic-file.js';
import { jobFiles } from '../node/job-paths.js';
import { renderNoticeEnvFile } from '../daemon/job-files-plan.js';
import { primaryGidOf, type UserDbOptions } from '../daemon/user-db.js';

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
  try {
    const dir = await lstat(input.jobsDir).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return null;
      throw err;
    });
    if (dir === null) return `job shell not warned: ${input.jobsDir} does not exist`;
    if (!dir.isDirectory()) return `job shell not warned: ${input.jobsDir} is not a directory`;
    const files = jobFiles(input.jobsDir, input.id);
    for (const path of [files.status, files.env]) {
      if (await exists(path)) return `job shell not warned: ${path} already exists`;
    }
    const host = input.host ?? hostname();
    const chown = input.chown ?? process.getuid?.() === 0;
    const owner = chown
      ? { uid: input.userID, gid: (await primaryGidOf(input.userID, input.userDb).catch(() => undefined)) ?? input.userID }
      : {};
    await writeFileAtomic(files.env, renderDaemonDownEnvFile(input.id, input.workflow, host), { mode: 0o600, ...owner });
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
