/**
 * Field and label selectors as kube-apiserver parses them for custom resources: field selectors
 * on `metadata.name` / `metadata.namespace` with `=`, `==`, `!=`; label selectors with equality
 * (`=`, `==`, `!=`), existence (`k`, `!k`) and sets (`k in (a,b)`, `k notin (a,b)`), all ANDed by
 * commas. Pure functions; a parse error is a 400 BadRequest.
 */
import type { KubeObject } from '../kube/resource.js';
import { errors } from './status.js';

export interface Selector {
  (obj: KubeObject): boolean;
  /**
   * Set when the selector can match only the object of this name (`metadata.name=x` among its
   * terms): the watch hub then offers it only that object's events instead of every event.
   */
  readonly onlyName?: string;
}

export const matchAll: Selector = () => true;

function withOnlyName(sel: (obj: KubeObject) => boolean, name: string | undefined): Selector {
  return name === undefined ? sel : Object.assign(sel, { onlyName: name });
}

/** Split on commas that are not inside parentheses and not escaped. */
function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1];
      i++;
      continue;
    }
    if (c === '(') depth++;
    if (c === ')') depth = Math.max(0, depth - 1);
    if (c === ',' && depth === 0) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== '');
}

function unescapeFieldValue(v: string): string {
  return v.replace(/\\(.)/g, '$1');
}

const FIELD_GETTERS: Record<string, (o: KubeObject) => string> = {
  'metadata.name': (o) => o.metadata.name,
  'metadata.namespace': (o) => o.metadata.namespace ?? '',
};

export function parseFieldSelector(raw: string | null | undefined): Selector {
  if (!raw) return matchAll;
  const tests: Selector[] = [];
  let onlyName: string | undefined;
  for (const term of splitTopLevel(raw)) {
    const m = /^([^!=]+?)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw errors.badRequest(`invalid field selector: invalid selector: '${raw}'; can't understand '${term}'`);
    const [, field, op, rawValue] = m as unknown as [string, string, string, string];
    const get = FIELD_GETTERS[field.trim()];
    if (!get) throw errors.badRequest(`field label not supported: ${field.trim()}`);
    const value = unescapeFieldValue(rawValue);
    if (op !== '!=' && field.trim() === 'metadata.name') onlyName = value;
    tests.push(op === '!=' ? (o) => get(o) !== value : (o) => get(o) === value);
  }
  return withOnlyName((o) => tests.every((t) => t(o)), onlyName);
}

const LABEL_KEY = /^([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

export function parseLabelSelector(raw: string | null | undefined): Selector {
  if (!raw) return matchAll;
  const tests: Selector[] = [];
  const bad = (term: string, why: string) => errors.badRequest(`unable to parse requirement: ${why} in '${term}' of label selector '${raw}'`);
  const checkKey = (term: string, key: string): string => {
    if (!LABEL_KEY.test(key) || key.length > 317) throw bad(term, `invalid label key "${key}"`);
    return key;
  };
  const checkValue = (term: string, value: string): string => {
    if (!LABEL_VALUE.test(value) || value.length > 63) throw bad(term, `invalid label value "${value}"`);
    return value;
  };
  const labelOf = (o: KubeObject, k: string): string | undefined => o.metadata.labels?.[k];
  for (const term of splitTopLevel(raw)) {
    let m: RegExpExecArray | null;
    if ((m = /^!\s*(\S+)$/.exec(term))) {
      const key = checkKey(term, m[1]!);
      tests.push((o) => labelOf(o, key) === undefined);
    } else if ((m = /^(\S+?)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term))) {
      const key = checkKey(term, m[1]!);
      const values = new Set(m[3]!.split(',').map((v) => checkValue(term, v.trim())));
      if (m[2] === 'in') tests.push((o) => values.has(labelOf(o, key) ?? '\u0000'));
      else tests.push((o) => !values.has(labelOf(o, key) ?? '\u0000'));
    } else if ((m = /^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term))) {
      const key = checkKey(term, m[1]!);
      const value = checkValue(term, m[3]!);
      if (m[2] === '!=') tests.push((o) => labelOf(o, key) !== value);
      else tests.push((o) => labelOf(o, key) === value);
    } else if ((m = /^(\S+)$/.exec(term))) {
      const key = checkKey(term, m[1]!);
      tests.push((o) => labelOf(o, key) !== undefined);
    } else {
      throw bad(term, 'unexpected syntax');
    }
  }
  return (o) => tests.every((t) => t(o));
}

/** Both selectors of a request, ANDed. */
export function parseSelectors(fieldSelector: string | null | undefined, labelSelector: string | null | undefined): Selector {
  const f = parseFieldSelector(fieldSelector);
  const l = parseLabelSelector(labelSelector);
  if (f === matchAll) return l;
  if (l === matchAll) return f;
  return withOnlyName((o) => f(o) && l(o), f.onlyName);
}
