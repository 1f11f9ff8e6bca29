/**
 * `nnf-envd --print-config`: the effective configuration with where each value came from,
 * as a table for people or JSON for tools. Secret values and credentials inside URLs are
 * redacted unless the caller asks otherwise.
 */
import type { LoadedConfig } from './load.js';
import { SCHEMA } from './schema.js';
import type { ConfigKey, KeySpec } from './schema.js';
import { formatValue } from './values.js';
import type { ParsedValue } from './values.js';

export interface RenderConfigOptions {
  /** Default true. */
  redact?: boolean;
}

export const REDACTED = '<redacted>';

// user:password@ in a URL (KUBE_SERVER=https://user:pw@host) is a credential too.
const URL_USERINFO = /(\/\/)[^/@\s]*@/g;

/** A raw or formatted value as it may be shown: secrets and URL credentials replaced. */
export function redactValue(spec: KeySpec, text: string): string {
  if (text === '') return text;
  if (spec.secret) return REDACTED;
  return text.replace(URL_USERINFO, `$1${REDACTED}@`);
}

function display(key: ConfigKey, value: ParsedValue, redact: boolean): string {
  const spec: KeySpec = SCHEMA[key];
  const text = formatValue(spec, value);
  if (text === '') return Array.isArray(value) ? '(empty)' : '(unset)';
  return redact ? redactValue(spec, text) : text;
}

export function renderConfig(loaded: LoadedConfig, opts: RenderConfigOptions = {}): string {
  const redact = opts.redact !== false;
  const keys = Object.keys(SCHEMA) as ConfigKey[];
  const rows = keys.map((key) => [key, display(key, loaded.config[key], redact), loaded.sources[key].where] as const);
  const w0 = Math.max(3, ...rows.map((r) => r[0].length));
  const w1 = Math.min(48, Math.max(5, ...rows.map((r) => r[1].length)));
  const line = (a: string, b: string, c: string): string => `${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`.trimEnd();
  return [
    `# config file: ${loaded.file ?? '(none)'}`,
    line('KEY', 'VALUE', 'SOURCE'),
    ...rows.map((r) => line(...r)),
  ].join('\n') + '\n';
}

export function renderConfigJson(loaded: LoadedConfig, opts: RenderConfigOptions = {}): string {
  const redact = opts.redact !== false;
  const values: Record<string, unknown> = {};
  for (const key of Object.keys(SCHEMA) as ConfigKey[]) {
    const spec: KeySpec = SCHEMA[key];
    const value = loaded.config[key];
    const { source, where, raw } = loaded.sources[key];
    const hide = redact && spec.secret === true && raw !== '';
    values[key] = {
      value: hide ? REDACTED : typeof value === 'string' && redact ? redactValue(spec, value) : value,
      source,
      where,
      raw: redact ? redactValue(spec, raw) : raw,
    };
  }
  return JSON.stringify({ file: loaded.file, values }, null, 2) + '\n';
}
