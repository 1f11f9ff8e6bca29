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
