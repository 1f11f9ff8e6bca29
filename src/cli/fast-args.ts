/**
 * The fast path of the hot commands (`export`, `get`, `prolog`, `epilog`): job scripts and the
 * per-node prolog start them thousands of times, and commander alone costs about as much as
 * everything else they load. A command module may export `fastPath(args)`; the entry calls it
 * before loading commander. It handles only plain invocations (the documented flags, each at
 * most once, as `--flag value` or `--flag=value`) and returns false for anything else (help,
 * unknown or repeated flags, `--`), which then goes through commander as usual, with its
 * messages. So the fast path never changes what a command accepts or answers.
 */
export interface SimpleArgs {
  flags: Map<string, string>;
  positional: string[];
}

/** null when `args` is anything but `valueFlags` (each once) and up to `maxPositional` operands. */
export function simpleArgs(args: readonly string[], valueFlags: readonly string[], maxPositional: number): SimpleArgs | null {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('-')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(0, eq) : a;
      if (!valueFlags.includes(name) || flags.has(name)) return null;
      let value: string | undefined;
      if (eq > 0) value = a.slice(eq + 1);
      else {
        value = args[++i];
        if (value === undefined || value.startsWith('-')) return null;
      }
      flags.set(name, value);
    } else {
      positional.push(a);
    }
  }
  return positional.length <= maxPositional ? { flags, positional } : null;
}
