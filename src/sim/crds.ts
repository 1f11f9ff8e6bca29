/**
 * The CustomResourceDefinitions the simulator serves, read from the package's own files
 * (etc/kubernetes/crds/*.yaml, the same files the real-server tests install into
 * kube-apiserver): one source for names, scope, versions, printer columns, subresources and
 * schemas.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { NnfEnvError } from '../core/errors.js';

/** A CRD file that cannot be read or is not a CRD of the shape the simulator serves. */
export class CrdFileError extends NnfEnvError {
  constructor(file: string, problem: string, cause?: unknown) {
    super('SIM_CRD_INVALID', `${file}: ${problem}`, { hint: 'the CRDs in etc/kubernetes/crds ship with nnf-env; reinstall the package or fix the file', cause });
  }
}

export type JsonSchema = Record<string, unknown>;

export interface CrdPrinterColumn {
  name: string;
  type: 'string' | 'boolean' | 'integer' | 'number' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
  format?: string;
}

export interface CrdVersion {
  name: string;
  served: boolean;
  storage: boolean;
  schema: JsonSchema;
  columns: CrdPrinterColumn[];
  statusSubresource: boolean;
}

export interface CrdDefinition {
  /** metadata.name, e.g. workflows.dataworkflowservices.github.io */
  name: string;
  group: string;
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  namespaced: boolean;
  /** In the file's order. */
  versions: CrdVersion[];
  file: string;
}

/**
 * etc/kubernetes/crds of the nnf-env package this file belongs to (checkout, dist/), else, for
 * the bundles installed under PREFIX (PREFIX/lib/nnf-env/nnf-env-commands.cjs, from the
 * packages or `nnf-env install`), PREFIX/share/nnf-env/crds.
 */
export function defaultCrdDir(fromFile: string = fileURLToPath(import.meta.url)): string {
  const ancestors: string[] = [];
  for (let dir = dirname(fromFile); ; dir = dirname(dir)) {
    ancestors.push(dir);
    const candidate = join(dir, 'etc', 'kubernetes', 'crds');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) break;
  }
  for (const dir of ancestors) {
    const shared = join(dir, 'share', 'nnf-env', 'crds');
    if (existsSync(shared)) return shared;
  }
  throw new CrdFileError(fromFile, 'no etc/kubernetes/crds (checkout) nor share/nnf-env/crds (installed) found in any directory above it');
}

function str(v: unknown, file: string, what: string): string {
  if (typeof v !== 'string' || v === '') throw new CrdFileError(file, `${what} must be a non-empty string`);
  return v;
}

function parseVersion(v: Record<string, unknown>, file: string): CrdVersion {
  const name = str(v.name, file, 'spec.versions[].name');
  const schema = (v.schema as { openAPIV3Schema?: unknown } | undefined)?.openAPIV3Schema;
  if (!schema || typeof schema !== 'object') throw new CrdFileError(file, `version ${name} has no schema.openAPIV3Schema`);
  const cols = (v.additionalPrinterColumns as Array<Record<string, unknown>> | undefined) ?? [];
  const columns = cols.map((c) => {
    const jsonPath = str(c.jsonPath, file, `version ${name} printer column jsonPath`);
    if (!/^(\.[A-Za-z0-9_-]+)+$/.test(jsonPath)) throw new CrdFileError(file, `version ${name}: printer column jsonPath ${jsonPath} is not a plain .a.b.c path (the simulator serves only those)`);
    return {
      name: str(c.name, file, 'printer column name'),
      type: str(c.type, file, 'printer column type') as CrdPrinterColumn['type'],
      jsonPath,
      ...(typeof c.description === 'string' ? { description: c.description } : {}),
      ...(typeof c.priority === 'number' ? { priority: c.priority } : {}),
      ...(typeof c.format === 'string' ? { format: c.format } : {}),
    };
  });
  const sub = v.subresources as { status?: unknown } | undefined;
  return { name, served: v.served === true, storage: v.storage === true, schema: schema as JsonSchema, columns, statusSubresource: !!sub && sub.status !== undefined };
}

export function parseCrd(doc: unknown, file: string): CrdDefinition {
  const d = doc as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown }; spec?: Record<string, unknown> };
  if (d?.apiVersion !== 'apiextensions.k8s.io/v1' || d.kind !== 'CustomResourceDefinition') throw new CrdFileError(file, 'not an apiextensions.k8s.io/v1 CustomResourceDefinition');
  const spec = d.spec ?? {};
  const names = (spec.names ?? {}) as Record<string, unknown>;
  const versions = ((spec.versions as Array<Record<string, unknown>> | undefined) ?? []).map((v) => parseVersion(v, file));
  if (versions.filter((v) => v.storage).length !== 1) throw new CrdFileError(file, 'exactly one version must be the storage version');
  const kind = str(names.kind, file, 'spec.names.kind');
  return {
    name: str(d.metadata?.name, file, 'metadata.name'),
    group: str(spec.group, file, 'spec.group'),
    kind,
    listKind: typeof names.listKind === 'string' ? names.listKind : `${kind}List`,
    plural: str(names.plural, file, 'spec.names.plural'),
    singular: typeof names.singular === 'string' ? names.singular : kind.toLowerCase(),
    shortNames: Array.isArray(names.shortNames) ? names.shortNames.map(String) : [],
    namespaced: spec.scope === 'Namespaced',
    versions,
    file,
  };
}

const cache = new Map<string, CrdDefinition[]>();

/** Every CRD in dir's *.yaml files (sorted by file name), parsed once per process. */
export function loadCrds(dir: string = defaultCrdDir()): CrdDefinition[] {
  const hit = cache.get(dir);
  if (hit) return hit;
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();
  } catch (err) {
    throw new CrdFileError(dir, 'cannot be read', err);
  }
  const out: CrdDefinition[] = [];
  for (const f of files) {
    const file = join(dir, f);
    let docs: YAML.Document[];
    try {
      docs = YAML.parseAllDocuments(readFileSync(file, 'utf8')) as YAML.Document[];
    } catch (err) {
      throw new CrdFileError(file, 'cannot be read', err);
    }
    for (const doc of docs) {
      if (doc.errors.length) throw new CrdFileError(file, `not valid YAML: ${doc.errors[0]!.message}`);
      const js = doc.toJS({ maxAliasCount: 1000 }) as unknown;
      if (js === null || js === undefined) continue;
      out.push(parseCrd(js, file));
    }
  }
  cache.set(dir, out);
  return out;
}
