/**
 * `nnf-env prolog`: the Flux job-manager prolog (per-rank, as root, on every node of every job).
 * Asks nnf-envd to track the job (FLUX_JOB_ID in any encoding, FLUX_JOB_USERID) and waits
 * until its environment is final or PROLOG_TIMEOUT passes. One line: on stdout when all is well
 * for the node, on stderr for a node problem (perilog logs stdout at LOG_INFO, stderr at LOG_ERR).
 *
 * A failing per-rank prolog drains the node, so problems of the user's job (workflow Error,
 * unreachable ports, rejected variables, no workflow) always exit 0: the job-shell plugin tells
 * the user. Node-side problems (daemon down, socket refused, API errors, timeout) follow
 * PROLOG_ON_NODE_ERROR (`pass`: exit 0 and the job runs without its variables; `fail`: exit 1).
 * With `pass` and the daemon not running, or the job not final at PROLOG_TIMEOUT, the prolog
 * leaves the job shell a warning-only env file (../../fs/prolog-notice.ts) so that the user is told
 * on this node.
 * docs/ADMIN-FLUX.md explains the default.
 */
import { createRequire } from 'node:module';
import type { Command } from 'commander';
import type { JobStatus } from '../../contract/job-status.js';
import { parseId } from '../../contract/ids.js';

// The outcome text is shared with nnf-envd's prolog spool (the sh fast path): one piece of code.
export { describeFinal, nodeErrorOutcome, type NodeErrorPolicy, type PrologOutcome } from '../../domain/prolog-outcome.js';
import { describeFinal, isFinalStatus, nodeErrorOutcome, perilogLogLine, timeoutOutcome, workflowLabel, type NodeErrorPolicy, type PrologOutcome } from '../../domain/prolog-outcome.js';

async function prologAction(opts: { config?: string }): Promise<void> {
  const started = performance.now();
  const { line, exitCode, problem } = await runProlog({ env: process.env, configFile: opts.config, started });
  // Flux's perilog logs stderr at LOG_ERR: only node problems go there, so that `flux dmesg`
  // (and the journal's priority) shows an error only where an admin has something to do.
  // A user's failed workflow is the user's to hear about (the shell plugin), not an error here.
  const { writeLine } = await import('../write-line.js');
  writeLine(problem ? 'stderr' : 'stdout', line);
  process.exitCode = exitCode;
}

/** The plain invocation from the Flux script, without commander (see ../fast-args.ts). */
export async function fastPath(args: string[]): Promise<boolean> {
  const { simpleArgs } = await import('../fast-args.js');
  const a = simpleArgs(args, ['--config'], 0);
  if (!a) return false;
  await prologAction({ config: a.flags.get('--config') });
  return true;
}

export function command(): Command {
  // Not imported at the top: the fast path must not pay for commander.
  const { Command } = createRequire(import.meta.url)('commander') as typeof import('commander');
  return new Command('prolog')
    .description('Flux job-manager prolog: have nnf-envd track the job and wait for its environment (root)')
    .option('--config <file>', 'configuration file (default /etc/nnf-env/nnf-env.conf)')
    .action(prologAction);
}

type Env = Readonly<Record<string, string | undefined>>;

/** What prolog, epilog and the admin commands need from the configuration. */
export interface NodeSettings {
  socketPath: string;
  /** RUNTIME_DIR/jobs, where nnf-envd writes the job files. */
  jobsDir: string;
  prologTimeoutMs: number;
  onNodeError: NodeErrorPolicy;
  workflowNamespace: string;
  workflowNameTemplate: string;
}

const NODE_KEYS = ['SOCKET_PATH', 'RUNTIME_DIR', 'PROLOG_TIMEOUT', 'PROLOG_ON_NODE_ERROR', 'WORKFLOW_NAMESPACE', 'WORKFLOW_NAME_TEMPLATE'] as const;

/**
 * The configuration (file + NNF_ENV_* environment) the perilog needs: through ../light-config.ts
 * (a few keys, fast), else the full loader (which also reports any problem in the file).
 */
export async function loadNodeSettings(env: Env, configFile: string | undefined): Promise<NodeSettings> {
  const [{ loadConfigKeys }, { jobsDirOf, socketPathOf }] = await Promise.all([import('../../config/light.js'), import('../../contract/job-paths.js')]);
  // Spelled out: the schema's inferred value types are wider than what the loader guarantees.
  const c = (await loadConfigKeys(NODE_KEYS, { env, configFile })) as unknown as {
    SOCKET_PATH: string; RUNTIME_DIR: string; PROLOG_TIMEOUT: number; PROLOG_ON_NODE_ERROR: string;
    WORKFLOW_NAMESPACE: string; WORKFLOW_NAME_TEMPLATE: string;
  };
  return {
    socketPath: c.SOCKET_PATH || socketPathOf(c.RUNTIME_DIR),
    jobsDir: jobsDirOf(c.RUNTIME_DIR),
    prologTimeoutMs: c.PROLOG_TIMEOUT,
    onNodeError: c.PROLOG_ON_NODE_ERROR as NodeErrorPolicy,
    workflowNamespace: c.WORKFLOW_NAMESPACE,
    workflowNameTemplate: c.WORKFLOW_NAME_TEMPLATE,
  };
}

export interface PerilogJob {
  id: bigint;
  /** `ƒ...` for the log line (what `flux jobs` shows). */
  f58: string;
}

/** FLUX_JOB_ID in any encoding; throws a plain message for the log line. */
export async function perilogJob(env: Env): Promise<PerilogJob> {
  const text = env.FLUX_JOB_ID;
  if (text === undefined || text.trim() === '') throw new Error('FLUX_JOB_ID is not set (not run by the Flux perilog?)');
  const { parseJobId, formatJobId } = await import('../../contract/jobid.js');
  const id = parseJobId(text);
  return { id, f58: formatJobId(id, 'f58') };
}

/** Longest single long poll; the loop asks again until PROLOG_TIMEOUT. */
const LONG_POLL_MS = 5 * 60_000;

export interface PrologRun {
  env: Env;
  configFile: string | undefined;
  /** performance.now() when the command started, for the time in the log line. */
  started: number;
}

/** Runs the prolog; never throws: every failure becomes the log line and an exit code. */
export async function runProlog(run: PrologRun): Promise<{ line: string; exitCode: 0 | 1; problem: boolean }> {
  let job: PerilogJob | null = null;
  let settings: NodeSettings | null = null;
  let status: JobStatus | null = null;
  let outcome: PrologOutcome;
  try {
    job = await perilogJob(run.env);
    settings = await loadNodeSettings(run.env, run.configFile);
  } catch (err) {
    outcome = nodeErrorOutcome(messageOf(err), await policyWithoutConfig(run.env, run.configFile));
    return { line: await logLine('prolog', job, settings, status, outcome.result, run.started), exitCode: outcome.exitCode, problem: true };
  }
  try {
    const client = await import('../../api/client.js');
    const userID = parseUserId(run.env.FLUX_JOB_USERID);
    const deadline = run.started + settings.prologTimeoutMs;
    status = (await client.trackJob(settings.socketPath, job.id, userID)).status;
    while (!isFinalStatus(status)) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      status = await client.getJob(settings.socketPath, job.id, { wait: true, timeoutMs: Math.min(left, LONG_POLL_MS) });
    }
    if (isFinalStatus(status)) outcome = { result: describeFinal(status), exitCode: 0 };
    else {
      outcome = timeoutOutcome(status, settings.prologTimeoutMs, settings.onNodeError);
      // The job runs without its variables and the daemon writes no env file until delivery:
      // leave the job shell a warning, never over a file the daemon writes meanwhile.
      if (settings.onNodeError === 'pass') outcome.result += `; ${await warnJobShell(run.env, settings, job.id, { status, seconds: Math.round(settings.prologTimeoutMs / 100) / 10 })}`;
    }
  } catch (err) {
    outcome = nodeErrorOutcome(messageOf(err), settings.onNodeError);
    // The job runs without its variables: leave the job shell a warning to log. Not for other
    // errors (the daemon is up and owns the job's files) nor for `fail` (the job does not run).
    if (settings.onNodeError === 'pass' && (err as { code?: unknown } | null)?.code === 'DAEMON_UNAVAILABLE') {
      outcome.result += `; ${await warnJobShell(run.env, settings, job.id)}`;
    }
  }
  return { line: await logLine('prolog', job, settings, status, outcome.result, run.started), exitCode: outcome.exitCode, problem: outcome.problem === true };
}

/**
 * Writes the job shell's notice (../../fs/prolog-notice.ts): daemon down, or with `timedOut` the
 * timeout notice. Says what happened.
 */
async function warnJobShell(env: Env, settings: NodeSettings, id: bigint, timedOut?: { status: JobStatus; seconds: number }): Promise<string> {
  let userID: number;
  try {
    userID = parseUserId(env.FLUX_JOB_USERID);
  } catch (err) {
    return `job shell not warned: ${messageOf(err)}`;
  }
  let workflow: { namespace: string; name: string } | null = timedOut?.status.workflow
    ? { namespace: timedOut.status.workflow.namespace, name: timedOut.status.workflow.name }
    : null;
  if (!workflow) {
    try {
      const { workflowNameFor } = await import('../../domain/workflow-name.js');
      workflow = { namespace: settings.workflowNamespace, name: workflowNameFor(settings.workflowNameTemplate, id) };
    } catch {
      // the header then names no workflow
    }
  }
  const notice = await import('../../fs/prolog-notice.js');
  const input = { jobsDir: settings.jobsDir, id, userID, workflow };
  return timedOut
    ? notice.writePrologTimeoutNotice({ ...input, phase: timedOut.status.phase, timeoutSeconds: timedOut.seconds })
    : notice.writeDaemonDownNotice(input);
}

/**
 * PROLOG_ON_NODE_ERROR when the configuration as a whole could not be loaded (or there is no
 * job id): the admin's choice still counts where it can be read at all, so that `fail` is not
 * silently turned into `pass` by an unrelated typo in the file. Else the default, pass.
 */
export async function policyWithoutConfig(env: Env, configFile: string | undefined): Promise<NodeErrorPolicy> {
  try {
    const { readConfigKeys } = await import('../../config/light.js');
    const light = readConfigKeys(['PROLOG_ON_NODE_ERROR'], { env, configFile });
    if (light) return light.PROLOG_ON_NODE_ERROR as NodeErrorPolicy;
  } catch {
    // fall through
  }
  const fromEnv = env.NNF_ENV_PROLOG_ON_NODE_ERROR?.trim().toLowerCase();
  if (fromEnv === 'fail' || fromEnv === 'pass') return fromEnv;
  try {
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(configFile || env.NNF_ENV_CONFIG || '/etc/nnf-env/nnf-env.conf', 'utf8');
    const matches = [...text.matchAll(/^[ \t]*(?:export[ \t]+)?PROLOG_ON_NODE_ERROR[ \t]*=[ \t]*['"]?(pass|fail)\b/gim)];
    const last = matches.at(-1)?.[1]?.toLowerCase();
    if (last === 'fail' || last === 'pass') return last;
  } catch {
    // no readable file: the default
  }
  return 'pass';
}

function parseUserId(text: string | undefined): number {
  const n = parseId(text);
  if (n === undefined) throw new Error(`FLUX_JOB_USERID ${JSON.stringify(text ?? null)} is not a user id (0 to 4294967294)`);
  return n;
}

export function messageOf(err: unknown): string {
  const e = err as { describe?: () => string; message?: string } | null;
  if (e && typeof e.describe === 'function') return e.describe();
  if (e && typeof e.message === 'string') return e.message;
  return String(err);
}

/** `nnf-env prolog: job ƒX workflow ns/name <result> in <ms>ms` */
export async function logLine(
  which: 'prolog' | 'epilog',
  job: PerilogJob | null,
  settings: NodeSettings | null,
  status: JobStatus | null,
  result: string,
  started: number,
): Promise<string> {
  const wf = job ? workflowLabel(status, job.id, settings ? { namespace: settings.workflowNamespace, template: settings.workflowNameTemplate } : null) : '-';
  return perilogLogLine(which, job?.f58 ?? null, wf, result, performance.now() - started);
}
