/**
 * The variables that name where a workflow's rabbit file systems are mounted on a compute
 * node (`DW_JOB_<name>`, `DW_JOB_<TYPE>`, `DW_JOBS`, and the same for persistent storage).
 * A node that flux-coral2 removed from the workflow under dw_failure_tolerance has none of
 * those mounts: giving it the paths would send the job to write into an empty directory of
 * the node's root file system. Pure.
 */
const MOUNT_PATH = /^DW_(?:JOB_|PERSISTENT_)|^DW_(?:JOBS|PERSISTENTS)$/;

export function isMountPathVariable(name: string): boolean {
  return MOUNT_PATH.test(name);
}

/** `env` without the mount-path variables, and the names taken out (sorted). */
export function withoutMountPaths(env: Record<string, string>): { kept: Record<string, string>; removed: string[] } {
  const kept: Record<string, string> = {};
  const removed: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (isMountPathVariable(k)) removed.push(k);
    else kept[k] = v;
  }
  return { kept, removed: removed.sort() };
}
