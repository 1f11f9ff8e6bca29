/**
 * `npm run bench`: every benchmark in one run, side by side, results written into
 * BENCHMARKS.md between its results markers (the hand-written analysis around them stays).
 *
 *   node dist/bench/run.js [--quick] [--only a,b] [--out FILE] [--no-write]
 *
 * --quick: smaller sizes (about a minute; prints, writes nothing unless --out is given).
 * --only:  throughput, latency, fanout, footprint, commands, probe, herd.
 * --real-fanout 100,1000: the fan-out sizes on the real server (default as the simulator's).
 * --herd 100,500: the herd sizes.
 * Sections that can run on the real kube-apiserver (test/apiserver/, needs Go) run on both
 * backends side by side; without Go they run on the simulator and say why.
 * Job files go to a tmpfs directory (/dev/shm) when there is one, as /run/nnf-env is in
 * production; set TMPDIR to choose.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { benchDir, buildRoot, fmt, machineInfo, type MachineInfo } from './lib.js';
import { runWatchThroughput, type WatchThroughputResult } from './watch-throughput.js';
import { runLatency, type LatencyResult } from './latency.js';
import { runFanout, type FanoutResult } from './fanout.js';
import { runFootprint, type FootprintResult } from './footprint.js';
import { runProbe, type ProbeResult } from './probe.js';
import { runHerd, type HerdRow } from './herd.js';
import { realServerSkipReason } from '../test/helpers/real-server.js';

const BEGIN = '<!-- bench:results:begin (written by npm run bench; edit outside these markers) -->';
const END = '<!-- bench:results:end -->';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const only = arg('--only')?.split(',');
const want = (name: string): boolean => !only || only.includes(name);
const repoRoot = join(buildRoot, '..');
const outFile = arg('--out') ?? (quick || argv.includes('--no-write') ? undefined : join(repoRoot, 'BENCHMARKS.md'));
if (!process.env.TMPDIR && existsSync('/dev/shm')) process.env.TMPDIR = '/dev/shm';

const log = (s: string): void => void process.stderr.write(s + '\n');

const sizes = quick
  ? { events: 20_000, rounds: 1, single: 10, concurrent: 100, inARow: 100, fanout: [100, 1000], updates: 3, footprintJobs: 200, window: 5, commandRuns: 5, herd: [100, 500], realFanout: [100, 1000] }
  : { events: 100_000, rounds: 3, single: 20, concurrent: 100, inARow: 1000, fanout: [100, 1000, 10_000], updates: 3, footprintJobs: 1000, window: 60, commandRuns: 20, herd: [100, 500, 2000], realFanout: [100, 1000, 10_000] };

interface Results {
  machine: MachineInfo;
  command: string;
  quick: boolean;
  seconds: number;
  throughput?: WatchThroughputResult;
  latency?: LatencyResult[];
  fanout?: FanoutResult[];
  footprint?: FootprintResult;
  commands?: string;
  probe?: ProbeResult;
  herd?: HerdRow[];
  /** Why the real-server half did not run, when it did not. */
  realSkipped?: string;
  failures: string[];
}

async function section<T>(name: string, results: Results, fn: () => Promise<T>, selector = name): Promise<T | undefined> {
  if (!want(selector)) return undefined;
  log(`== ${name}`);
  const t0 = performance.now();
  try {
    const r = await fn();
    log(`   (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    return r;
  } catch (err) {
    const msg = `${name}: ${(err as Error).stack ?? String(err)}`;
    log(`   FAILED ${msg}`);
    results.failures.push(msg);
    return undefined;
  }
}

function runCommandsBench(runs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const script = join(benchDir, 'commands.js');
    if (!existsSync(script)) return reject(new Error(`${script} is missing (bench/commands.ts not built)`));
    const child = spawn(process.execPath, [script, '--runs', String(runs)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`bench/commands.js exited ${code}: ${err.slice(-2000)}`))));
  });
}

const ms = fmt.ms;

function render(r: Results): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`Run: \`${r.command}\` on ${m.date.slice(0, 10)} (${m.date}), ${fmt.n(r.seconds)} s in all${r.quick ? ' (--quick sizes)' : ''}.`);
  out.push('');
  out.push(`Machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB memory, Linux ${m.kernel}, Node ${m.node}. Shared and noisy: read the ratios, not the absolute figures.`);
  out.push('');
  if (r.failures.length > 0) {
    out.push('**Failed in this run:**');
    for (const f of r.failures) out.push('```\n' + f.slice(0, 1500) + '\n```');
    out.push('');
  }
  const t = r.throughput;
  if (t) {
    out.push('### Watch throughput');
    out.push('');
    out.push(`${fmt.n(t.events)} MODIFIED events of ${fmt.n(t.objects)} Workflows (${fmt.n(t.bytesPerEvent)} bytes per event line, ${t.payloadMiB.toFixed(0)} MiB in all), streamed over HTTPS by bench/stream-server.ts; each consumer in its own process; median of ${t.rounds} round(s) each, alternating.`);
    out.push('');
    out.push('| consumer | events/s | watch-phase CPU s | CPU µs/event | process CPU s | peak RSS MiB |');
    out.push('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const c of [t.nnf, t.peer]) {
      out.push(`| ${c.impl === 'nnf' ? 'nnf-env Reflector' : '@kubernetes/client-node informer'} | ${fmt.n(c.eventsPerSecond)} | ${c.watchCpuSeconds.toFixed(2)} | ${((c.watchCpuSeconds / c.events) * 1e6).toFixed(1)} | ${c.processCpuSeconds.toFixed(2)} | ${c.maxRssMiB.toFixed(0)} |`);
    }
    out.push(`| **ratio nnf-env / peer** | **${fmt.ratio(t.throughputRatio)}** | | ${fmt.ratio(t.cpuPerEventRatio)} | | ${fmt.ratio(t.rssRatio)} |`);
    out.push('');
    out.push(`All rounds (events/s): nnf-env ${t.all.nnf.map((x) => fmt.n(x.eventsPerSecond)).join(', ')}; peer ${t.all.peer.map((x) => fmt.n(x.eventsPerSecond)).join(', ')}.`);
    out.push('');
  }
  const ls = r.latency;
  if (ls?.length) {
    out.push('### Delivery latency (PreRun finished -> job files)');
    out.push('');
    out.push('PreRun finished: on the simulator its in-process write (the event leaves as it is committed); on the real kube-apiserver the moment the PATCH request leaves (etcd\'s commit and the watch cache are inside the figure). The daemon is its own process (nnf-envd, the service account bound to the shipped role on the real server), files timed by inotify in another process.');
    if (r.realSkipped) out.push(`\nReal server: not run (${r.realSkipped}).`);
    out.push('');
    out.push('| server | case | n | p50 ms | p99 ms | min ms | max ms |');
    out.push('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
    for (const l of ls) {
      const row = (name: string, s: { n: number; p50: number; p99: number; min: number; max: number }) => out.push(`| ${l.backend} | ${name} | ${s.n} | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(s.min)} | ${ms(s.max)} |`);
      row('one job -> env file in place', l.single.files);
      row('one job -> `nnf-env prolog` returns', l.single.prolog);
      row(`${l.concurrent.jobs} concurrent jobs -> env files`, l.concurrent.files);
      row(`${l.inARow.jobs} jobs in a row -> env files`, l.inARow.files);
    }
    out.push('');
    for (const l of ls) {
      out.push(`${l.backend}: the ${l.concurrent.jobs} changes took ${ms(l.concurrent.patchLoopMs)} ms to write, back to back (each job's figure starts at its own change). ${l.inARow.jobs} in a row: p50 of the first 100 ${ms(l.inARow.first100p50)} ms, of the last 100 ${ms(l.inARow.last100p50)} ms (${l.inARow.seconds.toFixed(1)} s for all, track + watch + deliver each). Goal p99 < 50 ms for 100 concurrent: **${l.concurrent.files.p99 < 50 ? 'met' : 'not met'}** (${ms(l.concurrent.files.p99)} ms).`);
      out.push('');
    }
  }
  const fs = r.fanout;
  if (fs?.length) {
    out.push('### Fan-out: what the API server spends on one node');
    out.push('');
    out.push(`Bytes the server sends to one node (TCP: plain HTTP on the simulator, TLS on the real kube-apiserver; list + watch), every workflow updated ${fs[0]?.rows[0]?.updates ?? '?'} times, and the watch connections the node holds.`);
    out.push('');
    out.push('| server | workflows | per-job watch | conns | discovery=computes | conns | naive namespace watch | conns | s |');
    out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const f of fs) {
      for (const x of f.rows) {
        out.push(`| ${f.backend} | ${fmt.n(x.workflows)} | ${fmt.bytes(x.perJob.bytes)} | ${x.perJob.connections} | ${fmt.bytes(x.computes.bytes)} | ${x.computes.connections} | ${fmt.bytes(x.naive.bytes)} | ${x.naive.connections} | ${x.seconds.toFixed(0)} |`);
      }
      const e = f.extrapolated;
      out.push(`| ${f.backend} | **${fmt.n(e.workflows)}** (extrapolated, per node) | **${fmt.bytes(e.perJob)}** | 1 | **${fmt.bytes(e.computes)}** | 2 | **${fmt.bytes(e.naive)}** | 1 | |`);
      out.push(`| ${f.backend} | **${fmt.n(e.workflows)} nodes, one job each** (whole cluster) | **${fmt.bytes(e.clusterPerJob)}** | ${fmt.n(e.workflows)} | **${fmt.bytes(e.clusterComputes)}** | ${fmt.n(2 * e.workflows)} | **${fmt.bytes(e.clusterNaive)}** | ${fmt.n(e.workflows)} | |`);
    }
    out.push('');
    for (const f of fs) {
      const first = f.rows[0];
      const last = f.rows[f.rows.length - 1];
      if (first && last) out.push(`${f.backend}: per-node cost from ${fmt.n(first.workflows)} to ${fmt.n(last.workflows)} workflows: per-job x${(last.perJob.bytes / first.perJob.bytes).toFixed(2)}, computes x${(last.computes.bytes / first.computes.bytes).toFixed(1)}, naive x${(last.naive.bytes / first.naive.bytes).toFixed(1)}.`);
    }
    out.push('');
  }
  const fp = r.footprint;
  if (fp) {
    out.push('### Daemon footprint and quiet (nnf-envd process, all threads, from /proc)');
    out.push('');
    out.push('| state | wakeups/s | API events/s | wakeups/s apart from API events | CPU % of one core | RSS MiB | RSS / floor | anonymous RSS MiB | threads | window s |');
    out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    const row = (name: string, s: FootprintResult['idle']) =>
      out.push(`| ${name} | ${s.wakeupsPerSecond.toFixed(2)} | ${s.apiEventsPerSecond.toFixed(2)} | ${Math.max(0, s.wakeupsPerSecond - s.apiEventsPerSecond).toFixed(2)} | ${(s.cpuShare * 100).toFixed(3)} | ${s.rssMiB.toFixed(1)} | ${fmt.ratio(s.rssMiB / fp.floor.rssMiB)} | ${s.anonMiB.toFixed(1)} | ${s.threads} | ${s.windowSeconds.toFixed(0)} |`);
    row("floor: `node -e 'setInterval(()=>{},1e9)'`", fp.floor);
    row('idle (no jobs)', fp.idle);
    row(`${fmt.n(fp.jobs)} jobs waiting (${fp.waiting.watches} watches)`, fp.waiting);
    row(`${fmt.n(fp.jobs)} jobs delivered`, fp.delivered);
    if (fp.fluxIdle) row('idle, `ENV_SOURCE=flux` (no Kubernetes client loaded)', fp.fluxIdle);
    out.push('');
    out.push(`Goals: idle <= 1 wakeup/s and <= 0.05 % of one core, RSS <= 40 MiB; ${fmt.n(fp.jobs)} waiting jobs <= 2 wakeups/s apart from the API's own events. The simulator sends a bookmark every ${fp.bookmarkIntervalMs / 1000} s per watch (kube-apiserver: about one a minute); a wakeup is a context switch of any thread.`);
    out.push('');
  }
  if (r.commands) {
    out.push('### Command latency (bench/commands.ts)');
    out.push('');
    out.push('```');
    out.push(r.commands);
    out.push('```');
    out.push('');
  }
  const p = r.probe;
  if (p) {
    out.push('### Port probe: listening -> reported reachable');
    out.push('');
    out.push(`nnf-envd's default timings: attempt timeout ${p.settings.attemptTimeoutMs} ms, backoff from ${p.settings.backoffInitialMs} ms doubling to ${p.settings.backoffMaxMs} ms, with jitter.`);
    out.push('');
    out.push('| ports | listeners open after | p50 ms | p99 ms | max ms | attempts p50 |');
    out.push('| ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const x of p.rows) out.push(`| ${x.ports} | ${x.openAfterMs} ms | ${ms(x.detect.p50)} | ${ms(x.detect.p99)} | ${ms(x.detect.max)} | ${x.attempts.p50} |`);
    out.push('');
  }
  const h = r.herd;
  if (h) {
    out.push('### Herd: one job spanning N nodes');
    out.push('');
    out.push('N watchers in one load-generator process (bench/herd-watchers.ts: src/kube as nnf-envd uses it, one KubeClient and one TLS connection each, list then watch with `fieldSelector=metadata.name=`) track one workflow whose PreRun is in progress; then one write finishes PreRun. *delivered* is that write -> the watcher holds the finished workflow. Server CPU/RSS: the simulator runs in the benchmark process (its figures include the benchmark\'s own small share); kube-apiserver is its own process (/proc). The load generator shares the 2 CPUs with the server.');
    if (r.realSkipped) out.push(`\nReal server: not run (${r.realSkipped}).`);
    out.push('');
    out.push('| server | variant | N | all synced ms | delivered p50 ms | p99 ms | max ms | failures | requests/node max (mean) | 429s | server CPU s | server peak RSS MiB |');
    out.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const x of h) {
      out.push(`| ${x.backend} | ${x.variant} | ${fmt.n(x.n)} | ${fmt.n(x.syncedMs)} | ${ms(x.deliveredP50Ms)} | ${ms(x.deliveredP99Ms)} | ${ms(x.deliveredMaxMs)} | ${x.failures} | ${x.requestsPerNodeMax} (${x.requestsPerNodeMean.toFixed(2)}) | ${x.throttled} | ${x.serverCpuSeconds.toFixed(2)} | ${x.serverPeakRssMiB.toFixed(0)} |`);
    }
    const goal = h.filter((x) => x.backend === 'real' && x.n === 2000);
    out.push('');
    out.push(goal.length ? `Goal at N = 2,000 on the real server (all within 2 s, 0 failures, <= 2 requests per node): ${goal.map((x) => `${x.variant}: **${x.deliveredMaxMs <= 2000 && x.failures === 0 && x.requestsPerNodeMax <= 2 ? 'met' : 'not met'}**`).join('; ')}.` : 'Goal at N = 2,000 on the real server: not measured in this run.');
    out.push('');
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const results: Results = { machine: machineInfo(), command: `npm run bench${argv.length ? ' -- ' + argv.join(' ') : ''}`, quick, seconds: 0, failures: [] };
  log(`nnf-env benchmarks${quick ? ' (--quick)' : ''}: ${results.machine.cpus} CPUs, ${results.machine.cpuModel}, Node ${results.machine.node}; TMPDIR=${process.env.TMPDIR ?? ''}`);
  results.throughput = await section('throughput', results, () => runWatchThroughput({ events: sizes.events, objects: 1000, rounds: sizes.rounds, log }));
  const skip = want('herd') || want('latency') || want('fanout') ? await realServerSkipReason() : undefined;
  if (skip !== undefined) results.realSkipped = skip;
  const realToo: Array<'sim' | 'real'> = skip === undefined ? ['sim', 'real'] : ['sim'];
  // Each section on both servers, one after the other (they share the 2 CPUs).
  const both = async <T>(name: string, fn: (backend: 'sim' | 'real') => Promise<T>): Promise<T[] | undefined> => {
    const out: T[] = [];
    for (const backend of realToo) {
      const x = await section(`${name} (${backend})`, results, () => fn(backend), name);
      if (x !== undefined) out.push(x);
    }
    return out.length ? out : undefined;
  };
  results.latency = await both('latency', (backend) => runLatency({ backend, single: sizes.single, concurrent: sizes.concurrent, inARow: sizes.inARow, log }));
  results.fanout = await both('fanout', (backend) => runFanout({ backend, sizes: backend === 'real' ? (arg('--real-fanout')?.split(',').map(Number) ?? sizes.realFanout) : sizes.fanout, updates: sizes.updates, log }));
  results.footprint = await section('footprint', results, () => runFootprint({ jobs: sizes.footprintJobs, windowSeconds: sizes.window, log }));
  results.commands = await section('commands', results, () => runCommandsBench(sizes.commandRuns));
  results.probe = await section('probe', results, () => runProbe({ log }));
  results.herd = await section('herd', results, () => runHerd({ backends: realToo, sizes: arg('--herd')?.split(',').map(Number) ?? sizes.herd, log }));
  results.seconds = (performance.now() - t0) / 1000;

  const md = render(results);
  if (outFile) {
    let doc = '';
    try {
      doc = await readFile(outFile, 'utf8');
    } catch {
      doc = `# Benchmarks\n\n${BEGIN}\n${END}\n`;
    }
    const a = doc.indexOf(BEGIN);
    const b = doc.indexOf(END);
    const next = a >= 0 && b > a ? doc.slice(0, a + BEGIN.length) + '\n' + md + '\n' + doc.slice(b) : `${doc.trimEnd()}\n\n${BEGIN}\n${md}\n${END}\n`;
    await writeFile(outFile, next);
    log(`results written to ${outFile}`);
  } else {
    process.stdout.write(md + '\n');
  }
  log(`done in ${results.seconds.toFixed(0)} s${results.failures.length ? `; ${results.failures.length} section(s) FAILED` : ''}`);
  process.exitCode = results.failures.length > 0 ? 1 : 0;
}

await main();
