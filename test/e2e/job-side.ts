/**
 * What runs on the job's side of the full path, for the e2e files that check it: the helper as
 * the job's user runs it, and the Lua plugin as the job shell runs it, both on the files the
 * daemon of the current harness wrote. Getters, because the harness starts in a `before` hook.
 */
import { readFile } from 'node:fs/promises';
import { formatJobId } from '../../src/contract/jobid.js';
import { exists, type Harness } from '../daemon/harness.js';
import type { LuaPluginHarness } from '../lua/harness.js';
import { runCli, type CliResult } from '../cli/job-files.js';

export function jobSide(harness: () => Harness, luaVm: () => LuaPluginHarness, user: number) {
  const asRoot = process.getuid?.() === 0;
  return {
    /** The helper in the job's environment, under the job's uid when the tests run as root. */
    helper(id: bigint, args: string[]): Promise<CliResult> {
      const h = harness();
      return runCli(args, {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: h.dir, FLUX_JOB_ID: formatJobId(id, 'f58'), NNF_ENV_RUNTIME_DIR: h.runtimeDir, NNF_ENV_HOSTS_ALIASES: 'local-rabbit' },
        ...(asRoot ? { uid: user, gid: user } : {}),
      });
    },
    /** The Lua plugin on rank 0 over the job's env file, as the job shell on this node would run it. */
    async plugin(id: bigint) {
      const h = harness();
      const lua = luaVm();
      const files = h.files(id);
      if (await exists(files.env)) await lua.writeFile(files.env, await readFile(files.env));
      return lua.run({ env: { FLUX_JOB_ID: formatJobId(id, 'f58'), NNF_ENV_JOBS_DIR: h.jobsDir }, info: { rank: 0 } });
    },
  };
}
