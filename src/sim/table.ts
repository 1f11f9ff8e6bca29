/**
 * Server-side printing: the `meta.k8s.io Table` kube-apiserver answers when a client (kubectl
 * get) asks for `application/json;as=Table;g=meta.k8s.io;v=v1`. Columns come from the
 * resource's printer columns; `date` cells become ages, as the CRD table converter does.
 */
import type { KubeObject } from '../kube/resource.js';
import type { PrinterColumn, ServedResource } from './resources.js';

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export interface TableRequest {
  /** meta.k8s.io version the client asked for. */
  version: 'v1' | 'v1beta1';
  includeObject: IncludeObject;
}

/** What the Accept header asks for: a Table (and which version) or the plain object. */
export function tableRequested(accept: string | undefined, includeObjectParam: string | null): TableRequest | undefined {
  if (!accept) return undefined;
  for (const part of accept.split(',')) {
    const params = new Map<string, string>();
    const [, ...rest] = part.split(';');
    for (const p of rest) {
      const [k, v] = p.split('=');
      if (k && v) params.set(k.trim(), v.trim());
    }
    if (params.get('as') === 'Table' && params.get('g') === 'meta.k8s.io') {
      const version = params.get('v');
      if (version !== 'v1' && version !== 'v1beta1') continue;
      const inc = includeObjectParam === 'None' || includeObjectParam === 'Object' ? includeObjectParam : 'Metadata';
      return { version, includeObject: inc };
    }
    // The first acceptable plain type wins over later Table entries.
    const type = part.split(';')[0]!.trim();
    if ((type === 'application/json' || type === '*/*' || type === 'application/*') && !params.has('as')) return undefined;
  }
  return undefined;
}

/** Go's duration.HumanDuration, which kubectl shows in AGE columns. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    return dy === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

function cell(c: PrinterColumn, obj: KubeObject, now: number): unknown {
  const v = c.value(obj);
  if (v === undefined || v === null) return null;
  switch (c.type) {
    case 'date': {
      const t = typeof v === 'string' ? Date.parse(v) : NaN;
      return Number.isNaN(t) ? null : humanDuration(now - t);
    }
    case 'boolean':
      return typeof v === 'boolean' ? v : null;
    case 'integer':
    case 'number':
      return typeof v === 'number' ? v : null;
    default:
      return typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
}

const NAME_COLUMN = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names',
  priority: 0,
};

export function columnDefinitions(res: ServedResource): object[] {
  return [NAME_COLUMN, ...res.columns.map((c) => ({ name: c.name, type: c.type, format: c.format ?? '', description: c.description, priority: c.priority }))];
}

export interface TableMeta {
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

/** A Table of `objs` (already shown at the requested version). */
export function toTable(res: ServedResource, objs: KubeObject[], meta: TableMeta, req: TableRequest, now = Date.now()): object {
  return {
    kind: 'Table',
    apiVersion: `meta.k8s.io/${req.version}`,
    metadata: meta,
    columnDefinitions: columnDefinitions(res),
    rows: objs.map((o) => {
      const row: Record<string, unknown> = { cells: [o.metadata.name, ...res.columns.map((c) => cell(c, o, now))] };
      if (req.includeObject === 'Object') row.object = o;
      else if (req.includeObject === 'Metadata') row.object = { kind: 'PartialObjectMetadata', apiVersion: `meta.k8s.io/${req.version}`, metadata: o.metadata };
      return row;
    }),
  };
}
