import { spawn } from 'node:child_process';
import { NnfEnvError, errnoCode } from '../core/errors.js';

/**
 * Runs the `flux` command (flux-core's front end) the way an admin would: `flux job info`,
 * `flux job wait-event`, `flux job eventlog`. nnf-envd reads Flux through its command, not a
 * client library of its own: the command knows the instance's URI, security and protocol.
 * flux-core prints a failure as one `flux-job: ...` line on stderr and exits 1.
 */
export class FluxCommandError extends NnfEnvError {}

export interface FluxCommandOptions {
  /** Program name or path (FLUX_COMMAND). */
  command: string;
  /** FLUX_URI for the child; '' keeps flux's own default (the system instance). */
  uri: string;
  /** Environment the child starts from. Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface FluxRunOptions {
  signal?: AbortSignal;
  /** Kills the child after this long (then `timedOut`). */
  timeoutMs?: number;
  /** Called for each complete stdout line as it arrives (streaming commands). */
  onLine?: (line: string) => void;
  /** Bound on stdout kept (and on one line when streaming). Default 16 MiB. */
  maxBytes?: number;
}

export interface FluxRunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The whole stdout (empty when `onLine` took it line by line). */
  stdout: string;
  /** stderr without the trailing newline, at most 4 KiB. */
  stderr: string;
  timedOut: boolean;
}

const MAX_STDERR = 4096;

export class FluxCommand {
  constructor(private readonly opts: FluxCommandOptions) {}

  get command(): string {
    return this.opts.command;
  }

  /** Resolves with how the command ended; rejects only when it could not be started. */
  run(args: readonly string[], ro: FluxRunOptions = {}): Promise<FluxRunResult> {
    const env = { ...(this.opts.env ?? process.env) };
    if (this.opts.uri) env.FLUX_URI = this.opts.uri;
    const maxBytes = ro.maxBytes ?? 16 * 1024 * 1024;
    return new Promise((resolve, reject) => {
      if (ro.signal?.aborted) {
        reject(ro.signal.reason ?? new FluxCommandError('FLUX_ABORTED', 'aborted'));
        return;
      }
      const child = spawn(this.opts.command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let pending: Buffer = Buffer.alloc(0);
      let err = '';
      let tooBig = false;
      let timedOut = false;
      const kill = () => child.kill('SIGTERM');
      const timer = ro.timeoutMs !== undefined ? setTimeout(() => { timedOut = true; kill(); }, ro.timeoutMs) : undefined;
      ro.signal?.addEventListener('abort', kill, { once: true });
      child.stdout.on('data', (chunk: Buffer) => {
        if (!ro.onLine) {
          if (out.length + chunk.length > maxBytes) { tooBig = true; kill(); return; }
          out += chunk.toString('utf8');
          return;
        }
        // Lines split on bytes, so a UTF-8 character cut between chunks stays whole.
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        let nl: number;
        while ((nl = pending.indexOf(0x0a)) >= 0) {
          const line = pending.subarray(0, nl).toString('utf8');
          pending = pending.subarray(nl + 1);
          if (line.trim() !== '') ro.onLine(line);
        }
        if (pending.length > maxBytes) { tooBig = true; kill(); }
      });
      child.stderr.on('data', (chunk: Buffer) => {
        if (err.length < MAX_STDERR) err += chunk.toString('utf8').slice(0, MAX_STDERR - err.length);
      });
      child.on('error', (e) => {
        clearTimeout(timer);
        ro.signal?.removeEventListener('abort', kill);
        const code = errnoCode(e);
        reject(new FluxCommandError(code === 'ENOENT' ? 'FLUX_COMMAND_NOT_FOUND' : 'FLUX_COMMAND_FAILED',
          code === 'ENOENT' ? `the flux command ${JSON.stringify(this.opts.command)} was not found` : `cannot run ${this.opts.command}: ${e.message}`,
          { hint: 'set FLUX_COMMAND to the flux binary (e.g. /usr/bin/flux)', cause: e }));
      });
      child.on('close', (code, sig) => {
        clearTimeout(timer);
        ro.signal?.removeEventListener('abort', kill);
        if (ro.onLine && pending.length > 0 && !tooBig && pending.toString('utf8').trim() !== '') ro.onLine(pending.toString('utf8'));
        if (tooBig) err = `output of ${this.opts.command} ${args.join(' ')} exceeds ${maxBytes} bytes`;
        resolve({ code, signal: sig, stdout: out, stderr: err.replace(/\n+$/, ''), timedOut });
      });
    });
  }
}

/** `flux-job: job f2X not found` and the like: the message without flux's own prefix. */
export function fluxMessage(r: FluxRunResult): string {
  const last = r.stderr.split('\n').filter((l) => l.trim() !== '').pop() ?? '';
  if (last) return last.replace(/^flux-[a-z-]+: /, '');
  if (r.timedOut) return 'timed out';
  return r.signal ? `killed by ${r.signal}` : `exit ${String(r.code)}`;
}
