/**
 * `nnf-env export [--format sh|json|dotenv]`: the job's variables for a job script.
 * `eval "$(nnf-env export)"` is safe for every value the daemon accepts: each value is quoted
 * by shellQuote, so the shell never expands or executes anything in it.
 */
import { createRequire } from 'node:module';
import type { Command } from 'commander';
import { exitCodesHelp } from '../exit-codes.js';

const FORMATS = ['sh', 'json', 'dotenv'] as const;
type Format = (typeof FORMATS)[number];

interface ExportOptions {
  job?: string;
  format: Format;
}

async function runExport(opts: ExportOptions): Promise<void> {
  const { loadDeliveredJob } = await import('../job-context.js');
  const { variables } = await loadDeliveredJob(opts.job);
  process.stdout.write(await renderVariables(variables, opts.format));
}

export async function renderVariables(variables: Map<string, string>, format: Format): Promise<string> {
  if (format === 'json') return JSON.stringify(Object.fromEntries(variables), null, 2) + '\n';
  const { shellQuote, quoteEnvValue } = await import('../../contract/env-file.js');
  let out = '';
  for (const [name, value] of variables) {
    // Values come from a parsed env file, so quoteEnvValue cannot refuse them; shellQuote never does.
    out += format === 'sh' ? `export ${name}=${shellQuote(value)}\n` : `${name}=${quoteEnvValue(value) ?? shellQuote(value)}\n`;
  }
  return out;
}

/** Plain invocations without commander (see ../fast-args.ts); false: let commander handle it. */
export async function fastPath(args: string[]): Promise<boolean> {
  const { simpleArgs } = await import('../fast-args.js');
  const a = simpleArgs(args, ['--job', '--format'], 0);
  const format = (a?.flags.get('--format') ?? 'sh') as Format;
  if (!a || !FORMATS.includes(format)) return false;
  await runExport({ job: a.flags.get('--job'), format });
  return true;
}

export function command(): Command {
  // Loaded here, not at the top: the fast path must not pay for commander. Same module
  // instance as the entry's import (commander's ESM entry wraps this CommonJS one).
  const { Command, Option } = createRequire(import.meta.url)('commander') as typeof import('commander');
  return new Command('export')
    .description('print the job\'s nnf-env variables (eval "$(nnf-env export)" in sh/bash)')
    .option('--job <id>', 'job id (default: $NNF_ENV_JOB_ID, the job whose variables the environment holds, else $FLUX_JOB_ID)')
    .addOption(new Option('--format <format>', 'output format').choices(FORMATS).default('sh'))
    .addHelpText('after', '\n' + exitCodesHelp({ 0: 'ok' }))
    .action((opts: ExportOptions) => runExport(opts));
}
