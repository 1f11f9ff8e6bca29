/** What a fresh Rabbit system holds, for the simulator and for a real API server the simulated controllers drive. */
import { readFileSync } from 'node:fs';
import { PROFILE_NAMESPACE } from '../domain/container-profile.js';
import type { KubeObject } from '../kube/resource.js';

export interface SeedInput {
  computeName: string;
  rabbitName: string;
  rabbitAddress: string;
  ports: Array<number | string>;
}

export interface SeedObject {
  /** '' for core v1, else the DWS group. */
  group: '' | 'dataworkflowservices.github.io';
  plural: string;
  obj: KubeObject;
}

/** The kernel's ephemeral port range, as a SystemConfiguration ports entry. */
export function ephemeralRange(): string {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    if (lo && hi) return `${lo}-${hi}`;
  } catch {
    // not Linux
  }
  return '32768-60999';
}

/** Namespaces default, kube-system and nnf-system, the rabbit's Node and Storage, SystemConfiguration default/default. */
export function seedObjects(s: SeedInput): SeedObject[] {
  const DWS = 'dataworkflowservices.github.io' as const;
  return [
    ...['default', 'kube-system', PROFILE_NAMESPACE].map((ns): SeedObject => ({ group: '', plural: 'namespaces', obj: { metadata: { name: ns }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } } })),
    {
      group: '',
      plural: 'nodes',
      obj: {
        metadata: { name: s.rabbitName, labels: { 'kubernetes.io/hostname': s.rabbitName, 'cray.nnf.node': 'true' } },
        spec: {},
        status: {
          addresses: [
            { type: 'InternalIP', address: s.rabbitAddress },
            { type: 'Hostname', address: s.rabbitName },
          ],
          conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status (simulated)' }],
          nodeInfo: { kubeletVersion: 'v1.32.0-nnf-env-sim' },
        },
      },
    },
    {
      group: DWS,
      plural: 'systemconfigurations',
      obj: {
        metadata: { name: 'default', namespace: 'default' },
        spec: {
          storageNodes: [{ type: 'Rabbit', name: s.rabbitName, computesAccess: [{ name: s.computeName, index: 0 }] }],
          externalComputeNodes: [],
          ports: s.ports,
          // The simulator reuses released ports at once.
          portsCooldownInSeconds: 0,
        },
        status: { ready: true },
      },
    },
    {
      group: DWS,
      plural: 'storages',
      obj: {
        metadata: { name: s.rabbitName, namespace: 'default', labels: { 'dataworkflowservices.github.io/storage': 'Rabbit' } },
        spec: { state: 'Enabled', mode: 'Live' },
        status: {
          type: 'NVMe',
          status: 'Ready',
          capacity: 39582418599936,
          access: { protocol: 'PCIe', computes: [{ name: s.computeName, status: 'Ready' }], servers: [{ name: s.rabbitName, status: 'Ready' }] },
        },
      },
    },
  ];
}
