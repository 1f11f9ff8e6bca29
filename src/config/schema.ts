/**
 * Every configuration key nnf-env knows, in one table: its type, default and meaning.
 * The loader (./load.ts) layers defaults < config file < NNF_ENV_* environment < flags,
 * validates each value against this table and remembers where it came from.
 *
 * In the dotenv config file a key is written as-is (`NODE_NAME=compute-01`), in the
 * environment with the `NNF_ENV_` prefix (`NNF_ENV_NODE_NAME`), as a flag in kebab case
 * (`--node-name`). The example file etc/nnf-env/nnf-env.conf documents every key.
 */
export type KeyType =
  | { kind: 'string' }
  | { kind: 'path' }            // absolute path; '' allowed only where `optional`
  | { kind: 'bool' }
  | { kind: 'int'; min: number; max: number }
  | { kind: 'duration'; minMs: number; maxMs: number } // '30s', '5m', '250ms', '1h', or plain seconds
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'list' }            // comma-separated, trimmed, empty items dropped
  | { kind: 'mode' };           // octal file mode, e.g. 0660

export interface KeySpec {
  readonly type: KeyType;
  /** Raw default, parsed like any other source. '' means unset where `optional`. */
  readonly default: string;
  readonly optional?: boolean;
  /** Redacted in --print-config and logs. */
  readonly secret?: boolean;
  readonly doc: string;
}

// Each helper keeps its literal `kind` in the type, so that Config below gives every key its
// parsed type (string, boolean, number, string[]) instead of the union of all of them.
type Spec<T extends KeyType> = KeySpec & { readonly type: T };
const s = (doc: string, def = '', extra: Partial<KeySpec> = {}): Spec<{ kind: 'string' }> => ({ default: def, doc, optional: def === '', ...extra, type: { kind: 'string' } });
const p = (doc: string, def = '', extra: Partial<KeySpec> = {}): Spec<{ kind: 'path' }> => ({ default: def, doc, optional: def === '', ...extra, type: { kind: 'path' } });
const b = (doc: string, def: 'true' | 'false'): Spec<{ kind: 'bool' }> => ({ type: { kind: 'bool' }, default: def, doc });
const d = (doc: string, def: string, minMs: number, maxMs: number): Spec<{ kind: 'duration'; minMs: number; maxMs: number }> => ({ type: { kind: 'duration', minMs, maxMs }, default: def, doc });
const i = (doc: string, def: string, min: number, max: number): Spec<{ kind: 'int'; min: number; max: number }> => ({ type: { kind: 'int', min, max }, default: def, doc });
const e = (doc: string, def: string, values: readonly string[]): Spec<{ kind: 'enum'; values: readonly string[] }> => ({ type: { kind: 'enum', values }, default: def, doc });
const l = (doc: string, def: string): Spec<{ kind: 'list' }> => ({ type: { kind: 'list' }, default: def, doc });

const MIB = 1024 * 1024;
const HOUR = 3_600_000;

export const SCHEMA = {
  // --- this node and its rabbit
  NODE_NAME: s('Name of this compute node as DWS knows it. Default: the short hostname.'),
  RABBIT_NAME: s('Name of this node\'s rabbit. Default: from SystemConfiguration default/default, else RABBIT_MAPPING_FILE.'),
  RABBIT_ADDRESS: s('IPv4 or IPv6 address of the rabbit. Default: the rabbit\'s Kubernetes Node (InternalIP first), else DNS.'),
  RABBIT_MAPPING_FILE: p('JSON file written by `flux rabbitmapping`, the fallback source of the rabbit name.', '/etc/flux/system/rabbitmapping'),
  HOSTS_FILE: p('Hosts file that gets the managed local-rabbit block. Empty: do not manage a hosts entry.', '/etc/hosts', { optional: true }),
  HOSTS_ALIASES: l('Names written for the rabbit\'s address in the managed block.', 'local-rabbit'),
  LOCAL_RABBIT_CONF: p('File that holds the rabbit\'s hostname (read by copy-offload clients). Empty: do not write it.', '/etc/local-rabbit.conf', { optional: true }),

  // --- files and the control socket
  RUNTIME_DIR: p('Root-owned runtime directory; job files live in its jobs/ subdirectory.', '/run/nnf-env'),
  SOCKET_PATH: p('Control socket of nnf-envd. Default: RUNTIME_DIR/nnf-envd.sock.'),
  SOCKET_GROUP: s('Group that may use the control socket (mode 0660). Default: root\'s group.'),
  SOCKET_MODE: { type: { kind: 'mode' }, default: '0660', doc: 'Mode of the control socket.' },

  // --- Kubernetes connection
  KUBE_CONNECTION: e('How to reach the API server: auto tries explicit settings, then kubeconfig, then in-cluster.', 'auto', ['auto', 'explicit', 'kubeconfig', 'in-cluster']),
  KUBE_SERVER: s('API server URL (https://host:port) or host:port, nnf-dm style.'),
  KUBE_TOKEN_FILE: p('Service-account token file; re-read every minute and on 401.'),
  KUBE_CA_FILE: p('CA certificate file that signs the API server\'s certificate.'),
  KUBE_TLS_SERVER_NAME: s('Server name to verify in the API server\'s certificate, if not the host in KUBE_SERVER.'),
  KUBE_INSECURE_SKIP_TLS_VERIFY: b('Do not verify the API server\'s certificate. Never in production.', 'false'),
  KUBECONFIG: p('Kubeconfig file. Default: $KUBECONFIG, else ~/.kube/config.'),
  KUBE_CONTEXT: s('Kubeconfig context. Default: current-context.'),
  KUBE_REQUEST_TIMEOUT: d('Timeout of one non-watch API request.', '30s', 100, 10 * 60_000),

  // --- where a job's environment comes from
  ENV_SOURCE: e('Source of a job\'s environment. kube: watch the job\'s DWS Workflow (sites without flux-coral2). flux: the dws_environment event that flux-coral2 posts to the job\'s eventlog, read with the flux command (no Kubernetes credentials on the node). auto: flux for jobs whose eventlog shows flux-coral2 at work, else kube.', 'kube', ['kube', 'flux', 'auto']),
  FLUX_COMMAND: s('The flux command nnf-envd runs to read jobspecs and eventlogs (flux job info, flux job wait-event).', 'flux', { optional: false }),
  FLUX_URI: s('Flux instance nnf-envd asks (FLUX_URI of the flux command). Default: flux\'s own default, the system instance.'),
  JOBSPEC_CHECK: b('Read the job\'s jobspec first (flux job info ID jobspec) and answer a job without attributes.system.dw (no #DW directive) at once, with no API request. In kube mode a failing flux command falls back to the workflow lookup.', 'true'),

  // --- DWS
  DWS_API_VERSION: e('DWS API version. auto: the newest served that nnf-env knows.', 'auto', ['auto', 'v1alpha7', 'v1alpha6']),
  WORKFLOW_NAMESPACE: s('Namespace of the workflows.', 'default', { optional: false }),
  WORKFLOW_NAME_TEMPLATE: s('Workflow name of a job; {jobid.dec}, {jobid.f58plain} and {jobid.hex} are replaced.', 'fluxjob-{jobid.dec}', { optional: false }),
  WLM_ID: s('spec.wlmID a job\'s workflow must carry.', 'flux', { optional: false }),
  DISCOVERY: e('prolog: jobs are tracked when the prolog asks; computes: also track every workflow whose Computes lists this node.', 'prolog', ['prolog', 'computes']),

  // --- what reaches a job
  ENV_ALLOWED_PREFIXES: l('Only variables with one of these prefixes reach a job.', 'DW_,NNF_'),
  ENV_MAX_VARIABLES: i('Most variables taken from one workflow.', '1024', 1, 100_000),
  ENV_MAX_VALUE_BYTES: i('Largest value of one variable, in bytes.', '65536', 1, 16 * MIB),
  ENV_MAX_TOTAL_BYTES: i('Largest env file of one job, in bytes.', String(MIB), 1024, 64 * MIB),
  WORKFLOW_TOKEN: b('kube mode: add DW_WORKFLOW_TOKEN from the Secret named by status.workflowToken. This needs get on secrets in the workflows\' namespace, which holds every user\'s token: off unless jobs need the token and flux-coral2 is not there to give it. (flux mode takes the token from the dws_environment event, where flux-coral2 put it.)', 'false'),

  // --- port probes
  PROBE_PORTS: b('Check that the user container\'s ports accept TCP connections before a job counts as delivered.', 'true'),
  PROBE_ATTEMPT_TIMEOUT: d('Timeout of one TCP connect attempt.', '2s', 10, 5 * 60_000),
  PROBE_DEADLINE: d('How long to keep trying a port before reporting it unreachable.', '60s', 0, HOUR),
  PROBE_BACKOFF_INITIAL: d('First pause between connect attempts (doubles, with jitter).', '100ms', 1, 60_000),
  PROBE_BACKOFF_MAX: d('Longest pause between connect attempts.', '5s', 1, 10 * 60_000),

  // --- watches
  WATCH_TIMEOUT: d('Server-side timeout asked for each watch (jittered by +-20%); the watch resumes after it. flux mode: the -t of each flux job wait-event, resumed after it.', '5m', 1000, 2 * HOUR),
  WATCH_SILENCE_TIMEOUT: d('A watch that sends no byte for this long is dropped and resumed (half-open TCP).', '150s', 100, HOUR),
  BACKOFF_INITIAL: d('First pause after a failed list or watch (doubles, with jitter).', '500ms', 1, 60_000),
  BACKOFF_MAX: d('Longest pause after failed lists or watches.', '30s', 1, 10 * 60_000),
  MAX_LINE_BYTES: i('Largest watch event line accepted, in bytes.', String(16 * MIB), 1024, 256 * MIB),
  LIST_PAGE_SIZE: i('Objects per page when listing.', '500', 1, 10_000),
  GC_INTERVAL: d('How often job files of vanished workflows are removed (the epilog removes them normally; this catches jobs whose epilog never ran).', '15m', 1000, 24 * HOUR),

  // --- prolog / epilog
  PROLOG_TIMEOUT: d('Longest the prolog waits for a job\'s environment. Below Flux\'s own prolog timeout (30m), so that nnf-env gives up and applies PROLOG_ON_NODE_ERROR before Flux kills the prolog (which drains the node); flux-coral2 waits rabbit.prolog_timeout (1800 s) for the same event in its own prolog, which runs first.', '25m', 0, 24 * HOUR),
  PROLOG_ON_NODE_ERROR: e('What the prolog does when the node is at fault (daemon down, API unreachable or forbidden): pass lets the job run and tells the user; fail fails the prolog (Flux drains the node).', 'pass', ['pass', 'fail']),

  // --- metrics
  METRICS_RUNTIME_INTERVAL: d('Resolution of the event-loop lag sampling (and GC pause tracking) in /metrics. 0: off, as sampling wakes the daemon; at least 1s when on. Process and heap metrics are computed when /metrics is scraped either way.', '0', 0, HOUR),

  // --- logging
  LOG_LEVEL: e('Log level.', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  LOG_FORMAT: e('auto: readable on a terminal, JSON otherwise (journald).', 'auto', ['auto', 'json', 'pretty']),
} as const satisfies Record<string, KeySpec>;

export type ConfigKey = keyof typeof SCHEMA;

type ValueOf<T extends KeyType> =
  T extends { kind: 'bool' } ? boolean :
  T extends { kind: 'int' } ? number :
  T extends { kind: 'duration' } ? number : // milliseconds
  T extends { kind: 'mode' } ? number :
  T extends { kind: 'list' } ? string[] :
  string;

/** The effective configuration: parsed values (durations in ms). Unset optional strings are ''. */
export type Config = { readonly [K in ConfigKey]: ValueOf<(typeof SCHEMA)[K]['type']> };

export const ENV_PREFIX = 'NNF_ENV_';
export const DEFAULT_CONFIG_FILE = '/etc/nnf-env/nnf-env.conf';

export function flagName(key: ConfigKey): string {
  return '--' + key.toLowerCase().replace(/_/g, '-');
}
