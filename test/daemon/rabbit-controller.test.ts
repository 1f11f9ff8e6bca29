/**
 * The local rabbit against the simulator: configured, from SystemConfiguration (changed live),
 * external computes, the mapping file fallback, a 403 on nodes (DNS fallback through a real
 * HTTP proxy that forbids /api/v1/nodes), admin lines that map our alias, and removal.
 */
import t from 'tap';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { NODES, dwsResource } from '../../src/kube/resource.js';
import type { SystemConfiguration } from '../../src/domain/dws-types.js';
import { removeHostsEntry } from '../../src/daemon/main.js';
import { NODE, SAMPLE_HOSTS, startHarness, eventually } from './harness.js';

const SC = dwsResource('systemconfigurations', 'v1alpha7');
const BLOCK = /# BEGIN nnf-env managed block[^\n]*\n(.*)\n# END nnf-env managed block/;

async function block(path: string): Promise<string | null> {
  return BLOCK.exec(await readFile(path, "utf8"))?.[1]?.replace(/[ \t]+/g, " ") ?? null;
}

t.test('configured rabbit name and address (IPv6)', async (t) => {
  const h = await startHarness({ config: { RABBIT_NAME: 'rabbit-x', RABBIT_ADDRESS: 'fd00::1', HOSTS_ALIASES: 'local-rabbit,rabbit' } });
  t.teardown(() => h.close());
  t.equal(await block(h.hostsFile), 'fd00::1 local-rabbit rabbit');
  t.equal(await readFile(h.localRabbitConf, 'utf8'), 'rabbit-x\n');
  t.match(h.daemon!.rabbit.current, { rabbit: 'rabbit-x', rabbitSource: 'config', address: 'fd00::1', addressSource: 'config' });
});

t.test('SystemConfiguration changes are applied while running; external computes get no entry', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  t.equal(await block(h.hostsFile), '127.0.0.1 local-rabbit');
  h.sim.create(NODES, { metadata: { name: 'rabbit-b' }, status: { addresses: [{ type: 'InternalIP', address: '127.0.0.3' }] } });
  const sc = h.sim.get<SystemConfiguration>(SC, 'default', 'default')!;
  h.sim.patchMerge(SC, 'default', 'default', { spec: { storageNodes: [{ type: 'Rabbit', name: 'rabbit-b', computesAccess: [{ name: NODE, index: 0 }] }] } });
  await eventually('hosts block moved to rabbit-b', async () => (await block(h.hostsFile)) === '127.0.0.3 local-rabbit');
  t.equal(await readFile(h.localRabbitConf, 'utf8'), 'rabbit-b\n');
  t.equal(h.daemon!.rabbit.facts().name, 'rabbit-b');
  // The Node's address changes: followed too.
  h.sim.patchMerge(NODES, undefined, 'rabbit-b', { status: { addresses: [{ type: 'InternalIP', address: '127.0.0.4' }] } });
  await eventually('address followed', async () => (await block(h.hostsFile)) === '127.0.0.4 local-rabbit');
  // This node becomes an external compute: no rabbit, the block goes away, status says why.
  h.sim.patchMerge(SC, 'default', 'default', { spec: { storageNodes: sc.spec.storageNodes!.map((s) => ({ ...s, computesAccess: [] })), externalComputeNodes: [{ name: NODE }] } });
  await eventually('block removed', async () => (await block(h.hostsFile)) === null);
  t.equal(await readFile(h.hostsFile, 'utf8'), SAMPLE_HOSTS, 'every byte outside the block preserved');
  // The status is committed after the files are written: wait for it too.
  type RabbitView = { rabbit: { name: string | null; reason: string } };
  await eventually('status updated', async () => (h.daemon!.status() as RabbitView).rabbit.name === null);
  const st = h.daemon!.status() as RabbitView;
  t.equal(st.rabbit.name, null);
  t.match(st.rabbit.reason, /external compute node/);
});

t.test('no SystemConfiguration: the rabbit mapping file', async (t) => {
  const h = await startHarness({ noDaemon: true });
  t.teardown(() => h.close());
  h.sim.delete(SC, 'default', 'default');
  await writeFile(join(h.dir, 'rabbitmapping'), JSON.stringify({ computes: { [NODE]: 'rabbit-sim' }, rabbits: {} }));
  await h.startDaemon();
  t.match(h.daemon!.rabbit.current, { rabbit: 'rabbit-sim', rabbitSource: 'rabbitmapping', address: '127.0.0.1', addressSource: 'node' });
  t.equal(await block(h.hostsFile), '127.0.0.1 local-rabbit');
});

t.test('admin line mapping our alias is reported, not changed', async (t) => {
  const h = await startHarness({ noDaemon: true });
  t.teardown(() => h.close());
  await writeFile(h.hostsFile, SAMPLE_HOSTS + '10.9.9.9 local-rabbit\n');
  await h.startDaemon();
  const hosts = h.daemon!.rabbit.current.hosts;
  t.equal(hosts.conflicts.length, 1);
  t.match(hosts.conflicts[0], { name: 'local-rabbit', address: '10.9.9.9', line: 5 });
  t.match(await readFile(h.hostsFile, 'utf8'), /^10\.9\.9\.9 local-rabbit$/m, 'admin line kept');
  // Removal by the explicit command only.
  await h.daemon!.stop();
  t.ok(await block(h.hostsFile), 'the block survives a stop');
  await removeHostsEntry(await h.loadConfig(), pino({ level: 'silent' }));
  t.equal(await block(h.hostsFile), null);
  t.equal(await readFile(h.hostsFile, 'utf8'), SAMPLE_HOSTS + '10.9.9.9 local-rabbit\n');
});

/** Passes everything to the simulator except nodes, which get 403 like RBAC without `nodes`. */
function forbiddingProxy(target: string): Promise<Server> {
  const url = new URL(target);
  const srv = createServer((req, res) => {
    if ((req.url ?? '').startsWith('/api/v1/nodes')) {
      const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403, message: 'nodes is forbidden: User "system:serviceaccount:nnf:compute" cannot list resource "nodes"' });
      res.writeHead(403, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const up = httpRequest({ host: url.hostname, port: url.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

t.test('403 on nodes: DNS fallback, said once in status', async (t) => {
  // A rabbit named localhost resolves through this node's resolver.
  const h = await startHarness({ noDaemon: true, sim: { rabbitName: 'localhost' } });
  t.teardown(() => h.close());
  const proxy = await forbiddingProxy(h.sim.url);
  t.teardown(() => {
    proxy.closeAllConnections();
    proxy.close();
  });
  const kubeconfig = join(h.dir, 'kubeconfig-proxy');
  const kc = (await readFile(h.kubeconfig, 'utf8')).replace(h.sim.url, `http://127.0.0.1:${(proxy.address() as { port: number }).port}`);
  await writeFile(kubeconfig, kc);
  await h.startDaemon({ KUBECONFIG: kubeconfig });
  const r = h.daemon!.rabbit.current;
  t.equal(r.rabbit, 'localhost');
  t.equal(r.nodesForbidden, true);
  t.equal(r.addressSource, 'dns');
  t.ok(r.address === '127.0.0.1' || r.address === '::1', `resolved ${r.address}`);
  t.match(r.addressReason, /not allowed to read Kubernetes nodes/);
  const st = h.daemon!.status() as { rabbit: { nodesForbidden: boolean } };
  t.equal(st.rabbit.nodesForbidden, true);
});
