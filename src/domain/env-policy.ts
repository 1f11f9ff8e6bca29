import { ENV_NAME_PATTERN as ENV_NAME, checkEnvValue } from '../contract/env-file.js';
import type { RejectedVariable, RejectReason } from '../contract/job-status.js';

/**
 * Which of a workflow's `status.env` variables may reach a job. Pure. Everything a workflow
 * carries is checked: name syntax, an allowlist of prefixes (no LD_PRELOAD or PATH ever reaches
 * a job), values the env file can hold verbatim, and bounded sizes.
 */
export interface EnvPolicy {
  allowedPrefixes: readonly string[];
  maxVariables: number;
  maxValueBytes: number;
  /** Bound on the env file; `reservedBytes` is taken off it for the daemon's own lines. */
  maxTotalBytes: number;
  reservedBytes?: number;
}

export interface EnvValidation {
  /** Accepted variables, by name. */
  accepted: Record<string, string>;
  rejected: RejectedVariable[];
}

/** Bytes one variable takes in the env file: `NAME='value'\n`. */
export function envLineBytes(name: string, value: string): number {
  return Buffer.byteLength(name) + Buffer.byteLength(value) + 4;
}

/** Why a value can't be written (control characters; neither quoting style fits), or null. */
export function valueProblem(value: string): RejectReason | null {
  return checkEnvValue(value);
}

export function validateWorkflowEnv(env: unknown, policy: EnvPolicy): EnvValidation {
  const accepted: Record<string, string> = {};
  const rejected: RejectedVariable[] = [];
  if (env === null || env === undefined || typeof env !== 'object' || Array.isArray(env)) {
    return { accepted, rejected };
  }
  let count = 0;
  let total = policy.reservedBytes ?? 0;
  // Sorted, so that which variables fall over a size bound does not depend on map order.
  const names = Object.keys(env).sort();
  for (const name of names) {
    const value = (env as Record<string, unknown>)[name];
    const reason = rejectReason(name, value, policy);
    if (reason) {
      rejected.push({ name: printableName(name), reason });
      continue;
    }
    const v = value as string;
    if (count >= policy.maxVariables) {
      rejected.push({ name, reason: 'too-many-variables' });
      continue;
    }
    const bytes = envLineBytes(name, v);
    if (total + bytes > policy.maxTotalBytes) {
      rejected.push({ name, reason: 'file-too-large' });
      continue;
    }
    count++;
    total += bytes;
    accepted[name] = v;
  }
  return { accepted, rejected };
}

/** nnf-env's own settings (NNF_ENV_RUNTIME_DIR, ...): a workflow must not steer the helper in a job. */
const RESERVED_PREFIX = 'NNF_ENV_';

function rejectReason(name: string, value: unknown, policy: EnvPolicy): RejectReason | null {
  if (!ENV_NAME.test(name)) return 'invalid-name';
  if (name.startsWith(RESERVED_PREFIX)) return 'reserved-name';
  if (!policy.allowedPrefixes.some((p) => name.startsWith(p))) return 'prefix-not-allowed';
  // status.env is map[string]string upstream; anything else did not come from DWS.
  if (typeof value !== 'string') return 'unrepresentable';
  if (Buffer.byteLength(value) > policy.maxValueBytes) return 'value-too-large';
  return valueProblem(value);
}

/** A rejected name goes into logs and JSON: keep it short and free of control characters. */
function printableName(name: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = name.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 256 ? clean.slice(0, 253) + '...' : clean;
}
