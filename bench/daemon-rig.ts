/**
 * The simulator in this process and the built nnf-envd as a child process, configured like
 * the daemon tests (test/daemon/harness.ts) do it: the benchmarks' rig. The daemon is its own
 * process so that its CPU and memory are its own and the simulator's work does not delay it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { getJob, health } from '../src/api/client.js';
import { flagName, type ConfigKey } from '../src/config/schema.js';
import { startHarness, type Harness } from '../test/daemon/harness.js';
import type { SimulatorOptions } from '../src/sim/index.js';
import { nnfEnvdBin, until } from './lib.js';

export interface Rig {
  h: Harness;
  daemon: ChildProcess;
  /** Environment for `nnf-env` commands run against this daemon. */
  cliEnv: NodeJS.ProcessEnv;
  output(): string;
  waitPhase(id: bigint, phases: string[], timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startRig(opts: { sim?: SimulatorOptions; config?: Record<string, string> } = {}): Promise<Rig> {
  const h = await startHarness({ noDaemon: true, sim: { controllers: false, ...opts.sim }, config: { PROBE_PORTS: 'false', JOBSPEC_CHECK: 'false', ...opts.config } });
  const args = [nnfEnvdBin];
  for (const [k, v] of Object.entries(h.flags)) args.push(`${flagName(k as ConfigKey)}=${v}`);
  const daemon = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  let out = '';
  daemon.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  await until(`nnf-envd healthy (${out.slice(-500)})`, async () => {
    if (daemon.exitCode !== null) throw new Error(`nnf-envd exited ${daemon.exitCode}: ${out}`);
    return health(h.socketPath, { timeoutMs: 1000 }).catch(() => false);
  }, 30_000, 50);
  return {
    h,
    daemon,
    cliEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin', NNF_ENV_RUNTIME_DIR: h.runtimeDir, NNF_ENV_CONFIG: '/dev/null' },
    output: () => out,
    async waitPhase(id, phases, timeoutMs = 30_000) {
      await until(`job ${id} in ${phases.join('/')}`, async () => phases.includes((await getJob(h.socketPath, id.toString())).phase), timeoutMs, 10);
    },
    async close() {
      daemon.kill('SIGTERM');
      await Promise.race([new Promise((r) => daemon.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
      daemon.kill('SIGKILL');
      await h.close();
    },
  };
}
