/**
 * What kube-apiserver does with a CRD's structural schema on every write of a custom
 * resource, for the subset of OpenAPI our CRD files use: defaulting (`default`), pruning of
 * fields the schema does not know (unless `x-kubernetes-preserve-unknown-fields`), and
 * validation (type, enum, required, minimum/maximum, int-or-string), with kube's field paths,
 * cause reasons and messages. Not done: CEL rules, formats, patterns, lengths.
 */
import type { JsonSchema } from './crds.js';

export interface SchemaCause {
  reason: 'FieldValueRequired' | 'FieldValueNotSupported' | 'FieldValueTypeInvalid' | 'FieldValueInvalid';
  field: string;
  message: string;
}

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function props(s: JsonSchema): Record<string, JsonSchema> {
  return (s.properties as Record<string, JsonSchema> | undefined) ?? {};
}

/** Fills `default`s in place where a property is missing under an object that exists. */
export function applyDefaults(schema: JsonSchema, value: Json): void {
  if (isObject(value)) {
    for (const [k, ps] of Object.entries(props(schema))) {
      if (value[k] === undefined && ps.default !== undefined) value[k] = structuredClone(ps.default);
      if (value[k] !== undefined) applyDefaults(ps, value[k]);
    }
    const ap = schema.additionalProperties;
    if (isObject(ap)) for (const [k, v] of Object.entries(value)) if (!(k in props(schema))) applyDefaults(ap as JsonSchema, v);
  } else if (Array.isArray(value) && isObject(schema.items)) {
    for (const v of value) applyDefaults(schema.items as JsonSchema, v);
  }
}

/** Removes, in place, fields the schema neither names nor preserves. metadata is the server's own. */
export function prune(schema: JsonSchema, value: Json, root = true): void {
  if (isObject(value)) {
    const known = props(schema);
    const ap = schema.additionalProperties;
    const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
    for (const k of Object.keys(value)) {
      if (root && (k === 'apiVersion' || k === 'kind' || k === 'metadata')) continue;
      const ks = known[k];
      if (ks) prune(ks, value[k], false);
      else if (isObject(ap)) prune(ap as JsonSchema, value[k], false);
      else if (!preserve && ap !== true) delete value[k];
    }
  } else if (Array.isArray(value) && isObject(schema.items)) {
    for (const v of value) prune(schema.items as JsonSchema, v, false);
  }
}

function typeOf(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** Go's %v of a value in kube's messages: strings quoted, the rest as JSON. */
function shown(v: Json): string {
  return typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v);
}

function typeMatches(want: string, v: Json): boolean {
  const got = typeOf(v);
  return want === got || (want === 'number' && got === 'integer');
}

/** The causes kube-apiserver reports for value against schema; [] when it is valid. */
export function validate(schema: JsonSchema, value: Json, path = ''): SchemaCause[] {
  const out: SchemaCause[] = [];
  const at = (k: string) => (path === '' ? k : `${path}.${k}`);
  const where = path === '' ? '<root>' : path;
  if (value === undefined) return out;
  if (value === null) {
    // kube drops nulls of non-nullable fields before validating; the simulator does the same by accepting them.
    return out;
  }
  if (schema['x-kubernetes-int-or-string'] === true) {
    if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value))) {
      out.push({ reason: 'FieldValueTypeInvalid', field: where, message: `Invalid value: "${typeOf(value)}": ${where} in body must be of type integer,string: "${typeOf(value)}"` });
    }
    return out;
  }
  const type = schema.type as string | undefined;
  if (type && !typeMatches(type, value)) {
    out.push({ reason: 'FieldValueTypeInvalid', field: where, message: `Invalid value: "${typeOf(value)}": ${where} in body must be of type ${type}: "${typeOf(value)}"` });
    return out;
  }
  const en = schema.enum as Json[] | undefined;
  if (en && !en.some((e) => e === value)) {
    out.push({ reason: 'FieldValueNotSupported', field: where, message: `Unsupported value: ${shown(value)}: supported values: ${en.map(shown).join(', ')}` });
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) {
      out.push({ reason: 'FieldValueInvalid', field: where, message: `Invalid value: ${value}: ${where} in body should be greater than or equal to ${schema.minimum}` });
    }
    if (typeof schema.maximum === 'number' && value > schema.maximum) {
      out.push({ reason: 'FieldValueInvalid', field: where, message: `Invalid value: ${value}: ${where} in body should be less than or equal to ${schema.maximum}` });
    }
  }
  if (isObject(value)) {
    for (const r of (schema.required as string[] | undefined) ?? []) {
      if (value[r] === undefined || value[r] === null) out.push({ reason: 'FieldValueRequired', field: at(r), message: 'Required value' });
    }
    const known = props(schema);
    for (const [k, v] of Object.entries(value)) {
      if (path === '' && k === 'metadata') continue;
      const ks = known[k] ?? (isObject(schema.additionalProperties) ? (schema.additionalProperties as JsonSchema) : undefined);
      if (ks) out.push(...validate(ks, v, at(k)));
    }
  } else if (Array.isArray(value) && isObject(schema.items)) {
    value.forEach((v, i) => out.push(...validate(schema.items as JsonSchema, v, `${where}[${i}]`)));
  }
  return out;
}
