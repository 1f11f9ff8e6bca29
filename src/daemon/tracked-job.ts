/**
 * What the daemon holds for one tracked job: who it is, where its workflow is, what its files say
 * now, and its watch (through the configured source: ./env-source.ts). Created by the job
 * controller, read by the sync and GC.
 */
import type { DaemonJobStatus } from '../contract/control-api.js';
import type { Workflow } from '../domain/dws-types.js';
import type { JobIdentity } from '../domain/workflow-assessment.js';
import type { EnvWatch } from './env-source.js';

export type TrackSource = 'api' | 'computes';

export interface TrackedJob {
  id: bigint;
  ident: JobIdentity & { id: string };
  source: TrackSource;
  namespace: string;
  workflowName: string;
  trackedAt: string;
  status: DaemonJobStatus;
  /** Undefined before the watch starts and once it has nothing more to tell. */
  watch: EnvWatch | undefined;
  seenWorkflow: boolean;
  /** The last workflow object seen (for a status after the watch stopped). */
  lastSeen: Workflow | undefined;
  /** The status file from before a restart, if there was one. */
  previous: DaemonJobStatus | undefined;
  gid: number | undefined;
  removed: boolean;
  waitingFileWritten: boolean;
  /** Aborts the job's requests and probes on untrack or stop. */
  abort: AbortController;
  /** Set once the record is on disk: the job is then visible to GC and untrack. */
  recorded: Promise<void>;
  /** The tracker said the jobspec has #DW directives (../daemon/env-source.ts SourceJob.hasDw). */
  hasDw?: boolean;
}
