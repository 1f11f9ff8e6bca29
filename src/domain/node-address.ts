import { ipFamily } from '../contract/address.js';
import type { KubeNode } from './dws-types.js';

/**
 * No DWS resource carries a rabbit's address: a rabbit's name is its Kubernetes Node's name, so
 * the Node's `status.addresses` answer. Pure: InternalIP first, then an ExternalIP, IP literals only.
 */
export function addressFromNode(node: KubeNode | undefined): string | null {
  const addrs = node?.status?.addresses;
  if (!Array.isArray(addrs)) return null;
  const ips = addrs.filter((a) => a && typeof a.address === 'string' && ipFamily(a.address) !== 0);
  const internal = ips.find((a) => a.type === 'InternalIP');
  if (internal) return internal.address;
  return ips.find((a) => a.type === 'ExternalIP')?.address ?? null;
}
