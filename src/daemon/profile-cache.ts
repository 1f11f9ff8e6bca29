/**
 * The NnfContainerProfiles of `nnf-system`, cached with one list + watch per node (profiles
 * are few and change rarely), for job users who have no Kubernetes credentials: served as
 * GET /v1/profiles on the control socket and written to RUNTIME_DIR/profiles.json (mode 0644,
 * the same document) for users who may not open the socket. Only summaries leave the daemon:
 * images, ports, storages, restrictions; never commands or environment values.
 */
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { CONTAINER_PROFILE_VERSIONS, NNF_GROUP, PROFILE_NAMESPACE, summarizeProfile, type ContainerProfile, type ProfileSummary } from '../domain/container-profile.js';
import { errorMessage } from '../core/errors.js';
import type { KubeClient } from '../kube/client.js';
import { KubeApiError } from '../kube/errors.js';
import { Reflector, reflectorOptionsFromConfig } from '../kube/reflector.js';
import type { ResourceType } from '../kube/resource.js';
import { writeFileAtomic } from '../fs/atomic-file.js';
import type { WatchStats } from './watch-stats.js';

/** GET /v1/profiles and profiles.json (docs/FORMATS.md). */
export interface ProfilesDocument {
  version: 1;
  namespace: string;
  /** The nnf.cray.hpe.com version read, null until discovered. */
  apiVersion: string | null;
  /** True once the first complete list is in. */
  synced: boolean;
  updatedAt: string | null;
  /** Why the list is missing or may be stale: NNF_NOT_INSTALLED, KUBE_FORBIDDEN (RBAC), ... */
  error: { code: string; message: string } | null;
  profiles: ProfileSummary[];
}

export const PROFILES_FILE = 'profiles.json';

export interface ProfileCacheOptions {
  client: KubeClient;
  config: Pick<Config, 'RUNTIME_DIR' | 'LIST_PAGE_SIZE' | 'WATCH_TIMEOUT' | 'WATCH_SILENCE_TIMEOUT' | 'BACKOFF_INITIAL' | 'BACKOFF_MAX' | 'MAX_LINE_BYTES'>;
  watchStats?: WatchStats;
  logger?: Logger;
  namespace?: string;
  /** Delay that batches bursts of changes into one file write. Default 200 ms. */
  writeDelayMs?: number;
}

/** Pure: the newest version we know among those the API group serves. */
export function chooseProfileVersion(served: readonly string[]): string | undefined {
  return CONTAINER_PROFILE_VERSIONS.find((v) => served.includes(v));
}

export class ProfileCache {
  private reflector: Reflector<ContainerProfile> | undefined;
  private apiVersion: string | null = null;
  private error: { code: string; message: string } | null = null;
  private updatedAt: string | null = null;
  private writeTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly logger: Logger;
  private readonly namespace: string;

  constructor(private readonly opts: ProfileCacheOptions) {
    this.logger = (opts.logger ?? pino({ level: 'silent' })).child({ part: 'profiles' });
    this.namespace = opts.namespace ?? PROFILE_NAMESPACE;
  }

  get filePath(): string {
    return join(this.opts.config.RUNTIME_DIR, PROFILES_FILE);
  }

  /** Starts in the background: discovery errors are recorded, retried, never fatal to the daemon. */
  start(): void {
    void this.run();
  }

  private async run(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const group = await this.opts.client.request<{ versions?: Array<{ version?: string }> }>({
          method: 'GET',
          path: `/apis/${NNF_GROUP}`,
          signal: this.abort.signal,
          context: { verb: 'get', path: `/apis/${NNF_GROUP}`, resource: `API group ${NNF_GROUP}` },
        });
        const version = chooseProfileVersion((group?.versions ?? []).map((v) => v.version ?? ''));
        if (version) {
          this.apiVersion = version;
          break;
        }
        this.fail('NNF_NO_KNOWN_VERSION', `${NNF_GROUP} serves none of ${CONTAINER_PROFILE_VERSIONS.join(', ')}`);
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof KubeApiError && err.status === 404) this.fail('NNF_NOT_INSTALLED', `the API server does not serve ${NNF_GROUP} (nnf-sos not installed?)`);
        else this.fail(err instanceof KubeApiError ? err.code : 'KUBE_UNREACHABLE', errorMessage(err));
      }
      await new Promise((r) => setTimeout(r, Math.min(60_000, 1000 * 2 ** Math.min(attempt, 6))).unref?.());
    }
    if (this.stopped || !this.apiVersion) return;
    const resource: ResourceType = { group: NNF_GROUP, version: this.apiVersion, plural: 'nnfcontainerprofiles', kind: 'NnfContainerProfile', namespaced: true };
    const r = new Reflector<ContainerProfile>({ client: this.opts.client, resource, namespace: this.namespace, ...reflectorOptionsFromConfig(this.opts.config), logger: this.logger });
    this.reflector = r;
    this.opts.watchStats?.add(r);
    const changed = () => {
      this.error = null;
      this.updatedAt = new Date().toISOString();
      this.scheduleWrite();
    };
    r.on('synced', changed);
    r.on('added', () => r.hasSynced && changed());
    r.on('updated', changed);
    r.on('deleted', changed);
    r.on('state', (s) => {
      const e = r.lastError;
      if (s === 'backoff' && e) {
        this.error = e.code === 'KUBE_FORBIDDEN'
          ? { code: e.code, message: `${e.message} (grant get/list/watch on nnfcontainerprofiles.nnf.cray.hpe.com in ${this.namespace}: etc/kubernetes/nnf-env-rbac.yaml)` }
          : { code: e.code, message: e.message };
        this.scheduleWrite();
      }
    });
    r.start();
  }

  private fail(code: string, message: string): void {
    if (this.error?.code !== code) this.logger.warn({ code, err: message }, 'container profiles not available');
    this.error = { code, message };
    this.scheduleWrite();
  }

  document(): ProfilesDocument {
    const items = this.reflector?.store.list() ?? [];
    return {
      version: 1,
      namespace: this.namespace,
      apiVersion: this.apiVersion,
      synced: this.reflector?.hasSynced ?? false,
      updatedAt: this.updatedAt,
      error: this.error,
      profiles: items.map(summarizeProfile).sort((a, b) => a.name.localeCompare(b.name)),
    };
  }

  private scheduleWrite(): void {
    if (this.stopped || this.writeTimer) return;
    this.writeTimer = setTimeout(() => {
      this.writeTimer = undefined;
      this.writing = this.writing.then(() => this.writeFile());
    }, this.opts.writeDelayMs ?? 200);
  }

  private async writeFile(): Promise<void> {
    try {
      // World-readable on purpose: the same facts every job user may ask for.
      await writeFileAtomic(this.filePath, JSON.stringify(this.document(), null, 2) + '\n', { mode: 0o644 });
    } catch (err) {
      this.logger.warn({ err: errorMessage(err), path: this.filePath }, 'writing the profiles file failed');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.writeTimer) clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    await this.reflector?.stop();
    await this.writing;
  }
}
