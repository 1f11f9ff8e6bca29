/** `nnf-env show [--json]`: what nnf-env knows about the job: phase, variables, port results. */
import { Command } from 'commander';
import type { JobStatus, PortResult } from '../../contract/job-status.js';

export function command(): Command {
  return new Command('show')
    .description('show the job\'s nnf-env state: phase, variables and port results')
    .option('--job <id>', 'job id (default: $NNF_ENV_JOB_ID, the job whose variables the environment holds, else $FLUX_JOB_ID)')
    .option('--json', 'print JSON: {"status": <status file>, "variables": {...}}')
    .action(async (opts: { job?: string; json?: boolean }) => {
      const ctx = await import('../job-context.js');
      const ref = ctx.resolveJobRef(opts.job);
      const files = ctx.readJobFiles(await ctx.resolveJobsDir(), ref);
      if (files.status === null && files.variables === null) throw new ctx.NoJobFilesError(ref.name, files.jobsDir);
      if (opts.json) {
        const variables = files.variables ? Object.fromEntries(files.variables) : null;
        process.stdout.write(JSON.stringify({ status: files.status, variables }, null, 2) + '\n');
        return;
      }
      const { formatTable, formatFields } = await import('../table.js');
      process.stdout.write(renderShow(ref.name, files.status, files.variables, formatTable, formatFields));
    });
}

type TableFn = (header: readonly string[], rows: ReadonlyArray<readonly string[]>) => string;
type FieldsFn = (fields: ReadonlyArray<readonly [string, string]>) => string;

export function renderShow(job: string, status: JobStatus | null, variables: Map<string, string> | null, table: TableFn, fields: FieldsFn): string {
  const head: Array<[string, string]> = [['job', status ? `${status.job.id} (${status.job.dec})` : job]];
  if (status) {
    const wf = status.workflow;
    if (wf) {
      const bits = [wf.state, wf.ready === undefined ? undefined : wf.ready ? 'ready' : 'not ready', wf.status].filter(Boolean);
      head.push(['workflow', `${wf.namespace}/${wf.name}${bits.length ? ` (${bits.join(', ')})` : ''}`]);
    }
    head.push(['phase', status.phase]);
    if (status.error) head.push(['error', `${status.error.code}: ${status.error.message}`]);
    if (status.rabbit?.name) head.push(['rabbit', `${status.rabbit.name}${status.rabbit.address ? ` (${status.rabbit.address})` : ''}`]);
  } else {
    head.push(['phase', 'unknown (no status file yet)']);
  }
  let out = fields(head);
  if (variables && variables.size > 0) {
    out += '\n' + table(['VARIABLE', 'VALUE'], [...variables].map(([k, v]) => [k, v]));
  } else if (status?.phase === 'delivered' || status?.phase === 'probing') {
    out += '\nno variables\n';
  }
  const ports = status?.ports;
  if (ports && ports.results.length > 0) {
    const target = ports.address && ports.address !== ports.target ? `${ports.target} (${ports.address})` : ports.target ?? '?';
    out += `\nports on ${target}\n` + table(['PORT', 'REACHABLE', 'ATTEMPTS', 'FIRST SUCCESS', 'LAST ERROR'], ports.results.map(portRow));
  }
  if (status && status.rejected.length > 0) {
    out += '\nrejected (not set in the job)\n' + table(['VARIABLE', 'REASON'], status.rejected.map((r) => [r.name, r.reason]));
  }
  return out;
}

function portRow(r: PortResult): string[] {
  return [
    String(r.port),
    r.reachable ? 'yes' : 'NO',
    String(r.attempts),
    r.timeToFirstSuccessMs === null ? '-' : `${r.timeToFirstSuccessMs} ms`,
    r.lastError ?? '-',
  ];
}
