/**
 * `nnf-env hosts [--json]`: the managed local-rabbit block in the configured hosts file, and
 * whether each alias resolves (through this node's resolver, dns.lookup: what every program
 * here gets) to the block's address. Exit 1 when there is no block or an alias does not
 * resolve to it. Needs no daemon.
 */
import { Command } from 'commander';

export interface AliasCheck {
  name: string;
  /** Addresses in resolver order; empty when it does not resolve. */
  addresses: string[];
  /** The first address (what a client connects to first) is the block's. */
  ok: boolean;
  problem: string | null;
}

export interface HostsCheck {
  file: string | null;
  entry: { address: string; names: string[] } | null;
  conflicts: Array<{ line: number; text: string; name: string; address: string }>;
  warnings: string[];
  aliases: AliasCheck[];
  /** What is wrong, one line each, with the fix; empty when all is well. */
  problems: string[];
}

export type Lookup = (name: string) => Promise<string[]>;

export async function defaultLookup(name: string): Promise<string[]> {
  const { lookup } = await import('node:dns/promises');
  const res = await lookup(name, { all: true, verbatim: true });
  return res.map((r) => r.address);
}

/** Same address whatever the spelling (IPv6 zero compression, case). */
export function sameAddress(a: string, b: string): boolean {
  const norm = (x: string) => {
    try {
      return x.includes(':') ? new URL(`http://[${x}]/`).hostname.toLowerCase() : x;
    } catch {
      return x.toLowerCase();
    }
  };
  return norm(a) === norm(b);
}

export async function checkHosts(file: string, aliases: readonly string[], lookup: Lookup = defaultLookup): Promise<HostsCheck> {
  const check: HostsCheck = { file: file || null, entry: null, conflicts: [], warnings: [], aliases: [], problems: [] };
  if (!file) return check;
  const { readFile } = await import('node:fs/promises');
  const { readHostsBlock, planHostsFile } = await import('../../domain/hosts-block.js');
  let text: string;
  try {
    text = await readFile(file, 'latin1');
  } catch (err) {
    check.problems.push(`cannot read ${file}: ${(err as Error).message}`);
    return check;
  }
  const entry = readHostsBlock(text);
  check.entry = entry;
  if (!entry) {
    check.problems.push(`${file} has no nnf-env managed block: nnf-envd writes it once it knows this node's rabbit and its address (nnf-env status says why not)`);
  } else {
    try {
      const plan = planHostsFile(text, entry);
      check.conflicts = plan.conflicts;
      check.warnings = plan.warnings;
    } catch (err) {
      check.warnings.push(`the block's entry is not valid: ${(err as Error).message}`);
    }
  }
  for (const c of check.conflicts) {
    check.problems.push(`${file}:${c.line} maps ${c.name} to ${c.address} outside the managed block (${JSON.stringify(c.text)}): remove that line`);
  }
  const names = [...new Set([...aliases, ...(entry?.names ?? [])])];
  for (const name of names) {
    let addresses: string[] = [];
    let problem: string | null = null;
    try {
      addresses = await lookup(name);
    } catch (err) {
      const why = (err as { code?: string }).code ?? (err as Error).message;
      problem = `${name} does not resolve (${why})` + (file === '/etc/hosts' ? ': check the "hosts:" line of /etc/nsswitch.conf' : `: is ${file} the resolver's hosts file?`);
    }
    let ok = false;
    if (!problem && entry) {
      ok = addresses.length > 0 && sameAddress(addresses[0]!, entry.address);
      if (!ok) {
        problem = `${name} resolves to ${addresses.join(', ') || 'nothing'}, not to the managed ${entry.address}: ` +
          (file === '/etc/hosts' ? 'an earlier hosts line or nsswitch.conf order wins' : `is ${file} the resolver's hosts file?`);
      }
    } else if (!problem && !entry) {
      problem = `${name} resolves to ${addresses.join(', ')}, but there is no managed entry`;
    }
    check.aliases.push({ name, addresses, ok, problem });
    if (problem && entry) check.problems.push(problem);
  }
  return check;
}

export function renderHosts(c: HostsCheck): string {
  if (!c.file) return 'no hosts entry is managed (HOSTS_FILE is empty)\n';
  let out = `hosts file  ${c.file}\n`;
  out += c.entry ? `entry       ${c.entry.address}  ${c.entry.names.join(' ')}\n` : 'entry       none\n';
  for (const a of c.aliases) out += `${a.ok ? 'ok  ' : 'FAIL'}        ${a.name} -> ${a.addresses.join(', ') || '-'}${a.problem && !a.ok ? `  (${a.problem})` : ''}\n`;
  for (const w of c.warnings) out += `warning     ${w}\n`;
  for (const p of c.problems.filter((p) => !c.aliases.some((a) => a.problem === p))) out += `problem     ${p}\n`;
  return out;
}

export function command(): Command {
  return new Command('hosts')
    .description('show the managed local-rabbit hosts entry and whether its names resolve to it')
    .option('--config <file>', 'configuration file (default /etc/nnf-env/nnf-env.conf)')
    .option('--json', 'print the check as JSON')
    .action(async (opts: { config?: string; json?: boolean }) => {
      const { loadConfig } = await import('../../config/load.js');
      const { config } = await loadConfig({ argvFlags: {}, env: process.env, configFile: opts.config });
      const file = config.HOSTS_FILE as unknown as string;
      const aliases = config.HOSTS_ALIASES as unknown as string[];
      const check = await checkHosts(file, aliases);
      process.stdout.write(opts.json ? JSON.stringify(check, null, 2) + '\n' : renderHosts(check));
      if (file && (check.entry === null || check.problems.length > 0)) process.exitCode = 1;
    });
}
