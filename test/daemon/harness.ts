/**
 * Test harness for the daemon: an API server with the simulated DWS/NNF/Flux controllers
 * (backend `sim`: the simulator; `real`: kube-apiserver, see test/helpers/cluster.ts), a
 * sandbox directory (runtime dir, hosts file, local-rabbit.conf, kubeconfig) and the daemon
 * started in-process with a configuration loaded the way nnf-envd loads it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { loadConfig, type LoadedConfig } from '../../src/config/load.js';
import type { Simulator, SimulatorOptions } from '../../src/sim/index.js';
import { startCluster, type Backend, type Cluster } from '../helpers/cluster.js';
import type { RealServerOptions } from '../helpers/real-server.js';
import { startDaemon, type DaemonHandle } from '../../src/daemon/main.js';
import { jobFiles } from '../../src/contract/job-paths.js';
import { health } from '../../src/api/client.js';

export const NODE = 'compute-test';
export const RABBIT = 'rabbit-sim';

export const SAMPLE_HOSTS = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n# admin entry\n10.1.2.3 storage-gw\n';

export interface Harness {
  readonly backend: Backend;
  /** Objects, jobs and Flux's moves, on either backend. */
  cluster: Cluster;
  /** The simulator (fault injection): sim backend only, throws on real. */
  readonly sim: Simulator;
  dir: string;
  kubeconfig: string;
  runtimeDir: string;
  jobsDir: string;
  hostsFile: string;
  localRabbitConf: string;
  /** Flags used to load the config (to start a second daemon or a child process alike). */
  flags: Record<string, string>;
  daemon: DaemonHandle | undefined;
  /** The daemon child process (HarnessOptions.daemonBin). */
  child: ChildProcess | undefined;
  socketPath: string;
  startDaemon(extra?: Record<string, string>): Promise<DaemonHandle>;
  loadConfig(extra?: Record<string, string>): Promise<LoadedConfig>;
  files(id: bigint): ReturnType<typeof jobFiles>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Default 'sim'. */
  backend?: Backend;
  /** Real backend: a kube-apiserver of its own with these options (restartable; default: the process's shared one). */
  server?: RealServerOptions;
  /** The daemon's logger (default: silent, or NNF_TEST_LOG's level). */
  daemonLogger?: Logger;
  sim?: SimulatorOptions;
  config?: Record<string, string>;
  /** Do not start the daemon (the test starts it, or runs it as a child). */
  noDaemon?: boolean;
  /**
   * Run this nnf-envd bin as a child process (with the flags as its config file) instead of the
   * daemon in this process: the package test's unpacked /usr/sbin/nnf-envd. h.daemon stays unset.
   */
  daemonBin?: string;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'nnf-envd-test-'));
  const cluster = await startCluster(opts.backend ?? 'sim', { computeName: NODE, rabbitName: RABBIT, ...(opts.sim ? { sim: opts.sim } : {}), ...(opts.server ? { server: opts.server } : {}) });
  const kubeconfig = join(dir, 'kubeconfig');
  await cluster.writeDaemonKubeconfig(kubeconfig);
  const runtimeDir = join(dir, 'run');
  const hostsFile = join(dir, 'hosts');
  await writeFile(hostsFile, SAMPLE_HOSTS);
  const localRabbitConf = join(dir, 'local-rabbit.conf');
  const flags: Record<string, string> = {
    KUBE_CONNECTION: 'kubeconfig',
    KUBECONFIG: kubeconfig,
    NODE_NAME: NODE,
    RUNTIME_DIR: runtimeDir,
    HOSTS_FILE: hostsFile,
    LOCAL_RABBIT_CONF: localRabbitConf,
    RABBIT_MAPPING_FILE: join(dir, 'rabbitmapping'),
    LOG_LEVEL: 'silent',
    PROBE_DEADLINE: '5s',
    PROBE_ATTEMPT_TIMEOUT: '500ms',
    PROBE_BACKOFF_INITIAL: '20ms',
    PROBE_BACKOFF_MAX: '200ms',
    BACKOFF_INITIAL: '50ms',
    BACKOFF_MAX: '500ms',
    ...opts.config,
  };
  const h: Harness = {
    backend: cluster.backend,
    cluster,
    get sim() {
      return cluster.sim;
    },
    dir,
    kubeconfig,
    runtimeDir,
    jobsDir: join(runtimeDir, 'jobs'),
    hostsFile,
    localRabbitConf,
    flags,
    daemon: undefined,
    child: undefined,
    socketPath: join(runtimeDir, 'nnf-envd.sock'),
    loadConfig: (extra = {}) => loadConfig({ argvFlags: { ...flags, ...extra }, env: {}, defaultConfigFile: null }),
    async startDaemon(extra = {}) {
      if (opts.daemonBin !== undefined) {
        h.child = await startDaemonProcess(opts.daemonBin, join(dir, 'nnf-envd.conf'), { ...flags, ...extra }, h.socketPath);
        // No in-process handle for a child: the tests that run one (full-path on a package) never read it.
        return undefined as unknown as DaemonHandle;
      }
      const loaded = await h.loadConfig(extra);
      h.daemon = await startDaemon(loaded, opts.daemonLogger ?? pino({ level: process.env.NNF_TEST_LOG ?? 'silent' }), { env: {}, startupApiWaitMs: 2000, rabbitWaitMs: 5000 });
      return h.daemon;
    },
    files: (id) => jobFiles(join(runtimeDir, 'jobs'), id),
    async close() {
      await h.daemon?.stop();
      if (h.child && h.child.exitCode === null) {
        const exited = new Promise((resolve) => h.child?.once('exit', resolve));
        h.child.kill('SIGTERM');
        await exited;
      }
      await cluster.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  if (!opts.noDaemon) await h.startDaemon();
  return h;
}

/** nnf-envd as its own process on a config file of `flags`; resolves once its socket answers. */
async function startDaemonProcess(bin: string, configFile: string, flags: Record<string, string>, socketPath: string): Promise<ChildProcess> {
  await writeFile(configFile, Object.entries(flags).map(([k, v]) => `${k}=${v}\n`).join(''));
  const child = spawn(process.execPath, [bin, '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString('utf8'); });
  const deadline = Date.now() + 20_000;
  while (!(await health(socketPath).catch(() => false))) {
    if (child.exitCode !== null) throw new Error(`${bin} exited ${child.exitCode} before serving: ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${bin} did not serve ${socketPath} within 20 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return child;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export { eventually } from '../helpers/eventually.js';

export async function readJson<T = unknown>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

let nextJob = 0n;
/** A fresh job id per call (distinct across test files: time-based high bits). */
export function newJobId(): bigint {
  nextJob++;
  return (BigInt(Date.now()) << 20n) + (BigInt(process.pid & 0xff) << 12n) + (nextJob & 0xfffn);
}
