/**
 * Durations as people write them in config files and flags: `250ms`, `30s`, `5m`, `1h`,
 * combinations like `1h30m`, or a plain number of seconds. Values are milliseconds.
 * Shared by the config loader and commands that take `--timeout DUR`.
 */

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
const PLAIN_SECONDS = /^\d+(?:\.\d+)?$/;

/** Milliseconds (rounded), or null when `text` is not a duration. Negative durations are not. */
export function parseDuration(text: string): number | null {
  const s = text.trim();
  if (s === '') return null;
  if (PLAIN_SECONDS.test(s)) return Math.round(Number(s) * 1000);
  let total = 0;
  let at = 0;
  PART.lastIndex = 0;
  for (let m = PART.exec(s); m !== null; m = PART.exec(s)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    at = PART.lastIndex;
  }
  if (at !== s.length) return null;
  return Number.isFinite(total) ? Math.round(total) : null;
}

/** The shortest exact spelling that parseDuration reads back: 0s, 250ms, 1h30m, 2m5s500ms. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return String(ms);
  let rest = Math.round(ms);
  if (rest === 0) return '0s';
  let out = '';
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
