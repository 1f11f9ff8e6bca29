/**
 * What the simulated API server serves: the custom resources of the project's CRD files
 * (etc/kubernetes/crds: DWS at every configured version, NnfContainerProfile), and the few core
 * v1 resources nnf-env reads. Also the discovery documents kubectl and client-go ask for, and
 * the printer columns of each resource (the CRDs' additionalPrinterColumns, and kube-apiserver's
 * built-in printers for the core types).
 */
import { CONTAINER_PROFILE_VERSIONS, NNF_GROUP } from '../domain/container-profile.js';
import { DWS_GROUP, DWS_VERSIONS, type KubeObject, type ResourceType } from '../kube/resource.js';
import { loadCrds, type CrdDefinition, type JsonSchema } from './crds.js';

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
  /** A status subresource: status is written through .../status only (CRD subresources.status). */
  readonly statusSubresource: boolean;
  /** The CRD's openAPIV3Schema per served version (custom resources only). */
  readonly schemas?: ReadonlyMap<string, JsonSchema>;
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

/** kube's version order: GA before beta before alpha, higher numbers first (v1alpha7 > v1alpha6). */
export function compareKubeVersions(a: string, b: string): number {
  const parse = (v: string): [number, number, number] | undefined => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    return m ? [Number(m[1]), m[2] === 'alpha' ? 0 : m[2] === 'beta' ? 1 : 2, Number(m[3] ?? 0)] : undefined;
  };
  const pa = parse(a);
  const pb = parse(b);
  if (!pa || !pb) return pa ? -1 : pb ? 1 : a.localeCompare(b);
  return pb[1] - pa[1] || pb[0] - pa[0] || pb[2] - pa[2];
}

function fromCrd(crd: CrdDefinition, only?: readonly string[]): ServedResource {
  const served = crd.versions.filter((v) => v.served && (only === undefined || only.includes(v.name)));
  const versions = served.map((v) => v.name).sort(compareKubeVersions);
  // Columns of the preferred version (ours are the same at every version).
  const preferred = served.find((v) => v.name === versions[0]);
  const columns = preferred?.columns.length
    ? preferred.columns.map((c) => col(c.name, c.type, c.jsonPath.slice(1), c.description ?? '', c.priority ?? 0, c.format))
    : DEFAULT_CRD_COLUMNS;
  return {
    group: crd.group,
    plural: crd.plural,
    singular: crd.singular,
    kind: crd.kind,
    listKind: crd.listKind,
    namespaced: crd.namespaced,
    shortNames: crd.shortNames,
    versions,
    custom: true,
    columns,
    statusSubresource: preferred?.statusSubresource ?? false,
    schemas: new Map(served.map((v) => [v.name, v.schema])),
  };
}
function core(plural: string, singular: string, kind: string, namespaced: boolean, columns: PrinterColumn[], shortNames: string[] = [], statusSubresource = false): ServedResource {
  return { group: '', plural, singular, kind, listKind: `${kind}List`, namespaced, shortNames, versions: ['v1'], custom: false, columns, statusSubresource };
}

/**
 * The resources one simulator serves: every CRD of `crdDir` (default: the package's
 * etc/kubernetes/crds) and the core types. `dwsVersions` lets tests serve e.g. only v1alpha6.
 */
export function servedResources(dwsVersions: readonly string[] = DWS_VERSIONS, crdDir?: string): ServedResource[] {
  const custom = loadCrds(crdDir).map((crd) => fromCrd(crd, crd.group === DWS_GROUP ? dwsVersions : undefined)).filter((r) => r.versions.length > 0);
  return [
    ...custom,
    core('namespaces', 'namespace', 'Namespace', false, NAMESPACE_COLUMNS, ['ns']),
    // As kube-apiserver: a Node's status is written through nodes/status only (an update or
    // patch of the Node keeps the old status; a create keeps the one it is given).
    core('nodes', 'node', 'Node', false, NODE_COLUMNS, ['no'], true),
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
    resources: rs.flatMap((r) => [
      {
        name: r.plural,
        singularName: r.singular,
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: VERBS,
        ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
      },
      ...(r.statusSubresource ? [{ name: `${r.plural}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] }] : []),
    ]),
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
