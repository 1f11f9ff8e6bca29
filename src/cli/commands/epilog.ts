/**
 * `nnf-env epilog`: the Flux job-manager epilog (per-rank, as root). Asks nnf-envd to untrack
 * the job, which removes its files. Always exits 0: a failing epilog drains the node, and
 * nothing here is worth that. A job that was not tracked has nothing to remove; with the
 * daemon down, its garbage collection removes the files later.
 */
import { createRequire } from 'node:module';
import type { Command } from 'commander';

async function epilogAction(opts: { config?: string }): Promise<void> {
  const started = performance.now();
  const { line, problem } = await runEpilog({ env: process.env, configFile: opts.config, started });
  // stdout is LOG_INFO in Flux's perilog, stderr LOG_ERR: only problems go to stderr.
  const { writeLine } = await import('../write-line.js');
  writeLine(problem ? 'stderr' : 'stdout', line);
  process.exitCode = 0;
}

/** The plain invocation from the Flux script, without commander (see ../fast-args.ts). */
export async function fastPath(args: string[]): Promise<boolean> {
  const { simpleArgs } = await import('../fast-args.js');
  const a = simpleArgs(args, ['--config'], 0);
  if (!a) return false;
  await epilogAction({ config: a.flags.get('--config') });
  return true;
}

export function command(): Command {
  // Not imported at the top: the fast path must not pay for commander.
  const { Command } = createRequire(import.meta.url)('commander') as typeof import('commander');
  return new Command('epilog')
    .description('Flux job-manager epilog: have nnf-envd untrack the job and remove its files (root)')
    .option('--config <file>', 'configuration file (default /etc/nnf-env/nnf-env.conf)')
    .action(epilogAction);
}

export async function runEpilog(run: { env: Readonly<Record<string, string | undefined>>; configFile: string | undefined; started: number }): Promise<{ line: string; exitCode: 0; problem: boolean }> {
  const p = await import('./prolog.js');
  let job: Awaited<ReturnType<typeof p.perilogJob>> | null = null;
  let settings: Awaited<ReturnType<typeof p.loadNodeSettings>> | null = null;
  let result: string;
  let problem = false;
  try {
    job = await p.perilogJob(run.env);
    settings = await p.loadNodeSettings(run.env, run.configFile);
    const { untrackJob, DaemonUnavailableError } = await import('../../api/client.js');
    try {
      result = (await untrackJob(settings.socketPath, job.id)) ? 'untracked, files removed' : 'not tracked, nothing to remove';
    } catch (err) {
      if (!(err instanceof DaemonUnavailableError)) throw err;
      result = `not untracked: ${p.messageOf(err)}; nnf-envd removes the files when it runs again`;
      problem = true;
    }
  } catch (err) {
    result = `not untracked (epilog still succeeds): ${p.messageOf(err)}`;
    problem = true;
  }
  return { line: await p.logLine('epilog', job, settings, null, result, run.started), exitCode: 0, problem };
}
