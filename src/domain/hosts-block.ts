/**
 * The managed `local-rabbit` block of a hosts file, as a pure function of the file's text:
 *
 *   # BEGIN nnf-env managed block (do not edit; nnf-envd rewrites it)
 *   10.0.0.1	local-rabbit
 *   # END nnf-env managed block
 *
 * planHostsFile never changes a character outside the block. It works on any string, one
 * code unit at a time, and only looks at ASCII; HostsWriter hands it the file decoded as
 * latin1 so that every byte (invalid UTF-8, a BOM, CR) round-trips exactly.
 *
 * Rules, so that odd files are handled the same way every time and admin lines are never lost:
 * - A marker line is one that, with surrounding blanks (and a BOM on line 1) removed, is the
 *   marker prefix, alone or followed by a space. A block is a BEGIN line and the next marker
 *   line, when that one is an END.
 * - A BEGIN not followed by an END (another BEGIN comes first, or the file ends) is not a
 *   block: the line is left alone, nothing after it is touched, a warning says so, and a new
 *   block is added as if there were none. An END without a BEGIN: the same.
 * - Several blocks: the first is rewritten in place, the others removed (their content is ours
 *   by the marker's contract), with a warning.
 * - Adding: in place of the existing block, else appended. A file whose last line has no line
 *   ending gets one first, and the END line then records that
 *   (HOSTS_END_MARKER_ADDED_NEWLINE), so that removing a block that is still at the end of the
 *   file gives back the original bytes exactly. Our lines use the file's line ending (CRLF
 *   when most lines outside the block end with CRLF) and always end with one, so that an
 *   admin's `echo ... >> /etc/hosts` starts a new line.
 * - Removing (entry null) removes the blocks and only them.
 * - Conflicts: lines outside the block that map one of our names (case-insensitive) are
 *   reported, never changed. The resolver uses the first match, so such a line before the
 *   block wins over ours.
 */
import { NnfEnvError } from '../core/errors.js';
import { ipFamily, isValidHostname } from '../contract/address.js';

export const HOSTS_BEGIN_MARKER = '# BEGIN nnf-env managed block (do not edit; nnf-envd rewrites it)';
export const HOSTS_END_MARKER = '# END nnf-env managed block';
/** The END line when nnf-envd had to end the file's last line before appending the block. */
export const HOSTS_END_MARKER_ADDED_NEWLINE = '# END nnf-env managed block (nnf-envd added the line ending before BEGIN)';

const BEGIN_PREFIX = '# BEGIN nnf-env managed block';
const END_PREFIX = '# END nnf-env managed block';
/** Most names on the line; a hosts line is not meant to carry a list. */
export const MAX_HOSTS_NAMES = 32;

export interface HostsEntry {
  address: string;
  names: string[];
}

export interface HostsConflict {
  /** 1-based line number in the file as it was read. */
  line: number;
  /** The line, without its line ending. */
  text: string;
  /** Our name that the line maps (as we spell it). */
  name: string;
  /** The address the line maps it to. */
  address: string;
}

export interface HostsPlan {
  content: string;
  changed: boolean;
  conflicts: HostsConflict[];
  /** Odd things found (broken or duplicated blocks) and what was done about them. */
  warnings: string[];
  /** Whether the file had (at least one) well-formed block. */
  blockFound: boolean;
}

export type HostsEntryErrorCode = 'INVALID_HOSTS_ADDRESS' | 'INVALID_HOSTS_NAME' | 'NO_HOSTS_NAMES' | 'TOO_MANY_HOSTS_NAMES';

export class HostsEntryError extends NnfEnvError {
  declare readonly code: HostsEntryErrorCode;
  constructor(code: HostsEntryErrorCode, message: string, hint: string) {
    super(code, message, { hint });
  }
}

/** Checks an entry and returns it with duplicate names (case-insensitive) dropped. */
export function validateHostsEntry(entry: HostsEntry): HostsEntry {
  if (typeof entry.address !== 'string' || ipFamily(entry.address) === 0) {
    throw new HostsEntryError('INVALID_HOSTS_ADDRESS', `not an IPv4 or IPv6 address: ${JSON.stringify(entry.address)}`,
      'set RABBIT_ADDRESS to an IP literal such as 10.0.0.1 or fd00::1, or fix the rabbit\'s Node addresses');
  }
  const seen = new Set<string>();
  const names: string[] = [];
  for (const name of entry.names) {
    if (typeof name !== 'string' || !isValidHostname(name)) {
      throw new HostsEntryError('INVALID_HOSTS_NAME', `not a valid host name: ${JSON.stringify(name)}`,
        'HOSTS_ALIASES takes host names: letters, digits, inner hyphens, dot-separated');
    }
    const key = name.toLowerCase();
    if (!seen.has(key)) {
      seen.add(key);
      names.push(name);
    }
  }
  if (names.length === 0) throw new HostsEntryError('NO_HOSTS_NAMES', 'a hosts entry needs at least one name', 'set HOSTS_ALIASES (default local-rabbit)');
  if (names.length > MAX_HOSTS_NAMES) {
    throw new HostsEntryError('TOO_MANY_HOSTS_NAMES', `${names.length} names for one hosts line (at most ${MAX_HOSTS_NAMES})`, 'shorten HOSTS_ALIASES');
  }
  return { address: entry.address, names };
}

type Eol = '' | '\n' | '\r\n';

interface Line {
  text: string;
  eol: Eol;
}

function splitLines(s: string): Line[] {
  const lines: Line[] = [];
  let pos = 0;
  while (pos < s.length) {
    const nl = s.indexOf('\n', pos);
    if (nl < 0) {
      lines.push({ text: s.slice(pos), eol: '' });
      break;
    }
    const crlf = nl > pos && s.charCodeAt(nl - 1) === 13;
    lines.push({ text: s.slice(pos, crlf ? nl - 1 : nl), eol: crlf ? '\r\n' : '\n' });
    pos = nl + 1;
  }
  return lines;
}

const BOMS = ['\uFEFF', '\u00EF\u00BB\u00BF']; // as UTF-8 text, and as the latin1 view of its bytes

function withoutBom(text: string, index: number): string {
  if (index !== 0) return text;
  for (const bom of BOMS) if (text.startsWith(bom)) return text.slice(bom.length);
  return text;
}

function trimBlanks(text: string): string {
  return text.replace(/^[ \t]+|[ \t\r]+$/g, '');
}

type MarkerKind = 'begin' | 'end' | null;

function markerKind(text: string, index: number): MarkerKind {
  const t = trimBlanks(withoutBom(text, index));
  const isPrefixed = (prefix: string) => t === prefix || t.startsWith(prefix + ' ');
  if (isPrefixed(BEGIN_PREFIX)) return 'begin';
  if (isPrefixed(END_PREFIX)) return 'end';
  return null;
}

interface Block {
  begin: number; // line index of BEGIN
  end: number; // line index of END
  addedNewline: boolean;
}

function findBlocks(lines: Line[], warnings: string[]): Block[] {
  const markers: Array<{ index: number; kind: 'begin' | 'end' }> = [];
  lines.forEach((line, index) => {
    const kind = markerKind(line.text, index);
    if (kind) markers.push({ index, kind });
  });
  const blocks: Block[] = [];
  for (let k = 0; k < markers.length; k++) {
    const m = markers[k]!;
    const next = markers[k + 1];
    if (m.kind === 'begin' && next?.kind === 'end') {
      const endText = trimBlanks(lines[next.index]!.text);
      blocks.push({ begin: m.index, end: next.index, addedNewline: endText === HOSTS_END_MARKER_ADDED_NEWLINE });
      k++;
    } else if (m.kind === 'begin') {
      warnings.push(`line ${m.index + 1}: BEGIN marker without an END marker; left as is (treated as an ordinary comment)`);
    } else {
      warnings.push(`line ${m.index + 1}: END marker without a BEGIN marker; left as is (treated as an ordinary comment)`);
    }
  }
  for (const dup of blocks.slice(1)) {
    warnings.push(`lines ${dup.begin + 1}-${dup.end + 1}: a second managed block; removed (only one is kept)`);
  }
  return blocks;
}

function findConflicts(lines: Line[], inBlock: boolean[], names: string[]): HostsConflict[] {
  const ours = new Map(names.map((n) => [n.toLowerCase(), n]));
  const conflicts: HostsConflict[] = [];
  lines.forEach((line, index) => {
    if (inBlock[index]) return;
    const text = withoutBom(line.text, index);
    const hash = text.indexOf('#');
    const tokens = (hash >= 0 ? text.slice(0, hash) : text).split(/[ \t\r]+/).filter(Boolean);
    if (tokens.length < 2) return;
    for (const token of tokens.slice(1)) {
      const name = ours.get(token.toLowerCase());
      if (name !== undefined) conflicts.push({ line: index + 1, text: line.text, name, address: tokens[0]! });
    }
  });
  return conflicts;
}

/** The file's line ending: CRLF when most lines outside the blocks use it, else LF. */
function lineEndingOf(lines: Line[], inBlock: boolean[]): '\n' | '\r\n' {
  let crlf = 0;
  let lf = 0;
  lines.forEach((line, index) => {
    if (inBlock[index]) return;
    if (line.eol === '\r\n') crlf++;
    else if (line.eol === '\n') lf++;
  });
  return crlf > lf ? '\r\n' : '\n';
}

/** The block's text for an entry (already validated), with `eol` after every line. */
export function renderHostsBlock(entry: HostsEntry, eol: '\n' | '\r\n' = '\n', addedNewline = false): string {
  return [HOSTS_BEGIN_MARKER, `${entry.address}\t${entry.names.join(' ')}`, addedNewline ? HOSTS_END_MARKER_ADDED_NEWLINE : HOSTS_END_MARKER]
    .map((l) => l + eol)
    .join('');
}

/**
 * The hosts file with `entry` in its managed block (entry null: without the block). Throws
 * HostsEntryError for an invalid entry; never for an odd file.
 */
export function planHostsFile(existing: string, entry: HostsEntry | null): HostsPlan {
  const valid = entry === null ? null : validateHostsEntry(entry);
  const warnings: string[] = [];
  const lines = splitLines(existing);
  const blocks = findBlocks(lines, warnings);
  const inBlock: boolean[] = new Array(lines.length).fill(false);
  for (const b of blocks) for (let i = b.begin; i <= b.end; i++) inBlock[i] = true;
  const eol = lineEndingOf(lines, inBlock);
  const conflicts = valid ? findConflicts(lines, inBlock, valid.names) : [];

  let content: string;
  if (valid && blocks.length === 0) {
    if (existing.length === 0) content = renderHostsBlock(valid, eol);
    else if (lines[lines.length - 1]!.eol !== '') content = existing + renderHostsBlock(valid, eol);
    else content = existing + eol + renderHostsBlock(valid, eol, true);
  } else {
    const first = blocks[0];
    const parts: string[] = [];
    lines.forEach((line, index) => {
      if (valid && first && index === first.begin) parts.push(renderHostsBlock(valid, eol, first.addedNewline));
      if (!inBlock[index]) parts.push(line.text + line.eol);
    });
    const last = blocks[blocks.length - 1];
    if (!valid && last && last.addedNewline && last.end === lines.length - 1 && last.begin > 0 && !inBlock[last.begin - 1]) {
      // We ended this line ourselves when appending; the block is still the file's end: undo.
      const before = lines[last.begin - 1]!;
      parts[parts.length - 1] = before.text;
    }
    content = parts.join('');
  }
  return { content, changed: content !== existing, conflicts, warnings, blockFound: blocks.length > 0 };
}

/** The entry the file's (first) managed block holds, or null: for status reports. */
export function readHostsBlock(existing: string): HostsEntry | null {
  const lines = splitLines(existing);
  const block = findBlocks(lines, [])[0];
  if (!block) return null;
  for (let i = block.begin + 1; i < block.end; i++) {
    const text = lines[i]!.text;
    const hash = text.indexOf('#');
    const tokens = (hash >= 0 ? text.slice(0, hash) : text).split(/[ \t\r]+/).filter(Boolean);
    if (tokens.length >= 2) return { address: tokens[0]!, names: tokens.slice(1) };
  }
  return null;
}
