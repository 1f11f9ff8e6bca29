/**
 * The real Kubernetes API server for a test: builds test/apiserver once (cached, see
 * scripts/apiserver-build.mjs), starts it on 127.0.0.1 with the project's CRDs and RBAC
 * example, and hands back what a client needs. One server per test file: start it in the
 * file's top level and stop it in teardown.
 *
 * Without Go the real server cannot be built: `realApiServerSkipReason()` answers the reason
 * so the file can skip in one line; under CI=true it throws instead (the run must fail).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { repoRoot } from './paths.js';

export const RBAC_FILE = join(repoRoot, 'etc', 'kubernetes', 'nnf-env-rbac.yaml');
export const CRDS_DIR = join(repoRoot, 'etc', 'kubernetes', 'crds');
const BUILD_SCRIPT = join(repoRoot, 'scripts', 'apiserver-build.mjs');

/** Go is missing or too old: the real server cannot be built here. */
export class RealApiServerUnavailableError extends Error {
  readonly code = 'REAL_APISERVER_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'RealApiServerUnavailableError';
  }
}

export interface RealApiServerOptions {
  /** etcd data, certificates and tokens; kept after stop() when given, so a restart with the same dir and port finds the same objects. */
  dataDir?: string;
  /** 0 (default): the kernel picks. */
  port?: number;
  maxRequestsInflight?: number;
  maxMutatingRequestsInflight?: number;
  watchCache?: boolean;
  /** kube-apiserver --watch-cache-sizes. */
  watchCacheSizes?: string;
  /** Manifests applied after the CRDs. Default: the shipped RBAC example. */
  apply?: string[];
  /** Default: etc/kubernetes/crds. */
  crds?: string[];
  /** Extra kube-apiserver flags, e.g. ['--enable-priority-and-fairness=false']. */
  kubeApiserverArgs?: string[];
  /** Default 180 s (a cold start on a loaded 2-core machine takes 10-30 s). */
  startTimeoutMs?: number;
}

export interface RealApiServer {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** Admin (system:masters) kubeconfig. */
  readonly kubeconfig: string;
  /** The admin's bearer token (the one in `kubeconfig`). */
  readonly adminToken: string;
  /** Kubeconfig with the service-account token. */
  readonly saKubeconfig: string;
  /** The service account's token, bound only to the RBAC example's roles. */
  readonly token: string;
  readonly tokenFile: string;
  readonly caFile: string;
  readonly caPem: string;
  /** Plain HTTP on loopback: POST /compact. */
  readonly controlUrl: string;
  readonly dataDir: string;
  readonly pid: number;
  readonly kubeVersion: string;
  /** The server's stderr (kube-apiserver and etcd logs). */
  readonly logFile: string;
  /** Compacts etcd to its current revision; answers that revision. */
  compact(): Promise<number>;
  /** SIGTERM and wait for a clean exit (SIGKILL after 30 s). Removes its temp dir. */
  stop(): Promise<void>;
  /** SIGKILL at once (a crash); the data dir stays when it was given. */
  kill(): Promise<void>;
}

interface ReadyLine {
  event: 'ready';
  url: string;
  port: number;
  caFile: string;
  kubeconfig: string;
  saKubeconfig: string;
  tokenFile: string;
  controlUrl: string;
  dataDir: string;
  kubeVersion: string;
  pid: number;
}

let binaryPromise: Promise<string> | undefined;

/** The built binary (building it first if needed; concurrent callers share one build). */
export function realApiServerBinary(): Promise<string> {
  binaryPromise ??= new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [BUILD_SCRIPT], { maxBuffer: 16 * 1024 * 1024, timeout: 60 * 60 * 1000 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout.trim());
      const code = (err as { code?: unknown }).code;
      const msg = stderr.trim() || err.message;
      reject(code === 3 ? new RealApiServerUnavailableError(msg) : new Error(`the test API server did not build: ${msg}`));
    });
  });
  return binaryPromise;
}

/**
 * Why the real-server tests cannot run here (Go missing), or undefined when they can.
 * Under CI=true a missing Go is an error, not a skip.
 */
export async function realApiServerSkipReason(): Promise<string | undefined> {
  try {
    await realApiServerBinary();
    return undefined;
  } catch (err) {
    if (err instanceof RealApiServerUnavailableError && process.env.CI !== 'true') return err.message;
    throw err;
  }
}

async function tail(file: string, lines = 40): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export async function startRealApiServer(opts: RealApiServerOptions = {}): Promise<RealApiServer> {
  const binary = await realApiServerBinary();
  const dir = await mkdtemp(join(tmpdir(), 'nnf-env-real-apiserver-'));
  const dataDir = opts.dataDir ?? join(dir, 'data');
  const logFile = join(dir, 'apiserver.log');
  const args = [
    '--data-dir', dataDir,
    '--port', String(opts.port ?? 0),
    '--kubeconfig-out', join(dir, 'admin.kubeconfig'),
    '--sa-kubeconfig-out', join(dir, 'sa.kubeconfig'),
    '--token-out', join(dir, 'sa.token'),
    '--ca-out', join(dir, 'ca.crt'),
  ];
  for (const c of opts.crds ?? [CRDS_DIR]) args.push('--crds', c);
  for (const a of opts.apply ?? [RBAC_FILE]) args.push('--apply', a);
  if (opts.maxRequestsInflight !== undefined) args.push('--max-requests-inflight', String(opts.maxRequestsInflight));
  if (opts.maxMutatingRequestsInflight !== undefined) args.push('--max-mutating-requests-inflight', String(opts.maxMutatingRequestsInflight));
  if (opts.watchCache !== undefined) args.push(`--watch-cache=${opts.watchCache}`);
  if (opts.watchCacheSizes !== undefined) args.push('--watch-cache-sizes', opts.watchCacheSizes);
  if (opts.kubeApiserverArgs?.length) args.push('--', ...opts.kubeApiserverArgs);

  const log = createWriteStream(logFile);
  const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.pipe(log);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));

  const cleanup = async () => {
    log.end();
    await rm(dir, { recursive: true, force: true });
  };
  let ready: ReadyLine;
  try {
    ready = await new Promise<ReadyLine>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`the real API server was not ready after ${(opts.startTimeoutMs ?? 180_000) / 1000} s`)), opts.startTimeoutMs ?? 180_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            const msg = JSON.parse(line) as ReadyLine;
            if (msg.event === 'ready') {
              clearTimeout(timer);
              resolve(msg);
            }
          } catch {
            // not the ready line
          }
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`the real API server exited (${code}) before it was ready`));
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    const logTail = await tail(logFile);
    await cleanup();
    throw new Error(`${(err as Error).message}\n--- last lines of its log:\n${logTail}`);
  }

  const [token, caPem, kubeconfigText] = await Promise.all([readFile(ready.tokenFile, 'utf8'), readFile(ready.caFile, 'utf8'), readFile(ready.kubeconfig, 'utf8')]);
  const adminToken = (YAML.parse(kubeconfigText) as { users: Array<{ user: { token: string } }> }).users[0]!.user.token;
  let stopped: Promise<void> | undefined;
  const stopWith = (signal: NodeJS.Signals) => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const force = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(force);
      log.end();
      // A given data dir is the caller's; the temp dir (kubeconfigs, log, default data) is ours.
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };
  return {
    url: ready.url,
    port: ready.port,
    kubeconfig: ready.kubeconfig,
    adminToken,
    saKubeconfig: ready.saKubeconfig,
    token,
    tokenFile: ready.tokenFile,
    caFile: ready.caFile,
    caPem,
    controlUrl: ready.controlUrl,
    dataDir: ready.dataDir,
    pid: ready.pid,
    kubeVersion: ready.kubeVersion,
    logFile,
    async compact() {
      const res = await fetch(`${ready.controlUrl}/compact`, { method: 'POST' });
      const body = (await res.json()) as { revision?: number; error?: string };
      if (!res.ok || typeof body.revision !== 'number') throw new Error(`etcd compaction failed: ${body.error ?? res.status}`);
      return body.revision;
    },
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
  };
}
