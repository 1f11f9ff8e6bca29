/**
 * Where one job's files live (docs/FORMATS.md "Runtime directory"). The file name is the job id
 * re-encoded as f58plain from the decoded 64-bit value: base58 has no `/`, `.` or control
 * characters, so no input can steer a path. Callers pass a bigint, never a string they received.
 */
import { join } from 'node:path';
import { formatJobId } from './jobid.js';

export const DEFAULT_JOBS_DIR = '/run/nnf-env/jobs';

export interface JobFiles {
  /** `<jobsDir>/<f58plain>.env`: the variables, read by the shell plugin and the helper. */
  env: string;
  /** `<jobsDir>/<f58plain>.json`: the job's status (src/contract/job-status.ts). */
  status: string;
  /** The f58plain id, e.g. `fkEPGJX8vhd`. */
  name: string;
  /** `<jobsDir>/.tracked/<f58plain>`: the daemon's own record of tracking (recovery). */
  tracked: string;
}

/** The jobs directory under a runtime directory (RUNTIME_DIR/jobs). */
export function jobsDirOf(runtimeDir: string): string {
  return join(runtimeDir, 'jobs');
}

/** The daemon's control socket when SOCKET_PATH is not set (RUNTIME_DIR/nnf-envd.sock). */
export function socketPathOf(runtimeDir: string): string {
  return join(runtimeDir, 'nnf-envd.sock');
}

export function jobFiles(jobsDir: string, id: bigint): JobFiles {
  const name = formatJobId(id, 'f58plain');
  return {
    env: join(jobsDir, `${name}.env`),
    status: join(jobsDir, `${name}.json`),
    name,
    tracked: join(jobsDir, '.tracked', name),
  };
}

/**
 * `RUNTIME_DIR/jobs/.ended/`: root-only (0700) directory where the epilog script records a job's
 * end as an empty file named by its f58plain id; nnf-envd untracks the job and removes the marker
 * (docs/FORMATS.md "Perilog without Node").
 */
export function endedDirOf(jobsDir: string): string {
  return join(jobsDir, '.ended');
}

/**
 * `RUNTIME_DIR/prolog/`: root-only (0700) spool where the prolog script puts a FIFO named
 * `<f58plain>.<uid>.<pid>` and nnf-envd writes the prolog's one answer line into it.
 */
export function prologSpoolDirOf(runtimeDir: string): string {
  return join(runtimeDir, 'prolog');
}

/** `RUNTIME_DIR/prolog/.nnf-envd`: `<pid> <PROLOG_TIMEOUT in s>`, written once the spool is served. */
export function spoolDaemonFileOf(spoolDir: string): string {
  return join(spoolDir, '.nnf-envd');
}

/**
 * A spool entry's name: `<f58plain>.<uid>.<pid of the script>` (decimal, no leading zeros). The
 * pid keeps the names of two ranks of one job on one node (test instances) apart.
 */
export const PROLOG_FIFO_NAME = /^(f[1-9A-HJ-NP-Za-km-z]{1,12})\.(0|[1-9][0-9]{0,9})\.([1-9][0-9]{0,9})$/;
