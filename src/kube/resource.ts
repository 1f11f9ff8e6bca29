/** What the API server calls a kind of object, and the URL paths that reach it. */
export interface ResourceType {
  /** '' for the core group (nodes, secrets). */
  readonly group: string;
  readonly version: string;
  /** Lower-case plural used in URLs, e.g. 'workflows'. */
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  [key: string]: unknown;
}

/** Any Kubernetes object; kinds refine this in their own modules (see src/domain/dws-types.ts). */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export interface KubeList<T extends KubeObject = KubeObject> {
  apiVersion?: string;
  kind: string;
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: WatchEventType;
  object: T;
}

export const DWS_GROUP = 'dataworkflowservices.github.io';
/** Newest first: discovery picks the first one the server serves. */
export const DWS_VERSIONS = ['v1alpha7', 'v1alpha6'] as const;
export type DwsVersion = (typeof DWS_VERSIONS)[number];

export function dwsResource(plural: 'workflows' | 'computes' | 'systemconfigurations' | 'storages', version: string): ResourceType {
  const kinds = { workflows: 'Workflow', computes: 'Computes', systemconfigurations: 'SystemConfiguration', storages: 'Storage' } as const;
  return { group: DWS_GROUP, version, plural, kind: kinds[plural], namespaced: true };
}

export const NODES: ResourceType = { group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false };
export const SECRETS: ResourceType = { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true };

/** `workflows.dataworkflowservices.github.io`, `nodes`: how errors and RBAC name a resource. */
export function resourceName(rt: ResourceType): string {
  return rt.group ? `${rt.plural}.${rt.group}` : rt.plural;
}

export function apiVersionOf(rt: ResourceType): string {
  return rt.group === '' ? rt.version : `${rt.group}/${rt.version}`;
}

/** `/api/v1/nodes`, `/apis/<g>/<v>/namespaces/<ns>/<plural>`; all namespaces when ns is undefined. */
export function collectionPath(rt: ResourceType, namespace?: string): string {
  const root = rt.group === '' ? `/api/${rt.version}` : `/apis/${rt.group}/${rt.version}`;
  const ns = rt.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${root}${ns}/${rt.plural}`;
}

export function objectPath(rt: ResourceType, namespace: string | undefined, name: string): string {
  return `${collectionPath(rt, namespace)}/${encodeURIComponent(name)}`;
}

/** The store key client-go uses: `ns/name`, or `name` for cluster-scoped objects. */
export function objectKey(obj: { metadata: { name: string; namespace?: string } }): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}
