import type { Config } from '../config/schema.js';
import type { ReflectorSettings } from '../kube/reflector.js';

/** The configuration keys the job controller and its parts decide with. */
export type JobControllerConfig = Pick<
  Config,
  | 'WORKFLOW_NAMESPACE'
  | 'WORKFLOW_NAME_TEMPLATE'
  | 'WLM_ID'
  | 'ENV_ALLOWED_PREFIXES'
  | 'ENV_MAX_VARIABLES'
  | 'ENV_MAX_VALUE_BYTES'
  | 'ENV_MAX_TOTAL_BYTES'
  | 'WORKFLOW_TOKEN'
  | 'PROBE_PORTS'
  | 'PROBE_ATTEMPT_TIMEOUT'
  | 'PROBE_DEADLINE'
  | 'PROBE_BACKOFF_INITIAL'
  | 'PROBE_BACKOFF_MAX'
  | 'GC_INTERVAL'
> & ReflectorSettings;
