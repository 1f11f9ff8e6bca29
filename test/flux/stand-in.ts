/**
 * Fixtures for the stand-in `flux` command (stand-in-flux.ts): a directory of jobs, each
 * with the jobspec and the eventlog flux-core would hold, and an executable `flux` that
 * answers from them. Events are written as flux-core prints them with -f json (RFC 18:
 * compact JSON, timestamp, name, context).
 */
import { appendFile, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildRoot } from '../helpers/paths.js';

export interface StandInFlux {
  dir: string;
  /** Absolute path of the executable (FLUX_COMMAND). */
  command: string;
  /** A job as flux-coral2 shows it up to RUN; `dw: undefined` for a job without #DW. */
  addJob(id: bigint, opts: { userID: number; dw?: string; failureTolerance?: number; coral2?: boolean }): Promise<void>;
  post(id: bigint, name: string, context?: Record<string, unknown>): Promise<void>;
  /** Every call made so far (argv lists). */
  calls(): Promise<string[][]>;
}

/** JSON as Python's json.dumps writes it by default. */
export function pythonJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pythonJson).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${pythonJson(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}

let clock = 1764748800.123456;
export function eventLine(name: string, context?: Record<string, unknown>): string {
  clock += 0.0173;
  return JSON.stringify(context === undefined ? { timestamp: Number(clock.toFixed(6)), name } : { timestamp: Number(clock.toFixed(6)), name, context }) + '\n';
}

export async function makeStandInFlux(root: string): Promise<StandInFlux> {
  const dir = join(root, 'flux-standin');
  await mkdir(dir, { recursive: true });
  const command = join(dir, 'flux');
  const program = join(buildRoot, 'test', 'flux', 'stand-in-flux.js');
  // Absolute paths: nnf-envd runs it with whatever environment it has (systemd: a bare one).
  await writeFile(command, `#!/bin/sh\nFLUX_STANDIN_DIR='${dir}' exec '${process.execPath}' '${program}' "$@"\n`);
  await chmod(command, 0o755);
  const post = (id: bigint, name: string, context?: Record<string, unknown>) => appendFile(join(dir, id.toString(), 'eventlog'), eventLine(name, context));
  return {
    dir,
    command,
    post,
    async addJob(id, opts) {
      const jd = join(dir, id.toString());
      await mkdir(jd, { recursive: true });
      const system: Record<string, unknown> = { duration: 0, cwd: '/home/user' };
      if (opts.dw !== undefined) system.dw = opts.dw;
      if (opts.failureTolerance !== undefined) system.dw_failure_tolerance = opts.failureTolerance;
      const jobspec = {
        resources: [{ type: 'node', count: 1, with: [{ type: 'slot', count: 1, with: [{ type: 'core', count: 1 }], label: 'task' }] }],
        tasks: [{ command: ['true'], slot: 'task', count: { per_slot: 1 } }],
        attributes: { system },
        version: 1,
      };
      // As `flux submit` stores it (Python's json.dumps: ", " and ": " separators).
      await writeFile(join(jd, 'jobspec.json'), pythonJson(jobspec));
      await writeFile(join(jd, 'eventlog'), '');
      await post(id, 'submit', { userid: opts.userID, urgency: 16, flags: 0, version: 1 });
      await post(id, 'validate');
      if (opts.dw !== undefined && opts.coral2 !== false) {
        await post(id, 'dependency-add', { description: 'dws-create' });
        await post(id, 'memo', { rabbit_workflow: `fluxjob-${id}` });
        await post(id, 'dependency-remove', { description: 'dws-create' });
      }
      await post(id, 'depend');
      await post(id, 'priority', { priority: 16 });
      await post(id, 'alloc');
      if (opts.dw !== undefined && opts.coral2 !== false) await post(id, 'prolog-start', { description: 'dws-setup' });
      await post(id, 'prolog-start', { description: 'job-manager.prolog' });
    },
    async calls() {
      const text = await readFile(join(dir, 'calls'), 'utf8').catch(() => '');
      return text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { argv: string[] }).argv);
    },
  };
}
