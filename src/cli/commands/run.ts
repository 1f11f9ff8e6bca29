/**
 * `nnf-env run [--job ID] [--] CMD ARGS...`: run a command with the job's variables added to the
 * environment; exit with its exit code, or die of the signal that killed it.
 */
import { Command } from 'commander';
import { constants } from 'node:os';
import { NnfEnvError } from '../../core/errors.js';

export class RunError extends NnfEnvError {
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode: number, hint?: string) {
    super(code, message, hint ? { hint } : {});
    this.exitCode = exitCode;
  }
}

/** Signals passed on to the child (SIGKILL and SIGSTOP cannot be caught). */
const FORWARDED: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGCONT', 'SIGWINCH'];

export function command(): Command {
  return new Command('run')
    .description('run a command with the job\'s nnf-env variables in its environment')
    .option('--job <id>', 'job id (default: $NNF_ENV_JOB_ID, the job whose variables the environment holds, else $FLUX_JOB_ID)')
    // Options after the command name are the command's: `nnf-env run sh -c 'echo $DW_JOBS'`
    // (`--` before it still works). Needs enablePositionalOptions on the root (../nnf-env.ts).
    .passThroughOptions()
    .argument('<command...>', 'the command and its arguments (-- before it is optional)')
    .addHelpText('after', '\nExits with the command\'s exit code (or its signal); 126/127 when it cannot be run; 2-6 as for nnf-env export.')
    .action(async (argv: string[], opts: { job?: string }) => {
      const ctx = await import('../job-context.js');
      const job = await ctx.loadDeliveredJob(opts.job);
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const [k, v] of job.variables) env[k] = v;
      await runForwarding(argv, env);
    });
}

/** Spawns `argv`, forwards signals, and makes this process end the way the child ended. */
export async function runForwarding(argv: string[], env: NodeJS.ProcessEnv): Promise<never> {
  const { spawn } = await import('node:child_process');
  const [file, ...args] = argv;
  if (!file) throw new RunError('NO_COMMAND', 'no command to run', 2, 'nnf-env run -- CMD ARGS...');
  const child = spawn(file, args, { env, stdio: 'inherit' });

  // Keyboard signals already reach the child through the terminal's process group: passing
  // them on again would deliver them twice. Everything else is passed on.
  const fromTerminal = (s: NodeJS.Signals) => (s === 'SIGINT' || s === 'SIGQUIT') && process.stdin.isTTY === true;
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const sig of FORWARDED) {
    const h = () => {
      if (!fromTerminal(sig) && child.pid !== undefined) {
        try {
          child.kill(sig);
        } catch {
          /* child already gone */
        }
      }
    };
    handlers.set(sig, h);
    process.on(sig, h);
  }
  const removeHandlers = () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };

  return new Promise<never>((_resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      removeHandlers();
      if (err.code === 'ENOENT') reject(new RunError('COMMAND_NOT_FOUND', `${file}: command not found`, 127));
      else if (err.code === 'EACCES') reject(new RunError('COMMAND_NOT_EXECUTABLE', `${file}: permission denied`, 126));
      else reject(new RunError('COMMAND_FAILED_TO_START', `${file}: ${err.message}`, 126));
    });
    child.on('exit', (code, signal) => {
      removeHandlers();
      if (signal) {
        // Die of the same signal, so that our parent sees what the child's parent would have.
        process.kill(process.pid, signal);
        // Not fatal by default (e.g. SIGWINCH, SIGCONT) or still pending: the shell convention.
        setTimeout(() => process.exit(128 + signalNumber(signal)), 100).unref();
        return;
      }
      process.exit(code ?? 0);
    });
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  return constants.signals[signal] ?? 1;
}
