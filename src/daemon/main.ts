import { chmod, chown, lstat, mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Config, ConfigKey } from '../config/schema.js';
import { shortHostname, type LoadedConfig } from '../config/load.js';
import { endedDirOf, jobsDirOf, prologSpoolDirOf, socketPathOf } from '../contract/job-paths.js';
import { NnfEnvError, errnoCode, errorMessage, isNnfEnvError } from '../core/errors.js';
import { retry, type RetryPolicy } from '../core/retry.js';
import type { KubeClient } from '../kube/client.js';
import { KubeConfigError } from '../kube/errors.js';
import { DWS_VERSIONS, type DwsVersion } from '../kube/resource.js';
import { sleep } from '../core/backoff.js';
import { checkWorkflowNameTemplate } from '../domain/workflow-name.js';
import { ApiServer } from '../api/server.js';
import { DaemonMetrics } from '../api/metrics.js';
import { packageVersion } from '../core/package-info.js';
import { ComputesDiscovery } from './computes-discovery.js';
import { DaemonEvents } from '../api/event-bus.js';
import type { DaemonEvent } from '../contract/control-api.js';
import { HostAddressResolver } from '../net/host-address.js';
import { FluxCommand } from '../flux/command.js';
import { FluxEnvSource } from './flux-env-source.js';
import { JobController } from './job-controller.js';
import { KubeEnvSource } from './kube-env-source.js';
import { ProfileCache } from './profile-cache.js';
import { SelectingSource } from './source-selection.js';
import { RabbitController, removeManagedHostsBlock } from './rabbit-controller.js';
import { createSystemdNotifier, type SystemdNotifier } from './systemd.js';
import { groupId } from '../fs/user-db.js';
import { WatchStats } from './watch-stats.js';
import { PerilogSpool } from './perilog-spool.js';

/**
 * nnf-envd: resolve the connection, discover the DWS version, prepare the runtime directory,
 * start the rabbit and job controllers and the control socket; stop on SIGTERM/SIGINT, reload
 * on SIGHUP, tell systemd when ready and ping its watchdog while healthy.
 */
export interface DaemonHandle {
  readonly config: Config;
  readonly socketPath: string;
  readonly jobsDir: string;
  /** '' in flux mode (no API server). */
  readonly dwsVersion: string;
  readonly jobs: JobController;
  readonly rabbit: RabbitController;
  readonly events: DaemonEvents;
  readonly metrics: DaemonMetrics;
  status(): Record<string, unknown>;
  /** Applies a new configuration where it can change live; answers what needs a restart. */
  reload(next: LoadedConfig): Promise<{ applied: ConfigKey[]; needsRestart: ConfigKey[] }>;
  /** Stops watches, finishes writes, closes the socket. Idempotent. */
  stop(): Promise<void>;
}

export interface StartDaemonOptions {
  env?: NodeJS.ProcessEnv;
  /** systemd notifications (default: from NOTIFY_SOCKET in env). */
  notifier?: SystemdNotifier;
  /** Bound on waiting for the API server at start before going on with defaults. Default 20 s. */
  startupApiWaitMs?: number;
  /** Bound on waiting for the rabbit to be decided before serving jobs. Default 15 s. */
  rabbitWaitMs?: number;
}

export class DaemonStartError extends NnfEnvError {}

/** Keys whose new value only a restart applies. */
const RESTART_KEYS: readonly ConfigKey[] = [
  'RUNTIME_DIR', 'SOCKET_PATH', 'SOCKET_GROUP', 'SOCKET_MODE', 'KUBE_CONNECTION', 'KUBE_SERVER', 'KUBE_TOKEN_FILE', 'KUBE_CA_FILE',
  'KUBE_TLS_SERVER_NAME', 'KUBE_INSECURE_SKIP_TLS_VERIFY', 'KUBECONFIG', 'KUBE_CONTEXT', 'KUBE_REQUEST_TIMEOUT', 'DWS_API_VERSION',
  'DISCOVERY', 'LOG_FORMAT', 'ENV_SOURCE', 'FLUX_COMMAND', 'FLUX_URI',
];
const RABBIT_KEYS: readonly ConfigKey[] = ['NODE_NAME', 'RABBIT_NAME', 'RABBIT_ADDRESS', 'RABBIT_MAPPING_FILE', 'HOSTS_FILE', 'HOSTS_ALIASES', 'LOCAL_RABBIT_CONF'];

function changedKeys(a: Config, b: Config): ConfigKey[] {
  return (Object.keys(a) as ConfigKey[]).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

/** A directory we own: created if missing, never a symlink, mode set exactly, root-owned when root. */
async function ensureDir(path: string, mode: number): Promise<void> {
  await mkdir(path, { recursive: true, mode });
  const st = await lstat(path);
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw new DaemonStartError('RUNTIME_DIR_INVALID', `${path} is not a directory (or is a symlink)`, { hint: 'remove it; nnf-envd creates its runtime directories itself' });
  }
  if (process.getuid?.() === 0 && (st.uid !== 0 || st.gid !== 0)) await chown(path, 0, 0);
  if ((st.mode & 0o7777) !== mode) await chmod(path, mode);
}

/** Discovery waits out an API server that is not reachable yet: 250 ms, doubling up to 2 s, jittered. */
const DISCOVERY_RETRY: RetryPolicy = { initialMs: 250, maxMs: 2000 };

/**
 * The Kubernetes client, loaded only when a source needs it: undici and TLS are the largest
 * part of the daemon's memory, and ENV_SOURCE=flux never talks to an API server.
 */
async function loadKube() {
  const [{ KubeClient }, { resolveConnection }, { discoverDwsVersion }] = await Promise.all([
    import('../kube/client.js'),
    import('../kube/connection.js'),
    import('../kube/discovery.js'),
  ]);
  return { KubeClient, resolveConnection, discoverDwsVersion };
}

async function discoverVersion(discoverDwsVersion: typeof import('../kube/discovery.js').discoverDwsVersion, client: KubeClient, configured: Config['DWS_API_VERSION'], waitMs: number, logger: Logger, signal: AbortSignal): Promise<DwsVersion> {
  if (configured !== 'auto') return configured as DwsVersion;
  const until = Date.now() + waitMs;
  // Not installed / no known version is a real answer; connection trouble is waited out.
  const final = (err: unknown) => isNnfEnvError(err) && (err.code === 'DWS_NO_KNOWN_VERSION' || err.code === 'DWS_NOT_INSTALLED');
  try {
    return await retry(() => discoverDwsVersion(client, 'auto', signal), {
      policy: DISCOVERY_RETRY,
      attempts: Number.MAX_SAFE_INTEGER,
      signal,
      retryable: (err) => !final(err) && Date.now() < until,
      onRetry: (err, _delay, attempt) => logger.warn({ err: errorMessage(err), attempt }, 'API server not reachable yet; retrying discovery'),
    });
  } catch (err) {
    if (final(err) || signal.aborted) throw err;
    const fallback = DWS_VERSIONS[0];
    logger.warn({ err: errorMessage(err), fallback }, 'DWS API version discovery failed; using the newest known version meanwhile (set DWS_API_VERSION to choose)');
    return fallback;
  }
}

export async function startDaemon(loaded: LoadedConfig, logger: Logger, opts: StartDaemonOptions = {}): Promise<DaemonHandle> {
  const env = opts.env ?? process.env;
  let config = loaded.config;
  const startedAt = new Date().toISOString();
  const nodeName = config.NODE_NAME || shortHostname();
  config = { ...config, NODE_NAME: nodeName };
  checkWorkflowNameTemplate(config.WORKFLOW_NAME_TEMPLATE);
  const notifier = opts.notifier ?? createSystemdNotifier({ env, logger });

  const jobsDir = jobsDirOf(config.RUNTIME_DIR);
  await ensureDir(config.RUNTIME_DIR, 0o755);
  await ensureDir(jobsDir, 0o711);
  // The perilog scripts' Node-free path (./perilog-spool.ts): root-only, the daemon's own.
  await ensureDir(prologSpoolDirOf(config.RUNTIME_DIR), 0o700);
  await ensureDir(endedDirOf(jobsDir), 0o700);
  const socketPath = config.SOCKET_PATH || socketPathOf(config.RUNTIME_DIR);
  let socketGid: number | undefined;
  if (config.SOCKET_GROUP) {
    socketGid = await groupId(config.SOCKET_GROUP);
    if (socketGid === undefined) throw new DaemonStartError('SOCKET_GROUP_UNKNOWN', `SOCKET_GROUP ${JSON.stringify(config.SOCKET_GROUP)} is not a known group`, { hint: 'set SOCKET_GROUP to an existing group name or gid' });
  }

  // flux mode needs no Kubernetes at all: no credentials are read, no connection is made.
  const useKube = config.ENV_SOURCE !== 'flux';
  if (!useKube && config.DISCOVERY === 'computes') {
    throw new DaemonStartError('CONFIG_CONFLICT', 'DISCOVERY=computes reads Kubernetes Computes objects, which ENV_SOURCE=flux never does', { hint: 'use DISCOVERY=prolog with ENV_SOURCE=flux (the prolog tracks each job)' });
  }
  const kube = useKube ? await loadKube() : undefined;
  const connection = kube ? await kube.resolveConnection(config, env) : undefined;
  const client = kube && connection ? new kube.KubeClient({ connection, requestTimeoutMs: config.KUBE_REQUEST_TIMEOUT, logger, userAgent: `nnf-envd/${packageVersion()} (${nodeName})` }) : undefined;
  const startAbort = new AbortController();
  let dwsVersion: DwsVersion | '' = '';
  if (kube && client && connection) {
    try {
      dwsVersion = await discoverVersion(kube.discoverDwsVersion, client, config.DWS_API_VERSION, opts.startupApiWaitMs ?? 20_000, logger, startAbort.signal);
    } catch (err) {
      await client.close();
      throw err;
    }
    logger.info({ server: connection.server, source: connection.source, dwsVersion, node: nodeName, envSource: config.ENV_SOURCE }, 'connected');
  } else {
    logger.info({ node: nodeName, envSource: 'flux', flux: config.FLUX_COMMAND }, 'flux mode: environments come from job eventlogs; no Kubernetes connection, no credentials read');
  }
  if (client && config.WORKFLOW_TOKEN) {
    logger.warn({ namespace: config.WORKFLOW_NAMESPACE }, 'WORKFLOW_TOKEN is on: this node reads workflow-token Secrets, so its credentials can read Secrets (every user\'s workflow token); turn it off unless jobs need DW_WORKFLOW_TOKEN and flux-coral2 does not give it');
  }

  const events = new DaemonEvents();
  const metrics = new DaemonMetrics({ runtimeSampleMs: config.METRICS_RUNTIME_INTERVAL });
  const watchStats = new WatchStats(events, connection?.server ?? '');
  const addresses = new HostAddressResolver({ client, logger });
  const rabbit = new RabbitController({ client, dwsVersion, config, addresses, events, watchStats, metrics, logger: logger.child({ part: 'rabbit' }) });
  const flux = new FluxCommand({ command: config.FLUX_COMMAND, uri: config.FLUX_URI, env });
  const current = () => config;
  const source = new SelectingSource({
    mode: config.ENV_SOURCE as 'kube' | 'flux' | 'auto',
    flux,
    fluxSource: config.ENV_SOURCE !== 'kube' ? new FluxEnvSource({ flux, config: current }) : undefined,
    kubeSource: client ? new KubeEnvSource({ client, dwsVersion, config: current, watchStats }) : undefined,
    config: current,
  });
  const jobs = new JobController({
    source,
    config,
    jobsDir,
    rabbit: () => rabbit.facts(),
    addresses,
    events,
    metrics,
    logger: logger.child({ part: 'jobs' }),
  });
  metrics.setSources({ watchTotals: () => watchStats.totals(), jobsByPhase: () => jobs.countsByPhase() });

  // The profiles come from the API server: flux mode has none (GET /v1/profiles answers 404).
  const profiles = client ? new ProfileCache({ client, config, watchStats, logger }) : undefined;
  let discovery: ComputesDiscovery | undefined;
  let api: ApiServer | undefined;
  let spool: PerilogSpool | undefined;
  let ready = false;
  let stopping: Promise<void> | undefined;
  let stopWatchdog = () => undefined as void;

  const status = (): Record<string, unknown> => {
    const r = rabbit.current;
    return {
      version: packageVersion(),
      pid: process.pid,
      startedAt,
      ready,
      node: nodeName,
      rabbit: {
        name: r.rabbit,
        source: r.rabbitSource,
        reason: r.rabbitReason,
        address: r.address,
        addressSource: r.addressSource,
        addressReason: r.addressReason,
        nodesForbidden: r.nodesForbidden,
      },
      hosts: r.hosts,
      localRabbitConf: r.localRabbitConf,
      connection: connection ? { ...watchStats.connection, source: connection.source, dwsVersion } : { state: 'none', server: null, since: startedAt, error: null, source: 'ENV_SOURCE=flux: no Kubernetes connection', dwsVersion: null },
      envSource: config.ENV_SOURCE,
      watches: { live: watchStats.liveWatches, ...watchStats.counters() },
      jobs: { total: jobs.size, byPhase: jobs.countsByPhase() },
      discovery: config.DISCOVERY,
      profiles: profiles ? (({ namespace, apiVersion, synced, error, profiles: list }) => ({ namespace, apiVersion, synced, count: list.length, error }))(profiles.document()) : null,
      runtimeDir: config.RUNTIME_DIR,
      socket: socketPath,
    };
  };

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      ready = false;
      stopWatchdog();
      await notifier.stopping();
      await spool?.stop();
      await api?.close().catch((err: unknown) => logger.warn({ err: errorMessage(err) }, 'closing the control socket failed'));
      await discovery?.stop();
      await profiles?.stop();
      await jobs.stop();
      await rabbit.stop();
      await client?.close();
      logger.info('stopped');
    })();
    return stopping;
  };

  try {
    rabbit.start();
    const settled = await rabbit.waitSettled(opts.rabbitWaitMs ?? 15_000);
    if (!settled) logger.warn('the local rabbit is not decided yet; jobs are served meanwhile without it');
    await jobs.start();
    profiles?.start();
    if (config.DISCOVERY === 'computes') {
      discovery = new ComputesDiscovery({ client: client!, dwsVersion, namespace: config.WORKFLOW_NAMESPACE, nodeName, jobs, config, watchStats, logger });
      const w = discovery.start();
      await Promise.race([w.waitForSync(), sleep(opts.rabbitWaitMs ?? 15_000)]).catch(() => undefined);
    }
    api = await ApiServer.start({
      socketPath,
      mode: config.SOCKET_MODE,
      ...(socketGid !== undefined ? { gid: socketGid } : {}),
      jobs,
      status,
      ...(profiles ? { profiles: () => profiles.document() } : {}),
      healthy: () => ready,
      snapshot: (): DaemonEvent[] => [
        { type: 'connection', connection: watchStats.connection },
        { type: 'rabbit', rabbit: rabbit.current },
        ...jobs.list().map((job): DaemonEvent => ({ type: 'job', job })),
      ],
      events,
      metrics,
      logger: logger.child({ part: 'api' }),
    });
    spool = new PerilogSpool({ runtimeDir: config.RUNTIME_DIR, jobsDir, jobs, config: () => config, logger: logger.child({ part: 'perilog' }) });
    await spool.start();
  } catch (err) {
    await stop();
    throw err;
  }
  ready = true;
  logger.info({ socket: socketPath, jobsDir, rabbit: rabbit.current.rabbit, address: rabbit.current.address, recovered: jobs.size }, 'nnf-envd ready');
  await notifier.ready(`serving ${socketPath}; rabbit ${rabbit.current.rabbit ?? 'none'}`);
  // Healthy: the event loop turns (the notifier checks the lag) and no long-lived watch died.
  stopWatchdog = notifier.startWatchdog(() => ready && rabbit.healthy() && (discovery?.healthy() ?? true));

  const reload = async (next: LoadedConfig): Promise<{ applied: ConfigKey[]; needsRestart: ConfigKey[] }> => {
    const nextConfig = { ...next.config, NODE_NAME: next.config.NODE_NAME || shortHostname() };
    const changed = changedKeys(config, nextConfig);
    const needsRestart = changed.filter((k) => RESTART_KEYS.includes(k));
    const applied = changed.filter((k) => !RESTART_KEYS.includes(k));
    checkWorkflowNameTemplate(nextConfig.WORKFLOW_NAME_TEMPLATE);
    // Keys that need a restart keep their running value, so the live parts stay consistent.
    const effective = { ...nextConfig } as Record<ConfigKey, unknown>;
    for (const k of needsRestart) effective[k] = config[k];
    config = effective as Config;
    if (applied.includes('LOG_LEVEL')) logger.level = config.LOG_LEVEL;
    jobs.updateConfig(config);
    if (applied.includes('PROLOG_TIMEOUT')) await spool?.announce().catch((err: unknown) => logger.warn({ err: errorMessage(err) }, 'could not rewrite the prolog spool\'s .nnf-envd'));
    if (applied.some((k) => RABBIT_KEYS.includes(k))) await rabbit.reconfigure(config);
    if (applied.length > 0) logger.info({ applied }, 'configuration reloaded');
    if (needsRestart.length > 0) logger.warn({ needsRestart }, 'configuration changes that only a restart applies (systemctl restart nnf-envd)');
    if (changed.length === 0) logger.info('configuration reloaded: nothing changed');
    return { applied, needsRestart };
  };

  return {
    get config() {
      return config;
    },
    socketPath,
    jobsDir,
    dwsVersion,
    jobs,
    rabbit,
    events,
    metrics,
    status,
    reload,
    stop,
  };
}

/** The foreground daemon: runs until SIGTERM/SIGINT, answers 0 after a clean stop. */
export async function runDaemon(loaded: LoadedConfig, logger: Logger): Promise<number> {
  let handle: DaemonHandle;
  // /proc/<pid>/comm says nnf-envd (not node): the prolog script checks that the pid in the
  // spool's .nnf-envd file is this daemon without starting a process (./perilog-spool.ts).
  process.title = 'nnf-envd';
  try {
    handle = await startDaemon(loaded, logger);
  } catch (err) {
    if (err instanceof KubeConfigError || err instanceof NnfEnvError) {
      logger.fatal({ code: err.code, err: err.describe() }, 'nnf-envd cannot start');
      throw err;
    }
    throw err;
  }
  return new Promise<number>((resolve) => {
    let reloading: Promise<void> = Promise.resolve();
    const onStop = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'stopping');
      process.off('SIGHUP', onHup);
      void reloading.then(() => handle.stop()).then(() => {
        process.off('SIGTERM', onStop);
        process.off('SIGINT', onStop);
        // Anything a library left open must not keep a stopped daemon alive.
        setTimeout(() => process.exit(0), 3000).unref();
        resolve(0);
      });
    };
    const onHup = () => {
      reloading = reloading.then(async () => {
        try {
          if (!loaded.reload) {
            logger.warn('SIGHUP: this build cannot reload the configuration; restart to apply changes');
            return;
          }
          const next = await loaded.reload();
          loaded = next;
          await handle.reload(next);
        } catch (err) {
          logger.error({ err: errorMessage(err) }, 'SIGHUP: configuration not reloaded (the running one stays)');
        }
      });
    };
    process.once('SIGTERM', onStop);
    process.once('SIGINT', onStop);
    process.on('SIGHUP', onHup);
  });
}

/** `nnf-envd --remove-hosts-entry`. */
export async function removeHostsEntry(loaded: LoadedConfig, logger: Logger): Promise<void> {
  const path = loaded.config.HOSTS_FILE;
  if (!path) {
    logger.info('HOSTS_FILE is empty: no hosts entry is managed');
    return;
  }
  try {
    const { changed } = await removeManagedHostsBlock(path, logger);
    logger.info({ path, changed }, changed ? 'managed hosts block removed' : 'no managed hosts block to remove');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw err;
  }
}
