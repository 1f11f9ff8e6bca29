/**
 * Checks beyond a key's type, for values that would otherwise fail late and obscurely
 * (a garbage alias written into /etc/hosts, a workflow name template without the job id).
 * Each returns a problem (what is wrong and what is allowed) or null.
 */
import { isIP } from 'node:net';
import type { ConfigKey } from './schema.js';
import type { ParsedValue } from './values.js';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const ENV_NAME_PREFIX = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NAME = /^[^\s/]+$/;
const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/;
export const TEMPLATE_PLACEHOLDERS = ['{jobid.dec}', '{jobid.f58plain}', '{jobid.hex}'] as const;

type Check = (value: ParsedValue) => string | null;

const name: Check = (v) => (v === '' || NAME.test(String(v)) ? null : 'must not contain whitespace or "/"');

export const VALUE_CHECKS: Partial<Record<ConfigKey, Check>> = {
  METRICS_RUNTIME_INTERVAL: (v) => (v === 0 || (v as number) >= 1000 ? null : 'must be 0 (off) or at least 1s (a finer sampling timer wakes the daemon too often)'),
  NODE_NAME: name,
  RABBIT_NAME: name,
  WORKFLOW_NAMESPACE: name,
  WLM_ID: name,
  RABBIT_ADDRESS: (v) => (v === '' || isIP(String(v)) !== 0 ? null : 'not an IPv4 or IPv6 address (write IPv6 without brackets)'),
  KUBE_SERVER: (v) => {
    const s = String(v);
    if (s === '') return null;
    const problem = 'not an API server address (use https://host:port or host:port)';
    if (s.includes('://')) {
      try {
        const u = new URL(s);
        return u.protocol === 'https:' || u.protocol === 'http:' ? null : problem;
      } catch {
        return problem;
      }
    }
    const m = HOST_PORT.exec(s);
    if (!m) return problem;
    const port = m[1] === undefined ? 443 : Number(m[1]);
    return port >= 1 && port <= 65535 ? null : problem;
  },
  HOSTS_ALIASES: (v) => {
    const badOnes = (v as string[]).filter((a) => !HOSTNAME.test(a));
    return badOnes.length === 0 ? null : `not a valid host name: ${badOnes.join(', ')}`;
  },
  ENV_ALLOWED_PREFIXES: (v) => {
    const badOnes = (v as string[]).filter((a) => !ENV_NAME_PREFIX.test(a));
    return badOnes.length === 0 ? null : `not a variable name prefix (letters, digits, _): ${badOnes.join(', ')}`;
  },
  WORKFLOW_NAME_TEMPLATE: (v) => {
    const s = String(v);
    const unknown = (s.match(/\{[^}]*\}/g) ?? []).filter((p) => !(TEMPLATE_PLACEHOLDERS as readonly string[]).includes(p));
    if (unknown.length > 0) return `unknown placeholder ${unknown.join(', ')} (allowed ${TEMPLATE_PLACEHOLDERS.join(', ')})`;
    if (!TEMPLATE_PLACEHOLDERS.some((p) => s.includes(p))) return `has no job id placeholder, so every job would get the same workflow (use ${TEMPLATE_PLACEHOLDERS.join(', ')})`;
    return null;
  },
};

/** Pairs where the first (an initial backoff) must not exceed the second (its maximum). */
export const NOT_MORE_THAN: ReadonlyArray<readonly [ConfigKey, ConfigKey]> = [
  ['BACKOFF_INITIAL', 'BACKOFF_MAX'],
  ['PROBE_BACKOFF_INITIAL', 'PROBE_BACKOFF_MAX'],
];

/** What a key with a check above allows, where that says more than its type does. */
const ALLOWED: Partial<Record<ConfigKey, string>> = {
  NODE_NAME: 'a name without whitespace or "/", or empty',
  RABBIT_NAME: 'a name without whitespace or "/", or empty',
  WORKFLOW_NAMESPACE: 'a name without whitespace or "/"',
  WLM_ID: 'a name without whitespace or "/"',
  RABBIT_ADDRESS: 'an IPv4 or IPv6 address, or empty',
  KUBE_SERVER: 'https://host:port, host:port, or empty',
  HOSTS_ALIASES: 'a comma-separated list of host names',
  ENV_ALLOWED_PREFIXES: 'a comma-separated list of variable name prefixes (letters, digits, _)',
  WORKFLOW_NAME_TEMPLATE: `text with at least one of ${TEMPLATE_PLACEHOLDERS.join(', ')}`,
};

export function allowedFor(key: ConfigKey, byType: string): string {
  return ALLOWED[key] ?? byType;
}
