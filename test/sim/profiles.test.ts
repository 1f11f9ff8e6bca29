/**
 * NnfContainerProfiles in the simulator: each way nnf-sos refuses or fails a container
 * workflow, with its exact workflow message and the simulated Flux's job outcome
 * (flux-coral2's fatal exception, no release), and what an accepted profile gives the job.
 */
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { startSimulator, loadProfilesDir, EXAMPLE_PULL_SECRET, FLUX_DWS_ERROR_PREFIX, type Simulator } from '../../src/sim/index.js';
import { dwsResource, SECRETS } from '../../src/kube/resource.js';
import type { Workflow } from '../../src/domain/dws-types.js';
import type { ContainerProfile } from '../../src/domain/container-profile.js';
import { waitFor } from './client.js';

const WORKFLOWS = dwsResource('workflows', 'v1alpha7');
const PROFILES = { group: 'nnf.cray.hpe.com', version: 'v1alpha11', plural: 'nnfcontainerprofiles', kind: 'NnfContainerProfile', namespaced: true };
const SYSCONF = dwsResource('systemconfigurations', 'v1alpha7');

const GFS2 = '#DW jobdw type=gfs2 capacity=50GB name=my-gfs2';
const wfOf = (sim: Simulator, id: bigint) => sim.get<Workflow>(WORKFLOWS, 'default', `fluxjob-${id}`);
const errorOf = (sim: Simulator, id: bigint) => waitFor(`fluxjob-${id} Error`, () => {
  const w = wfOf(sim, id);
  return w?.status?.status === 'Error' ? w : undefined;
}, 10_000);
const preRunDone = (sim: Simulator, id: bigint) => waitFor(`fluxjob-${id} PreRun`, () => {
  const w = wfOf(sim, id);
  return w?.status?.state === 'PreRun' && w.status.ready ? w : undefined;
}, 10_000);

function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
    s.setTimeout(2000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

function restricted(name: string, ids: { userID?: number; groupID?: number }): ContainerProfile {
  return { metadata: { name, namespace: 'nnf-system' }, data: { retryLimit: 6, numPorts: 1, ...ids, spec: { containers: [{ name: 'app', image: 'alpine:latest' }] } } };
}

/** Asserts flux-coral2's outcome: one fatal exception carrying the workflow's message; never released. */
async function assertFluxFailed(t: Test, sim: Simulator, id: bigint, message: string): Promise<void> {
  // flux-coral2 watches the workflow: its exception follows the Error, it is not part of it.
  const job = await waitFor(`job ${id} exception`, () => {
    const j = sim.fluxJob(id);
    return j && j.exceptions.length > 0 ? j : undefined;
  }, 5000);
  t.equal(job?.phase, 'failed', 'the job never starts on a node');
  t.equal(job?.exceptions.length, 1, 'one exception');
  t.equal(job?.exceptions[0]?.note, FLUX_DWS_ERROR_PREFIX + message);
  t.equal(job?.exceptions[0]?.severity, 0, 'fatal');
}

t.test('the examples are in nnf-system; v1alpha1, v1alpha10 and v1alpha11 are served', async (t) => {
  const sim = await startSimulator({ controllers: false });
  t.teardown(() => sim.close());
  const names = sim.list<ContainerProfile>(PROFILES, 'nnf-system').map((p) => p.metadata.name).sort();
  t.same(names, ['example-mpi-webserver', 'example-success', 'mpi-red-rock-slushy', 'red-rock-slushy']);
  t.ok(sim.get(SECRETS, 'default', EXAMPLE_PULL_SECRET), 'the example pull secret exists in default');
  const res = await fetch(`${sim.url}/apis/nnf.cray.hpe.com`);
  const group = (await res.json()) as { versions: Array<{ version: string }>; preferredVersion: { version: string } };
  t.same(group.versions.map((v) => v.version), ['v1alpha11', 'v1alpha10', 'v1alpha1']);
  t.equal(group.preferredVersion.version, 'v1alpha11');
  const old = await fetch(`${sim.url}/apis/nnf.cray.hpe.com/v1alpha1/namespaces/nnf-system/nnfcontainerprofiles/red-rock-slushy`);
  t.equal(((await old.json()) as { apiVersion: string }).apiVersion, 'nnf.cray.hpe.com/v1alpha1');
  const none = await startSimulator({ controllers: false, exampleProfiles: false });
  t.teardown(() => none.close());
  t.same(none.list(PROFILES, 'nnf-system'), [], 'exampleProfiles: false seeds none');
});

t.test('Proposal refusals: unknown profile, restrictions, storages (exact nnf-sos messages)', async (t) => {
  const sim = await startSimulator({
    stepDelayMs: 2,
    ports: '0',
    profiles: [restricted('only-uid-1050', { userID: 1050 }), restricted('only-gid-2000', { groupID: 2000 }), restricted('only-both', { userID: 1050, groupID: 2000 })],
  });
  t.teardown(() => sim.close());
  const cases: Array<{ id: bigint; uid: number; gid: number; directives: string[]; message: string | undefined }> = [
    { id: 1n, uid: 1050, gid: 1050, directives: [GFS2, '#DW container name=c profile=no-such-profile DW_JOB_foo_local_storage=my-gfs2'], message: 'DW Directive 0: Internal error: no valid container profile found' },
    { id: 2n, uid: 1051, gid: 2000, directives: ['#DW container name=c profile=only-uid-1050'], message: "DW Directive 0: User error: container profile 'only-uid-1050' is restricted to UserID 1050" },
    { id: 3n, uid: 1050, gid: 1050, directives: ['#DW container name=c profile=only-gid-2000'], message: "DW Directive 0: User error: container profile 'only-gid-2000' is restricted to GroupID 2000" },
    // Both set: both must match; UserID is checked first.
    { id: 4n, uid: 1050, gid: 1050, directives: ['#DW container name=c profile=only-both'], message: "DW Directive 0: User error: container profile 'only-both' is restricted to GroupID 2000" },
    { id: 5n, uid: 7, gid: 2000, directives: ['#DW container name=c profile=only-both'], message: "DW Directive 0: User error: container profile 'only-both' is restricted to UserID 1050" },
    { id: 6n, uid: 1050, gid: 2000, directives: ['#DW container name=c profile=only-both'], message: undefined },
    // red-rock-slushy needs DW_JOB_foo_local_storage.
    { id: 7n, uid: 1, gid: 1, directives: [GFS2, '#DW container name=c profile=red-rock-slushy'], message: "DW Directive 0: User error: storage 'DW_JOB_foo_local_storage' in container profile 'red-rock-slushy' is not optional: storage argument not found in the supplied arguments" },
    { id: 8n, uid: 1, gid: 1, directives: [GFS2, '#DW container name=c profile=red-rock-slushy DW_JOB_foo_local_storage=elsewhere'], message: "DW Directive 0: User error: jobdw directive mentioning 'elsewhere' not found" },
    { id: 9n, uid: 1, gid: 1, directives: ['#DW jobdw type=xfs capacity=1GB name=x', '#DW container name=c profile=red-rock-slushy DW_JOB_foo_local_storage=x'], message: 'DW Directive 0: User error: unsupported container filesystem: xfs' },
    { id: 10n, uid: 1, gid: 1, directives: [GFS2, '#DW container name=c profile=red-rock-slushy DW_JOB_foo_local_storage=my-gfs2 DW_JOB_other=my-gfs2'], message: "DW Directive 0: User error: storage 'DW_JOB_other' not found in container profile 'red-rock-slushy'" },
  ];
  for (const c of cases) sim.submitJob({ jobId: c.id, userID: c.uid, groupID: c.gid, directives: c.directives });
  for (const c of cases) {
    if (c.message === undefined) {
      await preRunDone(sim, c.id);
      // The stand-in releases the job on its own turn after PreRun is done: wait for it.
      const phase = await waitFor(`job ${c.id} released`, () => sim.fluxJob(c.id)?.phase === 'released' && 'released', 5000).catch(() => sim.fluxJob(c.id)?.phase);
      t.equal(phase, 'released', `job ${c.id}: uid and gid both match: accepted and released`);
      continue;
    }
    const w = await errorOf(sim, c.id);
    t.equal(w.status?.state, 'Proposal', `job ${c.id} fails in Proposal`);
    t.equal(w.status?.message, c.message);
    await assertFluxFailed(t, sim, c.id, c.message);
    t.equal(wfOf(sim, c.id)?.spec.desiredState, 'Proposal', 'Flux does not move the job on');
  }
});

t.test('a profile is pinned at Proposal: a later edit does not change a running job; the copy goes with the workflow', async (t) => {
  const sim = await startSimulator({ stepDelayMs: 2, ports: '0', profiles: [restricted('editable', {})] });
  t.teardown(() => sim.close());
  sim.submitJob({ jobId: 20n, userID: 1, directives: ['#DW container name=c profile=editable'], stopAt: 'Proposal' });
  await waitFor('Proposal done', () => wfOf(sim, 20n)?.status?.ready === true);
  const pinned = sim.get<ContainerProfile>(PROFILES, 'default', 'fluxjob-20-0');
  t.equal(pinned?.data.pinned, true, 'pinned copy fluxjob-20-0 in the workflow namespace');
  t.equal(pinned?.data.numPorts, 1);
  sim.patchMerge(PROFILES, 'nnf-system', 'editable', { data: { numPorts: 3 } });
  sim.advance('fluxjob-20', 'PreRun');
  const w = await preRunDone(sim, 20n);
  t.equal(w.status?.env?.NNF_CONTAINER_PORTS?.split(',').length, 1, 'the job keeps the profile as it was at Proposal');
  sim.delete(WORKFLOWS, 'default', 'fluxjob-20');
  await waitFor('pinned copy gone', () => sim.get(PROFILES, 'default', 'fluxjob-20-0') === undefined);
  t.pass('the pinned copy is deleted with its workflow');
});

t.test('ports: numPorts per container, from SystemConfiguration, with its cooldown', async (t) => {
  const lo = 20_000 + ((process.pid * 31) % 400) * 20;
  const two: ContainerProfile = { metadata: { name: 'two-containers' }, data: { numPorts: 2, spec: { containers: [{ name: 'web-a', image: 'a:1' }, { name: 'web-b', image: 'b:1' }] } } };
  const sim = await startSimulator({ stepDelayMs: 2, ports: `${lo}-${lo + 5}`, profiles: [two] });
  t.teardown(() => sim.close());
  sim.submitJob({ jobId: 30n, userID: 1, directives: ['#DW container name=c profile=two-containers'] });
  const env = (await preRunDone(sim, 30n)).status?.env ?? {};
  const ports = env.NNF_CONTAINER_PORTS!.split(',').map(Number);
  t.equal(ports.length, 4, '2 containers x numPorts 2');
  t.equal(env.NNF_CONTAINER_PORTS_web_a, ports.slice(0, 2).join(','));
  t.equal(env.NNF_CONTAINER_PORTS_web_b, ports.slice(2).join(','));
  t.ok(ports.every((p) => p >= lo && p <= lo + 5));
  // Released ports cool down: with 2 left in the range, a job wanting 4 fails in Setup.
  const sc = sim.get<Workflow>(SYSCONF, 'default', 'default')!;
  sim.patchMerge(SYSCONF, 'default', 'default', { spec: { ...(sc.spec as object), portsCooldownInSeconds: 60 } });
  sim.advance('fluxjob-30', 'Teardown');
  await waitFor('Teardown', () => wfOf(sim, 30n)?.status?.state === 'Teardown' && wfOf(sim, 30n)?.status?.ready === true);
  sim.submitJob({ jobId: 31n, userID: 1, directives: ['#DW container name=c profile=two-containers'] });
  const failed = await errorOf(sim, 31n);
  t.equal(failed.status?.state, 'Setup');
  t.equal(failed.status?.message, 'DW Directive 0: Internal error: could not request ports for container workflow: InsufficientResources');
  await assertFluxFailed(t, sim, 31n, failed.status!.message!);
});

t.test('MPI profile: the launcher is the target, hostnames from the mpiSpec', async (t) => {
  const sim = await startSimulator({ stepDelayMs: 2, ports: '0', rabbitName: 'rabbit-node-7' });
  t.teardown(() => sim.close());
  sim.submitJob({ jobId: 40n, userID: 1, directives: [GFS2, '#DW container name=web profile=example-mpi-webserver DW_JOB_foo_local_storage=my-gfs2'] });
  const env = (await preRunDone(sim, 40n)).status?.env ?? {};
  t.equal(env.NNF_CONTAINER_LAUNCHER, 'rabbit-node-7');
  t.equal(env.NNF_CONTAINER_HOSTNAMES, 'fluxjob-40-launcher,fluxjob-40-worker-0');
  t.equal(env.NNF_CONTAINER_PORTS?.split(',').length, 1, 'numPorts 1 for the one launcher container');
  t.equal(env.NNF_CONTAINER_PORTS_example_mpi_webserver, env.NNF_CONTAINER_PORTS);
  t.ok(await probe(Number(env.NNF_CONTAINER_PORTS)), 'the launcher listens');
  t.equal(sim.fluxJob(40n)?.phase, 'released');
  t.same(sim.fluxJob(40n)?.exceptions, []);
});

t.test('images: a missing pull secret or a refused image keeps the container from starting; PreRun fails after preRunTimeoutSeconds', async (t) => {
  const quick = (name: string, secret: string | undefined, image: string): ContainerProfile => ({
    metadata: { name },
    data: { numPorts: 1, retryLimit: 2, preRunTimeoutSeconds: 1, spec: { ...(secret ? { imagePullSecrets: [{ name: secret }] } : {}), containers: [{ name: 'app', image }] } },
  });
  const sim = await startSimulator({ stepDelayMs: 2, ports: '0', refusedImages: ['registry.example/private/*'], profiles: [quick('no-secret', 'missing-secret', 'dean/app:v1'), quick('refused', undefined, 'registry.example/private/app:v2'), quick('late-secret', 'late', 'dean/app:v1')] });
  t.teardown(() => sim.close());
  sim.submitJob({ jobId: 50n, userID: 1, directives: ['#DW container name=c profile=no-secret'] });
  sim.submitJob({ jobId: 51n, userID: 1, directives: ['#DW jobdw type=lustre capacity=1GB name=l', '#DW container name=c profile=refused'] });
  sim.submitJob({ jobId: 52n, userID: 1, directives: ['#DW container name=c profile=late-secret'] });
  // While waiting: DriverWait with the driver's pending message, as nnf-sos requeues.
  const waiting = await waitFor('pending message', () => {
    const w = wfOf(sim, 50n);
    return w?.status?.state === 'PreRun' && w.status.message?.includes('pending') ? w : undefined;
  });
  t.equal(waiting.status?.status, 'DriverWait');
  t.equal(waiting.status?.message, "DW Directive 0: pending container start for job 'fluxjob-50-rabbit-sim'");
  const ports = waiting.status!.env!.NNF_CONTAINER_PORTS!.split(',').map(Number);
  t.equal(await probe(ports[0]!), false, 'no container listens');
  // The admin creates the secret for job 52 before the timeout: its pods start.
  sim.create(SECRETS, { metadata: { name: 'late', namespace: 'default' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': 'e30=' } });
  for (const [id, index] of [[50n, 0], [51n, 1]] as const) {
    const w = await errorOf(sim, id);
    t.equal(w.status?.state, 'PreRun');
    t.equal(w.status?.message, `DW Directive ${index}: Internal error: user container(s) failed to start after 1 seconds`);
    await assertFluxFailed(t, sim, id, w.status!.message!);
  }
  const ok = await preRunDone(sim, 52n);
  t.ok(await probe(Number(ok.status?.env?.NNF_CONTAINER_PORTS)), 'the container starts once its secret exists');
  t.equal(sim.fluxJob(52n)?.phase, 'released');
});

t.test('--profiles DIR: a site\'s own profiles, with clear errors', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nnf-env-profiles-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'site.yaml'), [
    'apiVersion: nnf.cray.hpe.com/v1alpha1',
    'kind: NnfContainerProfile',
    'metadata: {name: site-mpi}',
    'data:',
    '  numPorts: 1',
    '  mpiSpec:',
    '    mpiReplicaSpecs:',
    '      Launcher: {template: {spec: {containers: [{name: site-launcher, image: "site/mpi:1"}]}}}',
    '      Worker: {template: {spec: {containers: [{name: site-worker, image: "site/mpi:1"}]}}}',
    '---',
    'apiVersion: nnf.cray.hpe.com/v1alpha11',
    'kind: NnfContainerProfile',
    'metadata: {name: red-rock-slushy}',
    'data: {numPorts: 1, spec: {containers: [{name: own, image: "own:1"}]}}',
  ].join('\n'));
  const loaded = await loadProfilesDir(dir);
  t.same(loaded.map((p) => [p.metadata.name, p.metadata.namespace]), [['site-mpi', 'nnf-system'], ['red-rock-slushy', 'nnf-system']]);
  const sim = await startSimulator({ stepDelayMs: 2, ports: '0', profiles: loaded });
  t.teardown(() => sim.close());
  t.equal(sim.get<ContainerProfile>(PROFILES, 'nnf-system', 'red-rock-slushy')?.data.spec?.containers?.[0]?.name, 'own', 'a site profile replaces the example of its name');
  sim.submitJob({ jobId: 60n, userID: 1, directives: ['#DW container name=c profile=site-mpi'] });
  const env = (await preRunDone(sim, 60n)).status?.env ?? {};
  t.ok(env.NNF_CONTAINER_LAUNCHER, 'the v1alpha1 mpiReplicaSpecs shape is an MPI profile');
  t.ok(env.NNF_CONTAINER_PORTS_site_launcher);

  await writeFile(join(dir, 'bad.yaml'), 'apiVersion: nnf.cray.hpe.com/v1alpha11\nkind: NnfContainerProfile\nmetadata: {name: both}\ndata: {spec: {containers: []}, mpiSpec: {}}\n');
  await t.rejects(loadProfilesDir(dir), { code: 'SIM_PROFILE_INVALID', message: new RegExp(`${join(dir, 'bad.yaml')}: profile both: Exactly one of 'spec' or 'mpiSpec' must be set`) });
  await t.rejects(loadProfilesDir(join(dir, 'nope')), { code: 'SIM_PROFILES_DIR' });
});
