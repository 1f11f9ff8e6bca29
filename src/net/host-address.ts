import { lookup } from 'node:dns/promises';
import { pino, type Logger } from 'pino';
import type { KubeClient } from '../kube/client.js';
import { KubeApiError } from '../kube/errors.js';
import { NODES } from '../kube/resource.js';
import type { KubeNode } from '../domain/dws-types.js';
import { addressFromNode } from '../domain/node-address.js';
import { ipFamily } from '../contract/address.js';
import { errorMessage } from '../core/errors.js';

/**
 * Where a rabbit (or an MPI launcher rabbit) can be reached. No DWS resource carries an
 * address: a rabbit's name is its Kubernetes Node's name, so the Node's `status.addresses`
 * answer (InternalIP first), else DNS on this node.
 */
export type AddressSource = 'config' | 'node' | 'dns';

export interface ResolvedAddress {
  address: string | null;
  source: AddressSource | null;
  /** Why there is no address (or why the Node was not used). */
  reason: string | null;
}

// The pure rule lives with the other decisions; re-exported for the resolver's callers.
export { addressFromNode };

export async function lookupHost(name: string): Promise<string> {
  if (ipFamily(name) !== 0) return name;
  // verbatim: the resolver's order; we never rewrite `localhost` to ::1 or back.
  const res = await lookup(name, { verbatim: true });
  return res.address;
}

export interface HostAddressResolverOptions {
  client: KubeClient | undefined;
  logger?: Logger;
  /** For tests: replaces DNS. */
  lookup?: (name: string) => Promise<string>;
}

/** Resolves host names through Node objects then DNS; remembers a 403 on nodes (logged once). */
export class HostAddressResolver {
  private readonly logger: Logger;
  private readonly lookupFn: (name: string) => Promise<string>;
  private forbidden = false;

  constructor(private readonly opts: HostAddressResolverOptions) {
    this.logger = opts.logger ?? pino({ level: 'silent' });
    this.lookupFn = opts.lookup ?? lookupHost;
  }

  /** True once the API server said this node may not read `nodes`. */
  get nodesForbidden(): boolean {
    return this.forbidden;
  }

  markNodesForbidden(err: unknown): void {
    if (this.forbidden) return;
    this.forbidden = true;
    this.logger.warn({ err: errorMessage(err) }, 'not allowed to read Kubernetes nodes: rabbit addresses come from DNS (grant get/list/watch on nodes, or set RABBIT_ADDRESS)');
  }

  async resolve(name: string, signal?: AbortSignal): Promise<ResolvedAddress> {
    if (ipFamily(name) !== 0) return { address: name, source: 'config', reason: null };
    let nodeReason: string | null = null;
    if (this.opts.client && !this.forbidden) {
      try {
        const node = await this.opts.client.tryGet<KubeNode>(NODES, undefined, name, signal);
        const address = addressFromNode(node);
        if (address) return { address, source: 'node', reason: null };
        nodeReason = node ? `Node ${name} has no InternalIP` : `no Node named ${name}`;
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 403) {
          this.markNodesForbidden(err);
          nodeReason = 'reading nodes is forbidden';
        } else {
          nodeReason = `reading Node ${name} failed: ${errorMessage(err)}`;
        }
      }
    } else if (this.forbidden) {
      nodeReason = 'reading nodes is forbidden';
    }
    try {
      const address = await this.lookupFn(name);
      return { address, source: 'dns', reason: nodeReason };
    } catch (err) {
      const dns = `DNS lookup of ${name} failed: ${errorMessage(err)}`;
      return { address: null, source: null, reason: nodeReason ? `${nodeReason}; ${dns}` : dns };
    }
  }
}
