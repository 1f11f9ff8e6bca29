/**
 * The simulated DWS / nnf-sos / Flux controllers acting through a Kubernetes API server (the
 * simulator started without its own controllers, or a real kube-apiserver with the DWS CRDs):
 * they cache workflows, computes, SystemConfigurations, NnfContainerProfiles and Secrets through reflectors and write
 * through the API. The user containers listen in this process, on rabbitAddress.
 */
import type { Logger } from 'pino';
import { pino } from 'pino';
import { WORKFLOW_STATES, type Workflow, type WorkflowState } from '../domain/dws-types.js';
import { KubeClient } from '../kube/client.js';
import { resolveConnection } from '../kube/connection.js';
import { KubeApiError } from '../kube/errors.js';
import { DWS_VERSIONS, objectPath, type KubeObject, type ResourceType } from '../kube/resource.js';
import { NNF_GROUP, PROFILE_NAMESPACE } from '../domain/container-profile.js';
import { ApiControllerStore } from './api-store.js';
import { Controllers } from './controllers.js';
import { FluxJobs, type FluxJobRecord } from './flux-jobs.js';
import { ProfileHooks } from './profile-hooks.js';
import { examplePullSecret, exampleProfiles } from './profiles.js';
import { jobWorkflow, type SubmitJobOptions } from './jobs.js';
import { parsePortsOption, PortAllocator, UserContainers } from './ports.js';
import { ResourceRegistry, servedResources, type ServedResource } from './resources.js';
import { ephemeralRange, seedObjects } from './seed.js';

export interface ApiControllersOptions {
  client: KubeClient;
  computeName: string;
  /** Default 'rabbit-sim'. */
  rabbitName?: string;
  /** Default '127.0.0.1'. */
  rabbitAddress?: string;
  /** Default 20 ms. */
  stepDelayMs?: number;
  /** As the simulator's `ports`. Default '0' (the kernel picks). */
  ports?: string;
  /** Default true. */
  userContainers?: boolean;
  /** Create the rabbit's Node and Storage, SystemConfiguration default/default, the example NnfContainerProfiles and their pull secret when missing. Default true. */
  seed?: boolean;
  /** Images the simulated registry refuses to pull: exact references, or prefixes ending in '*'. */
  refusedImages?: string[];
  /** DWS version the controllers read and write. Default v1alpha7. */
  dwsVersion?: string;
  logger?: Logger;
  signal?: AbortSignal;
}

export interface ApiControllers {
  readonly store: ApiControllerStore;
  /** The resources the store caches, as its methods take them. */
  readonly resources: { workflows: ServedResource; computes: ServedResource; systemConfigurations: ServedResource; profiles: ServedResource; secrets: ServedResource };
  /** Create workflow fluxjob-<dec> in 'default' as Flux does; the controllers then drive it. */
  submitJob(job: SubmitJobOptions): Promise<Workflow>;
  /** Set desiredState like Flux: Teardown at once, a later state one state at a time. */
  advance(name: string, state: WorkflowState): Promise<void>;
  /** The simulated Flux's record of a job from submitJob (flux-coral2's outcome). */
  fluxJob(jobId: bigint): FluxJobRecord | undefined;
  close(): Promise<void>;
}

function typeOf(res: ServedResource): ResourceType {
  return { group: res.group, version: res.versions[0]!, plural: res.plural, kind: res.kind, namespaced: res.namespaced };
}

export async function startApiControllers(opts: ApiControllersOptions): Promise<ApiControllers> {
  const logger = opts.logger ?? pino({ level: 'silent' });
  const rabbitName = opts.rabbitName ?? 'rabbit-sim';
  const rabbitAddress = opts.rabbitAddress ?? '127.0.0.1';
  const portsOpt = parsePortsOption(opts.ports ?? '0');
  const userContainers = opts.userContainers ?? true;
  const registry = new ResourceRegistry(servedResources([opts.dwsVersion ?? DWS_VERSIONS[0]]));
  const dws = (plural: string): ServedResource => registry.forType({ group: 'dataworkflowservices.github.io', version: '', plural, kind: '', namespaced: true });
  const workflows = dws('workflows');
  const computes = dws('computes');
  const systemConfigurations = dws('systemconfigurations');
  const profiles = registry.forType({ group: NNF_GROUP, version: '', plural: 'nnfcontainerprofiles', kind: '', namespaced: true });
  const secrets = registry.forType({ group: '', version: 'v1', plural: 'secrets', kind: '', namespaced: true });

  if (opts.seed !== false) await seedCluster(opts);

  const store = new ApiControllerStore({ client: opts.client, resources: [workflows, computes, systemConfigurations, profiles, secrets], logger });
  await store.start(opts.signal);
  const containers = new UserContainers(rabbitAddress, logger);
  const fluxJobs = new FluxJobs();
  const controllers = new Controllers({
    store,
    workflows,
    computes,
    systemConfigurations,
    stepDelayMs: opts.stepDelayMs ?? 20,
    ports: new PortAllocator(rabbitAddress),
    portsMode: portsOpt.mode,
    containers,
    defaults: { listen: userContainers, computeName: opts.computeName, rabbitName },
    profiles: new ProfileHooks({ store, profiles, secrets, refusedImages: opts.refusedImages ?? [], logger }),
    fluxJobs,
    logger,
  });
  const wfType = typeOf(workflows);
  let closed: Promise<void> | undefined;
  return {
    store,
    resources: { workflows, computes, systemConfigurations, profiles, secrets },
    async submitJob(job) {
      const { workflow, options, profile } = jobWorkflow(job, { listen: userContainers });
      if (profile && !store.peek(profiles, PROFILE_NAMESPACE, profile.metadata.name)) await store.create(profiles, profile);
      controllers.registerJob('default', workflow.metadata.name, options);
      fluxJobs.submitted(workflow.metadata.name);
      // Through an API server that may be restarting: retried; a create that went through
      // before its answer was lost is the workflow, a 409 of another job's is not.
      try {
        return await store.retrying(() => opts.client.create<Workflow>(wfType, 'default', { apiVersion: `${workflows.group}/${wfType.version}`, ...workflow }));
      } catch (err) {
        if (!(err instanceof KubeApiError && err.status === 409)) throw err;
        const cur = await store.retrying(() => opts.client.tryGet<Workflow>(wfType, 'default', workflow.metadata.name));
        if (cur?.spec?.jobID !== workflow.spec?.jobID) throw err;
        return cur;
      }
    },
    async advance(name, state) {
      if (!WORKFLOW_STATES.includes(state)) throw new RangeError(`not a workflow state: ${String(state)}`);
      await opts.client.get(wfType, 'default', name); // 404 as the simulator's advance throws
      await controllers.advance('default', name, state);
    },
    fluxJob: (jobId) => fluxJobs.get(`fluxjob-${jobId.toString()}`),
    close() {
      closed ??= (async () => {
        controllers.close();
        containers.closeAll();
        await store.stop();
      })();
      return closed;
    },
  };
}

/** What a fresh Rabbit system holds (the rabbit's Node and Storage, SystemConfiguration default/default), created where missing. */
export async function seedCluster(opts: Pick<ApiControllersOptions, 'client' | 'computeName' | 'rabbitName' | 'rabbitAddress' | 'ports' | 'dwsVersion'>): Promise<void> {
  const portsOpt = parsePortsOption(opts.ports ?? '0');
  const registry = new ResourceRegistry(servedResources([opts.dwsVersion ?? DWS_VERSIONS[0]]));
  const objects = seedObjects({
    computeName: opts.computeName,
    rabbitName: opts.rabbitName ?? 'rabbit-sim',
    rabbitAddress: opts.rabbitAddress ?? '127.0.0.1',
    ports: portsOpt.mode === 'os' ? [ephemeralRange()] : portsOpt.spec,
  });
  for (const { group, plural, obj } of objects) {
    const res = registry.forType({ group, version: group === '' ? 'v1' : '', plural, kind: '', namespaced: group !== '' });
    await ensure(opts.client, typeOf(res), obj);
  }
  const secrets = registry.forType({ group: '', version: 'v1', plural: 'secrets', kind: '', namespaced: true });
  const profiles = registry.forType({ group: NNF_GROUP, version: '', plural: 'nnfcontainerprofiles', kind: '', namespaced: true });
  await ensure(opts.client, typeOf(secrets), examplePullSecret());
  for (const p of exampleProfiles()) await ensure(opts.client, typeOf(profiles), p);
}

/**
 * Create unless it exists. Status is a subresource of some kinds (then create drops it): it is
 * written through /status afterwards.
 */
async function ensure(client: KubeClient, rt: ResourceType, obj: KubeObject): Promise<void> {
  const ns = rt.namespaced ? obj.metadata.namespace : undefined;
  let made: KubeObject;
  try {
    made = await client.create(rt, ns, { apiVersion: rt.group ? `${rt.group}/${rt.version}` : rt.version, kind: rt.kind, ...obj });
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 409) return;
    throw err;
  }
  if (obj.status === undefined || made.status !== undefined) return;
  try {
    await client.request({ method: 'PUT', path: `${objectPath(rt, ns, obj.metadata.name)}/status`, body: { ...made, status: obj.status } });
  } catch (err) {
    if (!(err instanceof KubeApiError && err.status === 404)) throw err;
  }
}

/** A client for the current context of a kubeconfig file (what `--kubeconfig FILE` means). */
export async function kubeconfigClient(file: string, logger?: Logger): Promise<KubeClient> {
  const connection = await resolveConnection(
    { KUBE_CONNECTION: 'kubeconfig', KUBECONFIG: file, KUBE_CONTEXT: '', KUBE_SERVER: '', KUBE_TOKEN_FILE: '', KUBE_CA_FILE: '', KUBE_TLS_SERVER_NAME: '', KUBE_INSECURE_SKIP_TLS_VERIFY: false },
    {},
  );
  return new KubeClient({ connection, userAgent: 'nnf-env-sim-controllers', ...(logger ? { logger } : {}) });
}
