/**
 * `nnf-env status [--json]`: the daemon's view of this node, through the control socket: node,
 * rabbit, hosts entry, API connection, watches and the jobs it tracks. Read-only; needs access
 * to the socket (root or SOCKET_GROUP).
 */
import { Command } from 'commander';
import type { JobStatus } from '../../contract/job-status.js';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined);

/** The fields of GET /v1/status as `key  value` rows; unknown keys are shown as JSON, not dropped. */
export function statusFields(s: Obj): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  const used = new Set<string>();
  const take = (k: string) => {
    used.add(k);
    return s[k];
  };
  const daemon = [str(take('version')) && `nnf-envd ${str(s.version)}`, str(take('pid')) && `pid ${str(s.pid)}`, take('ready') === true ? 'ready' : s.ready === false ? 'NOT READY' : undefined, str(take('startedAt')) && `since ${str(s.startedAt)}`].filter(Boolean);
  rows.push(['node', `${str(take('node')) ?? '?'}${daemon.length ? ` (${daemon.join(', ')})` : ''}`]);

  const r = take('rabbit');
  if (isObj(r)) {
    const name = str(r.name);
    rows.push(['rabbit', name ? `${name}${str(r.source) ? ` (from ${str(r.source)})` : ''}` : `none${str(r.reason) ? `: ${str(r.reason)}` : ''}`]);
    const address = str(r.address);
    rows.push(['address', address
      ? `${address}${str(r.addressSource) ? ` (from ${str(r.addressSource)})` : ''}${r.nodesForbidden === true ? ' (reading nodes is forbidden: addresses come from DNS)' : ''}`
      : `none${str(r.addressReason) ? `: ${str(r.addressReason)}` : ''}`]);
  }
  const h = take('hosts');
  if (isObj(h)) {
    const entry = isObj(h.entry) ? `${str(h.entry.address)} ${Array.isArray(h.entry.names) ? h.entry.names.join(' ') : ''}` : 'no entry';
    const bits = [str(h.method) && `written by ${str(h.method)}`, str(h.updatedAt) && `at ${str(h.updatedAt)}`].filter(Boolean);
    rows.push(['hosts', h.path ? `${str(h.path)}: ${entry}${bits.length ? ` (${bits.join(' ')})` : ''}` : 'not managed (HOSTS_FILE is empty)']);
    if (str(h.error)) rows.push(['hosts error', str(h.error)!]);
    for (const c of Array.isArray(h.conflicts) ? h.conflicts : []) {
      if (isObj(c)) rows.push(['hosts conflict', `line ${str(c.line)} maps ${str(c.name)} to ${str(c.address)}: ${str(c.text)}`]);
    }
    for (const w of Array.isArray(h.warnings) ? h.warnings : []) rows.push(['hosts warning', String(w)]);
  }
  const l = take('localRabbitConf');
  if (isObj(l)) rows.push(['local-rabbit.conf', l.path ? `${str(l.path)}${l.written ? ' written' : ' not written'}${str(l.error) ? `: ${str(l.error)}` : ''}` : 'not written (LOCAL_RABBIT_CONF is empty)']);
  const c = take('connection');
  if (isObj(c)) {
    const extra = [str(c.source), str(c.dwsVersion) && `DWS ${str(c.dwsVersion)}`].filter(Boolean);
    rows.push(['connection', `${str(c.state) ?? '?'} ${str(c.server) ?? ''}${str(c.since) ? ` since ${str(c.since)}` : ''}${extra.length ? ` (${extra.join(', ')})` : ''}`]);
    if (str(c.error)) rows.push(['connection error', str(c.error)!]);
  }
  const w = take('watches');
  if (isObj(w)) rows.push(['watches', Object.entries(w).map(([k, v]) => `${k} ${isObj(v) ? JSON.stringify(v) : String(v)}`).join(', ')]);
  const j = take('jobs');
  if (isObj(j)) {
    const by = isObj(j.byPhase) ? Object.entries(j.byPhase).filter(([, n]) => n !== 0).map(([p, n]) => `${p} ${String(n)}`).join(', ') : '';
    rows.push(['jobs', `${str(j.total) ?? '?'}${by ? ` (${by})` : ''}`]);
  }
  const p = take('profiles');
  if (isObj(p)) {
    rows.push(['profiles', `${str(p.count) ?? '0'} in ${str(p.namespace) ?? '?'}${str(p.apiVersion) ? ` (nnf.cray.hpe.com/${str(p.apiVersion)})` : ''}${p.synced === true ? '' : ' (not synced)'}`]);
    if (isObj(p.error)) rows.push(['profiles error', `${str(p.error.code) ?? ''}: ${str(p.error.message) ?? ''}`]);
  }
  for (const [k, v] of Object.entries(s)) if (!used.has(k)) rows.push([k, isObj(v) || Array.isArray(v) ? JSON.stringify(v) : String(v)]);
  return rows;
}

export function jobRows(jobs: readonly JobStatus[]): string[][] {
  return jobs.map((j) => {
    const results = j.ports?.results ?? [];
    const bad = results.filter((r) => !r.reachable).length;
    const ports = results.length === 0 ? '-' : bad ? `${results.length - bad}/${results.length} UNREACHABLE ${bad}` : `${results.length}/${results.length}`;
    const wf = j.workflow ? `${j.workflow.namespace}/${j.workflow.name}${j.workflow.state ? ` (${j.workflow.state})` : ''}` : '-';
    return [j.job.id, String(j.job.userID), j.phase, wf, String(j.variables.length), ports, j.error ? `${j.error.code}: ${j.error.message}` : ''];
  });
}

/** Jobs of this node whose workflow failed, with DWS's message: what Flux's exception told the user. */
export function failedWorkflowLines(jobs: readonly JobStatus[]): string[] {
  return jobs
    .filter((j) => j.workflow?.status === 'Error')
    .map((j) => `job ${j.job.id} (user ${j.job.userID}): workflow ${j.workflow!.namespace}/${j.workflow!.name} failed in ${j.workflow!.state ?? '?'}: ${j.workflow!.message || '(no message)'}`);
}

export function command(): Command {
  return new Command('status')
    .description('the daemon\'s view of this node and its jobs (through the control socket)')
    .option('--config <file>', 'configuration file (default /etc/nnf-env/nnf-env.conf)')
    .option('--socket <path>', 'control socket (default: from the configuration)')
    .option('--json', 'print {"status": ..., "jobs": [...]} as JSON')
    .action(async (opts: { config?: string; socket?: string; json?: boolean }) => {
      const socketPath = opts.socket ?? (await (await import('./prolog.js')).loadNodeSettings(process.env, opts.config)).socketPath;
      const client = await import('../../api/client.js');
      const [status, jobs] = await Promise.all([client.getStatus(socketPath), client.listJobs(socketPath)]);
      if (opts.json) {
        process.stdout.write(JSON.stringify({ status, jobs }, null, 2) + '\n');
        return;
      }
      const { formatFields, formatTable } = await import('../table.js');
      let out = formatFields(statusFields(status));
      out += jobs.length === 0 ? '\nno jobs tracked\n' : '\n' + formatTable(['JOB', 'USER', 'PHASE', 'WORKFLOW', 'VARS', 'PORTS', 'ERROR'], jobRows(jobs));
      const failed = failedWorkflowLines(jobs);
      if (failed.length > 0) out += `\nfailed workflows (Flux raised the job exception; nnf-env adds none):\n${failed.map((l) => `  ${l}\n`).join('')}`;
      process.stdout.write(out);
    });
}
