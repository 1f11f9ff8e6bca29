/**
 * The real kubectl and the simulator's NnfContainerProfiles, as the NNF user-container guide
 * uses them: list the examples in nnf-system, copy one (get -o yaml, edit, apply), apply the
 * guide's 2023 v1alpha1 MPI profile, restrict a profile with a merge patch; the simulated
 * nnf-sos then follows what kubectl wrote.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { startSimulator } from '../../src/sim/index.js';
import { dwsResource } from '../../src/kube/resource.js';
import type { Workflow } from '../../src/domain/dws-types.js';
import type { ContainerProfile } from '../../src/domain/container-profile.js';
import { waitFor } from './client.js';

const WORKFLOWS = dwsResource('workflows', 'v1alpha7');

t.test('kubectl: list, copy, apply (v1alpha1 too), patch NnfContainerProfiles', async (t) => {
  const sim = await startSimulator({ stepDelayMs: 2, ports: '0' });
  t.teardown(() => sim.close());
  const dir = await mkdtemp(join(tmpdir(), 'nnf-env-kubectl-profiles-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'kubeconfig');
  await sim.writeKubeconfig(kubeconfig);
  const env = { ...process.env, KUBECACHEDIR: join(dir, 'cache'), HOME: dir, KUBECONFIG: '' };
  const kubectl = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('kubectl', ['--kubeconfig', kubeconfig, '--request-timeout=20s', ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
      });
    });

  // The guide's first step.
  const list = await kubectl(['get', 'nnfcontainerprofiles', '-n', 'nnf-system']);
  t.equal(list.code, 0, list.stderr);
  t.same(list.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]), ['NAME', 'example-mpi-webserver', 'example-success', 'mpi-red-rock-slushy', 'red-rock-slushy']);

  // Round trip: every example out as YAML and back in under a new name, unchanged.
  const out = await kubectl(['get', 'nnfcontainerprofiles', '-n', 'nnf-system', '-o', 'yaml']);
  t.equal(out.code, 0, out.stderr);
  const items = (YAML.parse(out.stdout) as { items: ContainerProfile[] }).items;
  t.equal(items.length, 4);
  for (const p of items) t.equal(p.apiVersion, 'nnf.cray.hpe.com/v1alpha11', 'the preferred (stored) version');
  const copies = items.map((p) => ({ apiVersion: p.apiVersion, kind: p.kind, metadata: { name: `${p.metadata.name}-copy`, namespace: 'nnf-system' }, data: p.data }));
  await writeFile(join(dir, 'copies.yaml'), copies.map((c) => YAML.stringify(c)).join('---\n'));
  const applied = await kubectl(['apply', '--validate=false', '-f', join(dir, 'copies.yaml')]);
  t.equal(applied.code, 0, applied.stderr);
  t.match(applied.stdout, /nnfcontainerprofile\.nnf\.cray\.hpe\.com\/red-rock-slushy-copy created/);
  for (const p of items) {
    const back = await kubectl(['get', 'nnfcontainerprofile', `${p.metadata.name}-copy`, '-n', 'nnf-system', '-o', 'yaml']);
    // Nothing lost; the server may add the CRD's defaults (pinned, timeouts) to the copy.
    t.has((YAML.parse(back.stdout) as ContainerProfile).data, p.data, `${p.metadata.name}: data unchanged through get -o yaml / apply`);
  }

  // The 2023 guide's profile, at v1alpha1 with mpiReplicaSpecs, works as an MPI profile.
  await writeFile(join(dir, 'v1alpha1.yaml'), [
    'apiVersion: nnf.cray.hpe.com/v1alpha1',
    'kind: NnfContainerProfile',
    'metadata:',
    '  name: guide-mpi',
    '  namespace: nnf-system',
    'data:',
    '  numPorts: 1',
    '  mpiSpec:',
    '    mpiImplementation: OpenMPI',
    '    mpiReplicaSpecs:',
    '      Launcher:',
    '        template:',
    '          spec:',
    '            containers:',
    '            - {name: red-rock-launcher, image: "dean/red-rock-slushy:v2.0"}',
    '      Worker:',
    '        template:',
    '          spec:',
    '            containers:',
    '            - {name: red-rock-worker, image: "dean/red-rock-slushy:v2.0"}',
    '    slotsPerWorker: 1',
    '  pinned: false',
    '  retryLimit: 6',
    '',
  ].join('\n'));
  const old = await kubectl(['apply', '--validate=false', '-f', join(dir, 'v1alpha1.yaml')]);
  t.equal(old.code, 0, old.stderr);
  sim.submitJob({ jobId: 71n, userID: 1, directives: ['#DW container name=c profile=guide-mpi'] });
  const done = await waitFor('PreRun', () => {
    const w = sim.get<Workflow>(WORKFLOWS, 'default', 'fluxjob-71');
    return w?.status?.state === 'PreRun' && w.status.ready ? w : undefined;
  }, 10_000);
  t.equal(done.status?.env?.NNF_CONTAINER_LAUNCHER, 'rabbit-sim');
  t.ok(done.status?.env?.NNF_CONTAINER_PORTS_red_rock_launcher);
  const pinned = await kubectl(['get', 'nnfcontainerprofile', 'fluxjob-71-0', '-n', 'default', '-o', 'jsonpath={.data.pinned}']);
  t.equal(pinned.stdout, 'true', 'the pinned copy is visible to kubectl');

  // An admin restricts a profile: the next job of another user is refused in Proposal.
  const patched = await kubectl(['patch', 'nnfcontainerprofile', 'guide-mpi', '-n', 'nnf-system', '--type', 'merge', '-p', '{"data":{"userID":1050}}']);
  t.equal(patched.code, 0, patched.stderr);
  sim.submitJob({ jobId: 72n, userID: 1, directives: ['#DW container name=c profile=guide-mpi'] });
  const refused = await waitFor('Error', () => {
    const w = sim.get<Workflow>(WORKFLOWS, 'default', 'fluxjob-72');
    return w?.status?.status === 'Error' ? w : undefined;
  }, 10_000);
  t.equal(refused.status?.message, "DW Directive 0: User error: container profile 'guide-mpi' is restricted to UserID 1050");
  const wf = await kubectl(['get', 'workflow', 'fluxjob-72', '-o', 'jsonpath={.status.state}/{.status.status}']);
  t.equal(wf.stdout, 'Proposal/Error');
});
