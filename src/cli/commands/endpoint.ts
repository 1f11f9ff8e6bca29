/**
 * `nnf-env endpoint [--container NAME] [--all] [--hostname|--address]`: `host:port` lines to
 * reach the job's user container from this node, e.g. `curl http://$(nnf-env endpoint)/`.
 *
 * Host: the MPI launcher's rabbit when the workflow has one (only it listens); else this
 * node's rabbit by its real name, the name the user container's TLS certificate carries
 * (copy-offload clients verify it strictly). `--alias` gives the hosts alias instead
 * (`local-rabbit`, written by nnf-envd; `$NNF_ENV_HOSTS_ALIASES` names another), which no
 * certificate names; `--address` its IP (IPv6 in brackets).
 */
import { Command } from 'commander';
import { NnfEnvError } from '../../core/errors.js';
import type { JobStatus } from '../../contract/job-status.js';
import { exitCodesHelp } from '../exit-codes.js';

export class EndpointError extends NnfEnvError {
  readonly exitCode = 1;
}

export type HostForm = 'alias' | 'hostname' | 'address';

export interface EndpointRequest {
  container?: string;
  all?: boolean;
  form: HostForm;
  /** The alias for `form: 'alias'`. */
  alias: string;
}

/** The `host:port` lines; pure, so every branch is tested without a job. */
export function endpoints(
  job: string,
  variables: Map<string, string>,
  status: JobStatus | null,
  req: EndpointRequest,
  deps: { parsePorts: (s: string) => number[]; formatHostPort: (host: string, port: number) => string },
): string[] {
  const portsVar = req.container ? `NNF_CONTAINER_PORTS_${req.container.replace(/-/g, '_')}` : 'NNF_CONTAINER_PORTS';
  const portsText = variables.get(portsVar);
  if (portsText === undefined || portsText.trim() === '') {
    if (req.container) {
      const known = [...variables.keys()].filter((k) => k.startsWith('NNF_CONTAINER_PORTS_')).map((k) => k.slice('NNF_CONTAINER_PORTS_'.length));
      throw new EndpointError('NO_SUCH_CONTAINER', `job ${job} has no container ${JSON.stringify(req.container)} (${portsVar} is not set)`, {
        hint: known.length ? `containers of this job: ${known.join(', ')} (- and _ are the same)` : 'this job has no container ports',
      });
    }
    throw new EndpointError('NO_PORTS', `job ${job} has no container ports (NNF_CONTAINER_PORTS is not set)`, {
      hint: 'only jobs with a #DW container directive have an endpoint',
    });
  }
  const ports = deps.parsePorts(portsText);
  const host = endpointHost(job, variables, status, req);
  return (req.all ? ports : ports.slice(0, 1)).map((p) => deps.formatHostPort(host, p));
}

function endpointHost(job: string, variables: Map<string, string>, status: JobStatus | null, req: EndpointRequest): string {
  const launcher = variables.get('NNF_CONTAINER_LAUNCHER');
  if (launcher) {
    if (req.form === 'address') {
      if (status?.ports?.target === launcher && status.ports.address) return status.ports.address;
      throw new EndpointError('NO_ADDRESS', `the address of the MPI launcher ${launcher} of job ${job} is not known here`, {
        hint: 'use the name (without --address)',
      });
    }
    return launcher;
  }
  if (req.form === 'alias') return req.alias;
  if (req.form === 'hostname') {
    const name = variables.get('NNF_ENV_CONTAINER_TARGET') || variables.get('NNF_ENV_LOCAL_RABBIT');
    if (name) return name;
  } else {
    const address = variables.get('NNF_ENV_LOCAL_RABBIT_ADDRESS');
    if (address) return address;
  }
  throw new EndpointError('NO_RABBIT', `this node's rabbit is not known for job ${job} (NNF_ENV_LOCAL_RABBIT${req.form === 'address' ? '_ADDRESS' : ''} is not set)`, {
    hint: `use the alias (nnf-env endpoint --alias); an admin can check nnf-env status`,
  });
}

export function command(): Command {
  return new Command('endpoint')
    .description('print host:port of the job\'s user container, e.g. curl http://$(nnf-env endpoint)/')
    .option('--job <id>', 'job id (default: $NNF_ENV_JOB_ID, the job whose variables the environment holds, else $FLUX_JOB_ID)')
    .option('--container <name>', 'ports of this container (NNF_CONTAINER_PORTS_<name>)')
    .option('--all', 'one line per port (default: the first port only)')
    .option('--hostname', 'the rabbit\'s host name, as TLS certificates of user containers name it (the default)')
    .option('--alias', 'the local-rabbit hosts alias instead (plain TCP or HTTP only: no certificate names it)')
    .option('--address', 'use the rabbit\'s IP address (IPv6 in brackets)')
    .addHelpText('after', '\nMPI containers listen only on the launcher (NNF_CONTAINER_LAUNCHER), which is then the host.\n' + exitCodesHelp({ 0: 'ok', 1: 'no ports/container/rabbit' }))
    .action(async (opts: { job?: string; container?: string; all?: boolean; hostname?: boolean; alias?: boolean; address?: boolean }) => {
      if ([opts.hostname, opts.alias, opts.address].filter(Boolean).length > 1) throw new EndpointError('BAD_OPTIONS', '--hostname, --alias and --address exclude each other');
      const ctx = await import('../job-context.js');
      const job = await ctx.loadDeliveredJob(opts.job);
      const [{ parsePortList }, { formatHostPort }] = await Promise.all([import('../../contract/port-list.js'), import('../../contract/address.js')]);
      const alias = (process.env.NNF_ENV_HOSTS_ALIASES ?? '').split(',').map((s) => s.trim()).find((s) => s !== '') ?? 'local-rabbit';
      const lines = endpoints(job.ref.name, job.variables, job.status, {
        container: opts.container,
        all: opts.all,
        form: opts.address ? 'address' : opts.alias ? 'alias' : 'hostname',
        alias,
      }, { parsePorts: parsePortList, formatHostPort });
      process.stdout.write(lines.join('\n') + '\n');
    });
}
