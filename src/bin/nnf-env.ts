#!/usr/bin/env node
/**
 * `nnf-env`: the helper for job scripts, the Flux prolog/epilog and admin tools.
 *
 * Job scripts call it often and the prolog runs on every node of every job, so this entry
 * imports nothing heavy: it finds the command in the table and imports only that command's
 * module. `--help` and `--version` load no command module at all.
 *
 * As shipped, this file and the hot commands are one CommonJS bundle (scripts/bundle-cli.mjs):
 * on Node 20 every ES module costs about half a millisecond and a hot command's path needs some
 * twenty; one CommonJS file loads in about the time of one. The bundle hands this entry the
 * hot commands' inlined modules (registerInlined); every other command is an ES module loaded by
 * URL. The two are separate copies of shared code, so errors are recognised by their mark
 * (isNnfEnvError), never by instanceof.
 */
import { fileURLToPath } from 'node:url';
import { NnfEnvError } from '../core/errors.js';
import { COMMANDS, findCommand, renderHelp } from './command-table.js';
import type { CommandEntry } from './command-table.js';
import { exitCodeOf, exitWithError, isMainModule } from '../cli/exit.js';
import { importOptional } from '../core/optional-module.js';
import { packageVersion } from '../core/package-info.js';

/** Misuse of the command line (unknown command), as shells do. */
export const EXIT_USAGE = 2;

/** What a command module provides (the factory's name is in the table, default `command`). */
type CommandModule = Record<string, unknown>;
type CommanderCommand = import('commander').Command;

class UsageError extends NnfEnvError {
  readonly exitCode = EXIT_USAGE;
}

/** Hot commands' modules inlined into the bundle, by CommandEntry.module (see the header). */
const inlined = new Map<string, () => Promise<CommandModule>>();

export function registerInlined(modules: Readonly<Record<string, () => Promise<CommandModule>>>): void {
  for (const [module, load] of Object.entries(modules)) inlined.set(module, load);
}

async function importCommand(entry: CommandEntry): Promise<CommandModule> {
  const load = inlined.get(entry.module);
  if (load) return load();
  const url = new URL(`${entry.module}.js`, import.meta.url);
  const mod = await importOptional<CommandModule>(url);
  if (mod === null) {
    throw new NnfEnvError('COMMAND_UNAVAILABLE', `command ${entry.name} is not available in this build (${fileURLToPath(url)} is missing)`, {
      hint: 'run `nnf-env --help` for the commands; rebuild or reinstall nnf-env if it should be there',
    });
  }
  return mod;
}

async function runCommand(entry: CommandEntry, args: string[]): Promise<void> {
  const mod = await importCommand(entry);
  // Hot commands (export, get, prolog, epilog) answer plain invocations without loading
  // commander; anything else they decline (false) and commander parses it (see ./fast-args.ts).
  const fast = entry.fast && entry.factory === undefined ? mod.fastPath : undefined;
  if (typeof fast === 'function' && (await (fast as (args: string[]) => Promise<boolean>)(args))) return;
  const factoryName = entry.factory ?? 'command';
  const factory = mod[factoryName];
  if (typeof factory !== 'function') {
    throw new NnfEnvError('COMMAND_UNAVAILABLE', `command ${entry.name} is not available in this build (its module exports no ${factoryName}())`);
  }
  const cmd = (factory as () => CommanderCommand)();
  // A parent named nnf-env makes commander's usage lines read `nnf-env <command> ...`.
  const { Command } = await import('commander');
  // Positional: options after a command's operands belong to them (`nnf-env run sh -c ...`).
  const root = new Command('nnf-env').enablePositionalOptions();
  root.addCommand(cmd.name(entry.name));
  await root.parseAsync([entry.name, ...args], { from: 'user' });
}

export async function main(argv: string[]): Promise<void> {
  const first = argv[0];
  if (first === undefined || first === '--help' || first === '-h' || (first === 'help' && argv.length === 1)) {
    process.stdout.write(renderHelp(packageVersion()));
    return;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    process.stdout.write(packageVersion() + '\n');
    return;
  }
  const name = first === 'help' ? (argv[1] as string) : first;
  const args = first === 'help' ? ['--help'] : argv.slice(1);
  // Errors name the command when there is one: `nnf-env get: ...`.
  const prefix = findCommand(name) === undefined ? 'nnf-env' : `nnf-env ${name}`;
  try {
    const entry = findCommand(name);
    if (entry === undefined) {
      const { closestName } = await import('../config/suggest.js'); // only on this error path
      const close = closestName(name, COMMANDS.map((c) => c.name));
      const what = name.startsWith('-') ? `unknown option ${name}` : `unknown command ${name}`;
      throw new UsageError('UNKNOWN_COMMAND', what + (close === undefined || name.startsWith('-') ? '' : ` (did you mean ${close}?)`), {
        hint: 'run nnf-env --help for the list of commands',
      });
    }
    await runCommand(entry, args);
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code?.toString().startsWith('commander.')) {
      // commander has already printed its message (commands that use exitOverride()).
      process.exit(exitCodeOf(err) ?? 1);
    }
    exitWithError(prefix, err);
  }
}

/** Defined (true) by scripts/bundle-cli.mjs in the bundle, whose own entry calls main(). */
declare const __NNF_ENV_BUNDLED__: boolean | undefined;

// Run when executed, also through npm's bin symlink (not when a test imports main()).
if (typeof __NNF_ENV_BUNDLED__ === 'undefined' && isMainModule(import.meta.url)) void main(process.argv.slice(2));
