/**
 * The Kubernetes side of an end-to-end test, on either backend:
 * - `sim`: nnf-env's simulator with its in-process controllers (and its fault injection);
 * - `real`: a real kube-apiserver (test/apiserver/, through real-server.ts) with the same
 *   simulated DWS / nnf-sos / Flux controllers acting through the API (src/sim/api-controllers.ts).
 * Tests write and read objects through this interface, so one scenario runs on both.
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Workflow, WorkflowState } from '../../src/domain/dws-types.js';
import type { KubeClient } from '../../src/kube/client.js';
import { KubeApiError } from '../../src/kube/errors.js';
import { NODES, dwsResource, objectPath, type KubeObject, type ResourceType } from '../../src/kube/resource.js';
import { kubeconfigClient, seedCluster, startApiControllers, type ApiControllers } from '../../src/sim/api-controllers.js';
import { startSimulator, type Simulator, type SimulatorOptions, type SubmitJobOptions } from '../../src/sim/index.js';
import { sharedRealServer, startRealServer, type RealServer, type RealServerOptions } from './real-server.js';

export type Backend = 'sim' | 'real';

const WORKFLOWS = dwsResource('workflows', 'v1alpha7');

export interface ClusterOptions {
  computeName: string;
  rabbitName: string;
  /** Simulator options (sim backend; stepDelayMs, ports and userContainers apply to both). */
  sim?: SimulatorOptions;
  /** Real backend: a server of its own with these options (default: the process's shared server). */
  server?: RealServerOptions;
}

export interface Cluster {
  readonly backend: Backend;
  /** Writes nnf-envd's kubeconfig: the simulator's; on real, the service account bound only to the shipped RBAC role. */
  writeDaemonKubeconfig(path: string): Promise<void>;
  /** The simulator, for fault injection (sim backend only; throws on real). */
  readonly sim: Simulator;
  /** The real server (real backend only; throws on sim). */
  readonly real: RealServer;
  /** Real backend with a server of its own: SIGTERM it and start it again on the same port and etcd data (a kube-apiserver restart). */
  restartServer(): Promise<void>;
  submitJob(job: SubmitJobOptions): Promise<Workflow>;
  advance(name: string, state: WorkflowState): Promise<void>;
  /** Create in 'default' when no namespace is set. The simulator keeps a uid set by the caller; kube-apiserver assigns its own. */
  create<T extends KubeObject>(rt: ResourceType, obj: T): Promise<T>;
  get<T extends KubeObject>(rt: ResourceType, ns: string | undefined, name: string): Promise<T | undefined>;
  /** Workflow default/<name> without a request: the simulator's store, or the real backend's controller cache. */
  peekWorkflow(name: string): Workflow | undefined;
  patchMerge<T extends KubeObject>(rt: ResourceType, ns: string | undefined, name: string, patch: unknown): Promise<T>;
  /** A merge patch of a Node's status, through nodes/status: kube-apiserver keeps a Node's old status on a patch of the Node itself. */
  patchNodeStatus(name: string, status: unknown): Promise<KubeObject>;
  delete(rt: ResourceType, ns: string | undefined, name: string): Promise<void>;
  close(): Promise<void>;
}

export async function startCluster(backend: Backend, opts: ClusterOptions): Promise<Cluster> {
  return backend === 'sim' ? simCluster(opts) : realCluster(opts);
}

async function simCluster(opts: ClusterOptions): Promise<Cluster> {
  const sim = await startSimulator({ computeName: opts.computeName, rabbitName: opts.rabbitName, ports: '0', stepDelayMs: 5, ...opts.sim });
  return {
    backend: 'sim',
    writeDaemonKubeconfig: (path) => sim.writeKubeconfig(path),
    sim,
    get real(): RealServer {
      throw new Error('this test needs the real backend');
    },
    restartServer: () => Promise.reject(new Error('this test needs the real backend')),
    submitJob: async (job) => sim.submitJob(job),
    advance: async (name, state) => sim.advance(name, state),
    create: async (rt, obj) => sim.create(rt, obj),
    get: async <T extends KubeObject>(rt: ResourceType, ns: string | undefined, name: string) => sim.get<T>(rt, ns, name),
    peekWorkflow: (name) => sim.get<Workflow>(WORKFLOWS, 'default', name),
    patchMerge: async <T extends KubeObject>(rt: ResourceType, ns: string | undefined, name: string, patch: unknown) => sim.patchMerge<T>(rt, ns, name, patch),
    patchNodeStatus: async (name, status) => sim.patchMerge(NODES, undefined, name, { status }),
    delete: async (rt, ns, name) => sim.delete(rt, ns, name),
    close: () => sim.close(),
  };
}

async function realCluster(opts: ClusterOptions): Promise<Cluster> {
  const own = opts.server !== undefined;
  // A server of its own keeps its etcd data in a dir of ours, so that it can be restarted on it.
  const dataDir = own ? (opts.server!.dataDir ?? (await mkdtemp(join(tmpdir(), 'nnf-env-etcd-')))) : undefined;
  let server = own ? await startRealServer({ ...opts.server, dataDir }) : await sharedRealServer();
  let client: KubeClient | undefined;
  let controllers: ApiControllers | undefined;
  try {
    client = await kubeconfigClient(server.kubeconfig);
    if (opts.sim?.controllers === false) {
      await seedCluster({ client, computeName: opts.computeName, rabbitName: opts.rabbitName });
    } else controllers = await startApiControllers({
      client,
      computeName: opts.computeName,
      rabbitName: opts.rabbitName,
      stepDelayMs: opts.sim?.stepDelayMs ?? 5,
      ports: opts.sim?.ports ?? '0',
      userContainers: opts.sim?.userContainers ?? true,
      logger: pino({ level: process.env.NNF_TEST_LOG ?? 'silent' }),
    });
  } catch (err) {
    await controllers?.close();
    await client?.close();
    if (own) await server.stop();
    if (dataDir && !opts.server?.dataDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const c = client;
  const ctl = controllers ?? {
    submitJob: () => Promise.reject(new Error('this cluster runs without controllers')),
    advance: () => Promise.reject(new Error('this cluster runs without controllers')),
    close: () => Promise.resolve(),
  };
  const nsOf = (rt: ResourceType, ns: string | undefined) => (rt.namespaced ? (ns ?? 'default') : undefined);
  return {
    backend: 'real',
    writeDaemonKubeconfig: async (path) => copyFile(server.saKubeconfig, path),
    get sim(): Simulator {
      throw new Error('this test needs the sim backend (fault injection)');
    },
    get real() {
      return server;
    },
    async restartServer() {
      if (!own) throw new Error('restartServer needs a server of its own (ClusterOptions.server)');
      const port = server.port;
      await server.stop();
      server = await startRealServer({ ...opts.server, dataDir, port });
    },
    submitJob: (job) => ctl.submitJob(job),
    advance: (name, state) => ctl.advance(name, state),
    async create(rt, obj) {
      const ns = nsOf(rt, obj.metadata.namespace);
      const { uid: _uid, resourceVersion: _rv, ...metadata } = obj.metadata;
      return c.create(rt, ns, { apiVersion: rt.group ? `${rt.group}/${rt.version}` : rt.version, kind: rt.kind, ...obj, metadata: { ...metadata, ...(ns ? { namespace: ns } : {}) } } as typeof obj);
    },
    get: <T extends KubeObject>(rt: ResourceType, ns: string | undefined, name: string) => c.tryGet<T>(rt, nsOf(rt, ns), name),
    peekWorkflow: (name) => controllers?.store.peek(controllers.resources.workflows, 'default', name) as Workflow | undefined,
    patchMerge: <T extends KubeObject>(rt: ResourceType, ns: string | undefined, name: string, patch: unknown) => c.patch<T>(rt, nsOf(rt, ns), name, patch, 'merge'),
    patchNodeStatus: (name, status) => c.request<KubeObject>({ method: 'PATCH', path: `${objectPath(NODES, undefined, name)}/status`, body: { status }, contentType: 'application/merge-patch+json' }),
    async delete(rt, ns, name) {
      try {
        await c.delete(rt, nsOf(rt, ns), name);
      } catch (err) {
        if (!(err instanceof KubeApiError && err.status === 404)) throw err;
      }
    },
    async close() {
      await ctl.close();
      await c.close();
      if (own) await server.stop();
      if (dataDir && !opts.server?.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

