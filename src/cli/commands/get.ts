/** `nnf-env get NAME`: one variable's value, exit 1 with a message when the job does not have it. */
import { createRequire } from 'node:module';
import type { Command } from 'commander';
import { NnfEnvError } from '../../core/errors.js';
import { exitCodesHelp } from '../exit-codes.js';

export class VariableUnsetError extends NnfEnvError {
  readonly exitCode = 1;
  constructor(name: string, job: string) {
    super('VARIABLE_UNSET', `${name} is not set for job ${job}`, { hint: 'nnf-env show lists the variables the job has' });
  }
}

async function runGet(name: string, opts: { job?: string }): Promise<void> {
  const { loadDeliveredJob } = await import('../job-context.js');
  const { ref, variables } = await loadDeliveredJob(opts.job);
  const value = variables.get(name);
  if (value === undefined) throw new VariableUnsetError(name, ref.name);
  process.stdout.write(value + '\n');
}

/** Plain invocations without commander (see ../fast-args.ts); false: let commander handle it. */
export async function fastPath(args: string[]): Promise<boolean> {
  const { simpleArgs } = await import('../fast-args.js');
  const a = simpleArgs(args, ['--job'], 1);
  if (!a || a.positional.length !== 1) return false;
  await runGet(a.positional[0]!, { job: a.flags.get('--job') });
  return true;
}

export function command(): Command {
  // Not imported at the top: the fast path must not pay for commander.
  const { Command } = createRequire(import.meta.url)('commander') as typeof import('commander');
  return new Command('get')
    .description('print the value of one of the job\'s nnf-env variables')
    .argument('<name>', 'variable name, e.g. DW_JOB_my_storage')
    .option('--job <id>', 'job id (default: $NNF_ENV_JOB_ID, the job whose variables the environment holds, else $FLUX_JOB_ID)')
    .addHelpText('after', '\n' + exitCodesHelp({ 0: 'ok', 1: 'variable not set' }))
    .action((name: string, opts: { job?: string }) => runGet(name, opts));
}
