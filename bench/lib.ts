/**
 * Shared pieces of the benchmarks: the machine description, percentiles, child processes that
 * report one JSON line, and what a child measures about itself (CPU seconds, peak RSS).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from '../test/helpers/eventually.js';

/** dist/bench (or .build/<name>/bench): where the compiled benchmark scripts live. */
export const benchDir = dirname(fileURLToPath(import.meta.url));
/** The compiled tree's root (dist/ or .build/<name>/). */
export const buildRoot = join(benchDir, '..');
export const nnfEnvBin = join(buildRoot, 'src', 'bin', 'nnf-env.js');
/**
 * The daemon as the packages ship it: the standalone bundle (scripts/bundle-cli.mjs), else a
 * tsc-only build's ES module entry. NNF_ENV_BENCH_DAEMON picks another (the before figures).
 */
export const nnfEnvdBin = process.env.NNF_ENV_BENCH_DAEMON ?? [join(buildRoot, 'standalone', 'nnf-envd.cjs')].find((p) => existsSync(p)) ?? join(buildRoot, 'src', 'bin', 'nnf-envd.js');

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  kernel: string;
  date: string;
}

export function machineInfo(): MachineInfo {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) model = m[1]!.trim();
  } catch {
    // not Linux
  }
  let kernel = 'unknown';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux
  }
  return {
    cpus: cpus().length,
    cpuModel: model,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel,
    date: new Date().toISOString(),
  };
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

export function summarize(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, mean };
}

/** What a child process measures about itself. */
export interface SelfUsage {
  /** User + system CPU seconds since `since`. */
  cpuSeconds: number;
  /** Peak resident set size of this process's own memory (VmHWM), MiB. */
  maxRssMiB: number;
}

/**
 * Peak RSS of this process, MiB. Not `process.resourceUsage().maxRSS` alone: on Linux that
 * value (getrusage ru_maxrss) survives fork + execve, so a child spawned by a big parent reports
 * the parent's RSS at the fork. /proc/self/status VmHWM is the high-water mark of this
 * process's own address space since its execve.
 */
export function peakRssMiB(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}

export function selfUsage(since: NodeJS.CpuUsage = { user: 0, system: 0 }): SelfUsage {
  const u = process.cpuUsage(since);
  return { cpuSeconds: (u.user + u.system) / 1e6, maxRssMiB: peakRssMiB() };
}

/** A child's answer: the last stdout line that parses as JSON. */
export interface ChildResult<T> {
  result: T;
  stderr: string;
}

/**
 * Runs `node <script> args...` and answers the JSON object of its last stdout line. The child
 * has its own process, so its CPU and RSS figures are its own.
 */
export function runNodeChild<T>(script: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; nodeArgs?: string[] } = {}): Promise<ChildResult<T>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} ${args.join(' ')} did not finish within ${opts.timeoutMs} ms; stderr: ${err.slice(-2000)}`));
    }, opts.timeoutMs ?? 300_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const lines = out.trim().split('\n').reverse();
      for (const l of lines) {
        try {
          const v = JSON.parse(l) as T;
          if (v && typeof v === 'object') {
            if (code !== 0) break;
            return resolve({ result: v, stderr: err });
          }
        } catch {
          // not the result line
        }
      }
      reject(new Error(`${script} ${args.join(' ')} exited ${code ?? signal} without a result; stderr: ${err.slice(-2000)} stdout: ${out.slice(-1000)}`));
    });
  });
}

/** Resident set size and CPU seconds of another process, from /proc. */
export function procUsage(pid: number): { rssMiB: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN) / 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
  return { rssMiB: rss, cpuSeconds: ticks / 100 };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until `check` answers a value other than undefined/false, or throws after `timeoutMs`. */
export function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, everyMs = 10): Promise<T> {
  return eventually(what, check, timeoutMs, everyMs);
}

export const fmt = {
  n: (x: number, d = 0): string => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : 'n/a'),
  ms: (x: number): string => (Number.isFinite(x) ? (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0)) : 'n/a'),
  ratio: (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a'),
  bytes: (b: number): string => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${Math.round(b)} B`),
};
