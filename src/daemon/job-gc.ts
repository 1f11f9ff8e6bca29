/**
 * Garbage collection of job files: what belongs to workflows that are gone. Files of untracked
 * jobs, and tracked jobs in a final phase whose workflow was deleted (the epilog never came).
 * Jobs still waiting have their own watch and need no GC. An error keeps the files: only the
 * source being sure (the API server saying "no such workflow", Flux saying the job is clean or
 * unknown) removes anything.
 */
import { readdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import { FINAL_PHASES } from '../contract/job-status.js';
import { workflowNameFor } from '../domain/workflow-name.js';
import { cleanupStaleTemps } from '../fs/atomic-file.js';
import type { JobEnvSource } from './env-source.js';
import type { JobControllerConfig } from './job-controller-config.js';
import type { JobFileWriter } from './job-files.js';
import type { TrackedJob } from './tracked-job.js';
import { canonicalJobName } from './tracked-records.js';

export interface JobGcDeps {
  jobsDir: string;
  source: Pick<JobEnvSource, 'gone'>;
  config: () => JobControllerConfig;
  files: JobFileWriter;
  jobs: () => TrackedJob[];
  isTracked: (name: string) => boolean;
  /** A sync of the job is in progress (GC leaves it alone). */
  busy: (job: TrackedJob) => boolean;
  untrack: (id: bigint, why: string) => Promise<unknown>;
  isStopping: () => boolean;
  logger: Logger;
}

/** Leftover temp files of an interrupted write older than this are removed. */
const STALE_TEMP_MS = 60_000;

export async function collectGarbage(d: JobGcDeps): Promise<void> {
  let names: string[];
  try {
    names = await readdir(d.jobsDir);
  } catch (err) {
    d.logger.warn({ dir: d.jobsDir, err: errorMessage(err) }, 'GC: cannot list the jobs directory');
    return;
  }
  const ids = new Map<string, bigint>();
  for (const n of names) {
    const m = /^(f[1-9A-HJ-NP-Za-km-z]+)\.(env|json)$/.exec(n);
    if (!m) continue;
    const id = canonicalJobName(m[1]!);
    if (id !== undefined) ids.set(m[1]!, id);
  }
  const config = d.config();
  const gone = (id: bigint, namespace: string, name: string) => workflowGone(d, id, namespace, name);
  const now = Date.now();
  for (const job of d.jobs()) {
    if (d.isStopping()) return;
    const phase = job.status.phase;
    if (!FINAL_PHASES.includes(phase) || d.busy(job) || job.removed) continue;
    if (phase === 'no-workflow') {
      // Nothing on disk but the record; keep it for one interval so the epilog finds the job.
      if (now - Date.parse(job.trackedAt) > config.GC_INTERVAL) await d.untrack(job.id, 'GC: no workflow');
      continue;
    }
    if (await gone(job.id, job.namespace, job.workflowName)) await d.untrack(job.id, 'GC: workflow gone');
  }
  for (const [name, id] of ids) {
    if (d.isStopping()) return;
    const files = d.files.paths(id);
    await cleanupStaleTemps(files.env, STALE_TEMP_MS).catch(() => 0);
    await cleanupStaleTemps(files.status, STALE_TEMP_MS).catch(() => 0);
    if (d.isTracked(name)) continue;
    if (await gone(id, config.WORKFLOW_NAMESPACE, workflowNameFor(config.WORKFLOW_NAME_TEMPLATE, id))) {
      if (await d.files.remove(id)) d.logger.info({ job: name }, 'GC: removed files of an untracked job whose workflow is gone');
    }
  }
}

/** True only when the source is sure the workflow is gone (errors: keep the files). */
async function workflowGone(d: JobGcDeps, id: bigint, namespace: string, name: string): Promise<boolean> {
  try {
    return await d.source.gone(id, namespace, name);
  } catch (err) {
    d.logger.debug({ workflow: `${namespace}/${name}`, err: errorMessage(err) }, 'GC: workflow check failed; keeping files');
    return false;
  }
}
