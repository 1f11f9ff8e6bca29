/**
 * Loads the effective configuration: built-in defaults < dotenv config file < NNF_ENV_*
 * environment variables < command-line flags, each value validated against SCHEMA and
 * remembered with where it came from (for error messages and `nnf-envd --print-config`).
 *
 * Every problem (unreadable file, syntax, unknown key, bad value) is collected and reported
 * together in one ConfigError, so that an admin fixes a file in one pass.
 */
import { readFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join, resolve } from 'node:path';
import dotenv from 'dotenv';
import { NnfEnvError, errnoCode } from '../core/errors.js';
import { socketPathOf } from '../contract/job-paths.js';
import { NOT_MORE_THAN, VALUE_CHECKS } from './checks.js';
import { DEFAULT_CONFIG_FILE, ENV_PREFIX, SCHEMA, flagName } from './schema.js';
import type { Config, ConfigKey, KeySpec } from './schema.js';
import { closestName } from './suggest.js';
import { formatValue, parseValue } from './values.js';
import type { ParsedValue } from './values.js';


export type ConfigSourceKind = 'default' | 'file' | 'env' | 'flag';

export interface ConfigValueSource {
  source: ConfigSourceKind;
  /** 'default' | '/etc/nnf-env/nnf-env.conf:12' | 'NNF_ENV_NODE_NAME' | '--node-name' */
  where: string;
  /** The text as written at that source ('' for unset defaults). */
  raw: string;
}

export interface LoadedConfig {
  config: Config;
  sources: Record<ConfigKey, ConfigValueSource>;
  /** The config file that was read, or null when none was. */
  file: string | null;
  /** Loads again with the same options (SIGHUP). */
  reload?: () => Promise<LoadedConfig>;
}

export interface LoadConfigOptions {
  /** Flag values by config key (NODE_NAME), flag name (--node-name) or commander name (nodeName). */
  argvFlags?: Record<string, string | boolean | undefined>;
  /** Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Explicit --config FILE: must exist. */
  configFile?: string;
  /** When true the default config file must exist too. */
  required?: boolean;
  /** Read when no file is named explicitly, if it exists. Default DEFAULT_CONFIG_FILE; null: none (tests). */
  defaultConfigFile?: string | null;
  /** For the NODE_NAME default. Default: os.hostname(). */
  hostname?: string;
}

export const CONFIG_KEYS = Object.keys(SCHEMA) as ConfigKey[];

/** NNF_ENV_* variables that are not configuration keys (job ids, the file name, test fixtures). */
export const NON_CONFIG_ENV_VARS: ReadonlySet<string> = new Set(['NNF_ENV_CONFIG', 'NNF_ENV_JOB_ID', 'NNF_ENV_FIXTURES', 'NNF_ENV_JOBS_DIR',
  // The per-node variables nnf-envd writes into every job (a job's helper must not read them as settings).
  'NNF_ENV_LOCAL_RABBIT', 'NNF_ENV_LOCAL_RABBIT_ADDRESS', 'NNF_ENV_CONTAINER_TARGET']);

export type ConfigErrorCode = 'CONFIG_INVALID' | 'CONFIG_UNKNOWN_KEY' | 'CONFIG_FILE_UNREADABLE' | 'CONFIG_SYNTAX';

export interface ConfigProblem {
  code: ConfigErrorCode;
  /** One line: the value, where it came from, what is wrong and what is allowed. */
  message: string;
}

const CONFIG_HINT = 'every key, its allowed values and default are documented in the example nnf-env.conf (etc/nnf-env/nnf-env.conf in the nnf-env package)';

export class ConfigError extends NnfEnvError {
  readonly problems: readonly ConfigProblem[];
  /** EX_CONFIG (sysexits.h): a systemd unit can refuse to restart on it. */
  readonly exitCode = 78;

  constructor(problems: readonly ConfigProblem[]) {
    const codes = new Set(problems.map((p) => p.code));
    const code = codes.size === 1 ? (problems[0] as ConfigProblem).code : 'CONFIG_INVALID';
    const message = problems.length === 1
      ? (problems[0] as ConfigProblem).message
      : `${problems.length} configuration problems: ${problems.map((p) => p.message).join('; ')}`;
    super(code, message, { hint: CONFIG_HINT });
    this.problems = problems;
  }
}


/** The host name up to its first dot (DWS knows compute nodes by short names). */
export function shortHostname(name: string = osHostname()): string {
  const dot = name.indexOf('.');
  return dot === -1 ? name : name.slice(0, dot);
}

/** 'NODE_NAME' | '--node-name' | 'node-name' | 'nodeName' -> 'NODE_NAME' (not checked against SCHEMA). */
export function normalizeFlagKey(name: string): string {
  return name.replace(/^-+/, '').replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/-/g, '_').toUpperCase();
}

function isConfigKey(name: string): name is ConfigKey {
  return Object.prototype.hasOwnProperty.call(SCHEMA, name);
}

/** A value as shown in a message: quoted when empty or odd, cut when long, hidden when secret. */
function shown(raw: string, spec?: KeySpec): string {
  if (spec?.secret && raw !== '') return '<redacted>';
  const cut = raw.length > 80 ? raw.slice(0, 77) + '...' : raw;
  return cut === '' || /[\s"'\\]|[^\x20-\x7e]/.test(cut) ? JSON.stringify(cut) : cut;
}

interface FileEntry {
  raw: string;
  line: number | undefined;
}

// dotenv's own line pattern (dotenv 17 lib/main.js), with match indices: used only to find the
// line each key is on and lines dotenv would silently ignore; the values come from dotenv.parse.
const DOTENV_LINE = /(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)/dgm;

/** Parse a dotenv config file's text: key -> value and line; lines that are not KEY=value. */
export function parseConfigText(text: string, fileName: string): { entries: Map<string, FileEntry>; problems: ConfigProblem[] } {
  const src = text.replace(/\r\n?/g, '\n');
  const values = dotenv.parse(src);
  const lines = new Map<string, number>();
  const covered = src.split('');
  DOTENV_LINE.lastIndex = 0;
  for (let m = DOTENV_LINE.exec(src); m !== null; m = DOTENV_LINE.exec(src)) {
    const keyAt = m.indices?.[1]?.[0] ?? m.index;
    let line = 1;
    for (let i = src.indexOf('\n'); i !== -1 && i < keyAt; i = src.indexOf('\n', i + 1)) line++;
    lines.set(m[1] as string, line);
    for (let i = m.index; i < m.index + m[0].length; i++) if (covered[i] !== '\n') covered[i] = ' ';
  }
  const problems: ConfigProblem[] = [];
  const srcLines = src.split('\n');
  covered.join('').split('\n').forEach((rest, i) => {
    const left = rest.trim();
    if (left !== '' && !left.startsWith('#')) {
      const original = (srcLines[i] ?? '').trim();
      problems.push({ code: 'CONFIG_SYNTAX', message: `${shown(original)} in ${fileName}:${i + 1}: not a KEY=value line` });
    }
  });
  const entries = new Map<string, FileEntry>();
  for (const [key, raw] of Object.entries(values)) entries.set(key, { raw, line: lines.get(key) });
  return { entries, problems };
}

async function readConfigFile(path: string, origin: string, mustExist: boolean): Promise<{ text: string | null; problem?: ConfigProblem }> {
  try {
    return { text: await readFile(path, 'utf8') };
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' && !mustExist) return { text: null };
    const what = code === 'ENOENT' ? 'does not exist'
      : code === 'EACCES' || code === 'EPERM' ? 'is not readable (permission denied; it holds no secrets, mode 0644 is fine)'
      : code === 'EISDIR' ? 'is a directory, not a file'
      : `cannot be read: ${(err as Error).message}`;
    return { text: null, problem: { code: 'CONFIG_FILE_UNREADABLE', message: `config file ${path} (${origin}) ${what}` } };
  }
}

interface Candidate extends ConfigValueSource {
  /** How a message names this value: 'PROBE_DEADLINE=abc in FILE:12', '--probe-deadline=abc on the command line'. */
  label: (shownValue: string) => string;
}

export async function loadConfig(opts: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const env = opts.env ?? process.env;
  const problems: ConfigProblem[] = [];

  // 1. Which file: --config, else NNF_ENV_CONFIG (both must exist), else the default if present.
  let filePath: string | null = null;
  let fileText: string | null = null;
  {
    const envFile = env[ENV_PREFIX + 'CONFIG'];
    const defaultFile = opts.defaultConfigFile === undefined ? DEFAULT_CONFIG_FILE : opts.defaultConfigFile;
    const choice = opts.configFile !== undefined && opts.configFile !== ''
      ? { path: opts.configFile, origin: 'from --config', mustExist: true }
      : envFile !== undefined && envFile !== ''
        ? { path: envFile, origin: 'from NNF_ENV_CONFIG', mustExist: true }
        : defaultFile !== null
          ? { path: defaultFile, origin: 'the default config file', mustExist: opts.required === true }
          : null;
    if (choice) {
      const path = resolve(choice.path);
      const read = await readConfigFile(path, choice.origin, choice.mustExist);
      if (read.problem) problems.push(read.problem);
      if (read.text !== null) {
        filePath = path;
        fileText = read.text;
      }
    }
  }

  const layers: { file: Map<ConfigKey, Candidate>; env: Map<ConfigKey, Candidate>; flag: Map<ConfigKey, Candidate> } = {
    file: new Map(),
    env: new Map(),
    flag: new Map(),
  };

  // 2. The file.
  if (filePath !== null && fileText !== null) {
    const parsed = parseConfigText(fileText, filePath);
    problems.push(...parsed.problems);
    for (const [key, { raw, line }] of parsed.entries) {
      const where = line === undefined ? filePath : `${filePath}:${line}`;
      if (!isConfigKey(key)) {
        const bare = key.startsWith(ENV_PREFIX) ? key.slice(ENV_PREFIX.length) : '';
        const advice = isConfigKey(bare)
          ? ` (did you mean ${bare}? keys are written without the ${ENV_PREFIX} prefix in the file)`
          : suggestion(key, CONFIG_KEYS);
        problems.push({ code: 'CONFIG_UNKNOWN_KEY', message: `${key} in ${where}: unknown key${advice}` });
        continue;
      }
      layers.file.set(key, { source: 'file', where, raw, label: (v) => `${key}=${v} in ${where}` });
    }
  }

  // 3. The environment.
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENV_PREFIX) || NON_CONFIG_ENV_VARS.has(name)) continue;
    const key = name.slice(ENV_PREFIX.length);
    const raw = env[name];
    if (raw === undefined) continue;
    if (!isConfigKey(key)) {
      const close = closestName(key, CONFIG_KEYS);
      const advice = close === undefined ? '' : ` (did you mean ${ENV_PREFIX}${close}?)`;
      problems.push({ code: 'CONFIG_UNKNOWN_KEY', message: `${name} in the environment: unknown variable${advice}` });
      continue;
    }
    layers.env.set(key, { source: 'env', where: name, raw, label: (v) => `${name}=${v} in the environment` });
  }

  // 4. Flags.
  for (const [given, value] of Object.entries(opts.argvFlags ?? {})) {
    if (value === undefined) continue;
    const key = normalizeFlagKey(given);
    const raw = typeof value === 'boolean' ? String(value) : value;
    if (!isConfigKey(key)) {
      const flag = '--' + key.toLowerCase().replace(/_/g, '-');
      const close = closestName(key, CONFIG_KEYS);
      const advice = close === undefined ? '' : ` (did you mean ${flagName(close)}?)`;
      problems.push({ code: 'CONFIG_UNKNOWN_KEY', message: `${flag} on the command line: unknown option${advice}` });
      continue;
    }
    const flag = flagName(key);
    layers.flag.set(key, { source: 'flag', where: flag, raw, label: (v) => `${flag}=${v} on the command line` });
  }

  // 5. The effective value of every key: the highest layer that has it, validated.
  const values: Partial<Record<ConfigKey, ParsedValue>> = {};
  const sources = {} as Record<ConfigKey, ConfigValueSource>;
  const labels = {} as Record<ConfigKey, Candidate['label']>;
  for (const key of CONFIG_KEYS) {
    const spec: KeySpec = SCHEMA[key];
    const chosen: Candidate = layers.flag.get(key) ?? layers.env.get(key) ?? layers.file.get(key)
      ?? { source: 'default', where: 'default', raw: spec.default, label: (v) => `${key}=${v} (built-in default)` };
    sources[key] = { source: chosen.source, where: chosen.where, raw: chosen.raw };
    labels[key] = chosen.label;
    const parsed = parseValue(spec, chosen.raw);
    const problem = parsed.ok ? VALUE_CHECKS[key]?.(parsed.value) ?? null : parsed.problem;
    if (problem !== null) {
      problems.push({ code: 'CONFIG_INVALID', message: `${chosen.label(shown(chosen.raw, spec))}: ${problem}` });
      continue;
    }
    if (parsed.ok) values[key] = parsed.value;
  }

  // 6. Values that depend on others.
  if (values.NODE_NAME === '') values.NODE_NAME = shortHostname(opts.hostname ?? osHostname());
  if (values.SOCKET_PATH === '' && typeof values.RUNTIME_DIR === 'string') values.SOCKET_PATH = socketPathOf(values.RUNTIME_DIR);
  for (const [low, high] of NOT_MORE_THAN) {
    const a = values[low];
    const b = values[high];
    if (typeof a === 'number' && typeof b === 'number' && a > b) {
      const lowText = labels[low](formatValue(SCHEMA[low], a));
      const highText = labels[high](formatValue(SCHEMA[high], b));
      problems.push({ code: 'CONFIG_INVALID', message: `${lowText}: more than ${highText}; ${low} must not exceed ${high}` });
    }
  }

  if (problems.length > 0) throw new ConfigError(problems);
  const loaded: LoadedConfig = { config: values as Config, sources, file: filePath };
  loaded.reload = () => loadConfig(opts);
  return loaded;
}

function suggestion(name: string, candidates: readonly string[]): string {
  const close = closestName(name, candidates);
  return close === undefined ? '' : ` (did you mean ${close}?)`;
}
