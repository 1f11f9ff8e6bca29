import net from 'node:net';
import t from 'tap';
import { startSimulator, LABEL_WORKFLOW_NAME, LABEL_WORKFLOW_NAMESPACE, FLUX_FINALIZER } from '../../src/sim/index.js';
import { dwsResource } from '../../src/kube/resource.js';
import type { Computes, Workflow } from '../../src/domain/dws-types.js';
import { openWatch, waitFor, WF } from './client.js';
import { readBanner } from './banner.js';

const WORKFLOWS = dwsResource('workflows', 'v1alpha7');
const COMPUTES = dwsResource('computes', 'v1alpha7');

/** A small port range of our own (parallel test processes pick different ones; taken ports are skipped anyway). */
function privateRange(size = 20): { lo: number; hi: number; spec: string } {
  const lo = 10_000 + ((process.pid * 7919 + Math.floor(Math.random() * 1000)) % 900) * 25;
  return { lo, hi: lo + size - 1, spec: `${lo}-${lo + size - 1}` };
}

/** Connect and read the greeting; undefined when refused. */
const envOf = (w: Workflow | undefined) => w?.status?.env ?? {};
const portsOf = (w: Workflow | undefined) => (envOf(w).NNF_CONTAINER_PORTS ?? '').split(',').filter(Boolean).map(Number);

t.test('a job goes to PreRun; PreRun sets the environment in two observable steps', async (t) => {
  const range = privateRange();
  const sim = await startSimulator({ stepDelayMs: 5, ports: range.spec, computeName: 'compute-01', rabbitName: 'rabbit-1' });
  t.teardown(() => sim.close());
  const name = 'fluxjob-321103304048246784';
  const w = openWatch(sim, `${WF}?watch=1&fieldSelector=metadata.name%3D${name}`);
  t.teardown(() => w.close());
  await new Promise((r) => setTimeout(r, 20)); // the watch is registered before the job exists
  const created = sim.submitJob({
    jobId: 321103304048246784n,
    userID: 1050,
    groupID: 1051,
    directives: ['#DW jobdw type=gfs2 capacity=50GB name=my-gfs2', '#DW container name=red-rock profile=red-rock-slushy DW_JOB_foo_local_storage=my-gfs2'],
  });
  t.equal(created.metadata.name, name);
  t.match(created.spec, { desiredState: 'Proposal', wlmID: 'flux', jobID: 'fkEPGJX8vhd', userID: 1050, groupID: 1051 });

  const done = await w.until((e) => e.object.status?.state === 'PreRun' && e.object.status.ready === true, 10_000);
  const seen = w.events.map((e) => e.object as Workflow);
  // DWS: Proposal with the workflow env at once.
  const proposal = seen.find((o) => o.status?.state === 'Proposal');
  t.same(envOf(proposal), { DW_WORKFLOW_NAME: name, DW_WORKFLOW_NAMESPACE: 'default' });
  // States in order, never backwards.
  const states = seen.map((o) => o.status?.state).filter((s, i, a) => s && s !== a[i - 1]);
  t.same(states, ['Proposal', 'Setup', 'DataIn', 'PreRun']);
  for (const s of ['Proposal', 'Setup', 'DataIn']) {
    t.ok(seen.some((o) => o.status?.state === s && o.status.ready && o.status.status === 'Completed' && o.spec.desiredState === s), `${s} finished`);
  }
  // The in-between PreRun state: container keys, no DW_JOB_*, not ready.
  const between = seen.find((o) => o.status?.state === 'PreRun' && envOf(o).NNF_CONTAINER_PORTS !== undefined && !o.status.ready);
  t.ok(between, 'PreRun with container keys and ready=false is observable');
  t.equal(between?.status?.status, 'DriverWait');
  t.notOk(Object.keys(envOf(between)).some((k) => k.startsWith('DW_JOB')), 'no DW_JOB_* yet');
  t.notOk('NNF_CONTAINER_LAUNCHER' in envOf(between));
  t.same(Object.keys(envOf(between)).sort(), [
    'DW_WORKFLOW_NAME', 'DW_WORKFLOW_NAMESPACE', 'NNF_CONTAINER_DOMAIN', 'NNF_CONTAINER_HOSTNAMES', 'NNF_CONTAINER_PORTS', 'NNF_CONTAINER_PORTS_red_rock_app', 'NNF_CONTAINER_SUBDOMAIN',
  ]);
  // Final env.
  const env = envOf(done.object as Workflow);
  const uid = (done.object as Workflow).metadata.uid;
  t.match(env, {
    DW_WORKFLOW_NAME: name,
    DW_JOB_my_gfs2: `/mnt/nnf/${uid}-0`,
    DW_JOB_GFS2: `/mnt/nnf/${uid}-0`,
    DW_JOBS: `my-gfs2:/mnt/nnf/${uid}-0`,
    NNF_CONTAINER_HOSTNAMES: 'rabbit-1',
    NNF_CONTAINER_DOMAIN: 'default.svc.cluster.local',
    NNF_CONTAINER_SUBDOMAIN: name,
  });
  // Per container of the profile (red-rock-slushy's container is red-rock-app), not the directive's name.
  t.equal(env.NNF_CONTAINER_PORTS_red_rock_app, env.NNF_CONTAINER_PORTS);
  t.notOk('NNF_CONTAINER_LAUNCHER' in env, 'no launcher for a non-MPI profile');
  const ports = portsOf(done.object as Workflow);
  t.equal(ports.length, 2, 'numPorts 2 of the red-rock-slushy profile');
  t.ok(ports.every((p) => p >= range.lo && p <= range.hi), `ports ${ports} from the SystemConfiguration range ${range.spec}`);
  t.equal(done.object.spec.desiredState, 'PreRun', 'Flux stops at PreRun by default');
  // Nothing moves after stopAt.
  await new Promise((r) => setTimeout(r, 60));
  t.equal(sim.get<Workflow>(WORKFLOWS, 'default', name)?.metadata.resourceVersion, done.object.metadata.resourceVersion);

  // Computes: created at Proposal, labelled, filled by Flux.
  const computes = sim.get<Computes>(COMPUTES, 'default', name);
  t.same(computes?.data, [{ name: 'compute-01' }]);
  t.equal(computes?.metadata.labels?.[LABEL_WORKFLOW_NAME], name);
  t.equal(computes?.metadata.labels?.[LABEL_WORKFLOW_NAMESPACE], 'default');
  t.match((done.object as Workflow).status?.computes, { kind: 'Computes', name, namespace: 'default' });

  // The simulated user container really listens on the rabbit address.
  for (const p of ports) t.match(await readBanner(p), new RegExp(`nnf-env-sim user container default/${name} port ${p}`), `port ${p} accepts TCP`);

  // Teardown: listeners closed, ports released; keys stay.
  sim.advance(name, 'Teardown');
  const td = await waitFor('Teardown done', () => {
    const o = sim.get<Workflow>(WORKFLOWS, 'default', name);
    return o?.status?.state === 'Teardown' && o.status.ready ? o : undefined;
  });
  t.equal(envOf(td).NNF_CONTAINER_PORTS, env.NNF_CONTAINER_PORTS, 'keys are never removed');
  for (const p of ports) t.equal(await readBanner(p), undefined, `port ${p} closed after Teardown`);
});

t.test('ports: live workflows never share; busy ports are skipped; released ports are reused', async (t) => {
  const range = privateRange(6);
  // Someone else holds the first port of the range.
  const squatter = net.createServer();
  await new Promise<void>((r) => squatter.listen({ host: '127.0.0.1', port: range.lo }, () => r()));
  t.teardown(() => squatter.close());
  const sim = await startSimulator({ stepDelayMs: 2, ports: range.spec });
  t.teardown(() => sim.close());
  const ready = (name: string) =>
    waitFor(`${name} at PreRun`, () => {
      const o = sim.get<Workflow>(WORKFLOWS, 'default', name);
      return o?.status?.state === 'PreRun' && o.status.ready ? o : undefined;
    });
  sim.submitJob({ jobId: 1n, userID: 1 });
  sim.submitJob({ jobId: 2n, userID: 1 });
  const a = portsOf(await ready('fluxjob-1'));
  const b = portsOf(await ready('fluxjob-2'));
  t.equal(a.length + b.length, 4);
  t.equal(new Set([...a, ...b]).size, 4, `no port shared: ${a} / ${b}`);
  t.notOk([...a, ...b].includes(range.lo), 'the port someone else holds is skipped');
  // Range exhausted (5 usable, 4 taken): a job asking for 2 fails in Setup.
  sim.submitJob({ jobId: 3n, userID: 1 });
  const failed = await waitFor('fluxjob-3 error', () => {
    const o = sim.get<Workflow>(WORKFLOWS, 'default', 'fluxjob-3');
    return o?.status?.status === 'Error' ? o : undefined;
  });
  t.equal(failed.status?.state, 'Setup');
  t.equal(failed.status?.message, 'DW Directive 1: Internal error: could not request ports for container workflow: InsufficientResources');
  // Teardown releases; a new job gets them.
  sim.advance('fluxjob-1', 'Teardown');
  await waitFor('fluxjob-1 torn down', () => sim.get<Workflow>(WORKFLOWS, 'default', 'fluxjob-1')?.status?.ready === true && sim.get<Workflow>(WORKFLOWS, 'default', 'fluxjob-1')?.status?.state === 'Teardown');
  sim.submitJob({ jobId: 4n, userID: 1 });
  const d = portsOf(await ready('fluxjob-4'));
  t.same(d.sort(), a.sort(), 'released ports are reused');
});

t.test('MPI: the launcher is the rabbit; hostnames are the launcher and worker pods', async (t) => {
  const sim = await startSimulator({ stepDelayMs: 2, ports: '0', rabbitName: 'rabbit-node-2' });
  t.teardown(() => sim.close());
  sim.submitJob({ jobId: 321103304048246785n, userID: 1050, mpi: true, containerName: 'mpi-red-rock', directives: ['#DW jobdw type=xfs capacity=10GB name=scratch'], numPorts: 1 });
  const name = 'fluxjob-321103304048246785';
  const o = await waitFor('PreRun', () => {
    const w = sim.get<Workflow>(WORKFLOWS, 'default', name);
    return w?.status?.state === 'PreRun' && w.status.ready ? w : undefined;
  });
  const env = envOf(o);
  t.equal(env.NNF_CONTAINER_LAUNCHER, 'rabbit-node-2');
  t.equal(env.NNF_CONTAINER_HOSTNAMES, `${name}-launcher,${name}-worker-0`);
  t.equal(portsOf(o).length, 1);
  t.ok(env.NNF_CONTAINER_PORTS_mpi_red_rock);
  t.ok(o.spec.dwDirectives?.some((d) => d.startsWith('#DW container name=mpi-red-rock')), 'a container directive was added');
  t.ok(await readBanner(portsOf(o)[0]!), 'the launcher listens');
});

t.test('failAt ends that state with Error; Teardown still works', async (t) => {
  const sim = await startSimulator({ stepDelayMs: 2, ports: '0' });
  t.teardown(() => sim.close());
  sim.submitJob({ jobId: 77n, userID: 5, failAt: 'DataIn' });
  const failed = await waitFor('Error', () => {
    const w = sim.get<Workflow>(WORKFLOWS, 'default', 'fluxjob-77');
    return w?.status?.status === 'Error' ? w : undefined;
  });
  t.equal(failed.status?.state, 'DataIn');
  t.equal(failed.status?.ready, false);
  t.match(failed.status?.message, /simulated failure in DataIn/);
  await new Promise((r) => setTimeout(r, 30));
  t.equal(sim.get<Workflow>(WORKFLOWS, 'default', 'fluxjob-77')?.spec.desiredState, 'DataIn', 'Flux does not move on from an error');
  sim.advance('fluxjob-77', 'Teardown');
  await waitFor('Teardown', () => {
    const w = sim.get<Workflow>(WORKFLOWS, 'default', 'fluxjob-77');
    return w?.status?.state === 'Teardown' && w.status.ready;
  });
  t.pass('teardown after an error');
});

t.test('stopAt, advance through states, listenDelayMs, deletion closes listeners', async (t) => {
  const sim = await startSimulator({ stepDelayMs: 2, ports: '0' });
  t.teardown(() => sim.close());
  sim.submitJob({ jobId: 10n, userID: 1, stopAt: 'Setup', listenDelayMs: 400, finalizer: true });
  const name = 'fluxjob-10';
  const at = (s: string, ready = true) => () => {
    const w = sim.get<Workflow>(WORKFLOWS, 'default', name);
    return w?.status?.state === s && w.status.ready === ready ? w : undefined;
  };
  await waitFor('Setup', at('Setup'));
  await new Promise((r) => setTimeout(r, 30));
  t.equal(sim.get<Workflow>(WORKFLOWS, 'default', name)?.status?.state, 'Setup', 'stopped at Setup');
  sim.advance(name, 'PreRun');
  // The container keys come first; the listeners only after listenDelayMs.
  const between = await waitFor('container keys', () => {
    const w = sim.get<Workflow>(WORKFLOWS, 'default', name);
    return w?.status?.env?.NNF_CONTAINER_PORTS ? w : undefined;
  });
  const ports = portsOf(between);
  t.equal(await readBanner(ports[0]!), undefined, 'not listening before listenDelayMs');
  await waitFor('PreRun', at('PreRun'));
  await waitFor('listening', async () => (await readBanner(ports[0]!)) !== undefined, 5000, 50);
  t.pass('listening after listenDelayMs');
  // Deleting the workflow (Flux removes its finalizer) closes the container and the Computes.
  t.ok(sim.get<Workflow>(WORKFLOWS, 'default', name)?.metadata.finalizers?.includes(FLUX_FINALIZER));
  sim.delete(WORKFLOWS, 'default', name);
  await waitFor('workflow gone', () => sim.get(WORKFLOWS, 'default', name) === undefined);
  await waitFor('computes gone', () => sim.get(COMPUTES, 'default', name) === undefined);
  t.equal(await readBanner(ports[0]!), undefined, 'listener closed on deletion');
});

t.test('workflows created by others (kubectl) are driven by DWS, not by Flux', async (t) => {
  const sim = await startSimulator({ stepDelayMs: 2, ports: '0' });
  t.teardown(() => sim.close());
  sim.create(WORKFLOWS, { metadata: { name: 'manual', namespace: 'default' }, spec: { desiredState: 'Proposal', wlmID: 'flux', jobID: 'f2', userID: 1, groupID: 1, dwDirectives: [] } });
  await waitFor('Proposal done', () => sim.get<Workflow>(WORKFLOWS, 'default', 'manual')?.status?.ready === true);
  await new Promise((r) => setTimeout(r, 30));
  t.equal(sim.get<Workflow>(WORKFLOWS, 'default', 'manual')?.spec.desiredState, 'Proposal', 'nobody moves desiredState');
  sim.patchMerge(WORKFLOWS, 'default', 'manual', { spec: { desiredState: 'Setup' } });
  await waitFor('Setup done', () => {
    const w = sim.get<Workflow>(WORKFLOWS, 'default', 'manual');
    return w?.status?.state === 'Setup' && w.status.ready;
  });
  t.pass('a desiredState change is carried out');

  const off = await startSimulator({ controllers: false });
  t.teardown(() => off.close());
  off.submitJob({ jobId: 5n, userID: 1 });
  await new Promise((r) => setTimeout(r, 50));
  t.equal(off.get<Workflow>(WORKFLOWS, 'default', 'fluxjob-5')?.status, undefined, 'controllers: false leaves workflows alone');
  off.advance('fluxjob-5', 'Teardown');
  t.equal(off.get<Workflow>(WORKFLOWS, 'default', 'fluxjob-5')?.spec.desiredState, 'Teardown');
});
