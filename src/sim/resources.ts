/**
 * What the simulated API server serves: the DWS custom resources (at every configured version)
 * and the few core v1 resources nnf-env reads. Also the discovery documents kubectl and
 * client-go ask for, and the printer columns of each resource (taken from the upstream DWS
 * CRDs' additionalPrinterColumns, v1alpha7, and from kube-apiserver's built-in printers).
 */
import { CONTAINER_PROFILE_VERSIONS, NNF_GROUP } from '../domain/container-profile.js';
import { DWS_GROUP, DWS_VERSIONS, type KubeObject, type ResourceType } from '../kube/resource.js';

export type ColumnType = 'string' | 'boolean' | 'integer' | 'number' | 'date';

export interface PrinterColumn {
  readonly name: string;
  readonly type: ColumnType;
  readonly format?: string;
  readonly description: string;
  /** 0: shown by `kubectl get`; 1: only with `-o wide`. */
  readonly priority: number;
  /** The raw cell value; `date` columns get turned into an age by the table converter. */
  readonly value: (obj: KubeObject) => unknown;
}

export interface ServedResource {
  readonly group: string;
  readonly plural: string;
  readonly singular: string;
  readonly kind: string;
  readonly listKind: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  /** Served versions, newest first; objects are stored once and shown at any of them. */
  readonly versions: readonly string[];
  /** Custom resources: no strategic merge patch, no unconditional update (as for CRDs). */
  readonly custom: boolean;
  readonly columns: readonly PrinterColumn[];
}

/** Value at a dotted path (`status.state`), undefined when any step is missing. */
export function valueAt(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

const col = (name: string, type: ColumnType, path: string, description: string, priority = 0, format?: string): PrinterColumn => ({
  name, type, description, priority, value: (o) => valueAt(o, path), ...(format === undefined ? {} : { format }),
});
const age = (name: 'AGE' | 'Age'): PrinterColumn => col(name, 'date', 'metadata.creationTimestamp', '');

// Upstream DWS v1alpha7 CRDs (config/crd/bases/dataworkflowservices.github.io_*.yaml).
const WORKFLOW_COLUMNS: PrinterColumn[] = [
  col('STATE', 'string', 'status.state', 'Current state'),
  col('READY', 'boolean', 'status.ready', 'True if current state is achieved'),
  col('STATUS', 'string', 'status.status', 'Indicates achievement of current state'),
  col('JOBID', 'string', 'spec.jobID', 'Job ID'),
  age('AGE'),
  col('DESIREDSTATE', 'string', 'spec.desiredState', 'Desired state', 1),
  col('DESIREDSTATECHANGE', 'date', 'status.desiredStateChange', 'Time of most recent desiredState change', 1),
  col('ELAPSEDTIMELASTSTATE', 'string', 'status.elapsedTimeLastState', 'Duration of last state change', 1),
  col('UID', 'string', 'spec.userID', 'UID', 1),
  col('GID', 'string', 'spec.groupID', 'GID', 1),
];
const STORAGE_COLUMNS: PrinterColumn[] = [
  col('State', 'string', 'spec.state', 'State of the storage resource'),
  col('Status', 'string', 'status.status', 'Status of the storage resource'),
  col('Mode', 'string', 'spec.mode', 'State of live updates'),
  age('Age'),
];
const SYSTEMCONFIGURATION_COLUMNS: PrinterColumn[] = [col('READY', 'boolean', 'status.ready', 'True if SystemConfiguration is reconciled'), age('AGE')];
// A CRD without printer columns gets just an age column from kube-apiserver.
const DEFAULT_CRD_COLUMNS: PrinterColumn[] = [age('Age')];

function nodeReady(o: KubeObject): string {
  const conditions = valueAt(o, 'status.conditions');
  const ready = Array.isArray(conditions) ? conditions.find((c: { type?: string }) => c?.type === 'Ready') : undefined;
  return ready?.status === 'True' ? 'Ready' : ready ? 'NotReady' : 'Unknown';
}
function nodeAddress(o: KubeObject, type: string): string | undefined {
  const addrs = valueAt(o, 'status.addresses');
  return Array.isArray(addrs) ? addrs.find((a: { type?: string }) => a?.type === type)?.address : undefined;
}
const NODE_COLUMNS: PrinterColumn[] = [
  { name: 'Status', type: 'string', description: 'The status of the node', priority: 0, value: nodeReady },
  { name: 'Roles', type: 'string', description: 'The roles of the node', priority: 0, value: () => '<none>' },
  age('Age'),
  col('Version', 'string', 'status.nodeInfo.kubeletVersion', 'Kubelet Version reported by the node.'),
  { name: 'Internal-IP', type: 'string', description: 'List of internal IPs in the node', priority: 1, value: (o) => nodeAddress(o, 'InternalIP') ?? '<none>' },
];
const SECRET_COLUMNS: PrinterColumn[] = [
  col('Type', 'string', 'type', 'The type of the secret'),
  { name: 'Data', type: 'integer', description: 'The number of entries in the secret', priority: 0, value: (o) => Object.keys((o.data as object | undefined) ?? {}).length },
  age('Age'),
];
const NAMESPACE_COLUMNS: PrinterColumn[] = [col('Status', 'string', 'status.phase', 'The status of the namespace'), age('Age')];

function dws(plural: string, singular: string, kind: string, columns: PrinterColumn[], versions: readonly string[], shortNames: string[] = []): ServedResource {
  return { group: DWS_GROUP, plural, singular, kind, listKind: `${kind}List`, namespaced: true, shortNames, versions, custom: true, columns };
}
function core(plural: string, singular: string, kind: string, namespaced: boolean, columns: PrinterColumn[], shortNames: string[] = []): ServedResource {
  return { group: '', plural, singular, kind, listKind: `${kind}List`, namespaced, shortNames, versions: ['v1'], custom: false, columns };
}

/** The resources one simulator serves. `dwsVersions` lets tests serve e.g. only v1alpha6. */
export function servedResources(dwsVersions: readonly string[] = DWS_VERSIONS): ServedResource[] {
  return [
    // Upstream has no short name for workflows; `wf` is a convenience of the simulator.
    dws('workflows', 'workflow', 'Workflow', WORKFLOW_COLUMNS, dwsVersions, ['wf']),
    dws('computes', 'computes', 'Computes', DEFAULT_CRD_COLUMNS, dwsVersions),
    dws('systemconfigurations', 'systemconfiguration', 'SystemConfiguration', SYSTEMCONFIGURATION_COLUMNS, dwsVersions),
    dws('storages', 'storage', 'Storage', STORAGE_COLUMNS, dwsVersions),
    // nnf-sos's CRD (config/crd/bases/nnf.cray.hpe.com_nnfcontainerprofiles.yaml) has no printer columns.
    { group: NNF_GROUP, plural: 'nnfcontainerprofiles', singular: 'nnfcontainerprofile', kind: 'NnfContainerProfile', listKind: 'NnfContainerProfileList', namespaced: true, shortNames: [], versions: CONTAINER_PROFILE_VERSIONS, custom: true, columns: DEFAULT_CRD_COLUMNS },
    core('namespaces', 'namespace', 'Namespace', false, NAMESPACE_COLUMNS, ['ns']),
    core('nodes', 'node', 'Node', false, NODE_COLUMNS, ['no']),
    core('secrets', 'secret', 'Secret', true, SECRET_COLUMNS),
  ];
}

export function resourceKey(group: string, plural: string): string {
  return `${group}/${plural}`;
}

/** Lookup of served resources by group + plural (version-independent). */
export class ResourceRegistry {
  readonly all: readonly ServedResource[];
  private readonly byKey = new Map<string, ServedResource>();

  constructor(resources: ServedResource[]) {
    this.all = resources;
    for (const r of resources) this.byKey.set(resourceKey(r.group, r.plural), r);
  }

  find(group: string, version: string, plural: string): ServedResource | undefined {
    const r = this.byKey.get(resourceKey(group, plural));
    return r && r.versions.includes(version) ? r : undefined;
  }

  /** The served resource for a ResourceType of the programmatic API; any version is accepted. */
  forType(rt: ResourceType): ServedResource {
    const r = this.byKey.get(resourceKey(rt.group, rt.plural));
    if (!r) throw new Error(`the simulator does not serve ${rt.plural}${rt.group ? '.' + rt.group : ''}`);
    return r;
  }

  groups(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const r of this.all) {
      if (r.group === '') continue;
      const versions = out.get(r.group) ?? [];
      for (const v of r.versions) if (!versions.includes(v)) versions.push(v);
      out.set(r.group, versions);
    }
    return out;
  }
}

export function apiVersionString(group: string, version: string): string {
  return group === '' ? version : `${group}/${version}`;
}

// ---- discovery documents (the legacy, non-aggregated format; client-go falls back to it)

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export function apiVersionsDoc(serverAddress: string): object {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupDoc(name: string, versions: string[]): object {
  const vs = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: vs, preferredVersion: vs[0] };
}

export function apiGroupListDoc(reg: ResourceRegistry): object {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [...reg.groups()].map(([g, vs]) => groupDoc(g, vs)) };
}

export function apiGroupDoc(reg: ResourceRegistry, group: string): object | undefined {
  const versions = reg.groups().get(group);
  return versions ? { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(group, versions) } : undefined;
}

export function apiResourceListDoc(reg: ResourceRegistry, group: string, version: string): object | undefined {
  const rs = reg.all.filter((r) => r.group === group && r.versions.includes(version));
  if (rs.length === 0) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: apiVersionString(group, version),
    resources: rs.map((r) => ({
      name: r.plural,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: VERBS,
      ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
    })),
  };
}

export function versionDoc(): object {
  return {
    major: '1',
    minor: '32',
    gitVersion: 'v1.32.0-nnf-env-sim',
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2026-01-01T00:00:00Z',
    goVersion: 'go1.23',
    compiler: 'gc',
    platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  };
}
