import type { KubeClient } from './client.js';
import { KubeApiError, KubeDiscoveryError } from './errors.js';
import { DWS_GROUP, DWS_VERSIONS, type DwsVersion } from './resource.js';

/** The parts of an `APIGroup` discovery answer read here. */
interface ApiGroup {
  name?: string;
  versions?: Array<{ groupVersion?: string; version?: string }>;
  preferredVersion?: { version?: string };
}

/** Pure: which DWS version to use, given what the server serves. */
export function chooseDwsVersion(served: readonly string[], configured: 'auto' | DwsVersion): DwsVersion {
  const list = served.length ? served.join(', ') : 'none';
  if (configured !== 'auto') {
    if (served.includes(configured)) return configured;
    throw new KubeDiscoveryError('DWS_VERSION_NOT_SERVED', `DWS_API_VERSION=${configured} is not served by the API server (served: ${list})`, {
      hint: `set DWS_API_VERSION=auto or one of the served versions that nnf-env knows (${DWS_VERSIONS.join(', ')})`,
    });
  }
  const pick = DWS_VERSIONS.find((v) => served.includes(v));
  if (pick) return pick;
  throw new KubeDiscoveryError('DWS_NO_KNOWN_VERSION', `the API server serves ${DWS_GROUP} at ${list}, none of which nnf-env knows (${DWS_VERSIONS.join(', ')})`, {
    hint: 'upgrade nnf-env, or install a DWS release that serves a known version',
  });
}

/** Asks the server which DWS versions it serves and picks one (`GET /apis/dataworkflowservices.github.io`). */
export async function discoverDwsVersion(client: Pick<KubeClient, 'request'>, configured: 'auto' | DwsVersion, signal?: AbortSignal): Promise<DwsVersion> {
  const path = `/apis/${DWS_GROUP}`;
  let group: ApiGroup;
  try {
    group = await client.request<ApiGroup>({ method: 'GET', path, ...(signal ? { signal } : {}), context: { verb: 'get', path, resource: `API group ${DWS_GROUP}` } });
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 404) {
      throw new KubeDiscoveryError('DWS_NOT_INSTALLED', `the API server does not serve the ${DWS_GROUP} API group`, {
        hint: 'are the DWS CRDs installed? (kubectl get crd workflows.dataworkflowservices.github.io)',
        cause: err,
      });
    }
    throw err;
  }
  const served = (group?.versions ?? []).map((v) => v.version ?? '').filter((v) => v !== '');
  return chooseDwsVersion(served, configured);
}
