/**
 * The simulator: an in-process Kubernetes API server on loopback for the resources nnf-env
 * uses (DWS workflows, computes, systemconfigurations, storages at v1alpha7 and v1alpha6; core
 * nodes, secrets, namespaces), with simulated DWS/NNF/Flux controllers and fault injection.
 * It is the embedded default for trying nnf-env on a laptop (`nnf-env sim`) and the harness
 * of the integration tests. kubectl works against it.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { WORKFLOW_STATES, type Workflow, type WorkflowState } from '../domain/dws-types.js';
import { DWS_VERSIONS, type KubeObject, type ResourceType } from '../kube/resource.js';
import { Controllers, FLUX_FINALIZER, type JobOptions } from './controllers.js';
import { containerOf, f58plain, parseDirectives } from './env.js';
import { FaultState, type Faults } from './faults.js';
import { FluxJobs, type FluxJobRecord } from './flux-jobs.js';
import { ProfileHooks } from './profile-hooks.js';
import { examplePullSecret, exampleProfiles, implicitProfile } from './profiles.js';
import { NNF_GROUP, PROFILE_NAMESPACE, type ContainerProfile } from '../domain/container-profile.js';
import { writeKubeconfigFile } from './kubeconfig.js';
import { applyMergePatch } from './patch.js';
import { parsePortsOption, PortAllocator, UserContainers } from './ports.js';
import { ResourceRegistry, servedResources, type ServedResource } from './resources.js';
import { createHandler } from './server.js';
import { errors } from './status.js';
import { ObjectStore } from './store.js';
import { generateCertificates } from './tls.js';
import { present, WatchHub } from './watch.js';

export type { Faults, FailNextOptions, RequestInfo } from './faults.js';
export { SimApiError } from './status.js';
export { SimTlsError } from './tls.js';
export { FLUX_FINALIZER, LABEL_WORKFLOW_NAME, LABEL_WORKFLOW_NAMESPACE, LABEL_WORKFLOW_UID } from './controllers.js';
export { f58plain } from './env.js';
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

export interface SubmitJobOptions {
  jobId: bigint;
  userID: number;
  /** Default: userID. */
  groupID?: number;
  /** Computes of the job (Flux fills Computes data with them). Default [computeName]. */
  computes?: string[];
  /** #DW directives. Default: one jobdw (xfs, name=scratch) and one container (name=containerName ?? 'sim-app'). */
  directives?: string[];
  /** MPI container profile: NNF_CONTAINER_LAUNCHER is set; hostnames are launcher/worker pods. */
  mpi?: boolean;
  /** The user container's name; a container directive is added when the directives have none. */
  containerName?: string;
  /** Ports per container. Default 2. */
  numPorts?: number;
  /** That state ends with status Error and a message. */
  failAt?: WorkflowState;
  /** Flux moves desiredState forward up to this state. Default 'PreRun'. */
  stopAt?: WorkflowState;
  /** Open the user container's ports. Default: the simulator's userContainers. */
  listen?: boolean;
  /** Delay between PreRun's first step and the listeners opening. Default 0. */
  listenDelayMs?: number;
  /** Add Flux's finalizer (the simulated Flux removes it on deletion). Default false. */
  finalizer?: boolean;
  /** Flux deletes the workflow when Teardown is done. Default false. */
  deleteAfterTeardown?: boolean;
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

function ephemeralRange(): string {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    if (lo && hi) return `${lo}-${hi}`;
  } catch {
    // not Linux
  }
  return '32768-60999';
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

  const profilesRes = registry.forType({ group: NNF_GROUP, version: '', plural: 'nnfcontainerprofiles', kind: '', namespaced: true });
  seed(store, { dws, core, computeName, rabbitName, rabbitAddress, ports: portsOpt.mode === 'os' ? [ephemeralRange()] : portsOpt.spec });
  if (opts.exampleProfiles !== false) {
    store.create(core('secrets'), examplePullSecret());
    for (const p of exampleProfiles()) store.create(profilesRes, p);
  }
  for (const p of opts.profiles ?? []) {
    const obj = structuredClone(p) as KubeObject;
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
  const controllers =
    opts.controllers === false
      ? undefined
      : new Controllers({
          store,
          workflows: wfRes,
          computes: dws('computes'),
          systemConfigurations: dws('systemconfigurations'),
          stepDelayMs,
          ports: portAllocator,
          portsMode: portsOpt.mode,
          containers,
          defaults: { listen: userContainers, computeName, rabbitName },
          profiles: new ProfileHooks({ store, profiles: profilesRes, secrets: core('secrets'), refusedImages: opts.refusedImages ?? [], logger }),
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
      const input = structuredClone(obj) as KubeObject;
      input.metadata ??= { name: '' };
      if (res.namespaced && !input.metadata.namespace) input.metadata.namespace = 'default';
      delete input.metadata.resourceVersion;
      return present(structuredClone(store.create(res, input, { keepUid: true })), res, rt.version) as T;
    },
    update<T extends KubeObject>(rt: ResourceType, obj: T): T {
      const res = registry.forType(rt);
      const input = structuredClone(obj) as KubeObject;
      if (res.namespaced && input.metadata && !input.metadata.namespace) input.metadata.namespace = 'default';
      return present(structuredClone(store.update(res, input)), res, rt.version) as T;
    },
    patchMerge<T extends KubeObject>(rt: ResourceType, ns: string | undefined, name: string, patch: unknown): T {
      const res = registry.forType(rt);
      const cur = store.peek(res, ns, name);
      if (!cur) throw errors.notFound(res.group, res.plural, name);
      const patched = applyMergePatch(present(cur, res, rt.version), patch) as KubeObject;
      patched.metadata = { ...patched.metadata, name, ...(res.namespaced ? { namespace: ns } : {}) };
      return present(structuredClone(store.update(res, patched)), res, rt.version) as T;
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
      return store.list(res, ns).map((o) => present(structuredClone(o), res, rt.version) as T);
    },
    currentResourceVersion: () => String(store.currentRV()),
    submitJob(job) {
      const name = `fluxjob-${job.jobId.toString()}`;
      const implicitName = implicitProfile(job.containerName ?? 'sim-app', job.mpi ?? false, job.numPorts ?? 2).metadata.name;
      let directives = job.directives ?? ['#DW jobdw type=xfs capacity=10GB name=scratch', `#DW container name=${job.containerName ?? 'sim-app'} profile=${implicitName}`];
      if (job.containerName && !containerOf(parseDirectives(directives))) {
        directives = [...directives, `#DW container name=${job.containerName} profile=${implicitName}`];
      }
      for (const s of [job.failAt, job.stopAt]) {
        if (s !== undefined && !WORKFLOW_STATES.includes(s)) throw new RangeError(`not a workflow state: ${String(s)}`);
      }
      const jobOpts: JobOptions = {
        flux: true,
        stopAt: job.stopAt ?? 'PreRun',
        computes: job.computes,
        mpi: job.mpi ?? false,
        containerName: job.containerName,
        numPorts: job.numPorts ?? 2,
        failAt: job.failAt,
        listen: job.listen ?? userContainers,
        listenDelayMs: job.listenDelayMs ?? 0,
        deleteAfterTeardown: job.deleteAfterTeardown ?? false,
      };
      if (store.peek(wfRes, 'default', name)) throw errors.alreadyExists(wfRes.group, wfRes.plural, name);
      // The container options stand for a profile of their own, unless the caller wrote the directives.
      if (job.directives === undefined || (job.containerName && directives.length > job.directives.length)) {
        const p = implicitProfile(job.containerName ?? 'sim-app', job.mpi ?? false, job.numPorts ?? 2);
        if (!store.peek(profilesRes, PROFILE_NAMESPACE, p.metadata.name)) store.create(profilesRes, p);
      }
      controllers?.registerJob('default', name, jobOpts);
      fluxJobs.submitted(name);
      const wf: Workflow = {
        kind: 'Workflow',
        metadata: { name, namespace: 'default', ...(job.finalizer ? { finalizers: [FLUX_FINALIZER] } : {}) },
        spec: {
          desiredState: 'Proposal',
          wlmID: 'flux',
          jobID: f58plain(job.jobId),
          userID: job.userID,
          groupID: job.groupID ?? job.userID,
          hurry: false,
          forceReady: false,
          dwDirectives: directives,
        },
      };
      return present(structuredClone(store.create(wfRes, wf)), wfRes, wfRes.versions[0]!) as Workflow;
    },
    advance(name, state) {
      if (!WORKFLOW_STATES.includes(state)) throw new RangeError(`not a workflow state: ${String(state)}`);
      if (!store.peek(wfRes, 'default', name)) throw errors.notFound(wfRes.group, wfRes.plural, name);
      if (controllers) {
        controllers.advance('default', name, state);
      } else {
        const cur = store.peek(wfRes, 'default', name)!;
        store.update(wfRes, { ...structuredClone(cur), spec: { ...(cur.spec as object), desiredState: state } });
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

interface SeedInput {
  dws: (plural: string) => ServedResource;
  core: (plural: string) => ServedResource;
  computeName: string;
  rabbitName: string;
  rabbitAddress: string;
  ports: Array<number | string>;
}

/** What a fresh Rabbit system holds: namespaces, the rabbit's Node and Storage, SystemConfiguration default/default. */
function seed(store: ObjectStore, s: SeedInput): void {
  for (const ns of ['default', 'kube-system', PROFILE_NAMESPACE]) store.create(s.core('namespaces'), { metadata: { name: ns }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
  store.create(s.core('nodes'), {
    metadata: { name: s.rabbitName, labels: { 'kubernetes.io/hostname': s.rabbitName, 'cray.nnf.node': 'true' } },
    spec: {},
    status: {
      addresses: [
        { type: 'InternalIP', address: s.rabbitAddress },
        { type: 'Hostname', address: s.rabbitName },
      ],
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status (simulated)' }],
      nodeInfo: { kubeletVersion: 'v1.32.0-nnf-env-sim' },
    },
  });
  store.create(s.dws('systemconfigurations'), {
    metadata: { name: 'default', namespace: 'default' },
    spec: {
      storageNodes: [{ type: 'Rabbit', name: s.rabbitName, computesAccess: [{ name: s.computeName, index: 0 }] }],
      externalComputeNodes: [],
      ports: s.ports,
      // The simulator reuses released ports at once.
      portsCooldownInSeconds: 0,
    },
    status: { ready: true },
  });
  store.create(s.dws('storages'), {
    metadata: { name: s.rabbitName, namespace: 'default', labels: { 'dataworkflowservices.github.io/storage': 'Rabbit' } },
    spec: { state: 'Enabled', mode: 'Live' },
    status: {
      type: 'NVMe',
      status: 'Ready',
      capacity: 39582418599936,
      access: { protocol: 'PCIe', computes: [{ name: s.computeName, status: 'Ready' }], servers: [{ name: s.rabbitName, status: 'Ready' }] },
    },
  });
}
