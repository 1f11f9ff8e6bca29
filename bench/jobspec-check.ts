/**
 * What nnf-envd's jobspec check costs per job (issue 9 item 2): the time from the job
 * controller's `source.watch()` until the source answers, through the daemon's own
 * SelectingSource (ENV_SOURCE=flux), for jobs without `#DW` (answered `absent` after one
 * `flux job info <id> jobspec`) and with it (the eventlog watch starts). Beside it, the parts:
 * a bare spawn of the same command from Node, and of /bin/true.
 *
 *   node dist/bench/jobspec-check.js [--rounds N] [--flux PATH]
 *
 * --flux: a real flux (run inside an instance, e.g. `flux start --test-size=1 node ...`, so
 * FLUX_URI is set): the jobs are submitted there with `flux submit`. Without it, a /bin/sh
 * stand-in that prints a stored jobspec: what the check costs nnf-envd beyond flux's own process.
 * Not part of `npm run bench` (it needs no daemon, but the real figure needs a Flux instance).
 */
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { formatJobId, parseJobId } from '../src/contract/jobid.js';
import type { Config } from '../src/config/schema.js';
import { FluxCommand } from '../src/flux/command.js';
import { FluxEnvSource } from '../src/daemon/flux-env-source.js';
import { SelectingSource } from '../src/daemon/source-selection.js';
import type { SourceJob } from '../src/daemon/env-source.js';
import { pythonJson } from '../test/flux/stand-in.js';
import { fmt, machineInfo } from './lib.js';

const argv = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const rounds = Number(arg('--rounds') ?? 30);
const realFlux = arg('--flux');

const config = {
  ENV_SOURCE: 'flux', JOBSPEC_CHECK: true, KUBE_REQUEST_TIMEOUT: 10_000, NODE_NAME: 'bench',
  WATCH_TIMEOUT: 300_000, BACKOFF_INITIAL: 500, BACKOFF_MAX: 5000,
} as unknown as Config;

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, stdout: out }));
  });
}

const jobspec = (dw: boolean) => ({
  resources: [{ type: 'node', count: 1, with: [{ type: 'slot', count: 1, with: [{ type: 'core', count: 1 }], label: 'task' }] }],
  tasks: [{ command: ['true'], slot: 'task', count: { per_slot: 1 } }],
  attributes: { system: { duration: 0, cwd: '/tmp', ...(dw ? { dw: '#DW jobdw type=xfs capacity=1GiB name=bench' } : {}) } },
  version: 1,
});

/** Jobs to check, and the flux command that answers for them. */
async function jobs(dir: string): Promise<{ flux: string; plain: bigint[]; dw: bigint[] }> {
  if (realFlux) {
    const submit = async (extra: string[]) => {
      const r = await run(realFlux, ['submit', '--urgency=hold', ...extra, 'true']);
      if (r.code !== 0) throw new Error(`flux submit exited ${String(r.code)}`);
      return parseJobId(r.stdout.trim());
    };
    const plain: bigint[] = [];
    const dw: bigint[] = [];
    for (let i = 0; i < rounds; i++) {
      plain.push(await submit([]));
      dw.push(await submit(['--setattr=system.dw=#DW jobdw type=xfs capacity=1GiB name=bench']));
    }
    return { flux: realFlux, plain, dw };
  }
  // `flux job info <id> jobspec` answered by cat, as flux prints it (json.dumps separators).
  const flux = join(dir, 'flux');
  await writeFile(flux, `#!/bin/sh\n[ "$1 $2 $4" = "job info jobspec" ] || exec sleep 600\nexec cat '${dir}'/"$3".json\n`);
  await chmod(flux, 0o755);
  const plain: bigint[] = [];
  const dw: bigint[] = [];
  for (let i = 0; i < rounds; i++) {
    const a = 1000n + BigInt(2 * i);
    const b = a + 1n;
    await writeFile(join(dir, `${a}.json`), pythonJson(jobspec(false)));
    await writeFile(join(dir, `${b}.json`), pythonJson(jobspec(true)));
    plain.push(a);
    dw.push(b);
  }
  return { flux, plain, dw };
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const span = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${fmt.ms(s[Math.floor(s.length * 0.1)]!)}-${fmt.ms(s[Math.floor(s.length * 0.9)]!)}`;
};

const dir = await mkdtemp(join(tmpdir(), 'nnf-env-jobspec-'));
try {
  await mkdir(dir, { recursive: true });
  const { flux: fluxPath, plain, dw } = await jobs(dir);
  const flux = new FluxCommand({ command: fluxPath, uri: '' });
  const source = new SelectingSource({ mode: 'flux', flux, fluxSource: new FluxEnvSource({ flux, config: () => config }), kubeSource: undefined, config: () => config });
  const logger = pino({ level: 'silent' });
  const sourceJob = (id: bigint): SourceJob => {
    const f = formatJobId(id, 'f58plain');
    return { id, ident: { id: f, dec: id.toString(), f58plain: f, userID: 1000 }, namespace: 'default', workflowName: `fluxjob-${id}`, trackedBy: 'api', logger };
  };
  /** Milliseconds from watch() to the first answer (what the job controller waits for); the stop is not counted. */
  const check = (id: bigint, want: string) => new Promise<number>((resolve, reject) => {
    const t0 = performance.now();
    const w = source.watch(sourceJob(id), () => {
      const v = w.view();
      if (!v) return;
      const ms = performance.now() - t0;
      void w.stop().then(() => (v.kind === want ? resolve(ms) : reject(new Error(`job ${id}: ${v.kind}, not ${want}`))));
    });
  });
  const r = { noDw: [] as number[], dw: [] as number[], bareFlux: [] as number[], bareTrue: [] as number[] };
  // Interleaved, so that the machine's load falls on every variant alike.
  for (let i = 0; i < rounds; i++) {
    r.noDw.push(await check(plain[i]!, 'absent'));
    r.dw.push(await check(dw[i]!, 'waiting'));
    r.bareFlux.push(await timeIt(() => run(fluxPath, ['job', 'info', plain[i]!.toString(), 'jobspec'])));
    r.bareTrue.push(await timeIt(() => run('/bin/true', [])));
  }
  const m = machineInfo();
  process.stdout.write(`jobspec check, ${rounds} jobs each, ${realFlux ? `real flux (${realFlux})` : '/bin/sh stand-in (cat)'}; ${m.cpus} CPUs, Node ${m.node}, ${m.date}\n`);
  process.stdout.write('| what | median ms | p10-p90 ms |\n| --- | ---: | ---: |\n');
  for (const [what, xs] of [
    ['job without #DW: watch() to `absent` (SelectingSource, ENV_SOURCE=flux)', r.noDw],
    ['job with #DW: watch() to the eventlog source\'s first view', r.dw],
    ['the same `flux job info ID jobspec`, bare spawn from Node', r.bareFlux],
    ['/bin/true, bare spawn from Node', r.bareTrue],
  ] as const) process.stdout.write(`| ${what} | ${fmt.ms(median(xs))} | ${span(xs)} |\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
