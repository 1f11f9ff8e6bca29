/**
 * Flux job ids (RFC 19): one 64-bit value, many spellings. Everything that takes a job id from
 * outside (FLUX_JOB_ID, --job, the control socket) decodes it here, and every file name or
 * workflow name is re-encoded from the decoded value, never copied from the input.
 *
 * Decoding follows flux-core's flux_job_id_parse()/fluid_parse() (libjob/id.c, libutil/fluid.c):
 * trim surrounding whitespace, drop a `job.` prefix, then
 *   contains `.`        -> dothex  xxxx.xxxx.xxxx.xxxx (1-4 hex digits per group)
 *   contains `-`        -> words   (mnemonicode: recognised, refused; see below)
 *   starts with ƒ or f  -> F58     (base58, flux's alphabet)
 *   starts with F0 9F   -> emoji   (basemoji: recognised, refused; see below)
 *   starts with 0x      -> hex
 *   else                -> decimal
 * It is stricter than flux-core where flux-core is lax by accident: no sign (strtoull takes
 * "-1" as 2^64-1), no value above 2^64-1 (flux-core's base58 and emoji decoders wrap), no
 * garbage. Everything rejected is a JobIdError.
 *
 * The words and emoji spellings need flux-core's word and emoji tables, which nnf-env does not
 * ship. Flux never hands them to a prolog or a job (FLUX_JOB_ID is F58), so they are recognised
 * and refused with a message that says how to convert them (`flux job id --to=f58`).
 *
 * Dependency-free on purpose: the prolog and the helper import it on every job.
 */
import { NnfEnvError } from '../core/errors.js';

export const JOBID_ENCODINGS = ['dec', 'f58', 'f58plain', 'hex', 'dothex', 'kvs'] as const;
export type JobIdEncoding = (typeof JOBID_ENCODINGS)[number];

export const MAX_JOBID = (1n << 64n) - 1n;
/** Longer inputs are refused before any parsing (the longest valid spelling is ~60 chars). */
export const MAX_JOBID_INPUT_LENGTH = 256;

export const F58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
/** U+0192 LATIN SMALL LETTER F WITH HOOK, the prefix flux prints in UTF-8 locales. */
export const F58_PREFIX = '\u0192';
/** The ASCII prefix of f58plain (and of f58 in non-UTF-8 locales). */
export const F58_PLAIN_PREFIX = 'f';
/** base58 digits of 2^64-1; no 64-bit id has more. */
const F58_MAX_DIGITS = 11;

const ACCEPTED =
  'accepted encodings: decimal (1234), hex (0x4d2), dothex (0000.0000.0000.04d2), ' +
  'kvs (job.0000.0000.0000.04d2), F58 (\u0192NH or fNH); convert words or emoji ids with ' +
  '`flux job id --to=f58 ID`';

export class JobIdError extends NnfEnvError {
  /** The offending input, truncated and with control characters escaped (safe to print). */
  readonly input: string;

  constructor(input: unknown, reason: string) {
    const shown = typeof input === 'string' ? describeInput(input) : `(${typeof input})`;
    super('JOBID_INVALID', `invalid Flux job id ${shown}: ${reason}`, { hint: ACCEPTED });
    this.input = shown;
  }
}

export function isJobIdEncoding(value: string): value is JobIdEncoding {
  return (JOBID_ENCODINGS as readonly string[]).includes(value);
}

// C's isspace() in the "C" locale, which is what flux-core trims; not JS's wider trim().
const SURROUNDING_SPACE = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;

/** Decode any Flux job id spelling to its 64-bit value, or throw JobIdError. */
export function parseJobId(input: string): bigint {
  if (typeof input !== 'string') throw new JobIdError(input, 'not a string');
  if (input.length > MAX_JOBID_INPUT_LENGTH) {
    throw new JobIdError(input, `longer than ${MAX_JOBID_INPUT_LENGTH} characters`);
  }
  let s = input.replace(SURROUNDING_SPACE, '');
  if (s === '') throw new JobIdError(input, 'empty');
  if (s.startsWith('job.')) s = s.slice(4);

  if (s.includes('.')) return decodeDothex(input, s);
  // strtoull() would take "-1" as 2^64-1; a sign is never part of a job id.
  if (/^[+-][0-9]/.test(s)) throw new JobIdError(input, 'a job id has no sign');
  if (s.includes('-')) throw new JobIdError(input, 'mnemonicode words ids are not supported by nnf-env');
  if (s.startsWith(F58_PREFIX) || s.startsWith(F58_PLAIN_PREFIX)) return decodeF58(input, s.slice(1));
  // Bytes F0 9F in UTF-8 are exactly the code points U+1F000..U+1FFFF.
  const cp = s.codePointAt(0)!;
  if (cp >= 0x1f000 && cp <= 0x1ffff) throw new JobIdError(input, 'emoji ids are not supported by nnf-env');
  if (s.startsWith('0x')) {
    const digits = s.slice(2);
    if (!/^[0-9a-fA-F]+$/.test(digits)) throw new JobIdError(input, 'hex needs 0x followed by hex digits only');
    return inRange(input, BigInt('0x' + digits));
  }
  if (!/^[0-9]+$/.test(s)) throw new JobIdError(input, 'not a recognised encoding (a decimal id has digits only)');
  return inRange(input, BigInt(s));
}

function inRange(input: string, value: bigint): bigint {
  if (value > MAX_JOBID) throw new JobIdError(input, 'value is larger than 2^64-1');
  return value;
}

function decodeDothex(input: string, s: string): bigint {
  const m = /^([0-9a-fA-F]{1,4})\.([0-9a-fA-F]{1,4})\.([0-9a-fA-F]{1,4})\.([0-9a-fA-F]{1,4})$/.exec(s);
  if (!m) throw new JobIdError(input, 'dothex is four groups of 1-4 hex digits separated by "."');
  let value = 0n;
  for (let i = 1; i <= 4; i++) value = (value << 16n) | BigInt('0x' + m[i]!);
  return value;
}

function decodeF58(input: string, digits: string): bigint {
  if (digits === '') throw new JobIdError(input, 'F58 needs base58 digits after the prefix');
  for (const c of digits) {
    if (!F58_ALPHABET.includes(c)) {
      throw new JobIdError(input, `${describeInput(c)} is not a base58 digit (base58 has no 0, O, I or l)`);
    }
  }
  // Leading "1"s are zeros (f111 is 0); only the significant digits count toward the limit,
  // which also keeps the loop below short whatever the input length.
  const significant = digits.replace(/^1+(?=.)/, '');
  if (significant.length > F58_MAX_DIGITS) throw new JobIdError(input, 'F58 value is larger than 2^64-1');
  let value = 0n;
  for (const c of significant) value = value * 58n + BigInt(F58_ALPHABET.indexOf(c));
  return inRange(input, value);
}

function encodeF58Digits(id: bigint): string {
  if (id === 0n) return F58_ALPHABET[0]!;
  let out = '';
  for (let x = id; x > 0n; x /= 58n) out = F58_ALPHABET[Number(x % 58n)]! + out;
  return out;
}

function dothex(id: bigint): string {
  const groups: string[] = [];
  for (const shift of [48n, 32n, 16n, 0n]) groups.push(((id >> shift) & 0xffffn).toString(16).padStart(4, '0'));
  return groups.join('.');
}

/** Spell a 64-bit id the way flux-core does (flux_job_id_encode); f58 uses the ƒ prefix. */
export function formatJobId(id: bigint, encoding: JobIdEncoding): string {
  if (typeof id !== 'bigint' || id < 0n || id > MAX_JOBID) {
    throw new JobIdError(String(id), 'not a 64-bit unsigned value');
  }
  switch (encoding) {
    case 'dec': return id.toString(10);
    case 'hex': return '0x' + id.toString(16);
    case 'dothex': return dothex(id);
    case 'kvs': return 'job.' + dothex(id);
    case 'f58': return F58_PREFIX + encodeF58Digits(id);
    case 'f58plain': return F58_PLAIN_PREFIX + encodeF58Digits(id);
    default: {
      const never: never = encoding;
      throw new JobIdError(String(id), `unknown encoding ${String(never)}`);
    }
  }
}

const SHOWN_CHARS = 64;

/**
 * Quote untrusted input for a message: at most 64 characters, control and invisible
 * direction-changing characters escaped, so a log line cannot be forged or garbled.
 */
export function describeInput(input: string): string {
  const chars = Array.from(input);
  const shown = chars.slice(0, SHOWN_CHARS).map(escapeChar).join('');
  const more = chars.length > SHOWN_CHARS ? `... (${chars.length} characters)` : '';
  return `"${shown}"${more}`;
}

function escapeChar(c: string): string {
  switch (c) {
    case '"': return '\\"';
    case '\\': return '\\\\';
    case '\n': return '\\n';
    case '\r': return '\\r';
    case '\t': return '\\t';
  }
  const cp = c.codePointAt(0)!;
  if (cp < 0x20 || cp === 0x7f) return '\\x' + cp.toString(16).padStart(2, '0');
  // C1 controls, line/paragraph separators, bidi embeddings/overrides/isolates, BOM, lone surrogates.
  if ((cp >= 0x80 && cp <= 0x9f) || cp === 0x2028 || cp === 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
      (cp >= 0x2066 && cp <= 0x2069) || cp === 0xfeff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return `\\u{${cp.toString(16)}}`;
  }
  return c;
}
