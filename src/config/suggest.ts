/** "Did you mean ...?" for unknown configuration keys: the closest known name by edit distance. */

export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

/**
 * The candidate closest to `name` (case-insensitive), if it is close enough to be a typo:
 * at most a third of the name's length in edits (at least 2), or a candidate that contains
 * the name or is contained in it (a forgotten or extra word).
 */
export function closestName<T extends string>(name: string, candidates: readonly T[]): T | undefined {
  const n = name.toUpperCase();
  let best: T | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = editDistance(n, c.toUpperCase());
    if (d < bestDist) {
      best = c;
      bestDist = d;
    }
  }
  if (best === undefined) return undefined;
  if (bestDist <= Math.max(2, Math.floor(n.length / 3))) return best;
  const contains = candidates.filter((c) => n.length >= 4 && (c.toUpperCase().includes(n) || n.includes(c.toUpperCase())));
  return contains.length === 1 ? contains[0] : undefined;
}
