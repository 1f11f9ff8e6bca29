/**
 * The simulated controllers acting through the Kubernetes API (reflector caches, writes over
 * HTTP with conflict retry), here against the simulator started without its own controllers:
 * a job goes through its states, the user container listens, a concurrent writer forces a
 * conflict that the store retries, Teardown and deletion release what the job held.
 * test/real/ runs the same controllers against kube-apiserver.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { Computes, Workflow } from '../../src/domain/dws-types.js';
import { dwsResource } from '../../src/kube/resource.js';
import { kubeconfigClient, startApiControllers } from '../../src/sim/api-controllers.js';
import { startSimulator, type SimulatorOptions } from '../../src/sim/index.js';
import { eventually } from '../helpers/eventually.js';
import { readBanner } from './banner.js';

const WORKFLOWS = dwsResource('workflows', 'v1alpha7');
const COMPUTES = dwsResource('computes', 'v1alpha7');

/** A simulator without its own controllers, and a client of it through a kubeconfig, as a site's would be. */
async function simulatorAndClient(t: Test, opts: Partial<SimulatorOptions>) {
  const sim = await startSimulator({ controllers: false, ports: '0', ...opts });
  const dir = await mkdtemp(join(tmpdir(), 'nnf-env-apictl-'));
  t.teardown(async () => {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });
  await sim.writeKubeconfig(join(dir, 'kubeconfig'));
  return { sim, client: await kubeconfigClient(join(dir, 'kubeconfig')) };
}

t.test('controllers over the API drive a job to PreRun and through Teardown', async (t) => {
  const { sim, client } = await simulatorAndClient(t, { computeName: 'compute-01', rabbitName: 'rabbit-1' });
  const ctl = await startApiControllers({ client, computeName: 'compute-01', rabbitName: 'rabbit-1', stepDelayMs: 2 });
  t.teardown(async () => {
    await ctl.close();
    await client.close();
  });

  const name = 'fluxjob-321103304048246784';
  const created = await ctl.submitJob({ jobId: 321103304048246784n, userID: 1050, stopAt: 'DataIn' });
  t.equal(created.metadata.name, name);
  const atDataIn = await eventually('DataIn finished', () => {
    const o = sim.get<Workflow>(WORKFLOWS, 'default', name);
    return o?.status?.state === 'DataIn' && o.status.ready ? o : undefined;
  });
  t.same(sim.get<Computes>(COMPUTES, 'default', name)?.data, [{ name: 'compute-01' }], 'Flux filled Computes through the API');
  t.notOk(atDataIn.status?.env?.NNF_CONTAINER_PORTS, 'no container keys before PreRun');

  // A concurrent writer: the store's cached copy is now stale, its PUT gets 409 and is retried.
  sim.patchMerge(WORKFLOWS, 'default', name, { metadata: { annotations: { 'test/other-writer': 'yes' } } });
  const before = ctl.store.counters.conflicts;
  const wfRes = ctl.resources.workflows;
  await ctl.store.mutate(wfRes, 'default', name, (o) => {
    o.metadata.labels = { ...o.metadata.labels, 'test/controller': 'yes' };
  });
  t.equal(ctl.store.counters.conflicts - before, 1, 'one conflict, retried');
  const both = sim.get<Workflow>(WORKFLOWS, 'default', name);
  t.equal(both?.metadata.annotations?.['test/other-writer'], 'yes', 'the other writer\'s change is kept');
  t.equal(both?.metadata.labels?.['test/controller'], 'yes', 'the retried write landed');
  await ctl.advance(name, 'PreRun');
  const done = await eventually('PreRun finished', () => {
    const o = sim.get<Workflow>(WORKFLOWS, 'default', name);
    return o?.status?.state === 'PreRun' && o.status.ready ? o : undefined;
  });
  const env = done.status?.env ?? {};
  t.equal(env.DW_JOB_scratch, `/mnt/nnf/${done.metadata.uid}-0`);
  t.equal(env.NNF_CONTAINER_HOSTNAMES, 'rabbit-1');
  const ports = (env.NNF_CONTAINER_PORTS ?? '').split(',').filter(Boolean).map(Number);
  t.equal(ports.length, 2);
  for (const p of ports) t.match(await readBanner(p), new RegExp(`user container default/${name} port ${p}`), `port ${p} listens`);

  await ctl.advance(name, 'Teardown');
  await eventually('Teardown finished', () => {
    const o = sim.get<Workflow>(WORKFLOWS, 'default', name);
    return o?.status?.state === 'Teardown' && o.status.ready;
  });
  for (const p of ports) t.equal(await readBanner(p), undefined, `port ${p} closed after Teardown`);
  sim.delete(WORKFLOWS, 'default', name);
  await eventually('Computes deleted with the workflow', () => sim.get(COMPUTES, 'default', name) === undefined);
});

t.test('a job submitted with deleteAfterTeardown and a finalizer is deleted by the API-driven Flux', async (t) => {
  const { sim, client } = await simulatorAndClient(t, {});
  const ctl = await startApiControllers({ client, computeName: 'c', stepDelayMs: 2, userContainers: false });
  t.teardown(async () => {
    await ctl.close();
    await client.close();
  });
  await ctl.submitJob({ jobId: 7n, userID: 1, stopAt: 'Teardown', finalizer: true, deleteAfterTeardown: true });
  await eventually('workflow gone', () => sim.get(WORKFLOWS, 'default', 'fluxjob-7') === undefined && sim.list(WORKFLOWS).length === 0, 15_000);
  await eventually('Computes removed', () => sim.get(COMPUTES, 'default', 'fluxjob-7') === undefined);
  await t.rejects(ctl.advance('fluxjob-7', 'PreRun'), { name: 'KubeApiError', message: /HTTP 404/ } as never, 'advance of a missing workflow is a 404');
});
