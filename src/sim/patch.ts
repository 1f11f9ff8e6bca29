/**
 * The two patch formats kube-apiserver accepts for custom resources: JSON merge patch
 * (RFC 7386) and JSON patch (RFC 6902). Pure functions on plain JSON values; inputs are not
 * modified. A patch that does not apply is a SimApiError (422), a malformed one 400.
 */
import { cloneJson } from './json-clone.js';
import { SimApiError, errors } from './status.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** RFC 7386: objects merge recursively, null deletes, anything else replaces. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  // One copy of the target, then merged in place: copying at every level again, as this did,
  // copied each patched subtree once per level above it.
  return mergeInto(cloneJson(target), patch);
}

/** Merge `patch` into `target`, which is the caller's own copy. */
function mergeInto(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return cloneJson(patch);
  const out: Record<string, unknown> = isObject(target) ? target : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (k === '__proto__') Object.defineProperty(out, k, { value: mergeInto(Object.hasOwn(out, k) ? out[k] : undefined, v), enumerable: true, writable: true, configurable: true });
    else out[k] = mergeInto(Object.hasOwn(out, k) ? out[k] : undefined, v);
  }
  return out;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b as object, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: unknown;
}

function invalid(message: string): SimApiError {
  return new SimApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${message}`);
}

function parsePointer(ptr: string): string[] {
  if (ptr === '') return [];
  if (!ptr.startsWith('/')) throw invalid(`invalid JSON pointer "${ptr}"`);
  return ptr.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function arrayIndex(arr: unknown[], token: string, forAdd: boolean, ptr: string): number {
  if (forAdd && token === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw invalid(`invalid array index "${token}" in "${ptr}"`);
  const i = Number(token);
  if (i > arr.length || (!forAdd && i === arr.length)) throw invalid(`array index ${i} out of bounds in "${ptr}"`);
  return i;
}

/** The container holding the last token of `ptr`, and that token. */
function parentOf(doc: unknown, ptr: string): { parent: Record<string, unknown> | unknown[]; key: string } {
  const tokens = parsePointer(ptr);
  if (tokens.length === 0) throw invalid(`the root cannot be the target of this operation ("${ptr}")`);
  let cur: unknown = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, t, false, ptr)];
    else if (isObject(cur) && Object.hasOwn(cur, t)) cur = cur[t];
    else throw invalid(`doc is missing path: "${ptr}"`);
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw invalid(`doc is missing path: "${ptr}"`);
  return { parent: cur, key: tokens[tokens.length - 1]! };
}

function getAt(doc: unknown, ptr: string): unknown {
  let cur: unknown = doc;
  for (const t of parsePointer(ptr)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, t, false, ptr)];
    else if (isObject(cur) && Object.hasOwn(cur, t)) cur = cur[t];
    else throw invalid(`doc is missing path: "${ptr}"`);
  }
  return cur;
}

function addAt(doc: unknown, ptr: string, value: unknown): unknown {
  if (ptr === '') return cloneJson(value);
  const { parent, key } = parentOf(doc, ptr);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, true, ptr), 0, cloneJson(value));
  else parent[key] = cloneJson(value);
  return doc;
}

function removeAt(doc: unknown, ptr: string): unknown {
  const { parent, key } = parentOf(doc, ptr);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, false, ptr), 1);
  else if (Object.hasOwn(parent, key)) delete parent[key];
  else throw invalid(`unable to remove nonexistent key: ${key}: missing value ("${ptr}")`);
  return doc;
}

function replaceAt(doc: unknown, ptr: string, value: unknown): unknown {
  if (ptr === '') return cloneJson(value);
  const { parent, key } = parentOf(doc, ptr);
  if (Array.isArray(parent)) parent[arrayIndex(parent, key, false, ptr)] = cloneJson(value);
  else if (Object.hasOwn(parent, key)) parent[key] = cloneJson(value);
  else throw invalid(`replace operation does not apply: doc is missing key: ${ptr}: missing value`);
  return doc;
}

export function parseJsonPatch(body: unknown): JsonPatchOp[] {
  if (!Array.isArray(body)) throw errors.badRequest('json patch must be a JSON array of operations');
  return body.map((op, i) => {
    if (!isObject(op) || typeof op.op !== 'string' || typeof op.path !== 'string') throw errors.badRequest(`json patch operation ${i} needs "op" and "path"`);
    if (!['add', 'remove', 'replace', 'move', 'copy', 'test'].includes(op.op)) throw errors.badRequest(`json patch operation ${i}: unsupported op "${op.op}"`);
    if ((op.op === 'move' || op.op === 'copy') && typeof op.from !== 'string') throw errors.badRequest(`json patch operation ${i} (${op.op}) needs "from"`);
    if ((op.op === 'add' || op.op === 'replace' || op.op === 'test') && !Object.hasOwn(op, 'value')) throw errors.badRequest(`json patch operation ${i} (${op.op}) needs "value"`);
    return op as unknown as JsonPatchOp;
  });
}

/** RFC 6902, all six operations; the whole patch applies or none of it. */
export function applyJsonPatch(target: unknown, ops: JsonPatchOp[]): unknown {
  let doc: unknown = cloneJson(target) as Json;
  for (const op of ops) {
    switch (op.op) {
      case 'add': doc = addAt(doc, op.path, op.value); break;
      case 'remove': doc = removeAt(doc, op.path); break;
      case 'replace': doc = replaceAt(doc, op.path, op.value); break;
      case 'move': {
        if (op.path.startsWith(op.from! + '/')) throw invalid(`cannot move "${op.from}" into its own child "${op.path}"`);
        const v = getAt(doc, op.from!);
        doc = removeAt(doc, op.from!);
        doc = addAt(doc, op.path, v);
        break;
      }
      case 'copy': doc = addAt(doc, op.path, getAt(doc, op.from!)); break;
      case 'test':
        // kube-apiserver says no more than this for a failed test op (details: {}).
        if (!deepEqual(getAt(doc, op.path), op.value)) throw new SimApiError(422, 'Invalid', 'the server rejected our request due to an error in our request', {});
        break;
    }
  }
  return doc;
}
