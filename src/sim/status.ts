/**
 * Kubernetes `Status` failures as the simulator raises them. One error class carries the HTTP
 * code, reason and details, so the programmatic API throws what the HTTP API would answer.
 */
import { NnfEnvError } from '../core/errors.js';

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'Expired'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'RequestEntityTooLarge'
  | 'TooManyRequests'
  | 'InternalError'
  | 'ServiceUnavailable';

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  retryAfterSeconds?: number;
  causes?: Array<{ reason?: string; message?: string; field?: string }>;
}

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: StatusReason;
  details?: StatusDetails;
  code: number;
}

const HINTS: Partial<Record<StatusReason, string>> = {
  NotFound: 'check the name and namespace; list the resource to see what exists',
  AlreadyExists: 'delete the object first or update it instead',
  Conflict: 'read the object again and retry with its current resourceVersion',
  Expired: 'relist, then watch from the new list resourceVersion',
  Invalid: 'fix the object and send it again',
  BadRequest: 'check the request path, query and body',
};

/** A failure the simulator answers as a Kubernetes Status (HTTP) or throws (programmatic API). */
export class SimApiError extends NnfEnvError {
  readonly httpStatus: number;
  readonly reason: StatusReason;
  readonly details: StatusDetails | undefined;

  constructor(httpStatus: number, reason: StatusReason, message: string, details?: StatusDetails) {
    super(`SIM_${reason.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`, message, HINTS[reason] ? { hint: HINTS[reason] } : {});
    this.httpStatus = httpStatus;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): KubeStatus {
    return statusBody(this.httpStatus, this.reason, this.message, this.details);
  }
}

export function statusBody(code: number, reason: StatusReason, message: string, details?: StatusDetails): KubeStatus {
  const body: KubeStatus = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details) body.details = details;
  return body;
}

/** `workflows.dataworkflowservices.github.io`, or `nodes` for the core group: how kube-apiserver names a resource in messages. */
export function qualifiedResource(group: string, plural: string): string {
  return group === '' ? plural : `${plural}.${group}`;
}

export const errors = {
  notFound(group: string, plural: string, name: string): SimApiError {
    return new SimApiError(404, 'NotFound', `${qualifiedResource(group, plural)} "${name}" not found`, { name, group, kind: plural });
  },
  alreadyExists(group: string, plural: string, name: string): SimApiError {
    return new SimApiError(409, 'AlreadyExists', `${qualifiedResource(group, plural)} "${name}" already exists`, { name, group, kind: plural });
  },
  conflict(group: string, plural: string, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): SimApiError {
    return new SimApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(group, plural)} "${name}": ${why}`, { name, group, kind: plural });
  },
  invalid(kind: string, group: string, name: string, field: string, why: string): SimApiError {
    const gk = group === '' ? kind : `${kind}.${group}`;
    return new SimApiError(422, 'Invalid', `${gk} "${name}" is invalid: ${field}: ${why}`, { name, group, kind, causes: [{ reason: 'FieldValueInvalid', message: why, field }] });
  },
  /** 422 with one cause per field, worded as kube-apiserver words them. */
  invalidCauses(kind: string, group: string, name: string, causes: Array<{ reason: string; field: string; message: string }>): SimApiError {
    const gk = group === '' ? kind : `${kind}.${group}`;
    const each = causes.map((c) => `${c.field}: ${c.message}`);
    const list = each.length === 1 ? each[0]! : `[${each.join(', ')}]`;
    return new SimApiError(422, 'Invalid', `${gk} "${name}" is invalid: ${list}`, { name, group, kind, causes: causes.map((c) => ({ reason: c.reason, message: c.message, field: c.field })) });
  },
  badRequest(message: string): SimApiError {
    return new SimApiError(400, 'BadRequest', message);
  },
  expired(message: string): SimApiError {
    return new SimApiError(410, 'Expired', message);
  },
  internal(message: string): SimApiError {
    return new SimApiError(500, 'InternalError', message);
  },
};
