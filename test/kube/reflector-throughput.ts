/**
 * Events per second through the reflector (a measurement, not a test; tap does not run it):
 *   node .build/<name>/test/kube/reflector-throughput.js [events]
 * 1. raw: a scripted server streams pre-built MODIFIED events (workflow-sized objects) as fast
 *    as the socket takes them: the cost of client + line splitting + JSON + store + emit.
 * 2. simulator: the in-process simulator applies merge patches and serves the watch: end to
 *    end, with the server's own cost on the same 2 cores.
 */
import { KubeClient } from '../../src/kube/client.js';
import { Reflector } from '../../src/kube/reflector.js';
import { dwsResource, type KubeObject } from '../../src/kube/resource.js';
import { startSimulator } from '../../src/sim/index.js';
import { eventLine, sendJson, startScriptServer, startWatch } from './script-server.js';

const WF = dwsResource('workflows', 'v1alpha7');
const N = Number(process.argv[2] ?? 200_000);
const OBJECTS = 1000;

function workflow(i: number, rv: number): KubeObject {
  const name = `fluxjob-${321103304048246784n + BigInt(i)}`;
  return {
    apiVersion: 'dataworkflowservices.github.io/v1alpha7',
    kind: 'Workflow',
    metadata: { name, namespace: 'default', uid: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`, resourceVersion: String(rv), generation: 3, creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { desiredState: 'PreRun', wlmID: 'flux', jobID: 'fkEPGJX8vhd', userID: 1050, groupID: 1050, dwDirectives: ['#DW jobdw type=xfs capacity=10GB name=scratch'] },
    status: {
      state: 'PreRun',
      ready: rv % 2 === 0,
      status: 'Completed',
      env: { DW_WORKFLOW_NAME: name, DW_WORKFLOW_NAMESPACE: 'default', DW_JOB_scratch: `/mnt/nnf/6b1f0a2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b-${i}`, NNF_CONTAINER_PORTS: '4000,4001' },
    },
  };
}

async function raw(): Promise<void> {
  const lines: Buffer[] = [];
  for (let k = 0; k < N; k++) lines.push(Buffer.from(eventLine('MODIFIED', workflow(k % OBJECTS, 1000 + k))));
  const payload = Buffer.concat(lines);
  const srv = await startScriptServer((req, res) => {
    if (req.query.get('watch') !== '1') return sendJson(res, 200, { kind: 'WorkflowList', metadata: { resourceVersion: '999' }, items: [] });
    startWatch(res);
    if (req.n > 1) return;
    let i = 0;
    const pump = () => {
      while (i < payload.length) {
        const ok = res.write(payload.subarray(i, i + 65536));
        i += 65536;
        if (!ok) return void res.once('drain', pump);
      }
    };
    pump();
  });
  const client = new KubeClient({ connection: { server: srv.url, insecureSkipTlsVerify: false, source: 'bench' } });
  const r = new Reflector({ client, resource: WF, namespace: 'default' });
  const last = String(1000 + N - 1);
  let t0 = 0;
  const done = new Promise<void>((resolve) => {
    r.on('state', (s) => {
      if (s === 'watching' && t0 === 0) t0 = performance.now();
    });
    const check = (o: KubeObject) => {
      if (o.metadata.resourceVersion === last) resolve();
    };
    r.on('added', check);
    r.on('updated', check);
  });
  r.start();
  await done;
  const s = (performance.now() - t0) / 1000;
  console.log(`raw stream: ${N} events, ${(payload.length / 1048576).toFixed(1)} MiB (${Math.round(payload.length / N)} B/event) in ${s.toFixed(2)} s = ${Math.round(N / s)} events/s, ${(payload.length / 1048576 / s).toFixed(1)} MiB/s`);
  await r.stop();
  await client.close();
  await srv.close();
}

async function simulated(): Promise<void> {
  const M = Math.min(N, 50_000);
  const sim = await startSimulator({ controllers: false, historySize: M + 10_000 });
  for (let i = 0; i < OBJECTS; i++) {
    const w = workflow(i, 0);
    delete w.metadata.resourceVersion;
    sim.create(WF, w);
  }
  const client = new KubeClient({ connection: { server: sim.url, insecureSkipTlsVerify: false, source: 'bench' } });
  const r = new Reflector({ client, resource: WF, namespace: 'default' });
  r.start();
  await r.waitForSync();
  while (r.state !== 'watching') await new Promise((res) => setTimeout(res, 5));
  const t0 = performance.now();
  for (let k = 0; k < M; k++) {
    sim.patchMerge(WF, 'default', workflow(k % OBJECTS, 0).metadata.name, { status: { message: `m${k}` } });
    if (k % 500 === 0) await new Promise((res) => setImmediate(res));
  }
  const target = sim.currentResourceVersion();
  while (r.lastSyncResourceVersion !== target) await new Promise((res) => setTimeout(res, 1));
  const s = (performance.now() - t0) / 1000;
  console.log(`simulator end to end: ${M} patches -> ${r.counters.events} events in ${s.toFixed(2)} s = ${Math.round(M / s)} events/s (server and client in one process)`);
  await r.stop();
  await client.close();
  await sim.close();
}

await raw();
await simulated();
