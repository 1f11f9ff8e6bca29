/**
 * Writing and removing one job's files (docs/FORMATS.md "Runtime directory"): atomically, mode
 * 0600, owned by the job's user and group when the daemon runs as root, never through a symlink.
 */
import { isValidId } from '../contract/ids.js';
import { jobFiles } from '../contract/job-paths.js';
import type { Workflow } from '../domain/dws-types.js';
import { removeFileNoFollow, writeFileAtomic } from '../fs/atomic-file.js';
import { primaryGidOf, type UserDbOptions } from '../fs/user-db.js';
import type { TrackedJob } from './tracked-job.js';

export class JobFileWriter {
  constructor(
    private readonly jobsDir: string,
    private readonly chown: boolean,
    private readonly userDb: UserDbOptions | undefined,
  ) {}

  paths(id: bigint): ReturnType<typeof jobFiles> {
    return jobFiles(this.jobsDir, id);
  }

  async write(job: TrackedJob, path: string, data: string, wf: Workflow | undefined): Promise<void> {
    const owner = this.chown ? { uid: job.ident.userID, gid: await this.ownerGid(job, wf) } : {};
    await writeFileAtomic(path, data, { mode: 0o600, ...owner });
  }

  /** True when there was a file to remove. */
  async remove(id: bigint): Promise<boolean> {
    const files = this.paths(id);
    // The status file goes first: a reader that finds no status stops before the env file.
    const a = await removeFileNoFollow(files.status);
    const b = await removeFileNoFollow(files.env);
    return a || b;
  }

  async removeEnv(id: bigint): Promise<void> {
    await removeFileNoFollow(this.paths(id).env);
  }

  /** The workflow's groupID when it names the job's user, else the user's primary group. */
  private async ownerGid(job: TrackedJob, wf: Workflow | undefined): Promise<number> {
    if (job.gid !== undefined) return job.gid;
    const uid = job.ident.userID;
    let gid: number | undefined;
    if (wf && wf.spec?.userID === uid && isValidId(wf.spec?.groupID)) gid = wf.spec.groupID;
    gid ??= await primaryGidOf(uid, this.userDb).catch(() => undefined);
    job.gid = gid ?? uid;
    return job.gid;
  }
}
