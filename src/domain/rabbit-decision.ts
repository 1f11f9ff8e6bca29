import { ipFamily } from '../contract/address.js';
import type { KubeNode, SystemConfiguration } from './dws-types.js';
import { addressFromNode } from './node-address.js';
import { rabbitFromSystemConfiguration, type RabbitAssignment, type RabbitSource } from './rabbit-assignment.js';

/**
 * The rabbit controller's decision, pure: from the settings and what the stores and lookups say
 * now, the rabbit, its address and what the hosts block should hold. The controller does the
 * I/O (watches, mapping file, DNS, writes) around it; the same inputs always give the same answer,
 * so a unit test can state every case without a server.
 */
export interface RabbitDecisionConfig {
  NODE_NAME: string;
  RABBIT_NAME: string;
  RABBIT_ADDRESS: string;
  HOSTS_ALIASES: readonly string[];
}

/** The SystemConfiguration default/default as its informer has it; undefined: not watched (RABBIT_NAME set, or no API server). */
export interface SystemConfigurationView {
  synced: boolean;
  object: SystemConfiguration | undefined;
  /** Not readable (forbidden, missing CRD, API down, or not listed in time): the mapping file answers meanwhile. */
  failed: boolean;
  error: string | null;
}

/** The rabbit's Node as its informer has it; undefined: not watched (no API server, or nodes forbidden). */
export interface NodeView {
  synced: boolean;
  object: KubeNode | undefined;
  error: string | null;
}

export interface DnsAnswer {
  address: string | null;
  source: 'config' | 'node' | 'dns' | null;
  reason: string | null;
}

export interface RabbitDecisionInputs {
  config: RabbitDecisionConfig;
  systemConfiguration: SystemConfigurationView | undefined;
  /** The rabbitmapping file's answer; null: no file configured or none readable; undefined: not read. */
  mapping?: RabbitAssignment | null;
  node: NodeView | undefined;
  /** The API server refused this node `nodes` (RBAC): addresses come from DNS. */
  nodesForbidden: boolean;
  /** The resolver's answer for the rabbit; undefined: not asked. */
  dns?: DnsAnswer;
  /** What was decided last time (kept while the rabbit's Node is not listed yet). */
  previous: { rabbit: string | null; address: string | null; addressSource: DnsAnswer['source'] };
}

/** The hosts block: write this entry, remove ours (definitely no rabbit), or leave it (sources unreachable). */
export type HostsIntent = { kind: 'write'; address: string; names: string[] } | { kind: 'remove' } | { kind: 'keep' };

export interface RabbitDecision {
  kind: 'decided';
  rabbit: string | null;
  rabbitSource: RabbitSource | null;
  rabbitReason: string | null;
  address: string | null;
  addressSource: DnsAnswer['source'];
  addressReason: string | null;
  hosts: HostsIntent;
  /** The first decision counts as made (the Node, when watched, has been listed). */
  settles: boolean;
  /** No address from any source: DNS is asked again later (no event says when it starts answering). */
  retryDns: boolean;
}

/** What the decision needs before it can answer; the controller fetches it and asks again. */
export type RabbitDecisionResult =
  | RabbitDecision
  /** The SystemConfiguration is neither listed nor failed yet. */
  | { kind: 'wait' }
  | { kind: 'needs-mapping' }
  | { kind: 'needs-dns'; rabbit: string };

export const WAITING_FOR_NODE = "waiting for the rabbit's Node object";

type RabbitPick = { kind: 'wait' } | { kind: 'needs-mapping' } | { kind: 'picked'; assignment: RabbitAssignment; definitive: boolean };

/** Which rabbit: RABBIT_NAME, else the SystemConfiguration, else the mapping file. */
export function pickRabbit(i: Pick<RabbitDecisionInputs, 'config' | 'systemConfiguration' | 'mapping'>): RabbitPick {
  const c = i.config;
  if (c.RABBIT_NAME) return { kind: 'picked', assignment: { kind: 'rabbit', rabbit: c.RABBIT_NAME, source: 'config' }, definitive: true };
  const sc = i.systemConfiguration;
  if (sc?.synced) {
    if (sc.object) return { kind: 'picked', assignment: rabbitFromSystemConfiguration(sc.object, c.NODE_NAME), definitive: true };
  } else if (sc && !sc.failed) {
    return { kind: 'wait' };
  }
  // No SystemConfiguration (none, unreadable, or no API server): the rabbitmapping file.
  if (i.mapping === undefined) return { kind: 'needs-mapping' };
  const listed = sc?.synced === true;
  // A mapping that names a rabbit is an answer; one that does not, while the SystemConfiguration
  // is only unreadable, is not definitive (the hosts block is kept rather than removed).
  if (i.mapping) return { kind: 'picked', assignment: i.mapping, definitive: listed || i.mapping.kind === 'rabbit' };
  const reason = listed
    ? 'SystemConfiguration default/default does not exist and no rabbit mapping file is readable'
    : `SystemConfiguration default/default is not readable (${sc?.error ?? 'no API server'}) and no rabbit mapping file is readable`;
  return { kind: 'picked', assignment: { kind: 'unknown', source: 'systemconfiguration', reason }, definitive: listed };
}

/**
 * The Node watch the decision wants: the picked rabbit's, unless the address is configured, there
 * is no API server, or nodes are forbidden. Computed before the decision so the controller wires
 * watches from data and the decision only reads their stores.
 */
export function desiredNodeWatch(i: Pick<RabbitDecisionInputs, 'config' | 'systemConfiguration' | 'mapping' | 'nodesForbidden'>, apiServer: boolean): string | null {
  if (i.config.RABBIT_ADDRESS || !apiServer || i.nodesForbidden) return null;
  const p = pickRabbit(i);
  return p.kind === 'picked' && p.assignment.kind === 'rabbit' ? p.assignment.rabbit : null;
}

export function decideRabbit(i: RabbitDecisionInputs): RabbitDecisionResult {
  const p = pickRabbit(i);
  if (p.kind !== 'picked') return p;
  const a = p.assignment;
  if (a.kind !== 'rabbit') {
    const hosts: HostsIntent = p.definitive ? { kind: 'remove' } : { kind: 'keep' };
    return { kind: 'decided', rabbit: null, rabbitSource: a.source, rabbitReason: a.reason, address: null, addressSource: null, addressReason: null, hosts, settles: true, retryDns: false };
  }
  const decided = (address: string | null, addressSource: DnsAnswer['source'], addressReason: string | null, retryDns = false): RabbitDecision => ({
    kind: 'decided',
    rabbit: a.rabbit,
    rabbitSource: a.source,
    rabbitReason: null,
    address,
    addressSource,
    addressReason,
    // No address while the sources are only unreachable: the block keeps what it has.
    hosts: address ? { kind: 'write', address, names: [...i.config.HOSTS_ALIASES] } : { kind: 'keep' },
    settles: addressReason !== WAITING_FOR_NODE,
    retryDns,
  });
  const c = i.config;
  if (c.RABBIT_ADDRESS) {
    if (ipFamily(c.RABBIT_ADDRESS) === 0) return decided(null, null, `RABBIT_ADDRESS ${JSON.stringify(c.RABBIT_ADDRESS)} is not an IPv4 or IPv6 address`);
    return decided(c.RABBIT_ADDRESS, 'config', null);
  }
  let nodeReason: string | null = null;
  const n = i.node;
  if (i.nodesForbidden) nodeReason = 'not allowed to read Kubernetes nodes (RBAC)';
  else if (n?.synced) {
    const addr = addressFromNode(n.object);
    if (addr) return decided(addr, 'node', null);
    nodeReason = n.object ? `Node ${a.rabbit} has no InternalIP` : `no Node named ${a.rabbit}`;
  } else if (n && !n.error) {
    // Not listed yet: its sync brings the decision back; meanwhile the last address stands.
    const same = i.previous.rabbit === a.rabbit;
    return decided(same ? i.previous.address : null, same ? i.previous.addressSource : null, WAITING_FOR_NODE);
  } else if (n?.error) nodeReason = `reading Node ${a.rabbit} failed: ${n.error}`;
  if (i.dns === undefined) return { kind: 'needs-dns', rabbit: a.rabbit };
  // The resolver may itself have tried the Node again; take its answer.
  if (i.dns.address) return decided(i.dns.address, i.dns.source, nodeReason);
  return decided(null, null, [nodeReason, i.dns.reason].filter(Boolean).join('; ') || `no address for ${a.rabbit}`, true);
}
