/**
 * NnfContainerProfile (`nnf.cray.hpe.com`) and the rules nnf-sos applies to a workflow's
 * `#DW container` directive, as pure functions: the simulator follows them, and
 * `nnf-env profiles --check` tells a job author before submission what nnf-sos would refuse.
 *
 * Sources (NearNodeFlash/nnf-sos, 2026):
 * - api/v1alpha11/nnfcontainerprofile_types.go: the fields;
 * - internal/controller/nnfcontainerprofile_helpers.go `findContainerProfile`: pinned check,
 *   UserID then GroupID restriction, each a fatal *user* error;
 * - internal/controller/nnf_workflow_controller_helpers.go `validateContainerDirective`: storage
 *   arguments and non-optional storages; `checkContainerPorts`, `waitForContainersToStart`;
 * - internal/controller/nnf_workflow_controller_container_helpers.go: ports = containers x
 *   numPorts (MPI: launcher containers), split per container, MPI host names;
 * - DataWorkflowServices/dws api/v1alpha7/resource_error.go `GetUserMessage` ("<Type> error:
 *   <message>") and controllers/workflow_controller.go ("DW Directive <i>: <driver message>").
 */
import type { KubeObject } from '../kube/resource.js';

export const NNF_GROUP = 'nnf.cray.hpe.com';
/** Upstream serves v1alpha11 (stored) and v1alpha10; the NNF docs of 2023 show v1alpha1. Newest first. */
export const CONTAINER_PROFILE_VERSIONS = ['v1alpha11', 'v1alpha10', 'v1alpha1'] as const;
/** Where nnf-sos looks profiles up (its NNF_CONTAINER_PROFILE_NAMESPACE). */
export const PROFILE_NAMESPACE = 'nnf-system';
/** nnf-sos's default for preRunTimeoutSeconds (kubebuilder default). */
export const DEFAULT_PRERUN_TIMEOUT_SECONDS = 300;
/** nnf-sos's default for retryLimit. */
export const DEFAULT_RETRY_LIMIT = 6;

export interface ProfileContainer {
  name: string;
  image: string;
  [key: string]: unknown;
}
export interface ProfilePodSpec {
  containers?: ProfileContainer[];
  imagePullSecrets?: Array<{ name?: string }>;
  [key: string]: unknown;
}
export interface ProfileStorage {
  name: string;
  optional?: boolean;
  pvcMode?: string;
}
export interface ContainerProfileData {
  pinned?: boolean;
  createContainer?: boolean;
  retryLimit?: number;
  numPorts?: number;
  userID?: number;
  groupID?: number;
  storages?: ProfileStorage[];
  preRunTimeoutSeconds?: number;
  postRunTimeoutSeconds?: number;
  spec?: ProfilePodSpec;
  /** v1alpha10+: launcher/worker; v1alpha1 (the 2023 docs): mpiReplicaSpecs.Launcher/Worker.template.spec. */
  mpiSpec?: {
    launcher?: ProfilePodSpec;
    worker?: ProfilePodSpec;
    mpiReplicaSpecs?: Record<string, { template?: { spec?: ProfilePodSpec } } | undefined>;
    slotsPerWorker?: number;
    copyOffload?: boolean;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}
export interface ContainerProfile extends KubeObject {
  data: ContainerProfileData;
}

/** A DWS ResourceError as nnf-sos raises it: the workflow shows `DW Directive <i>: <Type> error: <userMessage>`. */
export interface ProfileRefusal {
  /** 'User': the job author's to fix; 'Internal': nnf-sos did not mark it as a user error. */
  type: 'User' | 'Internal';
  userMessage: string;
  /** Short machine code for nnf-env's own output (not upstream). */
  reason: 'unknown-profile' | 'pinned-profile' | 'restricted-user' | 'restricted-group' | 'no-profile-key' | 'storage-not-in-profile' | 'storage-directive-missing' | 'unsupported-filesystem' | 'global-lustre-missing' | 'unrecognized-argument' | 'non-optional-storage-missing' | 'invalid-profile';
}

/** DWS's text of a driver error in workflow.status.message. */
export function workflowMessage(directiveIndex: number, r: Pick<ProfileRefusal, 'type' | 'userMessage'>): string {
  return `DW Directive ${directiveIndex}: ${r.type} error: ${r.userMessage}`;
}

export interface DwArgs {
  command: string;
  args: Record<string, string>;
}

/** `#DW container name=x profile=y DW_JOB_a=b` -> {command, args}, like dws's dwdparse.BuildArgsMap; undefined when not a #DW line. */
export function parseDwDirective(line: string): DwArgs | undefined {
  const words = line.trim().split(/\s+/);
  if (words[0] !== '#DW' || !words[1]) return undefined;
  const args: Record<string, string> = {};
  for (const w of words.slice(2)) {
    const eq = w.indexOf('=');
    if (eq > 0) args[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return { command: words[1], args };
}

/** Index of the first `#DW container` directive, or -1. */
export function containerDirectiveIndex(directives: readonly string[]): number {
  return directives.findIndex((d) => parseDwDirective(d)?.command === 'container');
}

/** The pod specs of a profile in either shape: non-MPI `spec`, or MPI launcher + worker. */
export function podSpecsOf(p: ContainerProfileData): { mpi: boolean; main: ProfilePodSpec | undefined; worker: ProfilePodSpec | undefined } {
  const m = p.mpiSpec;
  if (m && typeof m === 'object') {
    const launcher = m.launcher ?? m.mpiReplicaSpecs?.Launcher?.template?.spec;
    const worker = m.worker ?? m.mpiReplicaSpecs?.Worker?.template?.spec;
    return { mpi: true, main: launcher, worker };
  }
  return { mpi: false, main: p.spec, worker: undefined };
}

/** Containers that get ports: the pod's (non-MPI) or the launcher's (MPI), as countContainersInProfile. */
export function portedContainers(p: ContainerProfileData): string[] {
  return (podSpecsOf(p).main?.containers ?? []).map((c) => String(c?.name ?? ''));
}

/** Ports nnf-sos requests from the NnfPortManager at Setup. */
export function portsRequested(p: ContainerProfileData): number {
  const n = Number(p.numPorts ?? 0);
  return n > 0 ? portedContainers(p).length * n : 0;
}

/** Images the profile's pods run, and the pull secrets each pod names (in `default`, where the pods run). */
export function imagesOf(p: ContainerProfileData): Array<{ image: string; pullSecrets: string[]; role: 'container' | 'launcher' | 'worker' }> {
  const { mpi, main, worker } = podSpecsOf(p);
  const out: Array<{ image: string; pullSecrets: string[]; role: 'container' | 'launcher' | 'worker' }> = [];
  const add = (spec: ProfilePodSpec | undefined, role: 'container' | 'launcher' | 'worker') => {
    const secrets = (spec?.imagePullSecrets ?? []).map((s) => String(s?.name ?? '')).filter(Boolean);
    for (const c of spec?.containers ?? []) out.push({ image: String(c?.image ?? ''), pullSecrets: secrets, role });
  };
  add(main, mpi ? 'launcher' : 'container');
  if (mpi) add(worker, 'worker');
  return out;
}

/** The validation nnf-sos's webhook does on create: exactly one of spec / mpiSpec, containers present. Undefined when fine. */
export function profileShapeProblem(p: ContainerProfileData | undefined): string | undefined {
  if (!p || typeof p !== 'object') return 'has no data';
  const hasSpec = p.spec !== undefined && p.spec !== null;
  const hasMpi = p.mpiSpec !== undefined && p.mpiSpec !== null;
  if (hasSpec === hasMpi) return "Exactly one of 'spec' or 'mpiSpec' must be set.";
  const { main } = podSpecsOf(p);
  if (!Array.isArray(main?.containers) || main.containers.length === 0) return hasMpi ? 'mpiSpec has no launcher containers' : 'spec has no containers';
  for (const c of main.containers) if (!c || typeof c.name !== 'string' || typeof c.image !== 'string') return 'every container needs a name and an image';
  return undefined;
}

export interface WorkflowIds {
  userID: number;
  groupID: number;
}

/**
 * findContainerProfile: the profile the directive names, refused when missing, pinned, or
 * restricted to another UserID (checked first) or GroupID. The outer wrapping in
 * validateContainerDirective keeps a child's user message; a plain NotFound gets
 * "no valid container profile found" as an Internal error.
 */
export function findContainerProfile(directive: string, ids: WorkflowIds, lookup: (name: string) => ContainerProfile | undefined): { profile: ContainerProfile } | { refusal: ProfileRefusal; profileName: string | undefined } {
  const parsed = parseDwDirective(directive);
  const name = parsed?.args.profile;
  // No profile key: a plain Go error wrapped with the generic message (the DWS webhook refuses it earlier).
  if (name === undefined) return { refusal: { type: 'Internal', userMessage: 'no valid container profile found', reason: 'no-profile-key' }, profileName: undefined };
  const profile = lookup(name);
  if (!profile) return { refusal: { type: 'Internal', userMessage: 'no valid container profile found', reason: 'unknown-profile' }, profileName: name };
  const d = profile.data ?? {};
  if (d.pinned) return { refusal: { type: 'Internal', userMessage: 'no valid container profile found', reason: 'pinned-profile' }, profileName: name };
  if (d.userID !== undefined && d.userID !== null && Number(d.userID) !== ids.userID) {
    return { refusal: { type: 'User', userMessage: `container profile '${name}' is restricted to UserID ${Number(d.userID)}`, reason: 'restricted-user' }, profileName: name };
  }
  if (d.groupID !== undefined && d.groupID !== null && Number(d.groupID) !== ids.groupID) {
    return { refusal: { type: 'User', userMessage: `container profile '${name}' is restricted to GroupID ${Number(d.groupID)}`, reason: 'restricted-group' }, profileName: name };
  }
  return { profile };
}

/** Options of the storage checks for what the simulator (or the checker) cannot see. */
export interface StorageFacts {
  /** Global Lustre file systems by path; none in the simulator. */
  globalLustreHas?: (path: string) => boolean;
}

/**
 * validateContainerDirective's storage rules, in upstream's order: each DW_JOB_/DW_PERSISTENT_/
 * DW_GLOBAL_ argument must name a directive of this workflow (persistent: a persistentdw) of a
 * gfs2/lustre/raw file system and appear in the profile; then every non-optional storage of
 * the profile must be among the arguments. Persistent storage instances are not looked up
 * (a persistentdw of the same workflow is taken as the instance).
 */
export function checkContainerStorages(directives: readonly string[], index: number, profile: ContainerProfile, facts: StorageFacts = {}): ProfileRefusal | undefined {
  const parsed = parseDwDirective(directives[index] ?? '');
  const args = parsed?.args ?? {};
  const name = profile.metadata.name;
  const storages = profile.data?.storages ?? [];
  const inProfile = (arg: string): ProfileRefusal | undefined =>
    storages.some((s) => s.name === arg) ? undefined : { type: 'User', userMessage: `storage '${arg}' not found in container profile '${name}'`, reason: 'storage-not-in-profile' };
  const findDirective = (storageName: string, command: string) => directives.findIndex((d) => {
    const p = parseDwDirective(d);
    return p?.command === command && p.args.name === storageName;
  });
  const checkFs = (idx: number): ProfileRefusal | undefined => {
    const t = (parseDwDirective(directives[idx] ?? '')?.args.type ?? '').toLowerCase();
    // A persistentdw carries no type here; upstream reads it from the instance (not simulated).
    if (parseDwDirective(directives[idx] ?? '')?.command === 'persistentdw' && t === '') return undefined;
    return t === 'lustre' || t === 'gfs2' || t === 'raw' ? undefined : { type: 'User', userMessage: `unsupported container filesystem: ${parseDwDirective(directives[idx] ?? '')?.args.type ?? ''}`, reason: 'unsupported-filesystem' };
  };
  const supplied: string[] = [];
  for (const [arg, value] of Object.entries(args)) {
    if (arg === 'name' || arg === 'profile') continue;
    if (arg.startsWith('DW_JOB_') || arg.startsWith('DW_PERSISTENT_')) {
      const command = arg.startsWith('DW_JOB_') ? 'jobdw' : 'persistentdw';
      const idx = findDirective(value, command);
      if (idx === -1) return { type: 'User', userMessage: `${command} directive mentioning '${value}' not found`, reason: 'storage-directive-missing' };
      const fs = checkFs(idx);
      if (fs) return fs;
      const p = inProfile(arg);
      if (p) return p;
      supplied.push(arg);
    } else if (arg.startsWith('DW_GLOBAL_')) {
      if (!facts.globalLustreHas?.(value)) return { type: 'User', userMessage: `global Lustre file system containing '${value}' not found`, reason: 'global-lustre-missing' };
      if (inProfile(arg)) return { type: 'User', userMessage: `storage '${arg}' not found in container profile '${name}'`, reason: 'storage-not-in-profile' };
      supplied.push(arg);
    } else {
      return { type: 'User', userMessage: `unrecognized container argument: ${arg}`, reason: 'unrecognized-argument' };
    }
  }
  for (const s of storages) {
    if (!s.optional && !supplied.includes(s.name)) {
      return { type: 'User', userMessage: `storage '${s.name}' in container profile '${name}' is not optional: storage argument not found in the supplied arguments`, reason: 'non-optional-storage-missing' };
    }
  }
  return undefined;
}

export interface ContainerDecision {
  /** Index of the container directive (-1: none, nothing to decide). */
  containerIndex: number;
  profile?: ContainerProfile;
  refusal?: ProfileRefusal;
  /** The workflow's status.message on refusal (Proposal's first directive carries it, as validateWorkflow runs for it). */
  message?: string;
}

/**
 * The Proposal decision for a workflow's container directive. nnf-sos validates the whole
 * workflow from the first directive's Proposal driver, so the message names directive 0.
 */
export function decideContainer(directives: readonly string[], ids: WorkflowIds, lookup: (name: string) => ContainerProfile | undefined, facts: StorageFacts = {}): ContainerDecision {
  const containerIndex = containerDirectiveIndex(directives);
  if (containerIndex < 0) return { containerIndex };
  const found = findContainerProfile(directives[containerIndex]!, ids, lookup);
  const refuse = (refusal: ProfileRefusal): ContainerDecision => ({ containerIndex, refusal, message: workflowMessage(0, refusal) });
  if ('refusal' in found) return refuse(found.refusal);
  const storage = checkContainerStorages(directives, containerIndex, found.profile, facts);
  if (storage) return { ...refuse(storage), profile: found.profile };
  return { containerIndex, profile: found.profile };
}

/** Ports of each container, split in order as mapPorts does. */
export function portsPerContainer(p: ContainerProfileData, ports: readonly number[]): Record<string, number[]> {
  const names = portedContainers(p);
  const out: Record<string, number[]> = {};
  if (ports.length === 0 || names.length === 0) return out;
  const per = Math.floor(ports.length / names.length);
  names.forEach((n, i) => (out[n] = ports.slice(i * per, i * per + per)));
  return out;
}

/** What nnf-sos adds to status.env when PreRun starts (addPortsEnvVars, addEnvVars). */
export function profileContainerEnv(i: { profile: ContainerProfileData; workflowName: string; namespace: string; ports: readonly number[]; rabbits: readonly string[] }): Record<string, string> {
  const env: Record<string, string> = {};
  if (i.ports.length > 0) {
    env.NNF_CONTAINER_PORTS = i.ports.join(',');
    for (const [name, ports] of Object.entries(portsPerContainer(i.profile, i.ports))) env[`NNF_CONTAINER_PORTS_${name.replace(/-/g, '_')}`] = ports.join(',');
  }
  const hosts = podSpecsOf(i.profile).mpi
    ? [`${i.workflowName}-launcher`, ...i.rabbits.map((_, k) => `${i.workflowName}-worker-${k}`)]
    : [...i.rabbits];
  env.NNF_CONTAINER_SUBDOMAIN = i.workflowName;
  env.NNF_CONTAINER_DOMAIN = `${i.namespace}.svc.cluster.local`;
  env.NNF_CONTAINER_HOSTNAMES = hosts.join(',');
  return env;
}

/** The user message of a PreRun that never saw its containers run (waitForContainersToStart). */
export function preRunTimeoutMessage(directiveIndex: number, p: ContainerProfileData): string {
  const seconds = p.preRunTimeoutSeconds ?? DEFAULT_PRERUN_TIMEOUT_SECONDS;
  return workflowMessage(directiveIndex, { type: 'Internal', userMessage: `user container(s) failed to start after ${seconds} seconds` });
}

/** Setup's refusal when the NnfPortManager cannot satisfy the request (checkContainerPorts). */
export function insufficientPortsMessage(directiveIndex: number): string {
  return workflowMessage(directiveIndex, { type: 'Internal', userMessage: 'could not request ports for container workflow: InsufficientResources' });
}

/** One profile as `nnf-env profiles` shows it (and the daemon serves it): no commands, no env values. */
export interface ProfileSummary {
  name: string;
  namespace: string;
  mpi: boolean;
  images: string[];
  pullSecrets: string[];
  containers: string[];
  numPorts: number;
  ports: number;
  userID: number | null;
  groupID: number | null;
  storages: ProfileStorage[];
  retryLimit: number;
  preRunTimeoutSeconds: number;
  createContainer: boolean;
  pinned: boolean;
  /** Set when the profile could not be used as it is (shape problem). */
  problem: string | null;
}

export function summarizeProfile(p: ContainerProfile): ProfileSummary {
  const d = p.data ?? {};
  const imgs = imagesOf(d);
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null);
  return {
    name: p.metadata.name,
    namespace: p.metadata.namespace ?? PROFILE_NAMESPACE,
    mpi: podSpecsOf(d).mpi,
    images: [...new Set(imgs.map((i) => i.image))],
    pullSecrets: [...new Set(imgs.flatMap((i) => i.pullSecrets))],
    containers: portedContainers(d),
    numPorts: num(d.numPorts) ?? 0,
    ports: portsRequested(d),
    userID: num(d.userID),
    groupID: num(d.groupID),
    storages: (d.storages ?? []).map((s) => ({ name: String(s.name), optional: s.optional === true })),
    retryLimit: num(d.retryLimit) ?? DEFAULT_RETRY_LIMIT,
    preRunTimeoutSeconds: num(d.preRunTimeoutSeconds) ?? DEFAULT_PRERUN_TIMEOUT_SECONDS,
    createContainer: d.createContainer !== false,
    pinned: d.pinned === true,
    problem: profileShapeProblem(d) ?? null,
  };
}

/** A summary back as a profile the rules accept (the checker runs the same functions as the simulator). */
export function profileFromSummary(s: ProfileSummary): ContainerProfile {
  const containers = s.containers.map((name, i) => ({ name, image: s.images[i] ?? s.images[0] ?? '' }));
  const pod: ProfilePodSpec = { containers };
  return {
    metadata: { name: s.name, namespace: s.namespace },
    data: {
      pinned: s.pinned,
      numPorts: s.numPorts,
      storages: s.storages,
      ...(s.userID !== null ? { userID: s.userID } : {}),
      ...(s.groupID !== null ? { groupID: s.groupID } : {}),
      ...(s.mpi ? { mpiSpec: { launcher: pod, worker: pod } } : { spec: pod }),
    },
  };
}
