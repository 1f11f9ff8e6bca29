/**
 * What the Flux prolog says and exits with for a job, whoever answers it: `nnf-env prolog`
 * (Node, over the control socket) or nnf-envd itself through the prolog spool (the sh fast path,
 * ../daemon/perilog-spool.ts). One piece of code for the text, so both paths print the same line.
 * Pure.
 */
import type { JobStatus } from '../contract/job-status.js';
import { workflowNameFor } from './workflow-name.js';

export type NodeErrorPolicy = 'pass' | 'fail';

export interface PrologOutcome {
  /** What the log line says after the workflow name. */
  result: string;
  exitCode: 0 | 1;
  /** A node problem (the admin's to look at): the line goes to stderr. */
  problem?: boolean;
}

/** The job's final status -> log text; always exit 0 (user-job problems never fail the prolog). */
export function describeFinal(status: JobStatus): string {
  switch (status.phase) {
    case 'delivered': {
      const notes: string[] = [`${status.variables.length} variables`];
      const results = status.ports?.results ?? [];
      const bad = results.filter((r) => !r.reachable).map((r) => r.port);
      if (results.length > 0) notes.push(bad.length ? `ports unreachable: ${bad.join(',')}` : `${results.length} ports reachable`);
      if (status.rejected.length > 0) notes.push(`rejected: ${status.rejected.map((r) => `${r.name} (${r.reason})`).join(', ')}`);
      return `delivered (${notes.join('; ')})`;
    }
    case 'failed':
      return `failed (user job problem, job runs without variables): ${status.error ? `${status.error.code}: ${status.error.message}` : status.workflow?.message ?? 'no message'}`;
    case 'no-workflow':
      return 'no workflow';
    default:
      return `phase ${status.phase}`;
  }
}

/** A node-side problem -> log text and exit code by policy. */
export function nodeErrorOutcome(problem: string, policy: NodeErrorPolicy): PrologOutcome {
  return policy === 'fail'
    ? { result: `NODE ERROR: ${problem} (PROLOG_ON_NODE_ERROR=fail: failing the prolog, Flux drains this node)`, exitCode: 1, problem: true }
    : { result: `NODE ERROR: ${problem} (PROLOG_ON_NODE_ERROR=pass: the job runs without its nnf-env variables)`, exitCode: 0, problem: true };
}

export function isFinalStatus(status: JobStatus): boolean {
  return status.phase === 'delivered' || status.phase === 'failed' || status.phase === 'no-workflow';
}

/** The outcome when PROLOG_TIMEOUT passed with the job not final (the notice is added by the caller). */
export function timeoutOutcome(status: JobStatus, timeoutMs: number, policy: NodeErrorPolicy): PrologOutcome {
  const why = status.error ? `; daemon reports ${status.error.code}: ${status.error.message}` : '';
  return nodeErrorOutcome(`timed out after ${Math.round(timeoutMs / 1000)}s in phase ${status.phase}${why}`, policy);
}

/**
 * The log line's `namespace/name`: the workflow the status names, else the one the name template
 * gives (`naming` null: unknown, as when the configuration could not be read); '-' if neither.
 */
export function workflowLabel(status: JobStatus | null | undefined, id: bigint, naming: { namespace: string; template: string } | null): string {
  if (status?.workflow) return `${status.workflow.namespace}/${status.workflow.name}`;
  if (!naming) return '-';
  try {
    return `${naming.namespace}/${workflowNameFor(naming.template, id)}`;
  } catch {
    return '-';
  }
}

/** `nnf-env prolog: job ƒX workflow ns/name <result> in <ms>ms` */
export function perilogLogLine(which: 'prolog' | 'epilog', f58: string | null, workflowLabel: string, result: string, ms: number): string {
  return `nnf-env ${which}: job ${f58 ?? '?'} workflow ${workflowLabel} ${result} in ${Math.round(ms)}ms`;
}
