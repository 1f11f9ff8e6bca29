/**
 * Test helpers for the job-script commands: job files written with the daemon's own code
 * (renderEnvFile + writeFileAtomic) into temp runtime directories, and the built CLI run as
 * a subprocess, the way a job script runs it.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, rm, chmod, chown } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderEnvFile, statusFacts } from '../../src/contract/env-file.js';
import { writeFileAtomic } from '../../src/fs/atomic-file.js';
import { jobFiles } from '../../src/contract/job-paths.js';
import { formatJobId } from '../../src/contract/jobid.js';
import type { JobStatus } from '../../src/contract/job-status.js';
import { nnfEnvBin } from '../helpers/paths.js';

export interface Sandbox {
  root: string;
  runtimeDir: string;
  jobsDir: string;
  /** An empty config file, so that no test reads /etc/nnf-env/nnf-env.conf. */
  configFile: string;
  cleanup(): Promise<void>;
}

export async function makeSandbox(): Promise<Sandbox> {
  const root = await mkdtemp(join(tmpdir(), 'nnf-env-cli-'));
  const runtimeDir = join(root, 'run');
  const jobsDir = join(runtimeDir, 'jobs');
  await mkdir(jobsDir, { recursive: true });
  // As the daemon lays it out: traversable, not listable.
  await chmod(root, 0o755);
  await chmod(runtimeDir, 0o755);
  await chmod(jobsDir, 0o711);
  const configFile = join(root, 'nnf-env.conf');
  await writeFile(configFile, '# test\n');
  return { root, runtimeDir, jobsDir, configFile, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export function statusFor(id: bigint, over: Partial<JobStatus> = {}, vars: Record<string, string> = {}): JobStatus {
  const dec = id.toString();
  return {
    version: 1,
    job: { id: formatJobId(id, 'f58plain'), dec, userID: 1050 },
    workflow: { namespace: 'default', name: `fluxjob-${dec}`, uid: 'uid-1', state: 'PreRun', ready: true, status: 'Completed', message: '' },
    phase: 'delivered',
    error: null,
    variables: Object.keys(vars).sort(),
    rejected: [],
    rabbit: { name: 'rabbit-node-1', address: '127.0.0.1' },
    ports: null,
    timings: { trackedAt: new Date().toISOString() },
    ...over,
  };
}

export interface WriteJobOptions {
  vars?: Record<string, string>;
  status?: Partial<JobStatus>;
  /** Write the status file (default true). */
  statusFile?: boolean;
  /** Write the env file (default true). */
  envFile?: boolean;
  uid?: number;
  gid?: number;
}

/** Writes a job's files as nnf-envd does: env first, then status, each atomically, mode 0600. */
export async function writeJob(jobsDir: string, id: bigint, opts: WriteJobOptions = {}): Promise<{ env: string; status: string }> {
  const paths = jobFiles(jobsDir, id);
  const vars = opts.vars ?? {};
  const status = statusFor(id, opts.status, vars);
  const owner = { uid: opts.uid, gid: opts.gid };
  if (opts.envFile !== false) {
    const header = `nnf-env: job ${paths.name} workflow ${status.workflow?.namespace}/${status.workflow?.name} (generated, do not edit)`;
    await writeFileAtomic(paths.env, renderEnvFile(vars, header, statusFacts(status)), { mode: 0o600, ...owner, fsyncDir: false });
  }
  if (opts.statusFile !== false) {
    await writeFileAtomic(paths.status, JSON.stringify(status, null, 2) + '\n', { mode: 0o600, ...owner, fsyncDir: false });
  }
  return { env: paths.env, status: paths.status };
}

export async function chownJob(jobsDir: string, id: bigint, uid: number, gid: number): Promise<void> {
  const paths = jobFiles(jobsDir, id);
  for (const p of [paths.env, paths.status]) await chown(p, uid, gid).catch(() => undefined);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunCliOptions {
  env?: Record<string, string | undefined>;
  uid?: number;
  gid?: number;
  /** Kill after this long (a hung command fails the test instead of hanging it). */
  timeoutMs?: number;
  onSpawn?: (pid: number) => void;
  /** Each chunk of standard output as it arrives. */
  onStdout?: (chunk: string) => void;
}

/** A clean environment: nothing from the test runner's FLUX_ / NNF_ENV_ variables leaks in. */
export function baseEnv(sandbox: Sandbox, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: sandbox.root,
    LANG: 'C.UTF-8',
    NNF_ENV_RUNTIME_DIR: sandbox.runtimeDir,
    NNF_ENV_CONFIG: sandbox.configFile,
    ...extra,
  };
}

export function runCli(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.env ?? {})) if (v !== undefined) env[k] = v;
    const child = spawn(process.execPath, [nnfEnvBin, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
      ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
    });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      opts.onStdout?.(d);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Runs a shell script (bash or dash) with the given environment; returns its output. */
export function runShell(shell: string, script: string, env: Record<string, string | undefined>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
    const child = spawn(shell, ['-c', script], { env: clean, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
