/**
 * A few configuration keys, fast, for the commands that run on every node of every job (the
 * prolog) or many times per job script (export, get): the full loader (../config/load.ts)
 * costs about as much as starting Node itself (it loads dotenv, which loads node:crypto), and
 * these commands need two to six keys.
 *
 * Same precedence and validation as the loader for the keys read (defaults < config file <
 * NNF_ENV_* environment; SCHEMA types and VALUE_CHECKS), and the same file choice (--config,
 * else NNF_ENV_CONFIG, else /etc/nnf-env/nnf-env.conf if present). It reads only the simple
 * dotenv lines that every config file in practice consists of (`KEY=value`, `KEY='value'`,
 * `KEY="value"`, comments); whenever it is not certain to agree with the loader (any other
 * line, an unknown key, an invalid value, an unreadable file) it answers null and the caller
 * runs the full loader, which then also produces the proper error message.
 *
 * Differences, on purpose: NNF_ENV_* variables that are not configuration keys are ignored
 * (the loader refuses them), and keys other than the ones asked for are not validated.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { socketPathOf } from '../contract/job-paths.js';
import { DEFAULT_CONFIG_FILE, ENV_PREFIX, SCHEMA, type Config, type ConfigKey, type KeySpec } from './schema.js';
import { parseValue } from './values.js';
import { VALUE_CHECKS } from './checks.js';

type Env = Readonly<Record<string, string | undefined>>;

export interface LightConfigOptions {
  env: Env;
  /** Explicit --config FILE. */
  configFile?: string;
  /** Default DEFAULT_CONFIG_FILE; null: none (tests). */
  defaultConfigFile?: string | null;
}

const KEY_LINE = /^(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*)$/;
// After a closing quote: blanks and an optional comment.
const QUOTED = /^(['"])(.*?)\1[ \t]*(?:#.*)?$/;

/** KEY -> raw value of a simple dotenv file (last definition wins, as in dotenv), or null. */
export function parseSimpleDotenv(text: string): Map<string, string> | null {
  const out = new Map<string, string>();
  for (const rawLine of text.replace(/\r\n?/g, '\n').split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = KEY_LINE.exec(line);
    if (!m) return null;
    const key = m[1]!;
    const rest = m[2]!;
    let value: string;
    if (rest.startsWith("'") || rest.startsWith('"')) {
      const q = QUOTED.exec(rest);
      // dotenv expands \n inside double quotes and reads multi-line values: leave those to it.
      if (!q || (q[1] === '"' && q[2]!.includes('\\'))) return null;
      value = q[2]!;
    } else {
      if (/['"`\\]/.test(rest)) return null;
      const hash = rest.indexOf('#');
      // dotenv: an unquoted `#` starts a comment only after whitespace or at the start.
      if (hash > 0 && !/[ \t]/.test(rest[hash - 1]!)) return null;
      value = (hash >= 0 ? rest.slice(0, hash) : rest).trim();
    }
    out.set(key, value);
  }
  return out;
}

function isConfigKey(name: string): name is ConfigKey {
  return Object.prototype.hasOwnProperty.call(SCHEMA, name);
}

function valid(key: ConfigKey, raw: string): { ok: true; value: unknown } | { ok: false } {
  const parsed = parseValue(SCHEMA[key] as KeySpec, raw);
  if (!parsed.ok) return { ok: false };
  const check = VALUE_CHECKS[key];
  if (check && check(parsed.value) !== null) return { ok: false };
  return { ok: true, value: parsed.value };
}

/** The values of `keys`, or null when only the full loader can answer (see the file comment). */
export function readConfigKeys<K extends ConfigKey>(keys: readonly K[], opts: LightConfigOptions): Pick<Config, K> | null {
  // NODE_NAME's default comes from the host name: left to the loader.
  if ((keys as readonly ConfigKey[]).includes('NODE_NAME')) return null;
  const values = readRaw(keys, opts);
  if (values === null) return null;
  // The loader's derived default: SOCKET_PATH empty means RUNTIME_DIR/nnf-envd.sock.
  if ((keys as readonly ConfigKey[]).includes('SOCKET_PATH') && values.SOCKET_PATH === '') {
    const rd = (keys as readonly ConfigKey[]).includes('RUNTIME_DIR') ? values : readRaw(['RUNTIME_DIR'], opts);
    if (rd === null) return null;
    values.SOCKET_PATH = socketPathOf(rd.RUNTIME_DIR as string);
  }
  return values as Pick<Config, K>;
}

function readRaw(keys: readonly ConfigKey[], opts: LightConfigOptions): Record<string, unknown> | null {
  const out = {} as Record<string, unknown>;
  // Everything from the environment: no file needed (the environment overrides the file).
  let allFromEnv = true;
  for (const key of keys) {
    const raw = opts.env[ENV_PREFIX + key];
    if (raw === undefined) {
      allFromEnv = false;
      break;
    }
    const v = valid(key, raw);
    if (!v.ok) return null;
    out[key] = v.value;
  }
  if (allFromEnv) return out;

  let file: string | null = null;
  let mustExist = true;
  if (opts.configFile) file = opts.configFile;
  else if (opts.env[ENV_PREFIX + 'CONFIG']) file = opts.env[ENV_PREFIX + 'CONFIG']!;
  else {
    file = opts.defaultConfigFile === undefined ? DEFAULT_CONFIG_FILE : opts.defaultConfigFile;
    mustExist = false;
  }
  let entries = new Map<string, string>();
  if (file !== null) {
    let text: string | null = null;
    try {
      text = readFileSync(resolve(file), 'utf8');
    } catch (err) {
      if (mustExist || (err as { code?: string }).code !== 'ENOENT') return null;
    }
    if (text !== null) {
      const parsed = parseSimpleDotenv(text);
      if (parsed === null) return null;
      for (const k of parsed.keys()) if (!isConfigKey(k)) return null;
      entries = parsed;
    }
  }
  for (const key of keys) {
    const raw = opts.env[ENV_PREFIX + key] ?? entries.get(key) ?? (SCHEMA[key] as KeySpec).default;
    const v = valid(key, raw);
    if (!v.ok) return null;
    out[key] = v.value;
  }
  return out;
}

/**
 * The configuration keys a command needs, the one way every caller reads them: the fast reader
 * above when it is certain, else the full loader (which also reports any problem in the file).
 */
export async function loadConfigKeys<K extends ConfigKey>(keys: readonly K[], opts: LightConfigOptions): Promise<Pick<Config, K>> {
  const fast = readConfigKeys(keys, opts);
  if (fast !== null) return fast;
  const { loadConfig } = await import('./load.js');
  return (await loadConfig({ argvFlags: {}, env: opts.env as NodeJS.ProcessEnv, configFile: opts.configFile })).config;
}
