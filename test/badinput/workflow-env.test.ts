/**
 * Hostile workflow environments through the real daemon, end to end: the simulator's workflow
 * carries them, nnf-envd writes the job's files, and the file it wrote is read back by sh
 * (dash, `set -a; .`), dotenv and the Lua job-shell plugin (test/lua/harness.ts). The values
 * are test/lua/nasty-values.ts's (the format-level tests in test/node/env-file.test.ts check
 * renderEnvFile with them; this checks what the daemon does with a workflow that carries them).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import dotenv from 'dotenv';
import { getJob, health, trackJob } from '../../src/api/client.js';
import type { Workflow } from '../../src/domain/dws-types.js';
import { formatJobId } from '../../src/contract/jobid.js';
import { dwsResource } from '../../src/kube/resource.js';
import { parseEnvFile } from '../../src/contract/env-file.js';
import type { JobStatus } from '../../src/contract/job-status.js';
import { LuaPluginHarness } from '../lua/harness.js';
import { REJECTED_ENV_VALUES, nastyEnvValues } from '../lua/nasty-values.js';
import { newJobId, readJson, startHarness } from '../daemon/harness.js';

const WF = dwsResource('workflows', 'v1alpha7');

function workflow(id: bigint, env: Record<string, string>): Workflow {
  const name = `fluxjob-${id}`;
  return {
    metadata: { name, namespace: 'default' },
    spec: { desiredState: 'PreRun', wlmID: 'flux', jobID: formatJobId(id, 'f58plain'), userID: 1050, groupID: 1050, hurry: false, forceReady: false },
    status: { state: 'PreRun', ready: true, status: 'Completed', env: { DW_WORKFLOW_NAME: name, DW_WORKFLOW_NAMESPACE: 'default', ...env } },
  };
}

const pad = (i: number) => String(i).padStart(3, '0');

t.test('hostile values: accepted ones survive sh, dotenv and Lua byte for byte; rejected ones are reported; nothing runs', async (t) => {
  const h = await startHarness({ sim: { controllers: false }, config: { PROBE_PORTS: 'false', ENV_MAX_TOTAL_BYTES: String(8 * 1024 * 1024), ENV_MAX_VALUE_BYTES: String(128 * 1024) } });
  t.teardown(() => h.close());
  const canary = join(h.dir, 'canary');
  const accepted: Record<string, string> = {};
  nastyEnvValues(canary).forEach((v, i) => (accepted[`NNF_NASTY_${pad(i)}`] = v));
  const rejected: Record<string, string> = {};
  const reasons: Record<string, string> = {};
  REJECTED_ENV_VALUES.forEach(([v, why], i) => {
    rejected[`NNF_BAD_${pad(i)}`] = v;
    reasons[`NNF_BAD_${pad(i)}`] = why;
  });
  const hostileNames: Record<string, string> = { 'NNF-DASH': 'x', 'NNF SPACE': 'x', '1NNF': 'x', 'NNF_\u00e9': 'x', 'NNF_$(touch x)': 'x', '': 'x', LD_PRELOAD: '/tmp/evil.so', PATH: '/tmp/evil', BASH_ENV: '/tmp/evil' };
  const big = { NNF_BIG_1MB: 'm'.repeat(1024 * 1024) };
  const id = newJobId();
  h.sim.create(WF, workflow(id, { ...accepted, ...rejected, ...hostileNames, ...big }));
  await trackJob(h.socketPath, id.toString(), 1050);
  const st = await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 20_000 });
  t.equal(st.phase, 'delivered', 'delivered despite the hostile variables');

  const status = await readJson<JobStatus>(h.files(id).status);
  const rej = new Map(status.rejected.map((r) => [r.name, r.reason]));
  for (const [name, why] of Object.entries(reasons)) t.equal(rej.get(name), why, `${name} rejected as ${why}`);
  t.equal(rej.get('NNF_BIG_1MB'), 'value-too-large', '1 MB value rejected as value-too-large');
  for (const n of ['LD_PRELOAD', 'PATH', 'BASH_ENV']) t.equal(rej.get(n), 'prefix-not-allowed', `${n}: prefix-not-allowed`);
  t.equal([...rej.values()].filter((r) => r === 'invalid-name').length, 6, 'six invalid names reported');
  for (const r of status.rejected) t.notMatch(r.name, /[\x00-\x1f\x7f]/, `rejected name printable: ${JSON.stringify(r.name)}`);

  const file = h.files(id).env;
  const bytes = await readFile(file);
  const ours = parseEnvFile(bytes, file);
  const fromDotenv = dotenv.parse(bytes);
  let same = 0;
  for (const [n, v] of Object.entries(accepted)) {
    if (ours[n] === v && fromDotenv[n] === v) same++;
    else t.fail(`${n} differs (ours ${JSON.stringify(ours[n]?.slice(0, 40))}, dotenv ${JSON.stringify(fromDotenv[n]?.slice(0, 40))}, want ${JSON.stringify(v.slice(0, 40))})`);
  }
  t.equal(same, Object.keys(accepted).length, `all ${same} accepted values: parseEnvFile and dotenv agree byte for byte`);
  for (const n of [...Object.keys(rejected), ...Object.keys(hostileNames), 'NNF_BIG_1MB']) t.notOk(n in ours, `${JSON.stringify(n)} not in the file`);

  // sh: sourced with set -a, read back from the environment (NUL-separated).
  const r = spawnSync('sh', ['-c', 'set -a; . "$1"; set +a; env -0', 'sh', file], { cwd: h.dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C.UTF-8' }, maxBuffer: 64 * 1024 * 1024 });
  t.equal(r.status, 0, `sh sourced the file (${r.stderr?.toString().slice(0, 200)})`);
  const env = new Map<string, Buffer>();
  let start = 0;
  for (let i = 0; i < r.stdout.length; i++) {
    if (r.stdout[i] !== 0) continue;
    const entry = r.stdout.subarray(start, i);
    start = i + 1;
    const eq = entry.indexOf(0x3d);
    env.set(entry.subarray(0, eq).toString('latin1'), entry.subarray(eq + 1));
  }
  let shSame = 0;
  for (const [n, v] of Object.entries(accepted)) if (env.get(n)?.equals(Buffer.from(v, 'utf8'))) shSame++;
  t.equal(shSame, Object.keys(accepted).length, `sh: all ${shSame} values byte for byte`);

  // Lua: the job-shell plugin reads the file the daemon wrote.
  const lua = await LuaPluginHarness.create();
  await lua.writeFile(`/run/nnf-env/jobs/${formatJobId(id, 'f58plain')}.env`, bytes);
  const run = await lua.run({ env: { FLUX_JOB_ID: formatJobId(id, 'f58') }, info: { rank: 0 } });
  const set = new Map(run.setenv.map((s) => [s.name, s.value]));
  let luaSame = 0;
  for (const [n, v] of Object.entries(accepted)) if (set.get(n)?.equals(Buffer.from(v, 'utf8'))) luaSame++;
  t.equal(luaSame, Object.keys(accepted).length, `Lua plugin: all ${luaSame} values byte for byte`);
  t.same(run.dies, [], 'the plugin never kills the shell');

  t.notOk(existsSync(canary), 'no canary anywhere: nothing executed');
  t.ok(await health(h.socketPath), 'daemon still serving');
});

t.test('100,000 keys and wrong types: bounded, reported, the daemon keeps serving', async (t) => {
  const h = await startHarness({ sim: { controllers: false }, config: { PROBE_PORTS: 'false' } });
  t.teardown(() => h.close());
  const many: Record<string, string> = {};
  for (let i = 0; i < 100_000; i++) many[`NNF_K_${String(i).padStart(6, '0')}`] = String(i);
  const a = newJobId();
  h.sim.create(WF, workflow(a, many));
  await trackJob(h.socketPath, a.toString(), 1050);
  const sa = await getJob(h.socketPath, a.toString(), { wait: true, timeoutMs: 30_000 });
  t.equal(sa.phase, 'delivered', '100,000 keys: delivered');
  t.ok(sa.variables.length <= 1024 + 8, `at most ENV_MAX_VARIABLES taken (${sa.variables.length})`);
  t.ok(sa.rejected.filter((r) => r.reason === 'too-many-variables').length >= 98_000, 'the rest reported as too-many-variables');

  // Wrong types: env a string, values numbers/objects/null, status a list.
  const b = newJobId();
  const wb = workflow(b, {});
  (wb.status as Record<string, unknown>).env = { NNF_NUM: 5, NNF_OBJ: { a: 1 }, NNF_NULL: null, NNF_OK: 'fine', DW_WORKFLOW_NAME: `fluxjob-${b}` };
  h.sim.create(WF, wb);
  await trackJob(h.socketPath, b.toString(), 1050);
  const sb = await getJob(h.socketPath, b.toString(), { wait: true, timeoutMs: 20_000 });
  t.equal(sb.phase, 'delivered', 'non-string values: delivered');
  t.ok(sb.variables.includes('NNF_OK'), 'the good one taken');
  t.same(sb.rejected.filter((r) => ['NNF_NUM', 'NNF_OBJ', 'NNF_NULL'].includes(r.name)).length, 3, 'the bad ones reported');

  const c = newJobId();
  const wc = workflow(c, {});
  (wc.status as Record<string, unknown>).env = 'DW_JOB_x=/mnt';
  h.sim.create(WF, wc);
  await trackJob(h.socketPath, c.toString(), 1050);
  const sc = await getJob(h.socketPath, c.toString(), { wait: true, timeoutMs: 20_000 });
  t.equal(sc.phase, 'delivered', 'env a string: delivered without workflow variables');

  // No status at all: the job waits (PreRun not finished), nothing written, nothing crashes.
  const d = newJobId();
  const wd = workflow(d, {});
  delete wd.status;
  h.sim.create(WF, wd);
  await trackJob(h.socketPath, d.toString(), 1050);
  const sd = await getJob(h.socketPath, d.toString(), { wait: true, timeoutMs: 1000 });
  t.equal(sd.phase, 'waiting', 'missing status: waiting');
  t.notOk(existsSync(h.files(d).env), 'no env file for it');
  t.ok(await health(h.socketPath), 'daemon still serving');
});
