/**
 * The simulator: an in-process Kubernetes API server on loopback for the resources nnf-env
 * uses (DWS workflows, computes, systemconfigurations, storages at v1alpha7 and v1alpha6; core
 * nodes, secrets, namespaces), with simulated DWS/NNF/Flux controllers and fault injection.
 * It is the embedded default for trying nnf-env on a laptop (`nnf-env sim`) and the harness
 * of the integration tests. kubectl works against it.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { WORKFLOW_STATES, type Workflow, type WorkflowState } from '../domain/dws-types.js';
import { DWS_VERSIONS, type KubeObject, type ResourceType } from '../kube/resource.js';
import { cloneJson } from './json-clone.js';
import { Controllers } from './controllers.js';
import { jobWorkflow, type SubmitJobOptions } from './jobs.js';
import { ephemeralRange, seedObjects } from './seed.js';
import { FaultState, type Faults } from './faults.js';
import { FluxJobs, type FluxJobRecord } from './flux-jobs.js';
import { ProfileHooks } from './profile-hooks.js';
import { examplePullSecret, exampleProfiles } from './profiles.js';
import { NNF_GROUP, PROFILE_NAMESPACE, type ContainerProfile } from '../domain/container-profile.js';
import { writeKubeconfigFile } from './kubeconfig.js';
import { applyMergePatch } from './patch.js';
import { parsePortsOption, PortAllocator, UserContainers } from './ports.js';
import { ResourceRegistry, servedResources, type ServedResource } from './resources.js';
import { createHandler } from './server.js';
import { errors } from './status.js';
import { localControllerStore } from './controller-store.js';
import { ObjectStore } from './store.js';
import { generateCertificates } from './tls.js';
import { present, WatchHub } from './watch.js';

export type { Faults, FailNextOptions, RequestInfo } from './faults.js';
export { SimApiError } from './status.js';
export { SimTlsError } from './tls.js';
export { FLUX_FINALIZER, LABEL_WORKFLOW_NAME, LABEL_WORKFLOW_NAMESPACE, LABEL_WORKFLOW_UID } from './controllers.js';
export { f58plain } from './env.js';
export type { SubmitJobOptions } from './jobs.js';
export type { FluxJobRecord, FluxJobException } from './flux-jobs.js';
export { FLUX_DWS_ERROR_PREFIX } from './flux-jobs.js';
export { exampleProfiles, loadProfilesDir, EXAMPLE_PULL_SECRET, IMPLICIT_PROFILE_LABEL } from './profiles.js';

export interface SimulatorOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  /** HTTPS with a generated CA (caPem; writeKubeconfig writes it beside the kubeconfig). */
  tls?: boolean;
  /** Require `Authorization: Bearer <token>` (401 Status otherwise). */
  token?: string;
  /** Watch event history kept; an older resourceVersion gets 410 Expired. Default 10000. */
  historySize?: number;
  /** This host's compute name in SystemConfiguration. Default: the short hostname. */
  computeName?: string;
  /** Default 'rabbit-sim'. */
  rabbitName?: string;
  /** The rabbit Node's InternalIP, where user containers listen. Default '127.0.0.1'. */
  rabbitAddress?: string;
  /** Drive workflows through their states. Default true. */
  controllers?: boolean;
  /** Delay per controller step. Default 20 ms. */
  stepDelayMs?: number;
  /** Open real TCP listeners at the allocated ports when PreRun starts. Default true. */
  userContainers?: boolean;
  /**
   * SystemConfiguration ports: a comma list of ports and ranges ('4000-4999', the default), or
   * '0' to let the kernel pick free ports (SystemConfiguration then shows the ephemeral range).
   * Ports in the range that cannot be bound (someone else has them) are skipped.
   */
  ports?: string;
  /** Interval of BOOKMARK events on watches that allow them. Default 5000 ms. */
  bookmarkIntervalMs?: number;
  /** Server-chosen watch timeout when the client sets none: uniform in [t, 2t] seconds. Default 1800. */
  watchTimeoutSeconds?: number;
  /** DWS versions served, newest first. Default v1alpha7, v1alpha6. */
  dwsVersions?: string[];
  /** Seed the example NnfContainerProfiles (and their pull secret) in nnf-system. Default true. */
  exampleProfiles?: boolean;
  /** A site's own NnfContainerProfiles (`nnf-env sim --profiles DIR`); a name already seeded is replaced. */
  profiles?: ContainerProfile[];
  /** Images the simulated registry refuses to pull: exact references, or prefixes ending in '*'. */
  refusedImages?: string[];
  logger?: Logger;
}

export interface Simulator {
  /** http(s)://127.0.0.1:<port> */
  readonly url: string;
  readonly caPem?: string;
  writeKubeconfig(path: string, opts?: { namespace?: string }): Promise<void>;
  readonly faults: Faults;
  // Object access without HTTP: same semantics, resourceVersions and events as HTTP writes,
  // except that create keeps a uid the caller set and ignores a resourceVersion (fixtures load
  // as they are), and update without a resourceVersion is unconditional.
  create<T extends KubeObject>(rt: ResourceType, obj: T): T;
  update<T extends KubeObject>(rt: ResourceType, obj: T): T;
  patchMerge<T extends KubeObject>(rt: ResourceType, ns: string | undefined, name: string, patch: unknown): T;
  delete(rt: ResourceType, ns: string | undefined, name: string): void;
  get<T extends KubeObject>(rt: ResourceType, ns: string | undefined, name: string): T | undefined;
  list<T extends KubeObject>(rt: ResourceType, ns?: string): T[];
  currentResourceVersion(): string;
  /** Create workflow fluxjob-<dec> in 'default' as Flux does; the controllers then drive it. */
  submitJob(job: SubmitJobOptions): Workflow;
  /** Set desiredState like Flux: Teardown at once, a later state one state at a time. */
  advance(name: string, state: WorkflowState): void;
  /** The simulated Flux's record of a job from submitJob: phase and exceptions (flux-coral2's outcome). */
  fluxJob(jobId: bigint): FluxJobRecord | undefined;
  /** Open watch connections (for tests). */
  watchCount(): number;
  close(): Promise<void>;
}

function defaultComputeName(): string {
  return hostname().split('.')[0] || 'localhost';
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const logger = opts.logger ?? pino({ level: 'silent' });
  const host = opts.host ?? '127.0.0.1';
  const rabbitName = opts.rabbitName ?? 'rabbit-sim';
  const rabbitAddress = opts.rabbitAddress ?? '127.0.0.1';
  const computeName = opts.computeName ?? defaultComputeName();
  const userContainers = opts.userContainers ?? true;
  const portsOpt = parsePortsOption(opts.ports ?? '4000-4999');
  const stepDelayMs = opts.stepDelayMs ?? 20;
  if (!(stepDelayMs >= 0)) throw new RangeError(`stepDelayMs must be >= 0 (got ${stepDelayMs})`);
  const watchTimeoutSeconds = opts.watchTimeoutSeconds ?? 1800;

  const registry = new ResourceRegistry(servedResources(opts.dwsVersions ?? [...DWS_VERSIONS]));
  const store = new ObjectStore(opts.historySize ?? 10_000, (err) => logger.error({ err }, 'simulator store listener failed'));
  const hub = new WatchHub(store, { bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 5000, logger });
  const faults = new FaultState(hub, store);
  const dws = (plural: string): ServedResource => registry.forType({ group: 'dataworkflowservices.github.io', version: '', plural, kind: '', namespaced: true });
  const core = (plural: string): ServedResource => registry.forType({ group: '', version: 'v1', plural, kind: '', namespaced: false });
  const wfRes = dws('workflows');

  for (const { group, plural, obj } of seedObjects({ computeName, rabbitName, rabbitAddress, ports: portsOpt.mode === 'os' ? [ephemeralRange()] : portsOpt.spec })) {
    store.create(group === '' ? core(plural) : dws(plural), obj);
  }
  const profilesRes = registry.forType({ group: NNF_GROUP, version: '', plural: 'nnfcontainerprofiles', kind: '', namespaced: true });
  if (opts.exampleProfiles !== false) {
    store.create(core('secrets'), examplePullSecret());
    for (const p of exampleProfiles()) store.create(profilesRes, p);
  }
  for (const p of opts.profiles ?? []) {
    const obj = cloneJson(p) as KubeObject;
    obj.metadata = { ...obj.metadata, namespace: obj.metadata.namespace ?? PROFILE_NAMESPACE };
    delete obj.metadata.resourceVersion;
    if (store.peek(profilesRes, obj.metadata.namespace, obj.metadata.name)) store.delete(profilesRes, obj.metadata.namespace, obj.metadata.name);
    store.create(profilesRes, obj);
  }
  const fluxJobs = new FluxJobs();

  const certs = opts.tls ? await generateCertificates([host]) : undefined;
  const sleeps = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const entry = { timer: setTimeout(() => { sleeps.delete(entry); resolve(); }, ms), resolve };
      sleeps.add(entry);
    });

  let address = '';
  const handler = createHandler({
    store,
    registry,
    hub,
    faults,
    token: opts.token,
    logger,
    serverAddress: () => address,
    defaultWatchTimeoutMs: () => Math.round(watchTimeoutSeconds * 1000 * (1 + Math.random())),
    sleep,
  });
  const server = certs ? https.createServer({ key: certs.keyPem, cert: certs.certPem }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: opts.port ?? 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  address = `${urlHost(host)}:${port}`;
  const url = `${certs ? 'https' : 'http'}://${address}`;

  const portAllocator = new PortAllocator(rabbitAddress);
  const containers = new UserContainers(rabbitAddress, logger);
  const controllerStore = localControllerStore(store);
  const controllers =
    opts.controllers === false
      ? undefined
      : new Controllers({
          store: controllerStore,
          workflows: wfRes,
          computes: dws('computes'),
          systemConfigurations: dws('systemconfigurations'),
          stepDelayMs,
          ports: portAllocator,
          portsMode: portsOpt.mode,
          containers,
          defaults: { listen: userContainers, computeName, rabbitName },
          profiles: new ProfileHooks({ store: controllerStore, profiles: profilesRes, secrets: core('secrets'), refusedImages: opts.refusedImages ?? [], logger }),
          fluxJobs,
          logger,
        });
  logger.info({ url, tls: !!certs, controllers: !!controllers }, 'simulator listening');

  let closed: Promise<void> | undefined;
  const sim: Simulator = {
    url,
    ...(certs ? { caPem: certs.caPem } : {}),
    faults,
    async writeKubeconfig(path, o = {}) {
      await writeKubeconfigFile(path, {
        server: url,
        ...(certs ? { caPem: certs.caPem } : {}),
        ...(opts.token !== undefined ? { token: opts.token } : {}),
        ...(o.namespace ? { namespace: o.namespace } : {}),
      });
    },
    create<T extends KubeObject>(rt: ResourceType, obj: T): T {
      const res = registry.forType(rt);
      const input = cloneJson(obj) as KubeObject;
      input.metadata ??= { name: '' };
      if (res.namespaced && !input.metadata.namespace) input.metadata.namespace = 'default';
      delete input.metadata.resourceVersion;
      return present(cloneJson(store.create(res, input, { keepUid: true })), res, rt.version) as T;
    },
    update<T extends KubeObject>(rt: ResourceType, obj: T): T {
      const res = registry.forType(rt);
      const input = cloneJson(obj) as KubeObject;
      if (res.namespaced && input.metadata && !input.metadata.namespace) input.metadata.namespace = 'default';
      return present(cloneJson(store.update(res, input)), res, rt.version) as T;
    },
    patchMerge<T extends KubeObject>(rt: ResourceType, ns: string | undefined, name: string, patch: unknown): T {
      const res = registry.forType(rt);
      const cur = store.peek(res, ns, name);
      if (!cur) throw errors.notFound(res.group, res.plural, name);
      const patched = applyMergePatch(present(cur, res, rt.version), patch) as KubeObject;
      patched.metadata = { ...patched.metadata, name, ...(res.namespaced ? { namespace: ns } : {}) };
      return present(cloneJson(store.update(res, patched)), res, rt.version) as T;
    },
    delete(rt, ns, name) {
      store.delete(registry.forType(rt), ns, name);
    },
    get<T extends KubeObject>(rt: ResourceType, ns: string | undefined, name: string): T | undefined {
      const res = registry.forType(rt);
      const o = store.get(res, ns, name);
      return o && (present(o, res, rt.version) as T);
    },
    list<T extends KubeObject>(rt: ResourceType, ns?: string): T[] {
      const res = registry.forType(rt);
      return store.list(res, ns).map((o) => present(cloneJson(o), res, rt.version) as T);
    },
    currentResourceVersion: () => String(store.currentRV()),
    submitJob(job) {
      const { workflow: wf, options: jobOpts, profile } = jobWorkflow(job, { listen: userContainers });
      const name = wf.metadata.name;
      if (store.peek(wfRes, 'default', name)) throw errors.alreadyExists(wfRes.group, wfRes.plural, name);
      if (profile && !store.peek(profilesRes, PROFILE_NAMESPACE, profile.metadata.name)) store.create(profilesRes, profile);
      controllers?.registerJob('default', name, jobOpts);
      fluxJobs.submitted(name);
      return present(cloneJson(store.create(wfRes, wf)), wfRes, wfRes.versions[0]!) as Workflow;
    },
    advance(name, state) {
      if (!WORKFLOW_STATES.includes(state)) throw new RangeError(`not a workflow state: ${String(state)}`);
      if (!store.peek(wfRes, 'default', name)) throw errors.notFound(wfRes.group, wfRes.plural, name);
      if (controllers) {
        // In-process writes commit before advance returns; a failure is the caller's.
        controllers.advance('default', name, state).catch((err: unknown) => logger.warn({ err, workflow: name }, 'advance failed'));
      } else {
        const cur = store.peek(wfRes, 'default', name)!;
        store.update(wfRes, { ...cloneJson(cur), spec: { ...(cur.spec as object), desiredState: state } });
      }
    },
    fluxJob: (jobId) => fluxJobs.get(`fluxjob-${jobId.toString()}`),
    watchCount: () => hub.count,
    close() {
      closed ??= (async () => {
        controllers?.close();
        containers.closeAll();
        for (const s of sleeps) {
          clearTimeout(s.timer);
          s.resolve();
        }
        sleeps.clear();
        hub.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        logger.info({ url }, 'simulator closed');
      })();
      return closed;
    },
  };
  return sim;
}
