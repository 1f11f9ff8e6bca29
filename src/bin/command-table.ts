/**
 * The commands of `nnf-env`: name, one-line summary, the module that implements it and whether
 * it is hot. The entry point (./nnf-env.ts) imports only the module of the command that runs,
 * so that `nnf-env get` in a job script does not load the simulator or the daemon.
 *
 * A command module exports a factory (default name `command`) returning a commander Command;
 * a hot command also exports `fastPath(args)`, which answers plain invocations without
 * commander. scripts/bundle-cli.mjs inlines the hot commands' modules into the bin (one
 * CommonJS file) and leaves the others as ES modules loaded when run.
 *
 * This file must stay free of imports: `nnf-env --help` reads it and nothing else.
 */
export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  /** The implementing module, relative to src/bin/, without extension (e.g. `../cli/commands/get`). */
  readonly module: string;
  /** Run in every job or on every node of every job: inlined into the bin, started by fastPath(). */
  readonly fast?: true;
  /** Exported factory returning a commander Command. Default 'command'. */
  readonly factory?: string;
  readonly group: CommandGroup;
}

export type CommandGroup = 'job' | 'flux' | 'admin' | 'tools';

export const GROUP_TITLES: Readonly<Record<CommandGroup, string>> = {
  job: 'In job scripts (as the job\'s user; no daemon needed)',
  flux: 'Flux prolog and epilog (root)',
  admin: 'For admins',
  tools: 'Tools',
};

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'export', module: '../cli/commands/export', fast: true, group: 'job', summary: 'Print the job\'s variables for eval "$(nnf-env export)" (sh, json or dotenv)' },
  { name: 'get', module: '../cli/commands/get', fast: true, group: 'job', summary: 'Print one variable of the job (exit 1 when unset)' },
  { name: 'show', module: '../cli/commands/show', group: 'job', summary: 'Show the job\'s variables and port results' },
  { name: 'wait', module: '../cli/commands/wait', group: 'job', summary: 'Wait until the job\'s environment is delivered (--ports: and reachable)' },
  { name: 'check-ports', module: '../cli/commands/check-ports', group: 'job', summary: 'Probe the user container\'s ports from here, now' },
  { name: 'endpoint', module: '../cli/commands/endpoint', group: 'job', summary: 'Print host:port lines to contact the user container' },
  { name: 'run', module: '../cli/commands/run', group: 'job', summary: 'Run a command with the job\'s variables set: nnf-env run -- CMD ARGS...' },
  { name: 'profiles', module: '../cli/commands/profiles', group: 'job', summary: 'Container profiles you may use; --check FILE: would the job\'s #DW container be refused?' },
  { name: 'prolog', module: '../cli/commands/prolog', fast: true, group: 'flux', summary: 'Have nnf-envd track the job and wait until its environment is delivered' },
  { name: 'epilog', module: '../cli/commands/epilog', fast: true, group: 'flux', summary: 'Untrack the job and remove its files' },
  { name: 'status', module: '../cli/commands/status', group: 'admin', summary: 'The daemon\'s view of the node and its jobs (control socket)' },
  { name: 'hosts', module: '../cli/commands/hosts', group: 'admin', summary: 'The managed local-rabbit hosts entry and whether it resolves' },
  { name: 'doctor', module: '../cli/commands/doctor', group: 'admin', summary: 'Check config, API access, permissions, rabbit mapping, hosts entry, socket' },
  { name: 'install', module: '../cli/commands/install', group: 'admin', summary: 'Install bins, systemd unit, Flux files and example config (--destdir, --dry-run)' },
  { name: 'uninstall', module: '../cli/commands/install', factory: 'uninstallCommand', group: 'admin', summary: 'Remove what install put in place (an edited config stays)' },
  { name: 'jobid', module: '../cli/commands/jobid', group: 'tools', summary: 'Convert a Flux job id between encodings' },
  { name: 'sim', module: '../sim/command', group: 'tools', summary: 'Run the simulated Kubernetes API server and DWS controllers' },
  { name: 'demo', module: './demo', group: 'tools', summary: 'Simulator, daemon and one sample job end to end (npm start)' },
];

export function findCommand(name: string): CommandEntry | undefined {
  return COMMANDS.find((c) => c.name === name);
}

export function renderHelp(version?: string): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const lines = [
    `nnf-env${version ? ' ' + version : ''}: HPE Rabbit (NNF) storage environment for Flux jobs`,
    '',
    'Usage: nnf-env <command> [options]',
    '       nnf-env <command> --help     options of one command',
  ];
  for (const group of Object.keys(GROUP_TITLES) as CommandGroup[]) {
    lines.push('', `${GROUP_TITLES[group]}:`);
    for (const c of COMMANDS.filter((x) => x.group === group)) lines.push(`  ${c.name.padEnd(width)}  ${c.summary}`);
  }
  lines.push('', 'The node daemon is nnf-envd (nnf-envd --help).');
  return lines.join('\n') + '\n';
}
