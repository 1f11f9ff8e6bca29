/**
 * What nnf-sos writes into `Workflow.status.env` (REFERENCE.md section 2), as pure functions of
 * the workflow's #DW directives, its uid, its ports and rabbits. Also the f58plain job id Flux
 * writes as `spec.jobID`.
 */
import { formatJobId } from '../contract/jobid.js';

/** What Flux writes to spec.jobID: RFC 19 F58 with the ASCII `f` prefix. */
export function f58plain(id: bigint): string {
  return formatJobId(id, 'f58plain');
}

export interface Directive {
  /** Position in spec.dwDirectives (the `<n>` of `/mnt/nnf/<uid>-<n>`). */
  index: number;
  command: string;
  params: Record<string, string>;
}

export function parseDirectives(dw: readonly string[] | undefined): Directive[] {
  const out: Directive[] = [];
  (dw ?? []).forEach((line, index) => {
    const words = line.trim().split(/\s+/);
    if (words[0] !== '#DW' || !words[1]) return;
    const params: Record<string, string> = {};
    for (const w of words.slice(2)) {
      const eq = w.indexOf('=');
      if (eq > 0) params[w.slice(0, eq)] = w.slice(eq + 1);
    }
    out.push({ index, command: words[1], params });
  });
  return out;
}

/** The user container of the workflow (`#DW container name=...`), if any. */
export function containerOf(directives: Directive[]): { name: string; profile: string | undefined } | undefined {
  const d = directives.find((x) => x.command === 'container' && x.params.name);
  return d ? { name: d.params.name!, profile: d.params.profile } : undefined;
}

const envName = (s: string) => s.replace(/-/g, '_');

/** DW_JOB_<name>, DW_JOB_<TYPE>, DW_JOBS and the DW_PERSISTENT_* equivalents. */
export function storageEnv(uid: string, directives: Directive[]): Record<string, string> {
  const env: Record<string, string> = {};
  const jobs: string[] = [];
  const persistents: string[] = [];
  for (const d of directives) {
    const name = d.params.name;
    if (!name) continue;
    const path = `/mnt/nnf/${uid}-${d.index}`;
    if (d.command === 'jobdw') {
      env[`DW_JOB_${envName(name)}`] = path;
      if (d.params.type) env[`DW_JOB_${d.params.type.toUpperCase()}`] = path;
      jobs.push(`${name}:${path}`);
    } else if (d.command === 'persistentdw') {
      env[`DW_PERSISTENT_${envName(name)}`] = path;
      persistents.push(`${name}:${path}`);
    }
  }
  if (jobs.length) env.DW_JOBS = jobs.join(',');
  if (persistents.length) env.DW_PERSISTENTS = persistents.join(',');
  return env;
}

export interface ContainerEnvInput {
  workflowName: string;
  namespace: string;
  containerName: string;
  ports: number[];
  /** Rabbits running the containers (non-MPI), or the launcher/worker pod names (MPI). */
  hostnames: string[];
}

/** The keys nnf-sos sets when PreRun starts. */
export function containerEnv(i: ContainerEnvInput): Record<string, string> {
  const ports = i.ports.join(',');
  return {
    NNF_CONTAINER_PORTS: ports,
    [`NNF_CONTAINER_PORTS_${envName(i.containerName)}`]: ports,
    NNF_CONTAINER_HOSTNAMES: i.hostnames.join(','),
    NNF_CONTAINER_DOMAIN: `${i.namespace}.svc.cluster.local`,
    NNF_CONTAINER_SUBDOMAIN: i.workflowName,
  };
}

/** MPI jobs: the launcher pod and one worker per rabbit. */
export function mpiHostnames(workflowName: string, rabbits: number): string[] {
  return [`${workflowName}-launcher`, ...Array.from({ length: Math.max(1, rabbits) }, (_, k) => `${workflowName}-worker-${k}`)];
}
