/**
 * Parsing and describing one configuration value of a given KeyType. Pure: the loader
 * (./load.ts) adds where the value came from to the messages these return.
 */
import { isAbsolute } from 'node:path';
import { formatDuration, parseDuration } from './duration.js';
import type { KeySpec, KeyType } from './schema.js';

export type ParsedValue = string | boolean | number | string[];

export type ParseResult = { ok: true; value: ParsedValue } | { ok: false; problem: string };

const TRUE_WORDS = new Set(['true', 'yes', '1', 'on']);
const FALSE_WORDS = new Set(['false', 'no', '0', 'off']);
const INTEGER = /^[+-]?\d+$/;
const OCTAL_MODE = /^0?[0-7]{3,4}$/;
// Control characters never belong in a config value (they would corrupt files and logs).
const CONTROL = /[\u0000-\u001f\u007f]/;

const ok = (value: ParsedValue): ParseResult => ({ ok: true, value });
const bad = (problem: string): ParseResult => ({ ok: false, problem });

/** What values of this type look like, for error messages and the example config. */
export function describeAllowed(spec: KeySpec): string {
  const t = spec.type;
  const orEmpty = spec.optional ? ', or empty' : '';
  switch (t.kind) {
    case 'string': return spec.optional ? 'any text, or empty' : 'any non-empty text';
    case 'path': return `an absolute path${orEmpty}`;
    case 'bool': return 'true or false (also yes/no, on/off, 1/0)';
    case 'int': return `an integer from ${t.min} to ${t.max}`;
    case 'duration': return `a duration from ${formatDuration(t.minMs)} to ${formatDuration(t.maxMs)} (e.g. 250ms, 30s, 5m, 1h, 1h30m; a plain number is seconds)`;
    case 'enum': return `one of ${t.values.join(', ')}`;
    case 'list': return 'a comma-separated list';
    case 'mode': return 'an octal file mode such as 0660';
  }
}

/**
 * Parse `raw` as a value of `spec`. Surrounding whitespace is ignored. On failure the
 * problem says what is wrong and what is allowed, without the key or source.
 */
export function parseValue(spec: KeySpec, raw: string): ParseResult {
  const text = raw.trim();
  if (CONTROL.test(text)) return bad('contains a control character');
  const t: KeyType = spec.type;
  if (text === '' && t.kind !== 'list') {
    if (spec.optional) return ok('');
    return bad(`must not be empty (allowed: ${describeAllowed(spec)})`);
  }
  switch (t.kind) {
    case 'string':
      return ok(text);
    case 'path':
      return isAbsolute(text) ? ok(text) : bad(`not an absolute path (allowed: ${describeAllowed(spec)})`);
    case 'bool': {
      const w = text.toLowerCase();
      if (TRUE_WORDS.has(w)) return ok(true);
      if (FALSE_WORDS.has(w)) return ok(false);
      return bad('not a boolean (use true or false; yes/no, on/off, 1/0 also work)');
    }
    case 'int': {
      const range = `allowed ${t.min} to ${t.max}`;
      if (!INTEGER.test(text)) return bad(`not an integer (${range})`);
      const n = Number(text);
      if (!Number.isSafeInteger(n) || n < t.min || n > t.max) return bad(`out of range (${range})`);
      return ok(n);
    }
    case 'duration': {
      const range = `allowed ${formatDuration(t.minMs)} to ${formatDuration(t.maxMs)}`;
      const ms = parseDuration(text);
      if (ms === null) return bad(`not a duration (use e.g. 250ms, 30s, 5m, 1h; ${range})`);
      if (ms < t.minMs || ms > t.maxMs) return bad(`out of range (${range})`);
      return ok(ms);
    }
    case 'enum': {
      const found = t.values.find((v) => v.toLowerCase() === text.toLowerCase());
      return found === undefined ? bad(`not one of ${t.values.join(', ')}`) : ok(found);
    }
    case 'list':
      return ok(text.split(',').map((x) => x.trim()).filter((x) => x !== ''));
    case 'mode': {
      if (!OCTAL_MODE.test(text)) return bad('not an octal file mode (e.g. 0660, 0600)');
      return ok(parseInt(text, 8));
    }
  }
}

/** A parsed value written back the way a person would write it (durations as 30s, modes as 0660). */
export function formatValue(spec: KeySpec, value: ParsedValue): string {
  if (Array.isArray(value)) return value.join(',');
  if (spec.type.kind === 'duration' && typeof value === 'number') return formatDuration(value);
  if (spec.type.kind === 'mode' && typeof value === 'number') return '0' + value.toString(8).padStart(3, '0');
  return String(value);
}
