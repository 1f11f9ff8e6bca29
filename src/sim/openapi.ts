/**
 * The OpenAPI documents kube-apiserver publishes, built from the served resources (the CRD
 * schemas for custom resources, a loose object schema for the core types): v3 per group
 * version (`/openapi/v3/apis/<group>/<version>`, listed at `/openapi/v3`) and v2 (`/openapi/v2`,
 * JSON only). kubectl >= 1.27 reads the v3 document of an object's group version before
 * create/apply/replace: a PATCH operation for the kind that lists the `fieldValidation`
 * parameter tells it to leave validation to the server (fieldValidation=Strict), which is why
 * `kubectl create -f` and `apply -f` work without --validate=false.
 */
import { createHash } from 'node:crypto';
import type { JsonSchema } from './crds.js';
import type { ResourceRegistry, ServedResource } from './resources.js';

const META = 'io.k8s.apimachinery.pkg.apis.meta.v1';
const ref3 = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const ref2 = (name: string) => ({ $ref: `#/definitions/${name}` });

/** kube's definition-name prefix: the group reversed (dataworkflowservices.github.io -> io.github.dataworkflowservices). */
function definitionPrefix(r: ServedResource, version: string): string {
  return r.group === '' ? `io.k8s.api.core.${version}` : `${r.group.split('.').reverse().join('.')}.${version}`;
}

function gvk(r: ServedResource, version: string) {
  return { group: r.group, version, kind: r.kind };
}

function opId(verb: string, r: ServedResource, version: string, namespaced: boolean): string {
  const cap = (s: string) => s.replace(/(^|[.-])([a-z0-9])/g, (_m, _p, c: string) => c.toUpperCase());
  return `${verb}${r.group ? cap(r.group) : 'Core'}${cap(version)}${namespaced ? 'Namespaced' : ''}${r.kind}`;
}

const query = (name: string, type: string, description: string) => ({ name, in: 'query', description, schema: { type, uniqueItems: true } });
const WRITE_PARAMS = [
  query('dryRun', 'string', 'When present, indicates that modifications should not be persisted.'),
  query('fieldManager', 'string', 'a name associated with the actor or entity that is making these changes.'),
  query('fieldValidation', 'string', 'instructs the server on how to handle objects in the request containing unknown or duplicate fields: Ignore, Warn or Strict.'),
];
const LIST_PARAMS = [
  query('allowWatchBookmarks', 'boolean', 'requests watch events with type "BOOKMARK".'),
  query('continue', 'string', 'The continue option should be set when retrieving more results from the server.'),
  query('fieldSelector', 'string', 'A selector to restrict the list of returned objects by their fields.'),
  query('labelSelector', 'string', 'A selector to restrict the list of returned objects by their labels.'),
  query('limit', 'integer', 'limit is a maximum number of responses to return for a list call.'),
  query('resourceVersion', 'string', 'resourceVersion sets a constraint on what resource versions a request may be served from.'),
  query('resourceVersionMatch', 'string', 'resourceVersionMatch determines how resourceVersion is applied to list calls.'),
  query('sendInitialEvents', 'boolean', 'requests a watch to start with synthetic events for the current state.'),
  query('timeoutSeconds', 'integer', 'Timeout for the list/watch call.'),
  query('watch', 'boolean', 'Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.'),
];
const json = (schema: object) => ({ 'application/json': { schema }, 'application/yaml': { schema } });

function operation(verb: string, action: string, r: ServedResource, version: string, namespaced: boolean, response: object, extra: object = {}) {
  return {
    description: `${verb} ${r.kind}`,
    operationId: opId(verb, r, version, namespaced),
    tags: [`${r.group || 'core'}_${version}`],
    responses: { '200': { description: 'OK', content: json(response) }, '401': { description: 'Unauthorized' } },
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': gvk(r, version),
    ...extra,
  };
}

function paths3(r: ServedResource, version: string): Record<string, object> {
  const base = r.group === '' ? `/api/${version}` : `/apis/${r.group}/${version}`;
  const def = definitionPrefix(r, version);
  const obj = ref3(`${def}.${r.kind}`);
  const list = ref3(`${def}.${r.listKind}`);
  const body = { required: true, content: json(obj) };
  const patchBody = { required: true, content: { 'application/json-patch+json': { schema: ref3(`${META}.Patch`) }, 'application/merge-patch+json': { schema: ref3(`${META}.Patch`) }, 'application/apply-patch+yaml': { schema: ref3(`${META}.Patch`) } } };
  const nsParam = { name: 'namespace', in: 'path', required: true, description: 'object name and auth scope, such as for teams and projects', schema: { type: 'string', uniqueItems: true } };
  const nameParam = { name: 'name', in: 'path', required: true, description: `name of the ${r.kind}`, schema: { type: 'string', uniqueItems: true } };
  const scope = r.namespaced ? `${base}/namespaces/{namespace}/${r.plural}` : `${base}/${r.plural}`;
  const scopeParams = r.namespaced ? [nsParam] : [];
  const out: Record<string, object> = {
    [scope]: {
      get: operation('list', 'list', r, version, r.namespaced, list, { parameters: LIST_PARAMS }),
      post: operation('create', 'post', r, version, r.namespaced, obj, { parameters: WRITE_PARAMS, requestBody: body }),
      delete: operation('deletecollection', 'deletecollection', r, version, r.namespaced, ref3(`${META}.Status`), { parameters: LIST_PARAMS }),
      parameters: scopeParams,
    },
    [`${scope}/{name}`]: {
      get: operation('read', 'get', r, version, r.namespaced, obj),
      put: operation('replace', 'put', r, version, r.namespaced, obj, { parameters: WRITE_PARAMS, requestBody: body }),
      patch: operation('patch', 'patch', r, version, r.namespaced, obj, { parameters: [...WRITE_PARAMS, query('force', 'boolean', 'Force is going to "force" Apply requests.')], requestBody: patchBody }),
      delete: operation('delete', 'delete', r, version, r.namespaced, obj),
      parameters: [nameParam, ...scopeParams],
    },
  };
  if (r.statusSubresource) {
    out[`${scope}/{name}/status`] = {
      get: operation('read', 'get', r, version, r.namespaced, obj),
      put: operation('replace', 'put', r, version, r.namespaced, obj, { parameters: WRITE_PARAMS, requestBody: body }),
      patch: operation('patch', 'patch', r, version, r.namespaced, obj, { parameters: WRITE_PARAMS, requestBody: patchBody }),
      parameters: [nameParam, ...scopeParams],
    };
  }
  if (r.namespaced) out[`${base}/${r.plural}`] = { get: operation('list', 'list', r, version, false, list, { parameters: LIST_PARAMS }) };
  return out;
}

/** The object schema of a kind: the CRD's (metadata as ObjectMeta) or, for core types, any object. */
function kindSchema(r: ServedResource, version: string, ref: (n: string) => object): JsonSchema {
  const crd = r.schemas?.get(version);
  const base: JsonSchema = crd ? structuredClone(crd) : { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, properties: { apiVersion: { type: 'string' }, kind: { type: 'string' } } };
  const properties = { ...((base.properties as Record<string, unknown> | undefined) ?? {}), metadata: ref(`${META}.ObjectMeta`) };
  return { ...base, properties, 'x-kubernetes-group-version-kind': [gvk(r, version)] };
}

function listSchema(r: ServedResource, version: string, def: string, ref: (n: string) => object): JsonSchema {
  return {
    description: `${r.listKind} is a list of ${r.kind}`,
    type: 'object',
    required: ['items'],
    properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, items: { type: 'array', items: ref(`${def}.${r.kind}`) }, metadata: ref(`${META}.ListMeta`) },
    'x-kubernetes-group-version-kind': [{ group: r.group, version, kind: r.listKind }],
  };
}

const COMMON: Record<string, JsonSchema> = {
  [`${META}.ObjectMeta`]: {
    description: 'ObjectMeta is metadata that all persisted resources must have.',
    type: 'object',
    properties: {
      name: { type: 'string' },
      generateName: { type: 'string' },
      namespace: { type: 'string' },
      uid: { type: 'string' },
      resourceVersion: { type: 'string' },
      generation: { type: 'integer', format: 'int64' },
      creationTimestamp: { type: 'string', format: 'date-time' },
      deletionTimestamp: { type: 'string', format: 'date-time' },
      deletionGracePeriodSeconds: { type: 'integer', format: 'int64' },
      labels: { type: 'object', additionalProperties: { type: 'string' } },
      annotations: { type: 'object', additionalProperties: { type: 'string' } },
      finalizers: { type: 'array', items: { type: 'string' } },
      ownerReferences: { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      managedFields: { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
    },
  },
  [`${META}.ListMeta`]: {
    type: 'object',
    properties: { resourceVersion: { type: 'string' }, continue: { type: 'string' }, remainingItemCount: { type: 'integer', format: 'int64' } },
  },
  [`${META}.Status`]: {
    type: 'object',
    properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, code: { type: 'integer' }, message: { type: 'string' }, reason: { type: 'string' }, status: { type: 'string' }, details: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
  },
  [`${META}.Patch`]: { description: 'Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.', type: 'object' },
};

/** The v3 document of one group version, or undefined when nothing is served there. */
export function openApiV3Doc(reg: ResourceRegistry, group: string, version: string): object | undefined {
  const rs = reg.all.filter((r) => r.group === group && r.versions.includes(version));
  if (rs.length === 0) return undefined;
  const paths: Record<string, object> = {};
  const schemas: Record<string, JsonSchema> = { ...COMMON };
  for (const r of rs) {
    Object.assign(paths, paths3(r, version));
    const def = definitionPrefix(r, version);
    schemas[`${def}.${r.kind}`] = kindSchema(r, version, ref3);
    schemas[`${def}.${r.listKind}`] = listSchema(r, version, def, ref3);
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.0-nnf-env-sim' }, paths, components: { schemas } };
}

function groupVersions(reg: ResourceRegistry): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const r of reg.all) for (const v of r.versions) if (!out.some(([g, vv]) => g === r.group && vv === v)) out.push([r.group, v]);
  return out;
}

/** A short content hash, as kube-apiserver puts in serverRelativeURL (clients cache by it). */
function hashOf(doc: object): string {
  return createHash('sha512').update(JSON.stringify(doc)).digest('hex').slice(0, 128).toUpperCase();
}

/** GET /openapi/v3: where each group version's document is. */
export function openApiV3Root(reg: ResourceRegistry): object {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const [g, v] of groupVersions(reg)) {
    const key = g === '' ? `api/${v}` : `apis/${g}/${v}`;
    paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${hashOf(openApiV3Doc(reg, g, v)!)}` };
  }
  return { paths };
}

/** GET /openapi/v2 (JSON): every served kind at every version. */
export function openApiV2Doc(reg: ResourceRegistry): object {
  const definitions: Record<string, JsonSchema> = {};
  for (const [k, v] of Object.entries(COMMON)) definitions[k] = v;
  const paths: Record<string, object> = {};
  for (const r of reg.all) {
    for (const version of r.versions) {
      const def = definitionPrefix(r, version);
      definitions[`${def}.${r.kind}`] = kindSchema(r, version, ref2);
      definitions[`${def}.${r.listKind}`] = listSchema(r, version, def, ref2);
      const base = r.group === '' ? `/api/${version}` : `/apis/${r.group}/${version}`;
      const scope = r.namespaced ? `${base}/namespaces/{namespace}/${r.plural}` : `${base}/${r.plural}`;
      const op = (verb: string, action: string, schema: object, params: object[] = []) => ({
        operationId: opId(verb, r, version, r.namespaced),
        produces: ['application/json', 'application/yaml'],
        parameters: params,
        responses: { '200': { description: 'OK', schema } },
        'x-kubernetes-action': action,
        'x-kubernetes-group-version-kind': gvk(r, version),
      });
      const v2param = (p: { name: string; description: string; schema: { type: string } }) => ({ name: p.name, in: 'query', type: p.schema.type, description: p.description, uniqueItems: true });
      paths[scope] = { get: op('list', 'list', ref2(`${def}.${r.listKind}`), LIST_PARAMS.map(v2param)), post: op('create', 'post', ref2(`${def}.${r.kind}`), WRITE_PARAMS.map(v2param)) };
      paths[`${scope}/{name}`] = {
        get: op('read', 'get', ref2(`${def}.${r.kind}`)),
        put: op('replace', 'put', ref2(`${def}.${r.kind}`), WRITE_PARAMS.map(v2param)),
        patch: op('patch', 'patch', ref2(`${def}.${r.kind}`), WRITE_PARAMS.map(v2param)),
        delete: op('delete', 'delete', ref2(`${META}.Status`)),
      };
    }
  }
  return { swagger: '2.0', info: { title: 'Kubernetes', version: 'v1.32.0-nnf-env-sim' }, paths, definitions };
}

