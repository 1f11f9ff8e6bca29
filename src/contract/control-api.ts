/**
 * Wire types of the daemon's control socket (docs/FORMATS.md "Control API"): what GET
 * /v1/jobs/<id> and /v1/status answer and what the WebSocket /v1/events sends. The daemon
 * produces them, the API server serialises them, the CLI reads them.
 */
import type { JobStatus } from './job-status.js';

/** JobStatus plus the daemon's advisory notes (token unavailable, no rabbit, ...). */
export type DaemonJobStatus = JobStatus & { warnings?: string[] };

/** Totals over every watch the daemon ran (live and stopped). */
export interface WatchTotals {
  events: number;
  relists: number;
  reconnects: number;
  bytes: number;
}

export type ConnectionState = 'connecting' | 'ok' | 'degraded';

export interface ConnectionInfo {
  state: ConnectionState;
  server: string;
  since: string;
  /** The last error, when degraded. */
  error: string | null;
}

export type DaemonEvent =
  | { type: 'job'; job: DaemonJobStatus; untracked?: boolean }
  | { type: 'rabbit'; rabbit: unknown }
  | { type: 'connection'; connection: ConnectionInfo };

