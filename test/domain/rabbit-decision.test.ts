/** The rabbit decision, case by case: every input a plain value, every answer stated. */
import t from 'tap';
import type { KubeNode, SystemConfiguration } from '../../src/domain/dws-types.js';
import { WAITING_FOR_NODE, decideRabbit, desiredNodeWatch, type RabbitDecisionInputs } from '../../src/domain/rabbit-decision.js';

// The test owns its SystemConfiguration: one rabbit serving compute-01, one external compute.
const sc: SystemConfiguration = {
  metadata: { name: 'default', namespace: 'default' },
  spec: { storageNodes: [{ type: 'Rabbit', name: 'rabbit-node-1', computesAccess: [{ name: 'compute-01', index: 0 }] }], externalComputeNodes: [{ name: 'login-01' }] },
} as SystemConfiguration;
const node = (name: string, ip: string): KubeNode => ({ metadata: { name }, status: { addresses: [{ type: 'InternalIP', address: ip }] } });

function inputs(over: Partial<RabbitDecisionInputs> = {}, config: Partial<RabbitDecisionInputs['config']> = {}): RabbitDecisionInputs {
  return {
    config: { NODE_NAME: 'compute-01', RABBIT_NAME: '', RABBIT_ADDRESS: '', HOSTS_ALIASES: ['local-rabbit'], ...config },
    systemConfiguration: { synced: true, object: sc, failed: false, error: null },
    node: { synced: true, object: node('rabbit-node-1', '10.0.0.1'), error: null },
    nodesForbidden: false,
    previous: { rabbit: null, address: null, addressSource: null },
    ...over,
  };
}

t.test('configured name and address: no store consulted', async (t) => {
  const d = decideRabbit(inputs({ systemConfiguration: undefined, node: undefined }, { RABBIT_NAME: 'rabbit-x', RABBIT_ADDRESS: 'fd00::1' }));
  t.match(d, { kind: 'decided', rabbit: 'rabbit-x', rabbitSource: 'config', address: 'fd00::1', addressSource: 'config', settles: true, retryDns: false });
  t.same((d as { hosts: unknown }).hosts, { kind: 'write', address: 'fd00::1', names: ['local-rabbit'] });
  t.match(decideRabbit(inputs({}, { RABBIT_NAME: 'rabbit-x', RABBIT_ADDRESS: 'rabbit-x.example' })), { address: null, addressReason: /not an IPv4 or IPv6 address/, hosts: { kind: 'keep' } });
});

t.test('SystemConfiguration and the Node store', async (t) => {
  t.match(decideRabbit(inputs()), { kind: 'decided', rabbit: 'rabbit-node-1', rabbitSource: 'systemconfiguration', address: '10.0.0.1', addressSource: 'node', hosts: { kind: 'write', address: '10.0.0.1' } });
  t.same(decideRabbit(inputs({ systemConfiguration: { synced: false, object: undefined, failed: false, error: null } })), { kind: 'wait' }, 'not listed, not failed: wait');
  const external = decideRabbit(inputs({}, { NODE_NAME: 'login-01' }));
  t.match(external, { rabbit: null, rabbitReason: /external compute node/, hosts: { kind: 'remove' }, settles: true });
  t.match(decideRabbit(inputs({ node: { synced: true, object: undefined, error: null } })), { kind: 'needs-dns', rabbit: 'rabbit-node-1' }, 'no Node: DNS is asked');
  t.match(
    decideRabbit(inputs({ node: { synced: true, object: undefined, error: null }, dns: { address: '10.9.0.1', source: 'dns', reason: null } })),
    { address: '10.9.0.1', addressSource: 'dns', addressReason: 'no Node named rabbit-node-1' },
  );
});

t.test('Node not listed yet: the last address stands, not settled', async (t) => {
  const waiting = { node: { synced: false, object: undefined, error: null }, previous: { rabbit: 'rabbit-node-1', address: '10.0.0.7', addressSource: 'node' as const } };
  t.match(decideRabbit(inputs(waiting)), { address: '10.0.0.7', addressSource: 'node', addressReason: WAITING_FOR_NODE, settles: false, hosts: { kind: 'write', address: '10.0.0.7' } });
  t.match(decideRabbit(inputs({ ...waiting, previous: { rabbit: 'other', address: '10.0.0.7', addressSource: 'node' } })), { address: null, hosts: { kind: 'keep' }, settles: false });
});

t.test('forbidden nodes and failed DNS', async (t) => {
  const i = inputs({ node: undefined, nodesForbidden: true, dns: { address: null, source: null, reason: 'DNS lookup of rabbit-node-1 failed: ENOTFOUND' } });
  t.match(decideRabbit(i), { address: null, addressReason: 'not allowed to read Kubernetes nodes (RBAC); DNS lookup of rabbit-node-1 failed: ENOTFOUND', retryDns: true, hosts: { kind: 'keep' }, settles: true });
  t.match(decideRabbit(inputs({ node: { synced: false, object: undefined, error: 'connection refused' }, dns: { address: '10.1.1.1', source: 'dns', reason: null } })), { address: '10.1.1.1', addressReason: 'reading Node rabbit-node-1 failed: connection refused' });
});

t.test('the mapping file when the SystemConfiguration is missing or unreadable', async (t) => {
  const failed = { synced: false, object: undefined, failed: true, error: 'forbidden' };
  t.same(decideRabbit(inputs({ systemConfiguration: failed })), { kind: 'needs-mapping' });
  t.match(decideRabbit(inputs({ systemConfiguration: failed, mapping: { kind: 'rabbit', rabbit: 'rabbit-node-1', source: 'rabbitmapping' } })), { rabbit: 'rabbit-node-1', rabbitSource: 'rabbitmapping', hosts: { kind: 'write' } });
  // Unreadable SystemConfiguration and no mapping: not definitive, the block is kept.
  t.match(decideRabbit(inputs({ systemConfiguration: failed, mapping: null })), { rabbit: null, rabbitReason: /not readable \(forbidden\) and no rabbit mapping file/, hosts: { kind: 'keep' } });
  // Listed and absent: definitive, the block goes.
  t.match(decideRabbit(inputs({ systemConfiguration: { synced: true, object: undefined, failed: false, error: null }, mapping: null })), { rabbit: null, rabbitReason: /does not exist/, hosts: { kind: 'remove' } });
  t.match(decideRabbit(inputs({ systemConfiguration: failed, mapping: { kind: 'unknown', source: 'rabbitmapping', reason: 'compute-01 is not in the rabbit mapping' } })), { rabbit: null, hosts: { kind: 'keep' } });
});

t.test('desired Node watch follows the inputs', async (t) => {
  t.equal(desiredNodeWatch(inputs(), true), 'rabbit-node-1');
  t.equal(desiredNodeWatch(inputs(), false), null, 'no API server');
  t.equal(desiredNodeWatch(inputs({ nodesForbidden: true }), true), null, 'nodes forbidden');
  t.equal(desiredNodeWatch(inputs({}, { RABBIT_ADDRESS: '10.0.0.9' }), true), null, 'address configured');
  t.equal(desiredNodeWatch(inputs({}, { NODE_NAME: 'login-01' }), true), null, 'no rabbit');
  t.equal(desiredNodeWatch(inputs({}, { RABBIT_NAME: 'rabbit-x' }), true), 'rabbit-x');
});
