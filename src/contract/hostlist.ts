/**
 * Membership in an RFC 29 hostlist (`rabbit[1-4,7]`, `compute[01-10],login1`), the form
 * flux-coral2 uses for the nodes in a `dws-node-failure` exception. Matched term by term,
 * never expanded, so a huge range costs nothing. Zero-padded ranges match only names with
 * the same width (`host[01-10]` has host01, not host1).
 */
export function hostlistIncludes(hostlist: string, host: string): boolean {
  for (const term of splitTerms(hostlist)) {
    const open = term.indexOf('[');
    if (open < 0) {
      if (term === host) return true;
      continue;
    }
    const close = term.indexOf(']', open);
    if (close < 0) continue;
    const prefix = term.slice(0, open);
    const suffix = term.slice(close + 1);
    if (!host.startsWith(prefix) || !host.endsWith(suffix) || host.length <= prefix.length + suffix.length) continue;
    const digits = host.slice(prefix.length, host.length - suffix.length);
    if (!/^[0-9]+$/.test(digits)) continue;
    for (const range of term.slice(open + 1, close).split(',')) {
      const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(range.trim());
      if (!m) continue;
      const lo = m[1]!;
      const hi = m[2] ?? lo;
      const width = lo.length > 1 && lo.startsWith('0') ? lo.length : 1;
      if (digits.length < width || (digits.length > width && digits.startsWith('0'))) continue;
      const n = BigInt(digits);
      if (n >= BigInt(lo) && n <= BigInt(hi)) return true;
    }
  }
  return false;
}

/** Commas between terms, not those inside brackets. */
function splitTerms(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of list) {
    if (ch === '[') depth++;
    else if (ch === ']') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}
