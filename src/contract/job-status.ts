/** The JSON status file of one job (docs/FORMATS.md); written by nnf-envd, read by the helper. */
export type JobPhase = 'waiting' | 'probing' | 'delivered' | 'failed' | 'no-workflow';
export const FINAL_PHASES: readonly JobPhase[] = ['delivered', 'failed', 'no-workflow'];

export type RejectReason =
  | 'invalid-name'
  | 'reserved-name'
  | 'prefix-not-allowed'
  | 'control-character'
  | 'unrepresentable'
  | 'value-too-large'
  | 'too-many-variables'
  | 'file-too-large';

export interface RejectedVariable {
  name: string;
  reason: RejectReason;
}

export interface PortResult {
  port: number;
  reachable: boolean;
  attempts: number;
  timeToFirstSuccessMs: number | null;
  lastError: string | null;
}

export interface JobStatus {
  version: 1;
  job: { id: string; dec: string; userID: number };
  workflow: {
    namespace: string;
    name: string;
    uid?: string;
    state?: string;
    ready?: boolean;
    status?: string;
    message?: string;
  } | null;
  phase: JobPhase;
  error: { code: string; message: string } | null;
  variables: string[];
  rejected: RejectedVariable[];
  rabbit: { name: string | null; address: string | null };
  ports: { target: string | null; address: string | null; results: PortResult[] } | null;
  timings: {
    trackedAt: string;
    preRunFinishedAt?: string;
    filesWrittenAt?: string;
    deliveredAt?: string;
  };
}
