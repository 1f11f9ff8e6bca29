/**
 * Restart and SIGKILL recovery, signals and reload: the daemon runs as a child process
 * (the built nnf-envd), is killed at arbitrary moments and started again; it must converge.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getJob, health, trackJob, listJobs } from '../../src/api/client.js';
import { dwsResource } from '../../src/kube/resource.js';
import { flagName, type ConfigKey } from '../../src/config/schema.js';
import { parseEnvFile } from '../../src/contract/env-file.js';
import type { JobStatus } from '../../src/contract/job-status.js';
import { nnfEnvdBin } from '../helpers/paths.js';
import { startHarness, exists, eventually, readJson, newJobId, type Harness } from '../daemon/harness.js';
import { backends } from '../helpers/backends.js';

const WF = dwsResource('workflows', 'v1alpha7');

interface Child {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function runDaemon(h: Harness, extraArgs: string[] = [], extraFlags: Record<string, string> = {}): Child {
  const args = [nnfEnvdBin];
  for (const [k, v] of Object.entries({ ...h.flags, LOG_LEVEL: 'info', LOG_FORMAT: 'json', ...extraFlags })) args.push(`${flagName(k as ConfigKey)}=${v}`);
  args.push(...extraArgs);
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, output: () => out, exited };
}

async function waitHealthy(h: Harness, child: Child): Promise<void> {
  await eventually(`daemon healthy (output so far: ${child.output().slice(-500)})`, async () => {
    if (child.proc.exitCode !== null) throw new Error(`daemon exited ${child.proc.exitCode}: ${child.output()}`);
    return health(h.socketPath, { timeoutMs: 1000 }).catch(() => false);
  }, 20_000, 50);
}

async function kill9(child: Child): Promise<void> {
  child.proc.kill('SIGKILL');
  await child.exited;
}

/** Every file in the jobs dir is complete: env files parse, status files are JSON; no temp files linger visibly. */
async function checkNoPartialFiles(t: { pass(message: string): unknown }, jobsDir: string): Promise<number> {
  let n = 0;
  for (const name of await readdir(jobsDir)) {
    const p = join(jobsDir, name);
    if (name.endsWith('.env')) {
      parseEnvFile(await readFile(p), p);
      n++;
    } else if (name.endsWith('.json')) {
      JSON.parse(await readFile(p, 'utf8'));
      n++;
    }
  }
  t.pass(`${n} job files complete`);
  return n;
}

for (const backend of await backends()) {
  t.test(backend, async (t) => {
    t.test('SIGKILL and restart: tracked jobs recovered, changes while down applied, vanished workflows collected', async (t) => {
      const h = await startHarness({ backend, noDaemon: true, sim: { stepDelayMs: 2 } });
      t.teardown(() => h.close());
      let child = runDaemon(h);
      t.teardown(() => child.proc.kill('SIGKILL'));
      await waitHealthy(h, child);

      const a = newJobId(); // delivered before the kill; its workflow vanishes while the daemon is down
      const b = newJobId(); // waiting in DataIn at the kill; finishes PreRun while the daemon is down
      const c = newJobId(); // no workflow
      await h.cluster.submitJob({ jobId: a, userID: 1050 });
      await h.cluster.submitJob({ jobId: b, userID: 1050, stopAt: 'DataIn' });
      await trackJob(h.socketPath, a.toString(), 1050);
      await trackJob(h.socketPath, b.toString(), 1050);
      await trackJob(h.socketPath, c.toString(), 1050);
      t.equal((await getJob(h.socketPath, a.toString(), { wait: true, timeoutMs: 15_000 })).phase, 'delivered');
      t.equal((await getJob(h.socketPath, c.toString(), { wait: true, timeoutMs: 15_000 })).phase, 'no-workflow');
      await eventually('b waiting on disk', async () => (await exists(h.files(b).status)) && (await readJson<JobStatus>(h.files(b).status)).phase === 'waiting');
      t.notOk(await exists(h.files(b).env));

      await kill9(child);
      t.ok(await exists(h.socketPath), 'SIGKILL left the socket file behind');
      await h.cluster.delete(WF, 'default', `fluxjob-${a}`);
      await h.cluster.advance(`fluxjob-${b}`, 'PreRun');
      await eventually('b PreRun finished', async () => {
        const wf = await h.cluster.get<{ status?: { state?: string; ready?: boolean } } & import('../../src/kube/resource.js').KubeObject>(WF, 'default', `fluxjob-${b}`);
        return wf?.status?.state === 'PreRun' && wf.status.ready === true;
      });

      child = runDaemon(h);
      await waitHealthy(h, child);
      const jobs = await listJobs(h.socketPath);
      t.same(jobs.map((j) => j.job.dec).sort(), [a, b, c].map(String).sort(), 'all three recovered from their records');
      const sb = await getJob(h.socketPath, b.toString(), { wait: true, timeoutMs: 15_000 });
      t.equal(sb.phase, 'delivered', 'b delivered after the restart');
      t.ok(parseEnvFile(await readFile(h.files(b).env, 'utf8'), 'b').DW_JOB_scratch);
      const sa = await getJob(h.socketPath, a.toString(), { wait: true, timeoutMs: 15_000 });
      t.equal(sa.phase, 'no-workflow', 'a: workflow gone');
      t.notOk(await exists(h.files(a).env), 'a: env file collected');
      t.notOk(await exists(h.files(a).status), 'a: status file collected');
      await checkNoPartialFiles(t, h.jobsDir);

      // SIGTERM: clean stop, exit 0, files stay for the next start.
      child.proc.kill('SIGTERM');
      t.equal(await child.exited, 0, 'exit 0 on SIGTERM');
      t.notOk(await exists(h.socketPath), 'socket removed on a clean stop');
      t.ok(await exists(h.files(b).env), 'files survive a restart');
    });

    t.test('SIGKILL at arbitrary moments during deliveries never leaves a partial file', async (t) => {
      const h = await startHarness({ backend, noDaemon: true, sim: { stepDelayMs: 1 } });
      t.teardown(() => h.close());
      const ids: bigint[] = [];
      for (let round = 0; round < 3; round++) {
        const child = runDaemon(h);
        t.teardown(() => child.proc.kill('SIGKILL'));
        await waitHealthy(h, child);
        const batch = Array.from({ length: 15 }, () => newJobId());
        for (const id of batch) await h.cluster.submitJob({ jobId: id, userID: 1050 + round });
        await Promise.all(batch.map((id) => trackJob(h.socketPath, id.toString(), 1050 + round)));
        ids.push(...batch);
        await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 80)));
        await kill9(child);
        await checkNoPartialFiles(t, h.jobsDir);
      }
      const child = runDaemon(h);
      t.teardown(() => child.proc.kill('SIGKILL'));
      await waitHealthy(h, child);
      for (const id of ids) {
        const st = await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 20_000 });
        t.equal(st.phase, 'delivered', `job ${id} converged`);
      }
      const n = await checkNoPartialFiles(t, h.jobsDir);
      t.equal(n, ids.length * 2, 'one env and one status file per job');
      const leftovers = (await readdir(h.jobsDir)).filter((n) => !/^f\w+\.(env|json)$/.test(n) && n !== '.tracked' && n !== '.ended');
      t.same(leftovers.filter((n) => !n.endsWith('.nnf-tmp')), [], 'nothing else in the jobs dir');
      child.proc.kill('SIGTERM');
      t.equal(await child.exited, 0);
    });

    t.test('systemd: READY=1 once serving, watchdog pings, STOPPING=1 (through a stand-in systemd-notify)', async (t) => {
      const h = await startHarness({ backend, noDaemon: true });
      t.teardown(() => h.close());
      const bin = join(h.dir, 'bin');
      const log = join(h.dir, 'notify.log');
      await mkdir(bin);
      await writeFile(join(bin, 'systemd-notify'), `#!/bin/sh\necho "$NOTIFY_SOCKET $*" >> ${log}\n`);
      await chmod(join(bin, 'systemd-notify'), 0o755);
      const args = [nnfEnvdBin];
      for (const [k, v] of Object.entries(h.flags)) args.push(`${flagName(k as ConfigKey)}=${v}`);
      const proc = spawn(process.execPath, args, { stdio: 'ignore', env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, NOTIFY_SOCKET: '/run/systemd/notify-test', WATCHDOG_USEC: '300000' } });
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
      t.teardown(() => proc.kill('SIGKILL'));
      await eventually('READY=1 sent', async () => /--ready/.test(await readFile(log, 'utf8').catch(() => '')), 20_000, 50);
      t.ok(await health(h.socketPath), 'serving when READY=1 was sent');
      await eventually('watchdog pings', async () => ((await readFile(log, 'utf8')).match(/WATCHDOG=1/g) ?? []).length >= 2, 5000, 50);
      proc.kill('SIGTERM');
      t.equal(await exited, 0);
      const lines = (await readFile(log, 'utf8')).trim().split('\n');
      t.match(lines[0], /^\/run\/systemd\/notify-test --ready --status=serving /);
      t.ok(lines.some((l) => l.endsWith('STOPPING=1')), 'STOPPING=1 on SIGTERM');
    });

    t.test('SIGHUP reloads the configuration file', async (t) => {
      const h = await startHarness({ backend, noDaemon: true });
      t.teardown(() => h.close());
      const conf = join(h.dir, 'nnf-env.conf');
      await writeFile(conf, 'PROBE_DEADLINE=5s\n');
      const { PROBE_DEADLINE: _drop, ...flags } = h.flags;
      void _drop;
      const args = [nnfEnvdBin, `--config=${conf}`];
      for (const [k, v] of Object.entries({ ...flags, LOG_LEVEL: 'info', LOG_FORMAT: 'json' })) args.push(`${flagName(k as ConfigKey)}=${v}`);
      const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      t.teardown(() => proc.kill('SIGKILL'));
      await eventually('healthy', () => health(h.socketPath, { timeoutMs: 1000 }).catch(() => false), 20_000, 50);
      await writeFile(conf, 'PROBE_DEADLINE=7s\nWATCH_TIMEOUT=10m\n');
      proc.kill('SIGHUP');
      await eventually(`reload logged (${out.slice(-300)})`, () => /configuration reloaded/.test(out));
      const line = out.split('\n').find((l) => l.includes('configuration reloaded'))!;
      t.same(JSON.parse(line).applied.sort(), ['PROBE_DEADLINE', 'WATCH_TIMEOUT']);
      await writeFile(conf, 'PROBE_DEADLINE=7s\nWATCH_TIMEOUT=10m\nDISCOVERY=computes\n');
      proc.kill('SIGHUP');
      await eventually('restart-needed logged', () => /only a restart applies/.test(out));
      t.ok(await health(h.socketPath), 'still serving after reloads');
      proc.kill('SIGINT');
      t.equal(await exited, 0, 'exit 0 on SIGINT');
    });
  });
}
