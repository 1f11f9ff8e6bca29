import type { Logger } from 'pino';
import type { JobIdentity } from '../domain/workflow-assessment.js';
import type { Workflow } from '../domain/dws-types.js';

/**
 * Where the job controller learns a job's environment. Two sources say the same things in
 * different ways: the job's DWS Workflow in Kubernetes (kube-env-source.ts) and the
 * `dws_environment` event flux-coral2 posts to the job's eventlog (flux-env-source.ts). The
 * controller decides and writes the same files from either: only the source differs.
 */
export interface SourceJob {
  id: bigint;
  ident: JobIdentity & { id: string };
  namespace: string;
  workflowName: string;
  /** 'computes': found through the node's Computes (it has a workflow by definition). */
  trackedBy: 'api' | 'computes';
  /**
   * The tracker already knows the jobspec has #DW directives (the prolog script's spool entry
   * says so): no jobspec read before the watch (the issue-9 gap).
   */
  hasDw?: boolean;
  logger: Logger;
}

/** Per-node facts a source learns only once the environment is final. */
export interface ReadyExtras {
  /** DW_WORKFLOW_TOKEN's value, when the source reads it separately (kube: the Secret). */
  token?: string;
  /** Why the token is missing, for the user. */
  warning?: string;
  /** Why this node got no rabbit file systems (dw_failure_tolerance), or undefined. */
  excluded?: string;
  /** Where the user finds the container's log, told when its ports do not answer. */
  containerLogHint?: string;
}

export type SourceView =
  /** No workflow for this job (no #DW directive, or no Workflow object). */
  | { kind: 'absent' }
  | { kind: 'waiting'; workflow: Workflow | undefined; reason: string }
  | { kind: 'failed'; workflow: Workflow | undefined; code: string; message: string }
  | {
      kind: 'ready';
      workflow: Workflow | undefined;
      /** The variables as the source gives them (checked by the env policy, never trusted). */
      env: unknown;
      extras(signal: AbortSignal): Promise<ReadyExtras>;
    };

export interface EnvWatch {
  /** What is known now; undefined until the source has its first answer. */
  view(): SourceView | undefined;
  /** The workflow's name, when the source learnt a better one than the template's. */
  workflowName(): string | undefined;
  stop(): Promise<void>;
}

export interface JobEnvSource {
  readonly name: 'kube' | 'flux' | 'auto';
  /** Starts observing one job; `changed` is called whenever view() may answer differently. */
  watch(job: SourceJob, changed: () => void): EnvWatch;
  /** True only when the source is sure the job's workflow is gone (GC removes its files then). */
  gone(id: bigint, namespace: string, workflowName: string): Promise<boolean>;
}
