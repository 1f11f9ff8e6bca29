#!/usr/bin/env node
/**
 * `nnf-envd`: the node daemon's entry. Parses the command line (every configuration key is
 * also a flag, generated from SCHEMA), loads and validates the configuration, then either
 * prints it (--print-config), removes the managed hosts entry (--remove-hosts-entry), or runs
 * the daemon. The daemon's code is imported only for those last two, so a configuration check
 * works even in a build without it.
 */
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import type { Logger } from 'pino';
import { ConfigError, loadConfig } from '../config/load.js';
import { renderConfig, renderConfigJson } from '../config/render.js';
import type { LoadedConfig } from '../config/load.js';
import { DEFAULT_CONFIG_FILE, ENV_PREFIX, SCHEMA, flagName } from '../config/schema.js';
import type { ConfigKey, KeySpec } from '../config/schema.js';
import { allowedFor } from '../config/checks.js';
import { describeAllowed } from '../config/values.js';
import { NnfEnvError } from '../core/errors.js';
import { exitWithError, isMainModule } from '../cli/exit.js';
import { importOptional } from '../core/optional-module.js';
import { packageVersion } from '../core/package-info.js';

/** What ../daemon/main.js provides (written separately; imported by path at run time). */
export interface DaemonModule {
  runDaemon(loaded: LoadedConfig, logger: Logger): Promise<unknown>;
  removeHostsEntry?(loaded: LoadedConfig, logger: Logger): Promise<unknown>;
}

function buildProgram(): { program: Command; flagKeys: Map<string, ConfigKey> } {
  const program = new Command('nnf-envd')
    .description('nnf-env node daemon: delivers each job\'s DWS workflow environment, keeps the local-rabbit entry, probes user-container ports.')
    .version(packageVersion(), '-V, --version')
    .option('--config <file>', `configuration file (default: ${DEFAULT_CONFIG_FILE} if it exists, or $${ENV_PREFIX}CONFIG)`)
    .option('--print-config', 'print the effective configuration and where each value came from, then exit')
    .option('--json', 'with --print-config: print JSON')
    .option('--remove-hosts-entry', 'remove the managed local-rabbit block from HOSTS_FILE, then exit')
    .addHelpText('after', `\nEvery option below --remove-hosts-entry is a configuration key (NODE_NAME: --node-name, ${ENV_PREFIX}NODE_NAME).\nPrecedence: flags > ${ENV_PREFIX}* environment > config file > defaults.`);
  const flagKeys = new Map<string, ConfigKey>();
  for (const key of Object.keys(SCHEMA) as ConfigKey[]) {
    const spec: KeySpec = SCHEMA[key];
    const option = new Option(`${flagName(key)} ${spec.type.kind === 'bool' ? '[bool]' : '<value>'}`, `${spec.doc} (${allowedFor(key, describeAllowed(spec))}; default ${spec.default === '' ? 'unset' : spec.default})`);
    flagKeys.set(option.attributeName(), key);
    program.addOption(option);
  }
  return { program, flagKeys };
}

/** The daemon module inlined into a bundle (scripts/bundle-cli.mjs), loaded when first needed. */
let inlinedDaemon: (() => Promise<DaemonModule>) | undefined;

export function registerInlinedDaemon(load: () => Promise<DaemonModule>): void {
  inlinedDaemon = load;
}

async function importDaemon(): Promise<DaemonModule> {
  if (inlinedDaemon) return inlinedDaemon();
  const url = new URL('../daemon/main.js', import.meta.url);
  const mod = await importOptional<DaemonModule>(url);
  if (mod === null) {
    throw new NnfEnvError('DAEMON_UNAVAILABLE', `the daemon is not available in this build (${fileURLToPath(url)} is missing)`, {
      hint: 'rebuild or reinstall nnf-env; --print-config works without it',
    });
  }
  return mod;
}

export async function main(argv: string[]): Promise<void> {
  const { program, flagKeys } = buildProgram();
  program.parse(argv, { from: 'user' });
  const opts = program.opts<Record<string, string | boolean | undefined>>();
  const argvFlags: Record<string, string | boolean> = {};
  for (const [attr, key] of flagKeys) {
    const value = opts[attr];
    if (value !== undefined) argvFlags[key] = value;
  }
  const loadOptions: Parameters<typeof loadConfig>[0] = { argvFlags };
  if (typeof opts.config === 'string') loadOptions.configFile = opts.config;
  const loaded = await loadConfig(loadOptions);

  if (opts.printConfig) {
    process.stdout.write(opts.json ? renderConfigJson(loaded, { redact: true }) : renderConfig(loaded, { redact: true }));
    return;
  }
  const { createLogger } = await import('../core/logger.js');
  const logger = createLogger({ level: loaded.config.LOG_LEVEL, format: loaded.config.LOG_FORMAT as 'auto' | 'json' | 'pretty', name: 'nnf-envd' });
  const daemon = await importDaemon();
  if (opts.removeHostsEntry) {
    if (typeof daemon.removeHostsEntry !== 'function') {
      throw new NnfEnvError('DAEMON_UNAVAILABLE', '--remove-hosts-entry is not available in this build (the daemon module exports no removeHostsEntry())');
    }
    await daemon.removeHostsEntry(loaded, logger);
    return;
  }
  const code = await daemon.runDaemon(loaded, logger);
  if (typeof code === 'number') process.exitCode = code;
}

function fail(err: unknown): never {
  if (err instanceof ConfigError) {
    // One line per problem: each names its key, source and what is allowed.
    for (const p of err.problems) process.stderr.write(`nnf-envd: ${p.message}\n`);
    if (err.hint) process.stderr.write(`nnf-envd: hint: ${err.hint}\n`);
    process.exit(err.exitCode);
  }
  exitWithError('nnf-envd', err);
}

/** Defined (true) by scripts/bundle-cli.mjs in the bundle, whose own entry calls run(). */
declare const __NNF_ENV_BUNDLED__: boolean | undefined;

export function run(): void {
  main(process.argv.slice(2)).catch(fail);
}

if (typeof __NNF_ENV_BUNDLED__ === 'undefined' && isMainModule(import.meta.url)) run();
