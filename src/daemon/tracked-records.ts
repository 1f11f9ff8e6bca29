import { mkdir, readdir, chmod, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { formatJobId, parseJobId } from '../contract/jobid.js';
import { readFileNoFollow, removeFileNoFollow, writeFileAtomic, cleanupStaleTemps } from '../fs/atomic-file.js';
import { errnoCode } from '../core/errors.js';
import { jobFiles } from '../contract/job-paths.js';
import { isValidId } from '../contract/ids.js';

/**
 * The daemon's own record of the jobs it tracks, `<jobs dir>/.tracked/<f58plain>`, so that a
 * restart (even after SIGKILL) picks them up again. Written before the track request is
 * answered; removed after the job's files on untrack.
 */
export interface TrackedRecord {
  version: 1;
  /** f58plain, equal to the file name. */
  id: string;
  userID: number;
  trackedAt: string;
  /** Who asked: the prolog (through the API) or discovery=computes. */
  source: 'api' | 'computes';
  /** Set for computes discovery, where the workflow name is known and need not be templated. */
  workflowName?: string;
}

export const TRACKED_DIR = '.tracked';
const MAX_RECORD_BYTES = 4096;

/** The canonical f58plain of a name, or undefined when the name is not one (not ours). */
export function canonicalJobName(name: string): bigint | undefined {
  if (!/^f[1-9A-HJ-NP-Za-km-z]{1,12}$/.test(name)) return undefined;
  try {
    const id = parseJobId(name);
    return formatJobId(id, 'f58plain') === name ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Pure: a record from its file text, or a reason it is not one. */
export function parseTrackedRecord(name: string, text: string): TrackedRecord | string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  const r = doc as Partial<TrackedRecord> | null;
  if (!r || typeof r !== 'object') return 'not an object';
  if (r.id !== name) return `id ${JSON.stringify(r.id)} differs from the file name`;
  if (!isValidId(r.userID)) return 'bad userID';
  if (typeof r.trackedAt !== 'string' || Number.isNaN(Date.parse(r.trackedAt))) return 'bad trackedAt';
  const source = r.source === 'computes' ? 'computes' : 'api';
  const rec: TrackedRecord = { version: 1, id: name, userID: r.userID, trackedAt: r.trackedAt, source };
  if (typeof r.workflowName === 'string' && /^[a-z0-9][-a-z0-9.]{0,252}$/.test(r.workflowName)) rec.workflowName = r.workflowName;
  return rec;
}

export class TrackedRecords {
  readonly dir: string;

  private readonly jobsDir: string;

  constructor(jobsDir: string) {
    this.jobsDir = jobsDir;
    this.dir = join(jobsDir, TRACKED_DIR);
  }

  /** Root-only directory: nobody else needs to read what the daemon tracks. */
  async ensureDir(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const st = await lstat(this.dir);
    if (!st.isDirectory()) throw new Error(`${this.dir} is not a directory`);
    await chmod(this.dir, 0o700);
  }

  /** Name re-derived from the decoded value, never taken from input. */
  pathOf(id: string): string {
    return jobFiles(this.jobsDir, parseJobId(id)).tracked;
  }

  async write(rec: TrackedRecord): Promise<void> {
    await writeFileAtomic(this.pathOf(rec.id), JSON.stringify(rec) + '\n', { mode: 0o600 });
  }

  async remove(id: string): Promise<void> {
    await removeFileNoFollow(this.pathOf(id));
  }

  /** Every valid record; broken ones and foreign names are removed and reported. */
  async readAll(): Promise<{ records: TrackedRecord[]; dropped: Array<{ name: string; reason: string }> }> {
    const records: TrackedRecord[] = [];
    const dropped: Array<{ name: string; reason: string }> = [];
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return { records, dropped };
      throw err;
    }
    for (const name of names.sort()) {
      if (name.startsWith('.')) continue; // temp files of interrupted writes (cleaned below)
      const path = join(this.dir, name);
      if (canonicalJobName(name) === undefined) {
        dropped.push({ name, reason: 'not a canonical job id' });
        await removeFileNoFollow(path).catch(() => undefined);
        continue;
      }
      let text: string;
      try {
        text = (await readFileNoFollow(path, MAX_RECORD_BYTES)).toString('utf8');
      } catch (err) {
        dropped.push({ name, reason: (err as Error).message });
        await removeFileNoFollow(path).catch(() => undefined);
        continue;
      }
      const rec = parseTrackedRecord(name, text);
      if (typeof rec === 'string') {
        dropped.push({ name, reason: rec });
        await removeFileNoFollow(path).catch(() => undefined);
        continue;
      }
      records.push(rec);
      await cleanupStaleTemps(path, 60_000).catch(() => 0);
    }
    return { records, dropped };
  }
}
