import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { pino, type Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { errnoCode, errorMessage } from '../core/errors.js';
import type { KubeClient } from '../kube/client.js';
import { Reflector, reflectorOptionsFromConfig, type ReflectorSettings } from '../kube/reflector.js';
import { NODES, dwsResource } from '../kube/resource.js';
import type { KubeNode, SystemConfiguration } from '../domain/dws-types.js';
import {
  parseRabbitMapping,
  rabbitFromMapping,
  rabbitFromSystemConfiguration,
  type RabbitAssignment,
  type RabbitSource,
} from '../domain/rabbit-assignment.js';
import { HostsWriter } from '../fs/hosts-writer.js';
import type { HostsConflict, HostsEntry } from '../domain/hosts-block.js';
import { writeLocalRabbitConf } from '../fs/local-rabbit-conf.js';
import { ipFamily } from '../contract/address.js';
import type { DaemonMetrics } from '../api/metrics.js';
import type { DaemonEvents } from '../api/event-bus.js';
import { addressFromNode, type AddressSource, type HostAddressResolver } from '../net/host-address.js';
import type { RabbitFacts } from '../domain/delivery-plan.js';
import type { WatchStats } from './watch-stats.js';

/**
 * This node's rabbit and the `local-rabbit` entry. Observes the sources (RABBIT_NAME, the
 * SystemConfiguration, the rabbitmapping file; RABBIT_ADDRESS, the rabbit's Node, DNS), decides
 * the rabbit and its address, and makes the hosts block and local-rabbit.conf say so. Every
 * change of a source re-runs the same decision (level-triggered), and so does a periodic resync
 * (an admin who removed the block by hand gets it back).
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
  /** Re-check everything this often. Default 60 s. */
  resyncMs?: number;
  /** Wait this long for the SystemConfiguration before falling back to the mapping file. Default 10 s. */
  systemConfigurationWaitMs?: number;
  /** Pause before retrying a failed DNS lookup. Default 30 s. */
  dnsRetryMs?: number;
}

export const SYSTEM_CONFIGURATION_NAMESPACE = 'default';
export const SYSTEM_CONFIGURATION_NAME = 'default';
const WAITING_FOR_NODE = 'waiting for the rabbit\'s Node object';

export class RabbitController extends EventEmitter<{ change: [RabbitState] }> {
  private config: RabbitControllerConfig;
  private readonly logger: Logger;
  private state: RabbitState;
  private scWatch: Reflector<SystemConfiguration> | undefined;
  private scFailed = false;
  private scWaitTimer: NodeJS.Timeout | undefined;
  private nodeWatch: Reflector<KubeNode> | undefined;
  private nodeWatchFor: string | null = null;
  private dnsTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private hostsWriter: HostsWriter | undefined;
  private running: Promise<void> | undefined;
  private dirty = false;
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
    if (!c.RABBIT_NAME && this.opts.client) {
      const w = new Reflector<SystemConfiguration>({
        client: this.opts.client,
        resource: dwsResource('systemconfigurations', this.opts.dwsVersion),
        namespace: SYSTEM_CONFIGURATION_NAMESPACE,
        fieldSelector: `metadata.name=${SYSTEM_CONFIGURATION_NAME}`,
        ...reflectorOptionsFromConfig(c),
        logger: this.logger,
      });
      this.scWatch = w;
      this.opts.watchStats?.add(w);
      const kick = () => this.kick();
      w.on('synced', kick).on('added', kick).on('updated', kick).on('deleted', kick);
      w.on('state', (s) => {
        // Forbidden, missing CRD, API down: the mapping file answers meanwhile; the watch keeps trying.
        if (s === 'backoff' && !w.hasSynced && !this.scFailed) {
          this.scFailed = true;
          this.logger.warn({ err: w.lastError?.message }, 'cannot read SystemConfiguration default/default yet; using the rabbit mapping file meanwhile');
          this.kick();
        }
      });
      w.start();
      this.scWaitTimer = setTimeout(() => {
        if (!w.hasSynced) {
          this.scFailed = true;
          this.kick();
        }
      }, this.opts.systemConfigurationWaitMs ?? 10_000);
      this.scWaitTimer.unref();
    }
    this.kick();
    const every = this.opts.resyncMs ?? 60_000;
    this.resyncTimer = setInterval(() => {
      this.mappingCache = undefined;
      this.kick();
    }, every);
    this.resyncTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.scWaitTimer);
    clearTimeout(this.dnsTimer);
    clearInterval(this.resyncTimer);
    const sc = this.scWatch;
    this.scWatch = undefined;
    await Promise.all([sc?.stop(), this.stopNodeWatch()]);
    if (sc) this.opts.watchStats?.retire(sc);
    await this.running?.catch(() => undefined);
  }

  /** New settings (SIGHUP): everything is decided again from the new sources. */
  async reconfigure(config: RabbitControllerConfig): Promise<void> {
    await this.stop();
    this.config = config;
    this.scFailed = false;
    this.mappingCache = undefined;
    this.nodeWatchFor = null;
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
    if (this.stopped) return;
    this.dirty = true;
    if (this.running) return;
    this.running = (async () => {
      while (this.dirty && !this.stopped) {
        this.dirty = false;
        try {
          await this.reconcile();
        } catch (err) {
          this.logger.error({ err: errorMessage(err) }, 'rabbit reconcile failed');
        }
      }
    })().finally(() => (this.running = undefined));
  }

  private async decideRabbit(): Promise<{ assignment: RabbitAssignment | null; definitive: boolean }> {
    const c = this.config;
    if (c.RABBIT_NAME) return { assignment: { kind: 'rabbit', rabbit: c.RABBIT_NAME, source: 'config' }, definitive: true };
    const w = this.scWatch;
    if (w?.hasSynced) {
      const sc = w.store.getObject(SYSTEM_CONFIGURATION_NAMESPACE, SYSTEM_CONFIGURATION_NAME);
      if (sc) return { assignment: rabbitFromSystemConfiguration(sc, c.NODE_NAME), definitive: true };
    } else if (w && !this.scFailed) {
      return { assignment: null, definitive: false };
    }
    // No SystemConfiguration (none, forbidden, or no API server): the rabbitmapping file.
    const fromFile = await this.fromMappingFile();
    if (fromFile) return { assignment: fromFile, definitive: w?.hasSynced === true || fromFile.kind === 'rabbit' };
    const why = w?.hasSynced
      ? 'SystemConfiguration default/default does not exist and no rabbit mapping file is readable'
      : `SystemConfiguration default/default is not readable (${w?.lastError?.message ?? 'no API server'}) and no rabbit mapping file is readable`;
    return { assignment: { kind: 'unknown', source: 'systemconfiguration', reason: why }, definitive: w?.hasSynced === true };
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

  private async decideAddress(rabbit: string): Promise<Pick<RabbitState, 'address' | 'addressSource' | 'addressReason'>> {
    const c = this.config;
    if (c.RABBIT_ADDRESS) {
      if (ipFamily(c.RABBIT_ADDRESS) === 0) return { address: null, addressSource: null, addressReason: `RABBIT_ADDRESS ${JSON.stringify(c.RABBIT_ADDRESS)} is not an IPv4 or IPv6 address` };
      return { address: c.RABBIT_ADDRESS, addressSource: 'config', addressReason: null };
    }
    let nodeReason: string | null = null;
    if (this.opts.client && !this.opts.addresses.nodesForbidden) {
      this.ensureNodeWatch(rabbit);
      const w = this.nodeWatch;
      if (w && w.hasSynced) {
        const addr = addressFromNode(w.store.getObject(undefined, rabbit));
        if (addr) return { address: addr, addressSource: 'node', addressReason: null };
        nodeReason = w.store.getObject(undefined, rabbit) ? `Node ${rabbit} has no InternalIP` : `no Node named ${rabbit}`;
      } else if (w) {
        const err = w.lastError;
        if (err?.code === 'KUBE_FORBIDDEN') {
          this.opts.addresses.markNodesForbidden(err.message);
          await this.stopNodeWatch();
        } else if (!err) {
          // Not listed yet: the sync event brings us back here.
          return { address: this.state.rabbit === rabbit ? this.state.address : null, addressSource: this.state.rabbit === rabbit ? this.state.addressSource : null, addressReason: WAITING_FOR_NODE };
        } else nodeReason = `reading Node ${rabbit} failed: ${err.message}`;
      }
    }
    if (this.opts.addresses.nodesForbidden) nodeReason = 'not allowed to read Kubernetes nodes (RBAC)';
    const r = await this.opts.addresses.resolve(rabbit).catch((err: unknown) => ({ address: null, source: null, reason: errorMessage(err) }));
    // resolve() may itself try the Node again; take its DNS answer.
    if (r.address) return { address: r.address, addressSource: r.source, addressReason: nodeReason };
    this.scheduleDnsRetry();
    return { address: null, addressSource: null, addressReason: [nodeReason, r.reason].filter(Boolean).join('; ') || `no address for ${rabbit}` };
  }

  private ensureNodeWatch(rabbit: string): void {
    if (this.nodeWatchFor === rabbit && this.nodeWatch) return;
    void this.stopNodeWatch();
    if (!this.opts.client) return;
    const w = new Reflector<KubeNode>({
      client: this.opts.client,
      resource: NODES,
      fieldSelector: `metadata.name=${rabbit}`,
      ...reflectorOptionsFromConfig(this.config),
      logger: this.logger,
    });
    this.nodeWatch = w;
    this.nodeWatchFor = rabbit;
    this.opts.watchStats?.add(w);
    const kick = () => this.kick();
    w.on('synced', kick).on('added', kick).on('updated', kick).on('deleted', kick);
    w.on('state', (s) => {
      if (s === 'backoff' && !w.hasSynced) this.kick();
    });
    w.start();
  }

  private async stopNodeWatch(): Promise<void> {
    const w = this.nodeWatch;
    this.nodeWatch = undefined;
    this.nodeWatchFor = null;
    if (!w) return;
    await w.stop();
    this.opts.watchStats?.retire(w);
  }

  private scheduleDnsRetry(): void {
    if (this.dnsTimer || this.stopped) return;
    this.dnsTimer = setTimeout(() => {
      this.dnsTimer = undefined;
      this.kick();
    }, this.opts.dnsRetryMs ?? 30_000);
    this.dnsTimer.unref();
  }

  private async reconcile(): Promise<void> {
    const { assignment, definitive } = await this.decideRabbit();
    if (assignment === null) return; // still waiting for the SystemConfiguration
    const next: RabbitState = { ...this.state, hosts: { ...this.state.hosts }, localRabbitConf: { ...this.state.localRabbitConf } };
    if (assignment.kind === 'rabbit') {
      next.rabbit = assignment.rabbit;
      next.rabbitSource = assignment.source;
      next.rabbitReason = null;
      Object.assign(next, await this.decideAddress(assignment.rabbit));
    } else {
      next.rabbit = null;
      next.rabbitSource = assignment.source;
      next.rabbitReason = assignment.reason;
      next.address = null;
      next.addressSource = null;
      next.addressReason = null;
      await this.stopNodeWatch();
    }
    next.nodesForbidden = this.opts.addresses.nodesForbidden;
    if (this.stopped) return;

    await this.applyHosts(next, definitive);
    await this.applyLocalRabbitConf(next);
    // Settled once the rabbit is decided and its address is (or could not be) found.
    next.settled = this.state.settled || next.addressReason !== WAITING_FOR_NODE;
    this.commit(next);
  }

  private async applyHosts(next: RabbitState, definitive: boolean): Promise<void> {
    const writer = this.hostsWriter;
    if (!writer) return;
    let entry: HostsEntry | null | undefined;
    if (next.rabbit && next.address) entry = { address: next.address, names: [...this.config.HOSTS_ALIASES] };
    // A node that definitely has no rabbit gets no entry (a stale one would point at a wrong rabbit);
    // one whose sources are only unreachable keeps what it has.
    else if (!next.rabbit && definitive) entry = null;
    else return;
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
