/**
 * `nnf-env check-ports [--timeout DUR]`: probe the job's container ports now, from this process
 * (this node, this user), print a table, exit 1 if any port is unreachable. The daemon's own
 * probe result (`nnf-env show`) is from the daemon at delivery time; this one is here and now.
 */
import { Command } from 'commander';
import { NnfEnvError } from '../../core/errors.js';
import type { JobStatus, PortResult } from '../../contract/job-status.js';
import { exitCodesHelp } from '../exit-codes.js';

export class PortsUnreachableError extends NnfEnvError {
  readonly exitCode = 1;
  constructor(target: string, ports: number[]) {
    super('PORTS_UNREACHABLE', `port${ports.length > 1 ? 's' : ''} ${ports.join(', ')} on ${target} did not accept a connection`, {
      hint: 'the user container may still be starting, or may have failed: see flux job eventlog; retry with a longer --timeout',
    });
  }
}

export class NoPortsError extends NnfEnvError {
  readonly exitCode = 1;
  constructor(job: string) {
    super('NO_PORTS', `job ${job} has no container ports (NNF_CONTAINER_PORTS is not set)`, {
      hint: 'only jobs with a #DW container directive have ports',
    });
  }
}

export interface ProbePlan {
  /** What to connect to: an address when one is known, else a host name. */
  host: string;
  /** For messages: `rabbit-node-1 (10.0.0.1)`. */
  label: string;
  ports: number[];
}

/**
 * Where the job's container listens, as seen from this node: the MPI launcher when there is
 * one (only it listens), else this node's rabbit. Prefer the address the daemon resolved, so
 * that the probe needs no lookup and cannot hit the localhost-is-::1 trap.
 */
export function probePlan(variables: Map<string, string>, status: JobStatus | null, parsePorts: (s: string) => number[]): ProbePlan {
  const portsText = variables.get('NNF_CONTAINER_PORTS') ?? '';
  const ports = portsText.trim() === '' ? [] : parsePorts(portsText);
  const launcher = variables.get('NNF_CONTAINER_LAUNCHER');
  let name: string | undefined;
  let address: string | undefined;
  if (launcher) {
    name = launcher;
    if (status?.ports?.target === launcher && status.ports.address) address = status.ports.address;
  } else {
    name = variables.get('NNF_ENV_CONTAINER_TARGET') || variables.get('NNF_ENV_LOCAL_RABBIT') || status?.rabbit?.name || undefined;
    address = variables.get('NNF_ENV_LOCAL_RABBIT_ADDRESS') || status?.rabbit?.address || undefined;
  }
  const host = address ?? name ?? 'local-rabbit';
  const label = address && name && address !== name ? `${name} (${address})` : host;
  return { host, label, ports };
}

export interface ProbeOptions {
  deadlineMs: number;
  signal?: AbortSignal;
}

/** Probes with the shared prober; attempts are short so that a slow start is retried. */
export async function probeNow(plan: ProbePlan, opts: ProbeOptions): Promise<PortResult[]> {
  const { probePorts } = await import('../../net/port-probe.js');
  const results = await probePorts({
    host: plan.host,
    ports: plan.ports,
    attemptTimeoutMs: Math.max(10, Math.min(2000, opts.deadlineMs)),
    deadlineMs: opts.deadlineMs,
    backoffInitialMs: 100,
    backoffMaxMs: 1000,
    signal: opts.signal,
  });
  return results as PortResult[];
}

export function unreachablePorts(results: readonly PortResult[]): number[] {
  return results.filter((r) => !r.reachable).map((r) => r.port);
}

export async function renderPortTable(results: readonly PortResult[]): Promise<string> {
  const { formatTable } = await import('../table.js');
  return formatTable(
    ['PORT', 'REACHABLE', 'ATTEMPTS', 'FIRST SUCCESS', 'LAST ERROR'],
    results.map((r) => [
      String(r.port),
      r.reachable ? 'yes' : 'NO',
      String(r.attempts),
      r.timeToFirstSuccessMs === null ? '-' : `${r.timeToFirstSuccessMs} ms`,
      r.lastError ?? '-',
    ]),
  );
}

export function command(): Command {
  return new Command('check-ports')
    .description('probe the job\'s container ports from here, now; exit 1 if any is unreachable')
    .option('--job <id>', 'job id (default: $NNF_ENV_JOB_ID, the job whose variables the environment holds, else $FLUX_JOB_ID)')
    .option('--timeout <duration>', 'keep trying each port this long', '5s')
    .option('--json', 'print the results as JSON')
    .addHelpText('after', '\n' + exitCodesHelp({ 0: 'all reachable', 1: 'some unreachable or no ports' }))
    .action(async (opts: { job?: string; timeout: string; json?: boolean }) => {
      const ctx = await import('../job-context.js');
      const deadlineMs = await ctx.parseDurationMs(opts.timeout);
      const job = await ctx.loadDeliveredJob(opts.job);
      const { parsePortList } = await import('../../contract/port-list.js');
      const plan = probePlan(job.variables, job.status, parsePortList);
      if (plan.ports.length === 0) throw new NoPortsError(job.ref.name);
      const results = await probeNow(plan, { deadlineMs });
      if (opts.json) process.stdout.write(JSON.stringify({ target: plan.host, results }, null, 2) + '\n');
      else process.stdout.write(`ports on ${plan.label}\n` + (await renderPortTable(results)));
      const bad = unreachablePorts(results);
      if (bad.length > 0) throw new PortsUnreachableError(plan.label, bad);
    });
}
