/**
 * Simulated controllers: what the DWS workflow controller, nnf-sos and Flux's coral2 service do
 * to a workflow, one write per step, `stepDelayMs` apart.
 *
 * - DWS: a new workflow enters Proposal (env DW_WORKFLOW_NAME/NAMESPACE, a Computes object named
 *   like it); a new desiredState starts that state (ready=false, DriverWait); Teardown may come
 *   at any time.
 * - nnf-sos: Setup allocates the container ports; PreRun sets the container keys first (still
 *   DriverWait, the user container starts), then DW_JOB_* / DW_JOBS / NNF_CONTAINER_LAUNCHER and
 *   ready=true; Teardown stops the container and releases the ports.
 * - Flux (only for jobs given to submitJob/advance): fills Computes `data` when Proposal is done
 *   and moves desiredState forward, one state at a time, up to the job's stopAt.
 *
 * Each workflow is reconciled from its stored object, like a real controller: every change
 * schedules one reconcile, which does at most one step.
 */
import type { Logger } from 'pino';
import { WORKFLOW_STATES, type Computes, type SystemConfiguration, type Workflow, type WorkflowState } from '../domain/dws-types.js';
import type { KubeObject } from '../kube/resource.js';
import { insufficientPortsMessage, portsRequested, preRunTimeoutMessage, profileContainerEnv, podSpecsOf, DEFAULT_PRERUN_TIMEOUT_SECONDS } from '../domain/container-profile.js';
import { parseDirectives, storageEnv } from './env.js';
import type { FluxJobs } from './flux-jobs.js';
import type { ProfileHooks } from './profile-hooks.js';
import { expandPorts, type PortAllocator, type UserContainers } from './ports.js';
import { apiVersionString, type ServedResource } from './resources.js';
import type { ObjectStore, StoreEvent } from './store.js';

export const FLUX_FINALIZER = 'flux-framework.readthedocs.io/workflow';
import { LABEL_WORKFLOW_NAME, LABEL_WORKFLOW_NAMESPACE, LABEL_WORKFLOW_UID } from '../domain/dws-types.js';
export { LABEL_WORKFLOW_NAME, LABEL_WORKFLOW_NAMESPACE, LABEL_WORKFLOW_UID };

export interface JobOptions {
  /** Flux drives desiredState (jobs from submitJob, or workflows given to advance). */
  flux: boolean;
  stopAt: WorkflowState;
  computes: string[] | undefined;
  mpi: boolean;
  containerName: string | undefined;
  numPorts: number;
  failAt: WorkflowState | undefined;
  listen: boolean;
  listenDelayMs: number;
  /** Flux deletes the workflow (removing its finalizer) once Teardown is done. */
  deleteAfterTeardown: boolean;
}

export interface ControllerDeps {
  store: ObjectStore;
  workflows: ServedResource;
  computes: ServedResource;
  systemConfigurations: ServedResource;
  stepDelayMs: number;
  ports: PortAllocator;
  /** 'os': the kernel picks ports; 'range': the SystemConfiguration ranges. */
  portsMode: 'os' | 'range';
  containers: UserContainers;
  defaults: { listen: boolean; computeName: string; rabbitName: string };
  /** nnf-sos's container profile rules (Proposal, pinned copy, image pulls). */
  profiles: ProfileHooks;
  /** The simulated Flux's job records (exceptions, release). */
  fluxJobs: FluxJobs;
  logger: Logger;
}

interface Runtime {
  uid: string | undefined;
  job: JobOptions;
  progress: { state: WorkflowState; step: number } | undefined;
  enteredAt: number;
  timer: NodeJS.Timeout | undefined;
  busy: boolean;
  again: boolean;
  /** PreRun: since when the user container cannot start (image pull), and why. */
  blocked: { since: number; why: string } | undefined;
  wake: NodeJS.Timeout | undefined;
}

const idx = (s: WorkflowState | undefined): number => (s ? WORKFLOW_STATES.indexOf(s) : -1);
const nextState = (s: WorkflowState): WorkflowState | undefined => WORKFLOW_STATES[idx(s) + 1];
const microNow = () => new Date().toISOString().replace(/Z$/, '000Z');

type StepResult = 'idle' | 'continue';

export class Controllers {
  private readonly runtimes = new Map<string, Runtime>();
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(private readonly d: ControllerDeps) {
    this.unsubscribe = d.store.on((e) => this.onEvent(e));
    // Workflows that exist already (none at start, but keep it honest).
    for (const wf of d.store.list(d.workflows)) this.schedule(keyOf(wf));
  }

  defaultJob(): JobOptions {
    return {
      flux: false,
      stopAt: 'Proposal',
      computes: undefined,
      mpi: false,
      containerName: undefined,
      numPorts: 2,
      failAt: undefined,
      listen: this.d.defaults.listen,
      listenDelayMs: 0,
      deleteAfterTeardown: false,
    };
  }

  /** Options of the job behind workflow ns/name (before or after it is created). */
  registerJob(ns: string, name: string, job: JobOptions): void {
    const rt = this.runtime(`${ns}/${name}`);
    rt.job = job;
  }

  /** Flux moves the workflow to `state` (Teardown at once; later states one at a time). */
  advance(ns: string, name: string, state: WorkflowState): void {
    const key = `${ns}/${name}`;
    const rt = this.runtime(key);
    rt.job = { ...rt.job, flux: true, stopAt: state };
    if (state === 'Teardown') this.setDesiredState(ns, name, 'Teardown');
    this.schedule(key);
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    for (const rt of this.runtimes.values()) {
      if (rt.timer) clearTimeout(rt.timer);
      if (rt.wake) clearTimeout(rt.wake);
    }
    this.runtimes.clear();
    this.d.containers.closeAll();
  }

  private runtime(key: string): Runtime {
    let rt = this.runtimes.get(key);
    if (!rt) {
      rt = { uid: undefined, job: this.defaultJob(), progress: undefined, enteredAt: Date.now(), timer: undefined, busy: false, again: false, blocked: undefined, wake: undefined };
      this.runtimes.set(key, rt);
    }
    return rt;
  }

  private onEvent(e: StoreEvent): void {
    if (this.closed || e.res !== this.d.workflows) return;
    const key = keyOf(e.obj);
    if (e.type === 'DELETED') {
      this.cleanup(key, e.obj);
      return;
    }
    this.schedule(key);
  }

  private schedule(key: string): void {
    if (this.closed) return;
    const rt = this.runtime(key);
    if (rt.timer || rt.busy) {
      rt.again = true;
      return;
    }
    rt.timer = setTimeout(() => {
      rt.timer = undefined;
      void this.reconcile(key, rt);
    }, this.d.stepDelayMs);
  }

  private async reconcile(key: string, rt: Runtime): Promise<void> {
    if (this.closed) return;
    rt.busy = true;
    rt.again = false;
    let result: StepResult = 'idle';
    try {
      result = await this.step(key, rt);
    } catch (err) {
      this.d.logger.warn({ err, workflow: key }, 'simulated controller step failed');
    } finally {
      rt.busy = false;
    }
    if (this.closed || this.runtimes.get(key) !== rt) return;
    if (result === 'continue' || rt.again) this.schedule(key);
  }

  /** Release what a workflow held (its container, ports, Computes), as deletion does. */
  private cleanup(key: string, wf: KubeObject): void {
    const rt = this.runtimes.get(key);
    if (rt?.timer) clearTimeout(rt.timer);
    if (rt?.wake) clearTimeout(rt.wake);
    this.runtimes.delete(key);
    this.d.containers.close(key);
    this.release(key);
    this.d.profiles.unpin(wf.metadata.namespace ?? '', wf.metadata.name, wf.metadata.uid);
    const c = this.d.store.peek(this.d.computes, wf.metadata.namespace, wf.metadata.name);
    if (c && c.metadata.labels?.[LABEL_WORKFLOW_UID] === wf.metadata.uid) {
      try {
        this.d.store.delete(this.d.computes, wf.metadata.namespace, wf.metadata.name);
      } catch (err) {
        this.d.logger.debug({ err, workflow: key }, 'could not delete Computes');
      }
    }
  }

  private async step(key: string, rt: Runtime): Promise<StepResult> {
    const [ns, name] = splitKey(key);
    const wf = this.d.store.peek(this.d.workflows, ns, name) as Workflow | undefined;
    if (!wf) return 'idle';
    if (rt.uid !== wf.metadata.uid) {
      if (rt.uid !== undefined) {
        // Recreated under the same name: what the old one held is gone.
        this.d.containers.close(key);
        this.release(key);
        rt.progress = undefined;
        rt.blocked = undefined;
      }
      rt.uid = wf.metadata.uid;
    }
    if (wf.metadata.deletionTimestamp) {
      if (rt.job.flux && wf.metadata.finalizers?.includes(FLUX_FINALIZER)) {
        this.write(ns, name, (o) => {
          o.metadata.finalizers = (o.metadata.finalizers ?? []).filter((f) => f !== FLUX_FINALIZER);
        });
      }
      return 'idle';
    }
    const st = wf.status ?? {};
    const s = st.state;
    const desired = wf.spec?.desiredState;
    if (!s) return this.propose(ns, name, wf);
    if (desired === 'Teardown' && s !== 'Teardown') return this.enter(ns, name, rt, 'Teardown');
    if (st.status === 'Error') return this.fluxOnError(ns, name, rt, s, st.message ?? '');
    if (!st.ready) return this.work(ns, name, rt, wf, s);
    if (st.ready && desired && desired !== s && idx(desired) > idx(s)) return this.enter(ns, name, rt, desired);
    if (st.ready && desired === s) return this.flux(ns, name, rt, s);
    return 'idle';
  }

  private propose(ns: string, name: string, wf: Workflow): StepResult {
    const computesRef = { apiVersion: apiVersionString(this.d.computes.group, this.d.computes.versions[0]!), kind: 'Computes', name, namespace: ns };
    if (!this.d.store.peek(this.d.computes, ns, name)) {
      const computes: Computes = {
        kind: 'Computes',
        metadata: {
          name,
          namespace: ns,
          labels: { [LABEL_WORKFLOW_NAME]: name, [LABEL_WORKFLOW_NAMESPACE]: ns, [LABEL_WORKFLOW_UID]: wf.metadata.uid ?? '' },
          ownerReferences: [{ apiVersion: wf.apiVersion, kind: 'Workflow', name, uid: wf.metadata.uid, controller: true, blockOwnerDeletion: true }],
        },
        data: [],
      };
      this.d.store.create(this.d.computes, computes);
    }
    this.write(ns, name, (o) => {
      const env = { ...(o.status?.env ?? {}), DW_WORKFLOW_NAME: name, DW_WORKFLOW_NAMESPACE: ns };
      o.status = { ...(o.status ?? {}), state: 'Proposal', ready: false, status: 'DriverWait', message: '', env, computes: computesRef, desiredStateChange: microNow() };
    });
    return 'idle';
  }

  /** Start working on state `s` (DWS, when desiredState changes). */
  private enter(ns: string, name: string, rt: Runtime, s: WorkflowState): StepResult {
    rt.progress = { state: s, step: 0 };
    rt.enteredAt = Date.now();
    this.write(ns, name, (o) => {
      o.status = { ...(o.status ?? {}), state: s, ready: false, status: 'DriverWait', message: '', desiredStateChange: microNow() };
    });
    return 'idle';
  }

  private finish(ns: string, name: string, rt: Runtime, extraEnv: Record<string, string> = {}): StepResult {
    const elapsed = `${((Date.now() - rt.enteredAt) / 1000).toFixed(6)}s`;
    this.write(ns, name, (o) => {
      o.status = {
        ...(o.status ?? {}),
        env: { ...(o.status?.env ?? {}), ...extraEnv },
        ready: true,
        status: 'Completed',
        message: '',
        readyChange: microNow(),
        elapsedTimeLastState: elapsed,
      };
    });
    return 'idle';
  }

  private fail(ns: string, name: string, s: WorkflowState, message = `simulated failure in ${s} (failAt)`): StepResult {
    this.write(ns, name, (o) => {
      o.status = { ...(o.status ?? {}), ready: false, status: 'Error', message };
    });
    return 'idle';
  }

  /** Ports go back to the pool after SystemConfiguration's portsCooldownInSeconds (NnfPortManager). */
  private release(key: string): void {
    const sc = this.d.store.peek(this.d.systemConfigurations, 'default', 'default') as SystemConfiguration | undefined;
    this.d.ports.release(key, Math.max(0, Number(sc?.spec?.portsCooldownInSeconds ?? 0)) * 1000);
  }

  /** flux-coral2: a workflow in Error raises the job's fatal exception (once). */
  private fluxOnError(ns: string, name: string, rt: Runtime, s: WorkflowState, message: string): StepResult {
    if (rt.job.flux && this.d.fluxJobs.workflowError(name, s, message)) this.d.logger.info({ workflow: `${ns}/${name}`, state: s, message }, 'simulated Flux: fatal job exception');
    return 'idle';
  }

  /** The work of the current state (nnf-sos and friends). */
  private async work(ns: string, name: string, rt: Runtime, wf: Workflow, s: WorkflowState): Promise<StepResult> {
    if (!rt.progress || rt.progress.state !== s) rt.progress = { state: s, step: 0 };
    if (rt.job.failAt === s) return this.fail(ns, name, s);
    const key = `${ns}/${name}`;
    const directives = parseDirectives(wf.spec?.dwDirectives);
    const pinned = s === 'Proposal' ? undefined : this.d.profiles.pinned(wf);
    const container = pinned?.profile.data;
    switch (s) {
      case 'Proposal': {
        const refused = this.d.profiles.propose(wf);
        return refused === undefined ? this.finish(ns, name, rt) : this.fail(ns, name, s, refused);
      }
      case 'Setup': {
        const want = container ? portsRequested(container) : 0;
        if (want > 0 && this.d.ports.portsOf(key).length === 0) {
          const got = await this.d.ports.allocate(key, this.portCandidates(), want);
          if (this.closed) return 'idle';
          if (got.length < want) {
            this.d.ports.release(key);
            return this.fail(ns, name, s, insufficientPortsMessage(pinned!.index));
          }
        }
        return this.finish(ns, name, rt);
      }
      case 'PreRun': {
        if (rt.progress.step === 0) {
          rt.progress.step = 1;
          // No container, or one whose keys someone else already wrote (a workflow created mid-state).
          if (!container || wf.status?.env?.NNF_CONTAINER_HOSTNAMES !== undefined) return 'continue';
          const ports = this.d.ports.portsOf(key);
          this.write(ns, name, (o) => {
            const env = { ...(o.status?.env ?? {}), ...profileContainerEnv({ profile: container, workflowName: name, namespace: ns, ports, rabbits: this.rabbitsOf(ns, name, rt) }) };
            o.status = { ...(o.status ?? {}), env };
          });
          const why = this.d.profiles.startBlocker(pinned!.profile);
          rt.blocked = why === undefined ? undefined : { since: Date.now(), why };
          if (why) this.d.logger.warn({ workflow: key, why }, 'simulated kubelet: user container cannot start');
          else if (rt.job.listen && ports.length > 0) this.d.containers.open(key, ports, rt.job.listenDelayMs);
          return 'idle';
        }
        if (container && rt.blocked) {
          const stillBlocked = this.waitForContainers(ns, name, rt, pinned!);
          if (stillBlocked) return stillBlocked;
        }
        const env = storageEnv(wf.metadata.uid ?? '', directives);
        if (container && podSpecsOf(container).mpi) env.NNF_CONTAINER_LAUNCHER = this.rabbitsOf(ns, name, rt)[0] ?? this.d.defaults.rabbitName;
        return this.finish(ns, name, rt, env);
      }
      case 'Teardown':
        this.d.containers.close(key);
        this.release(key);
        return this.finish(ns, name, rt);
      default:
        return this.finish(ns, name, rt);
    }
  }

  /**
   * PreRun with a container that cannot start: nnf-sos waits (the driver says which job is
   * pending) and fails the workflow after preRunTimeoutSeconds (0: waits for ever). A pull
   * secret created meanwhile lets the pods start, as the kubelet retries pulls.
   */
  private waitForContainers(ns: string, name: string, rt: Runtime, pinned: { profile: import('../domain/container-profile.js').ContainerProfile; index: number }): StepResult | undefined {
    const key = `${ns}/${name}`;
    const why = this.d.profiles.startBlocker(pinned.profile);
    if (why === undefined) {
      rt.blocked = undefined;
      const ports = this.d.ports.portsOf(key);
      if (rt.job.listen && ports.length > 0) this.d.containers.open(key, ports, rt.job.listenDelayMs);
      return undefined;
    }
    const timeoutS = pinned.profile.data.preRunTimeoutSeconds ?? DEFAULT_PRERUN_TIMEOUT_SECONDS;
    const elapsed = Date.now() - rt.blocked!.since;
    if (timeoutS > 0 && elapsed >= timeoutS * 1000) return this.fail(ns, name, 'PreRun', preRunTimeoutMessage(pinned.index, pinned.profile.data));
    const pending = podSpecsOf(pinned.profile.data).mpi
      ? `pending MPIJob start for workflow '${name}', index: ${pinned.index}`
      : `pending container start for job '${name}-${this.rabbitsOf(ns, name, rt)[0] ?? this.d.defaults.rabbitName}'`;
    const message = `DW Directive ${pinned.index}: ${pending}`;
    if ((this.d.store.peek(this.d.workflows, ns, name) as Workflow | undefined)?.status?.message !== message) {
      this.write(ns, name, (o) => {
        o.status = { ...(o.status ?? {}), message };
      });
    }
    // Look again soon (a secret may appear), and exactly when the timeout ends.
    if (rt.wake) clearTimeout(rt.wake);
    const next = timeoutS > 0 ? Math.min(500, Math.max(1, timeoutS * 1000 - elapsed)) : 500;
    rt.wake = setTimeout(() => {
      rt.wake = undefined;
      this.schedule(key);
    }, next);
    return 'idle';
  }

  /** Flux: once a state is done, fill Computes (after Proposal) and ask for the next state. */
  private flux(ns: string, name: string, rt: Runtime, s: WorkflowState): StepResult {
    if (!rt.job.flux) return 'idle';
    if (s === 'PreRun') this.d.fluxJobs.released(name);
    if (s === 'Teardown') {
      if (rt.job.deleteAfterTeardown) {
        this.write(ns, name, (o) => {
          o.metadata.finalizers = (o.metadata.finalizers ?? []).filter((f) => f !== FLUX_FINALIZER);
        });
        if (this.d.store.peek(this.d.workflows, ns, name)) this.d.store.delete(this.d.workflows, ns, name);
      }
      return 'idle';
    }
    if (idx(s) >= idx(rt.job.stopAt)) return 'idle';
    if (s === 'Proposal') {
      const computes = rt.job.computes ?? [this.d.defaults.computeName];
      const c = this.d.store.peek(this.d.computes, ns, name);
      if (c) this.d.store.update(this.d.computes, { ...structuredClone(c), data: computes.map((n) => ({ name: n })) });
    }
    this.setDesiredState(ns, name, nextState(s)!);
    return 'idle';
  }

  private setDesiredState(ns: string, name: string, state: WorkflowState): void {
    this.write(ns, name, (o) => {
      o.spec = { ...o.spec, desiredState: state };
    });
  }

  private portCandidates(): number[] | 'os' {
    if (this.d.portsMode === 'os') return 'os';
    const sc = this.d.store.peek(this.d.systemConfigurations, 'default', 'default') as SystemConfiguration | undefined;
    return sc ? expandPorts(sc.spec?.ports ?? []) : 'os';
  }

  /** Rabbits of the job's computes (SystemConfiguration computesAccess); the simulated rabbit when none map. */
  private rabbitsOf(ns: string, name: string, rt: Runtime): string[] {
    const c = this.d.store.peek(this.d.computes, ns, name) as Computes | undefined;
    const computes = c?.data?.map((x) => x.name) ?? rt.job.computes ?? [this.d.defaults.computeName];
    const sc = this.d.store.peek(this.d.systemConfigurations, 'default', 'default') as SystemConfiguration | undefined;
    const rabbits: string[] = [];
    for (const node of sc?.spec?.storageNodes ?? []) {
      if (node.computesAccess?.some((a) => computes.includes(a.name)) && !rabbits.includes(node.name)) rabbits.push(node.name);
    }
    return rabbits.length ? rabbits : [this.d.defaults.rabbitName];
  }

  /** Read-modify-write of the stored workflow (synchronous, so never stale). */
  private write(ns: string, name: string, mutate: (o: Workflow) => void): void {
    if (this.closed) return;
    const cur = this.d.store.peek(this.d.workflows, ns, name);
    if (!cur) return;
    const o = structuredClone(cur) as Workflow;
    mutate(o);
    this.d.store.update(this.d.workflows, o);
  }
}

function keyOf(o: KubeObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
