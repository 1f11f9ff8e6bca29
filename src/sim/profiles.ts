/**
 * The simulator's NnfContainerProfiles: the examples a fresh system holds in `nnf-system`
 * (upstream's config/examples/nnf_nnfcontainerprofiles.yaml and the NNF user-container guide's
 * private-registry profiles), a site's own loaded with `nnf-env sim --profiles DIR`, and the
 * pinned copy nnf-sos makes for each workflow (createPinnedContainerProfileIfNecessary).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { NnfEnvError } from '../core/errors.js';
import { PROFILE_NAMESPACE, profileShapeProblem, type ContainerProfile, type ContainerProfileData } from '../domain/container-profile.js';
import type { KubeObject } from '../kube/resource.js';

/** The pull secret the guide's private-registry example names; seeded in `default` like an admin would. */
export const EXAMPLE_PULL_SECRET = 'readonly-red-rock-slushy';
/** Marks profiles the simulator made for submitJob's container options. */
export const IMPLICIT_PROFILE_LABEL = 'nnf-env.sim/implicit-profile';

const localStorages = [
  { name: 'DW_JOB_foo_local_storage', optional: false },
  { name: 'DW_PERSISTENT_foo_persistent_storage', optional: true },
];

function profile(name: string, data: ContainerProfileData): ContainerProfile {
  return { apiVersion: 'nnf.cray.hpe.com/v1alpha11', kind: 'NnfContainerProfile', metadata: { name, namespace: PROFILE_NAMESPACE }, data };
}

/** A plain one, one with ports (private image), two MPI ones: what `kubectl get nnfcontainerprofiles -n nnf-system` lists. */
export function exampleProfiles(): ContainerProfile[] {
  return [
    profile('example-success', {
      createContainer: true,
      retryLimit: 6,
      storages: localStorages,
      spec: { containers: [{ name: 'example-success', image: 'alpine:latest', command: ['/bin/sh', '-c', 'sleep 10 && exit 0'] }] },
    }),
    profile('red-rock-slushy', {
      pinned: false,
      createContainer: true,
      retryLimit: 6,
      numPorts: 2,
      storages: localStorages,
      spec: { imagePullSecrets: [{ name: EXAMPLE_PULL_SECRET }], containers: [{ name: 'red-rock-app', image: 'dean/red-rock-slushy:v1.0', command: ['/users-application'] }] },
    }),
    profile('example-mpi-webserver', {
      createContainer: true,
      retryLimit: 6,
      numPorts: 1,
      storages: [...localStorages, { name: 'DW_GLOBAL_foo_global_lustre', optional: true, pvcMode: 'ReadWriteMany' }],
      mpiSpec: {
        launcher: { containers: [{ name: 'example-mpi-webserver', image: 'ghcr.io/nearnodeflash/nnf-container-example:master', command: ['mpirun', 'python3', '-m', 'http.server', '$(NNF_CONTAINER_PORTS)'] }] },
        worker: { containers: [{ name: 'example-mpi-webserver', image: 'ghcr.io/nearnodeflash/nnf-container-example:master' }] },
      },
    }),
    profile('mpi-red-rock-slushy', {
      pinned: false,
      createContainer: true,
      retryLimit: 6,
      numPorts: 1,
      storages: localStorages,
      mpiSpec: {
        launcher: { imagePullSecrets: [{ name: EXAMPLE_PULL_SECRET }], containers: [{ name: 'red-rock-launcher', image: 'dean/red-rock-slushy:v2.0', command: ['mpirun', 'dcmp', '$(DW_JOB_foo_local_storage)/0', '$(DW_JOB_foo_local_storage)/1'] }] },
        worker: { imagePullSecrets: [{ name: EXAMPLE_PULL_SECRET }], containers: [{ name: 'red-rock-worker', image: 'dean/red-rock-slushy:v2.0' }] },
        slotsPerWorker: 1,
      },
    }),
  ];
}

/** The secret an admin creates with `kubectl create secret docker-registry` (fake credentials). */
export function examplePullSecret(): KubeObject {
  const config = JSON.stringify({ auths: { 'https://index.docker.io/v1/': { username: 'dean', password: 'simulated', email: 'dean@example.com' } } });
  return {
    metadata: { name: EXAMPLE_PULL_SECRET, namespace: 'default' },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(config).toString('base64') },
  };
}

/**
 * The profile submitJob's `containerName` / `mpi` / `numPorts` stand for: one container named
 * like the directive, so NNF_CONTAINER_PORTS_<name> is the directive's name as before profiles.
 */
export function implicitProfile(containerName: string, mpi: boolean, numPorts: number): ContainerProfile {
  const name = `${mpi ? 'mpi-' : ''}${containerName}${numPorts === 2 ? '' : `-${numPorts}p`}`;
  const pod = { containers: [{ name: containerName, image: `sim.local/${containerName}:latest` }] };
  const p = profile(name, { createContainer: true, retryLimit: 6, numPorts, ...(mpi ? { mpiSpec: { launcher: pod, worker: pod } } : { spec: pod }) });
  p.metadata.labels = { [IMPLICIT_PROFILE_LABEL]: 'true' };
  return p;
}

export class ProfileLoadError extends NnfEnvError {}

/** Every NnfContainerProfile in DIR's *.yaml / *.yml / *.json files (multi-document YAML too), checked. */
export async function loadProfilesDir(dir: string): Promise<ContainerProfile[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /\.(ya?ml|json)$/i.test(n)).sort();
  } catch (err) {
    throw new ProfileLoadError('SIM_PROFILES_DIR', `cannot read the profiles directory ${dir}: ${(err as Error).message}`, { hint: 'give a directory of NnfContainerProfile YAML files' });
  }
  const out: ContainerProfile[] = [];
  for (const n of names) {
    const path = join(dir, n);
    const text = await readFile(path, 'utf8');
    const docs = parseAllDocuments(text);
    docs.forEach((doc, i) => {
      const where = `${path}${docs.length > 1 ? ` (document ${i + 1})` : ''}`;
      if (doc.errors.length > 0) throw new ProfileLoadError('SIM_PROFILE_INVALID', `${where}: not valid YAML: ${doc.errors[0]!.message}`, { hint: 'fix the YAML' });
      const o = doc.toJS() as Partial<ContainerProfile> | null;
      if (o === null || o === undefined) return;
      if (o.kind !== 'NnfContainerProfile') throw new ProfileLoadError('SIM_PROFILE_INVALID', `${where}: kind is ${JSON.stringify(o.kind)}, not NnfContainerProfile`, { hint: 'the directory holds only NnfContainerProfiles' });
      const name = o.metadata?.name;
      if (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) throw new ProfileLoadError('SIM_PROFILE_INVALID', `${where}: metadata.name ${JSON.stringify(name)} is not a Kubernetes name`, { hint: 'lower-case letters, digits, - and .' });
      const problem = profileShapeProblem(o.data);
      if (problem) throw new ProfileLoadError('SIM_PROFILE_INVALID', `${where}: profile ${name}: ${problem}`, { hint: 'see the examples: kubectl get nnfcontainerprofiles -n nnf-system -o yaml' });
      out.push({ ...o, metadata: { ...o.metadata, name, namespace: o.metadata?.namespace ?? PROFILE_NAMESPACE } } as ContainerProfile);
    });
  }
  return out;
}

/** The pinned copy's name (nnf-sos's indexedResourceName). */
export function pinnedProfileName(workflowName: string, index: number): string {
  return `${workflowName}-${index}`;
}
