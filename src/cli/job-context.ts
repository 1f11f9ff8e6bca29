/**
 * What every job-script command (`export`, `get`, `show`, `wait`, `check-ports`, `endpoint`,
 * `run`) shares: which job, where its files are, reading them, and the errors that tell a
 * user what happened. These commands run as the job's user, often many times per job script:
 * they need no daemon and load nothing they do not use (no config file unless needed, no
 * pino/undici/yaml).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NnfEnvError, errnoCode } from '../core/errors.js';
import { parseJobId, formatJobId } from '../contract/jobid.js';
import { jobFiles, jobsDirOf } from '../contract/job-paths.js';
import { parseEnvFileWithFacts, type EnvFileFact } from '../contract/env-file.js';
import type { JobStatus } from '../contract/job-status.js';

// ---------------------------------------------------------------- errors (exit codes are stable)

export { EXIT } from './exit-codes.js';
import { EXIT } from './exit-codes.js';

export class JobContextError extends NnfEnvError {
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode: number, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options);
    this.exitCode = exitCode;
  }
}

export class NoJobIdError extends JobContextError {
  constructor() {
    super('NO_JOB_ID', 'no job id: not inside a Flux job (FLUX_JOB_ID is not set)', EXIT.USAGE, {
      hint: 'run this inside a job, or pass --job ID, or set NNF_ENV_JOB_ID',
    });
  }
}

export class BadJobIdError extends JobContextError {
  constructor(source: string, text: string, cause: unknown) {
    super('BAD_JOB_ID', `${source}=${JSON.stringify(text)} is not a Flux job id`, EXIT.USAGE, {
      hint: 'use any Flux job id form, e.g. ƒ2Xk8Hj4C1V, f2Xk8Hj4C1V or 321103304048246784',
      cause,
    });
  }
}

export class NoWorkflowError extends JobContextError {
  constructor(job: string, detail: string) {
    super('NO_WORKFLOW', `job ${job} has no workflow: ${detail}`, EXIT.NO_WORKFLOW, {
      hint: 'only jobs submitted with #DW directives get nnf-env variables',
    });
  }
}

export class NoJobFilesError extends JobContextError {
  constructor(job: string, jobsDir: string) {
    super('NO_JOB_FILES', `no nnf-env variables for job ${job} on this node (nothing in ${jobsDir})`, EXIT.NO_WORKFLOW, {
      hint: 'the job has no #DW directives, or this node is not one of its nodes, or the Flux prolog is not set up: an admin can run nnf-env doctor',
    });
  }
}

export class NotDeliveredError extends JobContextError {
  constructor(job: string, detail: string) {
    super('NOT_DELIVERED', `the variables of job ${job} are not delivered yet (${detail})`, EXIT.NOT_DELIVERED, {
      hint: 'nnf-env wait --timeout 10m',
    });
  }
}

export class WorkflowFailedError extends JobContextError {
  constructor(job: string, workflow: string, message: string) {
    super('WORKFLOW_FAILED', `the workflow ${workflow} of job ${job} failed: ${message}`, EXIT.WORKFLOW_FAILED, {
      hint: 'the job\'s storage or containers could not be set up; see flux job eventlog and the workflow\'s status.message',
    });
  }
}

/** The prolog found nnf-envd down and left only a warning (src/fs/prolog-notice.ts). */
export class NodeNotSetUpError extends JobContextError {
  constructor(job: string, detail: string) {
    super('NODE_ERROR', `no nnf-env variables for job ${job} on this node: ${detail}`, EXIT.FAILURE, {
      hint: 'the job started while nnf-envd was not running here; an admin can run nnf-env doctor',
    });
  }
}

export class JobAccessError extends JobContextError {
  constructor(job: string, path: string, cause: unknown) {
    super('PERMISSION_DENIED', `permission denied reading ${path}: job ${job} belongs to another user`, EXIT.PERMISSION, {
      hint: 'a job\'s variables are readable only by the job\'s own user (and root)',
      cause,
    });
  }
}

export class CorruptJobFileError extends JobContextError {
  constructor(path: string, detail: string) {
    super('CORRUPT_JOB_FILE', `cannot read ${path}: ${detail}`, EXIT.FAILURE, {
      hint: 'nnf-envd rewrites it on the next change; an admin can check nnf-env status',
    });
  }
}

export class BadDurationError extends JobContextError {
  constructor(option: string, text: string) {
    super('BAD_DURATION', `${option} ${JSON.stringify(text)} is not a duration`, EXIT.USAGE, {
      hint: 'use e.g. 30s, 5m, 1h, 250ms or plain seconds',
    });
  }
}

// ---------------------------------------------------------------- which job

export type JobIdSource = '--job' | 'FLUX_JOB_ID' | 'NNF_ENV_JOB_ID';

export interface JobRef {
  id: bigint;
  /** f58plain: the file name stem and what messages show. */
  name: string;
  source: JobIdSource;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Job id from `--job`, else NNF_ENV_JOB_ID, else FLUX_JOB_ID, in any Flux encoding.
 * NNF_ENV_JOB_ID first: it names the job whose variables this environment holds (the env file
 * sets it). In a `flux run` step of a batch job, or a nested `flux alloc`, FLUX_JOB_ID is the
 * step's id in the sub-instance, which has no nnf-env files, while the inherited variables and
 * NNF_ENV_JOB_ID are those of the allocation.
 */
export function resolveJobRef(flag: string | undefined, env: Env = process.env): JobRef {
  const candidates: Array<[JobIdSource, string | undefined]> = [
    ['--job', flag],
    ['NNF_ENV_JOB_ID', env.NNF_ENV_JOB_ID],
    ['FLUX_JOB_ID', env.FLUX_JOB_ID],
  ];
  for (const [source, text] of candidates) {
    if (text === undefined || text.trim() === '') continue;
    let id: bigint;
    try {
      id = parseJobId(text);
    } catch (err) {
      throw new BadJobIdError(source, text, err);
    }
    return { id, name: formatJobId(id, 'f58plain'), source };
  }
  throw new NoJobIdError();
}

// ---------------------------------------------------------------- where its files are

/**
 * The jobs directory, as cheaply as possible: NNF_ENV_JOBS_DIR, else RUNTIME_DIR/jobs with
 * RUNTIME_DIR from NNF_ENV_RUNTIME_DIR or the config file read by ./light-config.ts, and only
 * when that cannot answer, from the full config loader (which costs as much again as the whole
 * command; bench/commands.ts measures both).
 */
export async function resolveJobsDir(env: Env = process.env): Promise<string> {
  if (env.NNF_ENV_JOBS_DIR) return env.NNF_ENV_JOBS_DIR;
  // The common override, without loading even the schema.
  const rd = env.NNF_ENV_RUNTIME_DIR?.trim();
  if (rd && rd.startsWith('/') && !/[\u0000-\u001f\u007f]/.test(rd)) return jobsDirOf(rd);
  const { loadConfigKeys } = await import('../config/light.js');
  return jobsDirOf((await loadConfigKeys(['RUNTIME_DIR'], { env })).RUNTIME_DIR);
}

// ---------------------------------------------------------------- reading the files

export interface JobFilesRead {
  ref: JobRef;
  jobsDir: string;
  envPath: string;
  statusPath: string;
  /** null when the file does not exist. */
  status: JobStatus | null;
  /** The env file's variables, null when the file does not exist. */
  variables: Map<string, string> | null;
  /** The env file's fact lines (phase, warnings), null when the file does not exist. */
  facts?: EnvFileFact[] | null;
}

function readOptional(path: string, ref: JobRef): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    if (code === 'EACCES' || code === 'EPERM') throw new JobAccessError(ref.name, path, err);
    throw err;
  }
}

/** The status JSON of a job, or null when it does not exist (yet). */
export function readJobStatus(statusPath: string, ref: JobRef): JobStatus | null {
  const text = readOptional(statusPath, ref);
  if (text === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CorruptJobFileError(statusPath, `not JSON (${(err as Error).message})`);
  }
  const phase = (parsed as { phase?: unknown } | null)?.phase;
  if (typeof phase !== 'string') throw new CorruptJobFileError(statusPath, 'no "phase"');
  return parsed as JobStatus;
}

/** Reads both files of a job (status first: it decides; the env file is older or as new). */
export function readJobFiles(jobsDir: string, ref: JobRef, opts: { env?: boolean } = {}): JobFilesRead {
  const paths = jobFiles(jobsDir, ref.id);
  const status = readJobStatus(paths.status, ref);
  let variables: Map<string, string> | null = null;
  let facts: EnvFileFact[] | null = null;
  if (opts.env !== false) {
    const text = readOptional(paths.env, ref);
    if (text !== null) ({ variables, facts } = parseVariables(text, paths.env));
  }
  return { ref, jobsDir, envPath: paths.env, statusPath: paths.status, status, variables, facts };
}

function parseVariables(text: string, path: string): { variables: Map<string, string>; facts: EnvFileFact[] } {
  try {
    const parsed = parseEnvFileWithFacts(text, path);
    return { variables: new Map(Object.entries(parsed.vars)), facts: parsed.facts };
  } catch (err) {
    if (err instanceof NnfEnvError) throw new CorruptJobFileError(path, err.message);
    throw err;
  }
}

export function workflowLabel(status: JobStatus | null): string {
  const wf = status?.workflow;
  return wf ? `${wf.namespace}/${wf.name}` : '(unknown workflow)';
}

/**
 * The prolog's daemon-down notice (env file `phase=node-error`, no status file): no status file
 * ever comes with it, so the error that says what it says; else null. Pure.
 */
export function nodeNotSetUp(files: Pick<JobFilesRead, 'ref' | 'status' | 'facts'>): NodeNotSetUpError | null {
  if (files.status !== null || !files.facts?.some((f) => f.key === 'phase' && f.value === 'node-error')) return null;
  const said = files.facts.filter((f) => f.key === 'warning').map((f) => f.value);
  return new NodeNotSetUpError(files.ref.name, said.join('; ') || 'nnf-envd was not running when the job started');
}

/**
 * The decision every variable-reading command makes: the variables when the job's environment
 * is final, else the error that says why not. Pure: tested without files.
 */
export function deliveredVariables(files: Pick<JobFilesRead, 'ref' | 'jobsDir' | 'status' | 'variables' | 'facts'>): Map<string, string> {
  const { ref, status, variables } = files;
  if (status === null) {
    const notSetUp = nodeNotSetUp(files);
    if (notSetUp) throw notSetUp;
    // The env file is written before the status file: alone, it is a write in progress.
    if (variables !== null) throw new NotDeliveredError(ref.name, 'files are being written');
    throw new NoJobFilesError(ref.name, files.jobsDir);
  }
  switch (status.phase) {
    case 'delivered':
    case 'probing': // variables are final; only the port check is still running
      if (variables === null) throw new NotDeliveredError(ref.name, `phase ${status.phase}, but the env file is missing`);
      return variables;
    case 'failed':
      throw new WorkflowFailedError(ref.name, workflowLabel(status), status.error?.message || status.workflow?.message || 'no message');
    case 'no-workflow':
      throw new NoWorkflowError(ref.name, `no ${workflowLabel(status)}`);
    case 'waiting':
    default: {
      const wf = status.workflow;
      const where = wf?.state ? `, workflow ${workflowLabel(status)} in ${wf.state}${wf.ready ? ' (ready)' : ''}` : '';
      throw new NotDeliveredError(ref.name, `phase ${status.phase}${where}`);
    }
  }
}

/** The common front half of a job-script command: the job, its files, its final variables. */
export async function loadDeliveredJob(flag: string | undefined, env: Env = process.env): Promise<JobFilesRead & { variables: Map<string, string> }> {
  const ref = resolveJobRef(flag, env);
  const jobsDir = await resolveJobsDir(env);
  const files = readJobFiles(jobsDir, ref);
  const variables = deliveredVariables(files);
  return { ...files, variables };
}

// ---------------------------------------------------------------- options

/** `--timeout` values: '30s', '5m', '250ms', '1h30m' or plain seconds, to milliseconds. */
export async function parseDurationMs(text: string, option = '--timeout'): Promise<number> {
  const { parseDuration } = await import('../config/duration.js');
  const ms = parseDuration(text);
  if (ms === null) throw new BadDurationError(option, text);
  return ms;
}
