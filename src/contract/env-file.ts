/**
 * The job env file (docs/FORMATS.md "Env file"): one format that sh, dash, bash, dotenv and the
 * Flux shell's Lua plugin all read to the same bytes, and that never executes anything.
 *
 *   # nnf-env: job fkEPGJX8vhd workflow default/fluxjob-321103304048246784 (generated, do not edit)
 *   # nnf-env:phase=delivered
 *   # nnf-env:warning=user container port 4001 on rabbit-node-1 (10.0.0.1) is not reachable ...
 *   NAME='value'
 *   OTHER="it's"
 *
 * A value is quoted with '...' when it has no `'`, else with "..." when it has none of " $ ` \,
 * and is otherwise unrepresentable. Inside either quote there is no escaping at all, which is
 * what makes the readers agree. Two more exclusions keep them agreeing: control characters, and
 * a value ending in `\` (dotenv reads `'...\'` as an escaped quote and runs on into the next
 * line). Fact lines (`# nnf-env:<key>=<text>`) carry what the shell plugin tells the user; they
 * are comments to everyone else.
 *
 * Pure: no I/O. Strings here are JS strings; files are UTF-8.
 */
import { NnfEnvError } from '../core/errors.js';
import type { JobStatus, RejectReason } from './job-status.js';

export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Prefix of a fact line; the key follows immediately, then `=`. */
export const FACT_LINE_PREFIX = '# nnf-env:';
export const FACT_KEY_PATTERN = /^[a-z][a-z0-9-]*$/;
/** Longest fact text written (longer ones are cut with an ellipsis): they become log lines. */
export const MAX_FACT_CHARS = 2000;

/**
 * Facts for the header. A string is one line; an array is one line per element (in order).
 * Keys the Lua plugin acts on:
 *   phase        the job's phase (docs/FORMATS.md), informational
 *   warning      logged by the shell of every node (node-specific: e.g. this node's ports)
 *   job-warning  logged once, by shell rank 0 (job-wide: workflow failed, variables rejected)
 */
export type EnvFileFacts = Record<string, string | readonly string[]>;

export interface EnvFileFact {
  key: string;
  value: string;
}

export class EnvFileError extends NnfEnvError {
  /** Where the text came from (a path, or a description) and the 1-based line, if any. */
  readonly source: string | undefined;
  readonly line: number | undefined;

  constructor(code: string, message: string, opts: { source?: string; line?: number; hint?: string } = {}) {
    super(code, message, opts.hint === undefined ? {} : { hint: opts.hint });
    this.source = opts.source;
    this.line = opts.line;
  }
}

export function isValidEnvName(name: string): boolean {
  return ENV_NAME_PATTERN.test(name);
}

// C0 controls, DEL and C1 controls (U+0080-U+009F: some terminals act on them like ESC).
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const DOUBLE_QUOTE_SPECIAL = /["$`\\]/;

/**
 * Why a value cannot be written, or null when it can:
 * `control-character` for U+0000-U+001F, U+007F-U+009F; `unrepresentable` for a value with `'`
 * and one of " $ ` \, a value ending in `\`, or a JS string that is not valid UTF-16 (lone
 * surrogate), which has no UTF-8 form.
 */
export function checkEnvValue(value: string): Extract<RejectReason, 'control-character' | 'unrepresentable'> | null {
  if (CONTROL.test(value)) return 'control-character';
  if (LONE_SURROGATE.test(value)) return 'unrepresentable';
  if (value.endsWith('\\')) return 'unrepresentable';
  if (value.includes("'") && DOUBLE_QUOTE_SPECIAL.test(value)) return 'unrepresentable';
  return null;
}

/** The quoted form of a value as it appears after `NAME=`, or null when unrepresentable. */
export function quoteEnvValue(value: string): string | null {
  if (checkEnvValue(value) !== null) return null;
  return value.includes("'") ? `"${value}"` : `'${value}'`;
}

/**
 * The whole file. Variables are sorted by name (code unit order, i.e. byte order for the ASCII
 * names allowed). Throws EnvFileError (ENV_VALUE_REJECTED) for an invalid name or a value
 * checkEnvValue rejects: the caller filters and records rejections before rendering.
 */
export function renderEnvFile(vars: Record<string, string>, header: string, facts: EnvFileFacts = {}): string {
  const lines: string[] = [];
  if (header !== '') {
    for (const raw of header.split(/\r\n|\n|\r/)) {
      let line = sanitizeText(raw);
      // A header line must not pass for a fact line.
      if (/^nnf-env:[a-z]/.test(line)) line = 'nnf-env: ' + line.slice('nnf-env:'.length);
      lines.push(line === '' ? '#' : `# ${line}`);
    }
  }
  for (const [key, value] of Object.entries(facts)) {
    if (!FACT_KEY_PATTERN.test(key)) {
      throw new EnvFileError('ENV_VALUE_REJECTED', `invalid fact key ${JSON.stringify(key)}`, { hint: 'fact keys match [a-z][a-z0-9-]*' });
    }
    const values: readonly string[] = typeof value === 'string' ? [value] : value;
    for (const v of values) lines.push(`${FACT_LINE_PREFIX}${key}=${truncate(sanitizeText(v), MAX_FACT_CHARS)}`);
  }
  for (const name of Object.keys(vars).sort()) {
    const value = vars[name]!;
    if (!isValidEnvName(name)) {
      throw new EnvFileError('ENV_VALUE_REJECTED', `invalid variable name ${JSON.stringify(name)}`, {
        hint: 'filter names with isValidEnvName() and record them as invalid-name',
      });
    }
    const quoted = quoteEnvValue(value);
    if (quoted === null) {
      throw new EnvFileError('ENV_VALUE_REJECTED', `value of ${name} cannot be written (${checkEnvValue(value)})`, {
        hint: 'filter values with checkEnvValue() and record the reason',
      });
    }
    lines.push(`${name}=${quoted}`);
  }
  return lines.map((l) => l + '\n').join('');
}

/** One line of free text: controls become spaces or `?`, lone surrogates U+FFFD. */
function sanitizeText(text: string): string {
  return text
    .replace(/\r\n|[\n\r\t]/g, ' ')
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
    .replace(new RegExp(LONE_SURROGATE.source, 'g'), '\ufffd');
}

function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, max - 1);
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return cut + '\u2026';
}

const BAD_FILE_HINT =
  'the file is written by nnf-envd and never edited; if it was changed or truncated, remove it ' +
  'and let nnf-envd write it again (nnf-env epilog + prolog, or restart nnf-envd)';

/** Strictly parse exactly the format renderEnvFile writes; a bad line throws EnvFileError. */
export function parseEnvFile(text: string | Uint8Array, source: string): Record<string, string> {
  return parseEnvFileWithFacts(text, source).vars;
}

/**
 * The variables and the fact lines, in file order. Accepted: `NAME=` + canonical quoting (as
 * quoteEnvValue writes it), `#` comment lines, empty lines; every line LF-terminated; UTF-8.
 * Anything else, a duplicate name, a control character anywhere, throws ENV_FILE_INVALID
 * naming the source and the line.
 */
export function parseEnvFileWithFacts(text: string | Uint8Array, source: string): { vars: Record<string, string>; facts: EnvFileFact[] } {
  const lines = typeof text === 'string' ? text.split('\n') : decodeLines(text, source);
  const vars: Record<string, string> = Object.create(null) as Record<string, string>;
  const firstLine = new Map<string, number>();
  const facts: EnvFileFact[] = [];
  const fail = (line: number, reason: string): never => {
    throw new EnvFileError('ENV_FILE_INVALID', `${source}:${line}: ${reason}`, { source, line, hint: BAD_FILE_HINT });
  };
  // split() leaves '' after the final LF; anything else there is a line without its LF.
  const last = lines.pop();
  if (last !== undefined && last !== '') fail(lines.length + 1, 'last line has no newline (truncated file?)');

  lines.forEach((line, i) => {
    const n = i + 1;
    if (line === '') return;
    if (CONTROL.test(line)) fail(n, 'control character in line');
    if (line.startsWith('#')) {
      if (line.startsWith(FACT_LINE_PREFIX)) {
        const m = /^([a-z][a-z0-9-]*)=(.*)$/s.exec(line.slice(FACT_LINE_PREFIX.length));
        if (m) facts.push({ key: m[1]!, value: m[2]! });
      }
      return;
    }
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(line);
    if (!m) fail(n, 'not NAME=\'value\', a # comment or empty');
    const name = m![1]!;
    const quoted = m![2]!;
    const value = unquote(quoted);
    if (value === null) fail(n, `value of ${name} is not quoted as the format requires`);
    if (quoteEnvValue(value!) !== quoted) fail(n, `value of ${name} is not quoted as the format requires`);
    const first = firstLine.get(name);
    if (first !== undefined) fail(n, `${name} appears again (first on line ${first})`);
    firstLine.set(name, n);
    vars[name] = value!;
  });
  return { vars: { ...vars }, facts };
}

function unquote(quoted: string): string | null {
  if (quoted.length < 2) return null;
  const q = quoted[0];
  if ((q !== "'" && q !== '"') || quoted[quoted.length - 1] !== q) return null;
  return quoted.slice(1, -1);
}

function decodeLines(bytes: Uint8Array, source: string): string[] {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const lines: string[] = [];
  let start = 0;
  for (let n = 1; ; n++) {
    const end = bytes.indexOf(0x0a, start);
    const chunk = bytes.subarray(start, end < 0 ? bytes.length : end);
    try {
      lines.push(decoder.decode(chunk));
    } catch {
      throw new EnvFileError('ENV_FILE_INVALID', `${source}:${n}: not valid UTF-8`, { source, line: n, hint: BAD_FILE_HINT });
    }
    if (end < 0) return lines;
    start = end + 1;
  }
}

/**
 * POSIX single-quoted shell word for any string: `'` + value with each `'` written `'\''` + `'`.
 * Safe to eval in sh, dash, bash, zsh and ksh whatever the content (no expansion happens inside
 * single quotes). Only NUL cannot be carried by a shell variable: it throws. Write the result as
 * UTF-8 (a lone surrogate then becomes U+FFFD, as with any JS string).
 */
export function shellQuote(value: string): string {
  if (value.includes('\0')) {
    throw new EnvFileError('ENV_VALUE_REJECTED', 'a shell variable cannot hold a NUL character', { hint: 'remove the NUL from the value' });
  }
  return `'${value.replace(/'/g, "'\\''")}'`;
}

const MAX_LISTED = 10;

function list(items: string[]): string {
  if (items.length <= MAX_LISTED) return items.join(', ');
  return `${items.slice(0, MAX_LISTED).join(', ')} and ${items.length - MAX_LISTED} more`;
}

/**
 * The facts the shell plugin needs, derived from a job's status: what nnf-envd passes as
 * renderEnvFile's third argument each time it writes (or rewrites) the env file.
 */
export function statusFacts(status: JobStatus): EnvFileFacts {
  const jobWarnings: string[] = [];
  const warnings: string[] = [];
  const wf = status.workflow ? `workflow ${status.workflow.namespace}/${status.workflow.name}` : 'the workflow';

  if (status.phase === 'failed') {
    const message = status.error?.message || status.workflow?.message || 'no message';
    jobWarnings.push(`${wf} failed, its variables are not set: ${message}`);
  }
  if (status.rejected.length > 0) {
    const n = status.rejected.length;
    jobWarnings.push(
      `${n} variable${n === 1 ? '' : 's'} of ${wf} not set: ${list(status.rejected.map((r) => `${r.name} (${r.reason})`))}`,
    );
  }
  if (status.phase === 'waiting') {
    warnings.push(`${wf} had not finished PreRun when the job started; variables may be missing (run "nnf-env wait" in the job)`);
  }
  if (status.phase === 'probing') {
    warnings.push('the user container ports were still being checked when the job started (run "nnf-env wait --ports" in the job)');
  }
  const unreachable = status.ports?.results.filter((r) => !r.reachable) ?? [];
  if (unreachable.length > 0 && status.phase !== 'probing') {
    const where = status.ports?.target
      ? `${status.ports.target}${status.ports.address ? ` (${status.ports.address})` : ''}`
      : 'the container host';
    const ports = unreachable.map((r) => `${r.port}${r.lastError ? ` (${r.lastError})` : ''}`);
    warnings.push(`user container port${unreachable.length === 1 ? '' : 's'} ${list(ports)} on ${where} not reachable from this node`);
  }

  const facts: Record<string, string | string[]> = { phase: status.phase };
  if (jobWarnings.length > 0) facts['job-warning'] = jobWarnings;
  if (warnings.length > 0) facts['warning'] = warnings;
  return facts;
}
