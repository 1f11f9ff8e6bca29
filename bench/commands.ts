/**
 * Wall time of the commands that run most often, side by side with `node -e 0` (the floor:
 * starting Node itself). Not a test: run after a build,
 *
 *   npm run build && node dist/bench/commands.js [--runs 30]
 *
 * Every command is started as a fresh process, as a job script or Flux starts it. Runs are
 * interleaved (one of each per round, in a rotating order), so that a noisy neighbour slows all
 * of them alike. Prints the median, p10 and p90 in ms, and the median's ratio to `node -e 0`.
 * Goal: at most 1.5x.
 *
 * `nnf-env prolog` is measured against a real nnf-envd (with the simulator as API server) for
 * an already delivered job, the common case on every node after the first poll. If the daemon
 * cannot deliver the job here, a stand-in answers on the same socket (marked in the output).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderEnvFile } from '../src/contract/env-file.js';
import { writeFileAtomic } from '../src/fs/atomic-file.js';
import { jobFiles } from '../src/contract/job-paths.js';
import { formatJobId } from '../src/contract/jobid.js';
import type { JobStatus } from '../src/contract/job-status.js';

const here = dirname(fileURLToPath(import.meta.url));
const buildRoot = resolve(here, '..');
// The shipped bin (the bundle `npm run build` makes), else the ES module entry of a tsc-only build.
const bundle = join(buildRoot, 'src', 'bin', 'nnf-env.cjs');
const esmEntry = join(buildRoot, 'src', 'bin', 'nnf-env.js');
const bin = existsSync(bundle) ? bundle : esmEntry;
// What the packages ship as /usr/bin/nnf-env: the launcher that loads the standalone bundle with
// its V8 code cache (scripts/nnf-env-launcher.cjs).
const standalone = join(buildRoot, 'standalone', 'nnf-env.cjs');

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 30;

interface Case {
  name: string;
  argv: string[];
  env: Record<string, string>;
  note?: string;
}

function runOnce(c: Case): Promise<number> {
  return new Promise((resolveRun, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, c.argv, { env: c.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const expectFail = c.name.startsWith('(expected');
      if (code !== 0 && !expectFail) reject(new Error(`${c.name} exited ${code}: ${err.trim()}`));
      else resolveRun(ms);
    });
  });
}

function quantile(sorted: number[], q: number): number {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (i - lo);
}

const JOB = 321103304048246784n;

const TYPICAL_VARS: Record<string, string> = {
  DW_WORKFLOW_NAME: `fluxjob-${JOB}`,
  DW_WORKFLOW_NAMESPACE: 'default',
  DW_JOB_scratch: '/mnt/nnf/6b1f0a2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b-0',
  DW_JOB_XFS: '/mnt/nnf/6b1f0a2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b-0',
  DW_JOBS: 'scratch:/mnt/nnf/6b1f0a2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b-0',
  NNF_CONTAINER_PORTS: '4000,4001',
  NNF_CONTAINER_PORTS_red_rock: '4000,4001',
  NNF_CONTAINER_HOSTNAMES: 'rabbit-node-1',
  NNF_CONTAINER_DOMAIN: 'default.svc.cluster.local',
  NNF_CONTAINER_SUBDOMAIN: `fluxjob-${JOB}`,
  NNF_ENV_CONTAINER_TARGET: 'rabbit-node-1',
  NNF_ENV_LOCAL_RABBIT: 'rabbit-node-1',
  NNF_ENV_LOCAL_RABBIT_ADDRESS: '10.0.0.1',
  NNF_ENV_JOB_ID: formatJobId(JOB, 'f58plain'),
};

function deliveredStatus(id: bigint): JobStatus {
  return {
    version: 1,
    job: { id: formatJobId(id, 'f58plain'), dec: id.toString(), userID: 0 },
    workflow: { namespace: 'default', name: `fluxjob-${id}`, state: 'PreRun', ready: true, status: 'Completed', message: '' },
    phase: 'delivered',
    error: null,
    variables: Object.keys(TYPICAL_VARS).sort(),
    rejected: [],
    rabbit: { name: 'rabbit-node-1', address: '10.0.0.1' },
    ports: { target: 'rabbit-node-1', address: '10.0.0.1', results: [] },
    timings: { trackedAt: new Date().toISOString() },
  };
}

interface PrologTarget {
  env: Record<string, string>;
  note: string;
  stop: () => Promise<void>;
}

/** A real simulator + nnf-envd; the job submitted, tracked and delivered before timing starts. */
async function realDaemon(dir: string): Promise<PrologTarget | string> {
  let sim: { close(): Promise<void>; writeKubeconfig(p: string): Promise<void>; submitJob(o: unknown): unknown } | undefined;
  let daemon: { stop(): Promise<void>; socketPath: string } | undefined;
  try {
    const simMod = await import('../src/sim/index.js');
    const daemonMod = await import('../src/daemon/main.js');
    const { loadConfig } = await import('../src/config/load.js');
    const { pino } = await import('pino');
    const client = await import('../src/api/client.js');
    sim = await simMod.startSimulator({ computeName: 'bench-node', rabbitName: 'rabbit-node-1', ports: '0' });
    await sim.writeKubeconfig(join(dir, 'kubeconfig'));
    await writeFile(join(dir, 'hosts'), '127.0.0.1 localhost\n');
    const conf = join(dir, 'nnf-env.conf');
    await writeFile(conf, [
      'NODE_NAME=bench-node', `RUNTIME_DIR=${join(dir, 'run')}`, `HOSTS_FILE=${join(dir, 'hosts')}`, `LOCAL_RABBIT_CONF=${join(dir, 'local-rabbit.conf')}`,
      `KUBECONFIG=${join(dir, 'kubeconfig')}`, `RABBIT_MAPPING_FILE=${join(dir, 'no-mapping')}`, 'LOG_LEVEL=warn', 'JOBSPEC_CHECK=false', '',
    ].join('\n'));
    const loaded = await loadConfig({ configFile: conf, env: {} });
    daemon = await daemonMod.startDaemon(loaded, pino({ level: 'silent' }), { env: {}, startupApiWaitMs: 5000, rabbitWaitMs: 5000 });
    sim.submitJob({ jobId: JOB, userID: 0 });
    await client.trackJob(daemon.socketPath, JOB, 0);
    const status = await client.getJob(daemon.socketPath, JOB, { wait: true, timeoutMs: 30_000 });
    if (status.phase !== 'delivered') throw new Error(`the job is ${status.phase} after 30 s`);
    const d = daemon;
    const s = sim;
    return {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NNF_ENV_CONFIG: conf, FLUX_JOB_ID: formatJobId(JOB, 'f58'), FLUX_JOB_USERID: '0' },
      note: 'real nnf-envd + simulator, job already delivered',
      stop: async () => {
        await d.stop();
        await s.close();
      },
    };
  } catch (err) {
    await daemon?.stop().catch(() => undefined);
    await sim?.close().catch(() => undefined);
    return (err as Error).message;
  }
}

/** Fallback: a stand-in answering PUT /v1/jobs/{id} with a delivered status, as nnf-envd does. */
async function standIn(dir: string, why: string): Promise<PrologTarget> {
  const socketPath = join(dir, 'stand-in.sock');
  const body = JSON.stringify(deliveredStatus(JOB));
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  const conf = join(dir, 'stand-in.conf');
  await writeFile(conf, `SOCKET_PATH=${socketPath}\n`);
  return {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NNF_ENV_CONFIG: conf, FLUX_JOB_ID: formatJobId(JOB, 'f58'), FLUX_JOB_USERID: '0' },
    note: `STAND-IN daemon (real nnf-envd unavailable here: ${why})`,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'nnf-env-bench-'));
  try {
    // A delivered job for the job-script commands, written with the daemon's own code.
    const jobsDir = join(dir, 'jobs-runtime', 'jobs');
    await mkdir(jobsDir, { recursive: true });
    const paths = jobFiles(jobsDir, JOB);
    await writeFileAtomic(paths.env, renderEnvFile(TYPICAL_VARS, 'nnf-env: bench'), { mode: 0o600, fsyncDir: false });
    await writeFileAtomic(paths.status, JSON.stringify(deliveredStatus(JOB)), { mode: 0o600, fsyncDir: false });
    // A config file that only names RUNTIME_DIR: how a site without NNF_ENV_RUNTIME_DIR runs.
    const userConf = join(dir, 'user.conf');
    await writeFile(userConf, `# site config\nRUNTIME_DIR=${join(dir, 'jobs-runtime')}\nHOSTS_ALIASES=local-rabbit\n`);

    const jobEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', FLUX_JOB_ID: formatJobId(JOB, 'f58'), NNF_ENV_CONFIG: userConf };
    const jobEnvFast = { ...jobEnv, NNF_ENV_RUNTIME_DIR: join(dir, 'jobs-runtime') };

    const found = await realDaemon(dir);
    const prolog = typeof found === 'string' ? await standIn(dir, found) : found;

    const loadUrl = new URL('../src/config/load.js', import.meta.url).href;
    const cases: Case[] = [
      { name: 'node -e 0', argv: ['-e', '0'], env: { PATH: jobEnv.PATH } },
      { name: 'nnf-env export', argv: [bin, 'export'], env: jobEnv },
      { name: 'nnf-env get DW_JOBS', argv: [bin, 'get', 'DW_JOBS'], env: jobEnv },
      { name: 'nnf-env export (NNF_ENV_RUNTIME_DIR set)', argv: [bin, 'export'], env: jobEnvFast },
      { name: 'nnf-env prolog', argv: [bin, 'prolog'], env: prolog.env, note: prolog.note },
      ...(existsSync(standalone) ? [
        { name: 'standalone nnf-env prolog (code cache)', argv: [standalone, 'prolog'], env: prolog.env },
        { name: 'standalone nnf-env prolog, no code cache', argv: [standalone, 'prolog'], env: { ...prolog.env, NNF_ENV_CODE_CACHE: 'off' } },
        { name: 'standalone nnf-env export (code cache)', argv: [standalone, 'export'], env: jobEnv },
        { name: 'standalone nnf-env export, no code cache', argv: [standalone, 'export'], env: { ...jobEnv, NNF_ENV_CODE_CACHE: 'off' } },
      ] : []),
      // The same through the ES module entry, what the bin was before the bundle.
      ...(bin === bundle ? [
        { name: 'nnf-env export, unbundled', argv: [esmEntry, 'export'], env: jobEnv },
        { name: 'nnf-env prolog, unbundled', argv: [esmEntry, 'prolog'], env: prolog.env },
      ] : []),
      // What the job-script commands would pay to take RUNTIME_DIR from the full config loader.
      { name: 'node + loadConfig() alone', argv: ['--input-type=module', '-e', `const { loadConfig } = await import(${JSON.stringify(loadUrl)}); await loadConfig({ env: { NNF_ENV_CONFIG: ${JSON.stringify(userConf)} } });`], env: { PATH: jobEnv.PATH } },
    ];

    // One warm-up round (page cache), not counted.
    for (const c of cases) await runOnce(c);
    const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    for (let round = 0; round < RUNS; round++) {
      for (let k = 0; k < cases.length; k++) {
        const c = cases[(k + round) % cases.length]!;
        samples.get(c.name)!.push(await runOnce(c));
      }
    }
    await prolog.stop();

    const base = quantile([...samples.get('node -e 0')!].sort((a, b) => a - b), 0.5);
    const width = Math.max(...cases.map((c) => c.name.length));
    console.log(`${RUNS} runs each, interleaved; Node ${process.version}; ms of wall time per process\n`);
    console.log(`${'command'.padEnd(width)}  median     p10     p90   ratio`);
    for (const c of cases) {
      const s = [...samples.get(c.name)!].sort((a, b) => a - b);
      const med = quantile(s, 0.5);
      console.log(`${c.name.padEnd(width)}  ${med.toFixed(1).padStart(6)}  ${quantile(s, 0.1).toFixed(1).padStart(6)}  ${quantile(s, 0.9).toFixed(1).padStart(6)}  ${(med / base).toFixed(2).padStart(5)}x`);
    }
    console.log(`\nprolog: ${prolog.note}`);
    console.log('goal: nnf-env export, get and prolog at most 1.5x node -e 0');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
