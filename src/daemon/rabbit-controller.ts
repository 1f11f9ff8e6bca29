import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { pino, type Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { NnfEnvError, errnoCode, errorMessage } from '../core/errors.js';
import type { RetryPolicy } from '../core/retry.js';
import type { KubeClient } from '../kube/client.js';
import { Informer } from '../kube/informer.js';
import { reflectorOptionsFromConfig, type ReflectorSettings } from '../kube/reflector.js';
import { NODES, dwsResource } from '../kube/resource.js';
import type { KubeNode, SystemConfiguration } from '../domain/dws-types.js';
import { parseRabbitMapping, rabbitFromMapping, type RabbitAssignment, type RabbitSource } from '../domain/rabbit-assignment.js';
import {
  decideRabbit,
  desiredNodeWatch,
  type NodeView,
  type RabbitDecision,
  type RabbitDecisionInputs,
  type SystemConfigurationView,
} from '../domain/rabbit-decision.js';
import { HostsWriter } from '../fs/hosts-writer.js';
import type { HostsConflict, HostsEntry } from '../domain/hosts-block.js';
import { writeLocalRabbitConf } from '../fs/local-rabbit-conf.js';
import { ipFamily } from '../contract/address.js';
import type { DaemonMetrics } from '../api/metrics.js';
import type { DaemonEvents } from '../api/event-bus.js';
import type { AddressSource, HostAddressResolver } from '../net/host-address.js';
import type { RabbitFacts } from '../domain/delivery-plan.js';
import type { WatchStats } from './watch-stats.js';
import { WorkQueue } from './work-queue.js';

/**
 * This node's rabbit and the `local-rabbit` entry. Observes the sources (RABBIT_NAME, the
 * SystemConfiguration, the rabbitmapping file; RABBIT_ADDRESS, the rabbit's Node, DNS), has the
 * pure decision (domain/rabbit-decision.ts) say the rabbit and its address, and makes the hosts
 * block and local-rabbit.conf say so. Every change of a source adds the one key to a work queue,
 * whose sync re-runs the same decision (level-triggered); so does a periodic resync (an admin
 * who removed the block by hand gets it back).
 */
export type RabbitControllerConfig = Pick<
  Config,
  | 'NODE_NAME'
  | 'RABBIT_NAME'
  | 'RABBIT_ADDRESS'
  | 'RABBIT_MAPPING_FILE'
  | 'HOSTS_FILE'
  | 'HOSTS_ALIASES'
  | 'LOCAL_RABBIT_CONF'
> & ReflectorSettings;

export interface RabbitState {
  node: string;
  rabbit: string | null;
  rabbitSource: RabbitSource | null;
  /** Why there is no rabbit, or a note on the source used. */
  rabbitReason: string | null;
  address: string | null;
  addressSource: AddressSource | null;
  addressReason: string | null;
  /** The API server refused to let this node read Node objects (addresses come from DNS). */
  nodesForbidden: boolean;
  hosts: {
    path: string | null;
    entry: HostsEntry | null;
    /** Lines outside our block that map one of our names (reported, never changed). */
    conflicts: HostsConflict[];
    warnings: string[];
    method: string | null;
    error: string | null;
    updatedAt: string | null;
  };
  localRabbitConf: { path: string | null; written: boolean; error: string | null };
  /** The first decision has been made (the daemon waits for it before serving jobs). */
  settled: boolean;
}

export interface RabbitControllerOptions {
  /** Undefined: no API server (RABBIT_NAME and RABBIT_ADDRESS must say it all). */
  client: KubeClient | undefined;
  dwsVersion: string;
  config: RabbitControllerConfig;
  addresses: HostAddressResolver;
  events: DaemonEvents;
  watchStats?: WatchStats;
  metrics?: DaemonMetrics;
  logger?: Logger;
  /** Re-check everything this often. Default 10 min. */
  resyncMs?: number;
  /** Wait this long for the SystemConfiguration before falling back to the mapping file. Default 10 s. */
  systemConfigurationWaitMs?: number;
  /** First pause before asking DNS again when no source gave an address (then doubling, jittered, up to 8x). Default 30 s. */
  dnsRetryMs?: number;
}

export const SYSTEM_CONFIGURATION_NAMESPACE = 'default';
export const SYSTEM_CONFIGURATION_NAME = 'default';
/** The queue holds one key: the decision covers the whole node. */
const KEY = 'rabbit';

/** No source gave an address; the sync fails so the queue asks again with the retry policy. */
class RabbitAddressUnresolved extends NnfEnvError {
  constructor(rabbit: string, reason: string | null) {
    super('RABBIT_ADDRESS_UNRESOLVED', `no address for rabbit ${rabbit}: ${reason ?? 'no source answered'}`, {
      hint: 'make the rabbit resolvable (Node InternalIP or DNS), or set RABBIT_ADDRESS',
    });
  }
}

export class RabbitController extends EventEmitter<{ change: [RabbitState] }> {
  private config: RabbitControllerConfig;
  private readonly logger: Logger;
  private state: RabbitState;
  private scWatch: Informer<SystemConfiguration> | undefined;
  private scFailed = false;
  private scWaitTimer: NodeJS.Timeout | undefined;
  private nodeWatch: Informer<KubeNode> | undefined;
  private nodeWatchFor: string | null = null;
  private resyncTimer: NodeJS.Timeout | undefined;
  private hostsWriter: HostsWriter | undefined;
  private queue: WorkQueue<typeof KEY> | undefined;
  private stopped = false;
  private settledWaiters: Array<() => void> = [];
  private mappingCache: { file: string; text: string } | undefined;

  constructor(private readonly opts: RabbitControllerOptions) {
    super();
    this.config = opts.config;
    this.logger = opts.logger ?? pino({ level: 'silent' });
    this.state = this.initialState();
  }

  private initialState(): RabbitState {
    const c = this.config;
    return {
      node: c.NODE_NAME,
      rabbit: null,
      rabbitSource: null,
      rabbitReason: 'not decided yet',
      address: null,
      addressSource: null,
      addressReason: null,
      nodesForbidden: this.opts.addresses.nodesForbidden,
      hosts: { path: c.HOSTS_FILE || null, entry: null, conflicts: [], warnings: [], method: null, error: null, updatedAt: null },
      localRabbitConf: { path: c.LOCAL_RABBIT_CONF || null, written: false, error: null },
      settled: false,
    };
  }

  get current(): RabbitState {
    return this.state;
  }

  /** False when a watch loop this controller needs has died (the systemd watchdog stops pinging). */
  healthy(): boolean {
    if (this.stopped) return false;
    return [this.scWatch, this.nodeWatch].every((w) => w === undefined || w.state !== 'stopped');
  }

  /** What job files need: the rabbit's name and address. */
  facts(): RabbitFacts {
    return { name: this.state.rabbit, address: this.state.address };
  }

  start(): void {
    this.stopped = false;
    const c = this.config;
    this.hostsWriter = c.HOSTS_FILE ? new HostsWriter({ path: c.HOSTS_FILE, logger: this.logger }) : undefined;
    // Why a retry at all: no watch event says when DNS starts answering for the rabbit, so a sync
    // that found no address fails and the queue asks again, jittered so that a whole system
    // that lost DNS at once does not come back in lockstep.
    const dnsRetry: RetryPolicy = { initialMs: this.opts.dnsRetryMs ?? 30_000, maxMs: 8 * (this.opts.dnsRetryMs ?? 30_000) };
    this.queue = new WorkQueue<typeof KEY>({
      sync: () => this.sync(),
      retry: dnsRetry,
      onError: (_key, err, retryInMs) => {
        if (err instanceof RabbitAddressUnresolved) this.logger.debug({ err: err.message, retryInMs }, 'asking DNS again later');
        else this.logger.error({ err: errorMessage(err), retryInMs }, 'rabbit reconcile failed');
      },
    });
    // The SystemConfiguration watch is wired once, here: whether it exists depends only on settings.
    if (!c.RABBIT_NAME && this.opts.client) this.scWatch = this.startSystemConfigurationWatch(this.opts.client);
    this.kick();
    // Watches bring SystemConfiguration and Node changes; this catches what none can: an edited
    // hosts file or mapping file, a changed DNS answer. Rare: each pass reads files and wakes the
    // thread pool.
    const every = this.opts.resyncMs ?? 600_000;
    this.resyncTimer = setInterval(() => {
      this.mappingCache = undefined;
      this.kick();
    }, every);
    this.resyncTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.scWaitTimer);
    clearInterval(this.resyncTimer);
    await this.queue?.shutdown();
    const sc = this.scWatch;
    this.scWatch = undefined;
    await Promise.all([sc?.stop(), this.ensureNodeWatch(null)]);
    if (sc) this.opts.watchStats?.retire(sc.reflector);
  }

  /** New settings (SIGHUP): everything is decided again from the new sources. */
  async reconfigure(config: RabbitControllerConfig): Promise<void> {
    await this.stop();
    this.config = config;
    this.scFailed = false;
    this.mappingCache = undefined;
    const keep = this.state;
    this.state = { ...this.initialState(), settled: keep.settled };
    this.start();
  }

  /** Resolves once the first decision is made, or after `timeoutMs`. */
  waitSettled(timeoutMs: number): Promise<boolean> {
    if (this.state.settled) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(this.state.settled), timeoutMs);
      this.settledWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  private kick(): void {
    if (!this.stopped) this.queue?.add(KEY);
  }

  private startSystemConfigurationWatch(client: KubeClient): Informer<SystemConfiguration> {
    const w = new Informer<SystemConfiguration>({
      client,
      resource: dwsResource('systemconfigurations', this.opts.dwsVersion),
      namespace: SYSTEM_CONFIGURATION_NAMESPACE,
      fieldSelector: `metadata.name=${SYSTEM_CONFIGURATION_NAME}`,
      ...reflectorOptionsFromConfig(this.config),
      logger: this.logger,
    });
    this.opts.watchStats?.add(w.reflector);
    w.addHandler((n) => {
      // Forbidden, missing CRD, API down: the mapping file answers meanwhile; the watch keeps trying.
      if (n.type === 'state' && n.state === 'backoff' && !w.hasSynced && !this.scFailed) {
        this.scFailed = true;
        this.logger.warn({ err: w.lastError?.message }, 'cannot read SystemConfiguration default/default yet; using the rabbit mapping file meanwhile');
      }
      if (n.type !== 'state' || this.scFailed) this.kick();
    });
    w.start();
    // A list that neither answers nor fails must not hold the node without a rabbit forever.
    this.scWaitTimer = setTimeout(() => {
      if (!w.hasSynced) {
        this.scFailed = true;
        this.kick();
      }
    }, this.opts.systemConfigurationWaitMs ?? 10_000);
    this.scWaitTimer.unref();
    return w;
  }

  /** Desired watches -> running watches: a Node informer for `rabbit`, or none. */
  private async ensureNodeWatch(rabbit: string | null): Promise<void> {
    if (this.nodeWatchFor === rabbit && (rabbit === null || this.nodeWatch)) return;
    const old = this.nodeWatch;
    this.nodeWatch = undefined;
    this.nodeWatchFor = null;
    if (old) {
      await old.stop();
      this.opts.watchStats?.retire(old.reflector);
    }
    if (rabbit === null || !this.opts.client || this.stopped) return;
    const w = new Informer<KubeNode>({
      client: this.opts.client,
      resource: NODES,
      fieldSelector: `metadata.name=${rabbit}`,
      ...reflectorOptionsFromConfig(this.config),
      logger: this.logger,
    });
    this.nodeWatch = w;
    this.nodeWatchFor = rabbit;
    this.opts.watchStats?.add(w.reflector);
    w.addHandler((n) => {
      // A first list that fails is an answer too (forbidden, or an error to report).
      if (n.type !== 'state' || (n.state === 'backoff' && !w.hasSynced)) this.kick();
    });
    w.start();
  }

  private systemConfigurationView(): SystemConfigurationView | undefined {
    const w = this.scWatch;
    if (!w) return undefined;
    return {
      synced: w.hasSynced,
      object: w.hasSynced ? w.store.getObject(SYSTEM_CONFIGURATION_NAMESPACE, SYSTEM_CONFIGURATION_NAME) : undefined,
      failed: this.scFailed,
      error: w.lastError?.message ?? null,
    };
  }

  private nodeView(): NodeView | undefined {
    const w = this.nodeWatch;
    const name = this.nodeWatchFor;
    if (!w || name === null) return undefined;
    return { synced: w.hasSynced, object: w.hasSynced ? w.store.getObject(undefined, name) : undefined, error: w.hasSynced ? null : (w.lastError?.message ?? null) };
  }

  /** One pass: observe (stores, mapping file, watches wanted), decide (pure), apply (files), commit. */
  private async sync(): Promise<void> {
    if (this.stopped) return;
    const c = this.config;
    const inputs: RabbitDecisionInputs = {
      config: c,
      systemConfiguration: this.systemConfigurationView(),
      node: undefined,
      nodesForbidden: this.opts.addresses.nodesForbidden,
      previous: { rabbit: this.state.rabbit, address: this.state.address, addressSource: this.state.addressSource },
    };
    let result = decideRabbit(inputs);
    if (result.kind === 'needs-mapping') {
      inputs.mapping = await this.fromMappingFile();
      result = decideRabbit(inputs);
    }
    if (result.kind === 'wait') return; // the SystemConfiguration informer's sync or failure brings us back

    // Watches follow the inputs, outside the decision: the rabbit's Node, or none.
    await this.ensureNodeWatch(desiredNodeWatch(inputs, this.opts.client !== undefined));
    const nodeErr = this.nodeWatch && !this.nodeWatch.hasSynced ? this.nodeWatch.lastError : undefined;
    if (nodeErr?.code === 'KUBE_FORBIDDEN') {
      this.opts.addresses.markNodesForbidden(nodeErr.message);
      inputs.nodesForbidden = true;
      await this.ensureNodeWatch(null);
    }
    inputs.node = this.nodeView();
    result = decideRabbit(inputs);
    if (result.kind === 'needs-dns') {
      const rabbit = result.rabbit;
      inputs.dns = await this.opts.addresses.resolve(rabbit).catch((err: unknown) => ({ address: null, source: null, reason: errorMessage(err) }));
      result = decideRabbit(inputs);
    }
    if (result.kind !== 'decided' || this.stopped) return;
    await this.apply(result);
    if (result.retryDns) throw new RabbitAddressUnresolved(result.rabbit ?? '', result.addressReason);
  }

  private async apply(d: RabbitDecision): Promise<void> {
    const next: RabbitState = {
      ...this.state,
      rabbit: d.rabbit,
      rabbitSource: d.rabbitSource,
      rabbitReason: d.rabbitReason,
      address: d.address,
      addressSource: d.addressSource,
      addressReason: d.addressReason,
      nodesForbidden: this.opts.addresses.nodesForbidden,
      hosts: { ...this.state.hosts },
      localRabbitConf: { ...this.state.localRabbitConf },
    };
    if (d.hosts.kind !== 'keep') await this.applyHosts(next, d.hosts.kind === 'write' ? { address: d.hosts.address, names: d.hosts.names } : null);
    await this.applyLocalRabbitConf(next);
    // Settled once the rabbit is decided and its address is (or could not be) found.
    next.settled = this.state.settled || d.settles;
    this.commit(next);
  }

  private async fromMappingFile(): Promise<RabbitAssignment | null> {
    const file = this.config.RABBIT_MAPPING_FILE;
    if (!file) return null;
    let text: string;
    if (this.mappingCache?.file === file) text = this.mappingCache.text;
    else {
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') this.logger.warn({ file, err: errorMessage(err) }, 'cannot read the rabbit mapping file');
        return null;
      }
      this.mappingCache = { file, text };
    }
    try {
      return rabbitFromMapping(parseRabbitMapping(text, file), this.config.NODE_NAME);
    } catch (err) {
      this.logger.error({ file, err: errorMessage(err) }, 'rabbit mapping file is invalid');
      return { kind: 'unknown', source: 'rabbitmapping', reason: errorMessage(err) };
    }
  }

  /** `entry` null: a node that definitely has no rabbit gets no entry (a stale one would point at a wrong rabbit). */
  private async applyHosts(next: RabbitState, entry: HostsEntry | null): Promise<void> {
    const writer = this.hostsWriter;
    if (!writer) return;
    try {
      const res = await writer.apply(entry);
      next.hosts = {
        path: writer.path,
        entry,
        conflicts: res.conflicts,
        warnings: res.warnings,
        method: res.method,
        error: null,
        updatedAt: res.changed ? new Date().toISOString() : next.hosts.updatedAt,
      };
      this.opts.metrics?.hostsWrites.inc({ result: res.changed ? 'written' : 'unchanged' });
      const conflictKey = JSON.stringify(res.conflicts);
      if (res.conflicts.length > 0 && conflictKey !== JSON.stringify(this.state.hosts.conflicts)) {
        this.logger.warn({ path: writer.path, conflicts: res.conflicts }, 'lines outside the managed block map our names; they are left alone, resolvers may pick them first');
      }
    } catch (err) {
      this.opts.metrics?.hostsWrites.inc({ result: 'error' });
      next.hosts = { ...next.hosts, error: errorMessage(err) };
      if (this.state.hosts.error !== next.hosts.error) this.logger.error({ path: writer.path, err: errorMessage(err) }, 'hosts entry not written');
    }
  }

  private async applyLocalRabbitConf(next: RabbitState): Promise<void> {
    const path = this.config.LOCAL_RABBIT_CONF;
    if (!path || !next.rabbit) return;
    try {
      await writeLocalRabbitConf(path, next.rabbit, this.logger);
      next.localRabbitConf = { path, written: true, error: null };
    } catch (err) {
      next.localRabbitConf = { path, written: false, error: errorMessage(err) };
      if (this.state.localRabbitConf.error !== next.localRabbitConf.error) this.logger.error({ path, err: errorMessage(err) }, 'local-rabbit.conf not written');
    }
  }

  private commit(next: RabbitState): void {
    const before = this.state;
    this.state = next;
    if (!before.settled && next.settled) {
      for (const w of this.settledWaiters.splice(0)) w();
    }
    const visible = (s: RabbitState) => JSON.stringify({ ...s, hosts: { ...s.hosts, updatedAt: null } });
    if (visible(before) !== visible(next)) {
      if (before.rabbit !== next.rabbit || before.address !== next.address) {
        this.logger.info({ node: next.node, rabbit: next.rabbit, source: next.rabbitSource, address: next.address, addressSource: next.addressSource, reason: next.rabbitReason ?? next.addressReason }, next.rabbit ? 'local rabbit' : 'no local rabbit');
      }
      this.opts.events.publish({ type: 'rabbit', rabbit: next });
      this.emit('change', next);
    }
  }
}

/** `nnf-envd --remove-hosts-entry`: takes the managed block out of the hosts file. */
export async function removeManagedHostsBlock(hostsFile: string, logger?: Logger): Promise<{ changed: boolean }> {
  if (!hostsFile) return { changed: false };
  const res = await new HostsWriter({ path: hostsFile, ...(logger ? { logger } : {}) }).apply(null);
  return { changed: res.changed };
}
