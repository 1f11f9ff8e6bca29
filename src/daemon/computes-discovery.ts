import { pino, type Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { errorMessage } from '../core/errors.js';
import { parseJobId } from '../contract/jobid.js';
import type { KubeClient } from '../kube/client.js';
import { Informer } from '../kube/informer.js';
import { reflectorOptionsFromConfig } from '../kube/reflector.js';
import type { RetryPolicy } from '../core/retry.js';
import { WorkQueue } from './work-queue.js';
import { dwsResource } from '../kube/resource.js';
import type { Computes, Workflow } from '../domain/dws-types.js';
import { shortName } from '../domain/rabbit-assignment.js';
import type { JobController } from './job-controller.js';
import type { WatchStats } from './watch-stats.js';

/**
 * discovery=computes (schedulers without prolog hooks): a job is tracked when the `Computes`
 * object of its workflow lists this node, and untracked when it stops listing it or goes away.
 * The Computes is named like its workflow; the workflow's spec gives the job id and user.
 */
export interface ComputesDiscoveryOptions {
  client: KubeClient;
  dwsVersion: string;
  namespace: string;
  nodeName: string;
  jobs: JobController;
  config: Pick<Config, 'LIST_PAGE_SIZE' | 'WATCH_TIMEOUT' | 'WATCH_SILENCE_TIMEOUT' | 'BACKOFF_INITIAL' | 'BACKOFF_MAX' | 'MAX_LINE_BYTES'>;
  watchStats?: WatchStats;
  logger?: Logger;
}

/** Pure: does this Computes object list `nodeName`? */
export function computesListsNode(c: Computes | undefined, nodeName: string): boolean {
  const data = c?.data;
  if (!Array.isArray(data)) return false;
  return data.some((d) => d && typeof d.name === 'string' && (d.name === nodeName || shortName(d.name) === shortName(nodeName)));
}

/** Pure: the job id a workflow names (f58plain or an integer), or undefined. */
export function jobIdOfWorkflow(wf: Workflow): bigint | undefined {
  const j = wf.spec?.jobID;
  try {
    if (typeof j === 'string') return parseJobId(j);
    if (typeof j === 'number' && Number.isSafeInteger(j) && j >= 0) return BigInt(j);
  } catch {
    return undefined;
  }
  return undefined;
}

/** A workflow that could not be read is tried again after 1 s, doubling up to 30 s, jittered. */
const READ_RETRY: RetryPolicy = { initialMs: 1000, maxMs: 30_000 };

export class ComputesDiscovery {
  private watch: Informer<Computes> | undefined;
  private readonly logger: Logger;
  /** workflow name -> job id, for jobs this discovery tracked. */
  private readonly tracked = new Map<string, bigint>();
  private readonly queue: WorkQueue<string>;
  private stopped = false;

  constructor(private readonly opts: ComputesDiscoveryOptions) {
    this.logger = (opts.logger ?? pino({ level: 'silent' })).child({ discovery: 'computes' });
    this.queue = new WorkQueue<string>({
      sync: (name) => this.sync(name),
      retry: READ_RETRY,
      onError: (name, err, retryInMs) => this.logger.warn({ workflow: name, err: errorMessage(err), retryInMs }, 'cannot read the workflow of a Computes that lists this node; retrying'),
    });
  }

  start(): Informer<Computes> {
    const w = new Informer<Computes>({
      client: this.opts.client,
      resource: dwsResource('computes', this.opts.dwsVersion),
      namespace: this.opts.namespace,
      ...reflectorOptionsFromConfig(this.opts.config),
      logger: this.logger,
    });
    this.watch = w;
    this.opts.watchStats?.add(w.reflector);
    w.addHandler((n) => {
      if (n.type === 'added' || n.type === 'updated' || n.type === 'deleted') this.queue.add(n.object.metadata.name);
    });
    w.start();
    return w;
  }

  /** False when the Computes watch loop has died. */
  healthy(): boolean {
    return !this.stopped && this.watch !== undefined && this.watch.state !== 'stopped';
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.queue.shutdown();
    const w = this.watch;
    this.watch = undefined;
    if (w) {
      await w.stop();
      this.opts.watchStats?.retire(w.reflector);
    }
  }

  /** Level-triggered: track the job while its Computes lists this node, untrack it after. */
  private async sync(name: string): Promise<void> {
    if (this.stopped) return;
    const c = this.watch?.store.getObject(this.opts.namespace, name);
    if (!computesListsNode(c, this.opts.nodeName)) {
      const id = this.tracked.get(name);
      if (id === undefined) return;
      this.tracked.delete(name);
      const why = c ? 'Computes no longer lists this node' : 'Computes deleted';
      await this.opts.jobs.untrack(id, why).catch((err: unknown) => this.logger.error({ workflow: name, err: errorMessage(err) }, 'untrack failed'));
      return;
    }
    if (this.tracked.has(name)) return;
    // A read error throws: the queue tries again.
    const wf = await this.opts.client.tryGet<Workflow>(dwsResource('workflows', this.opts.dwsVersion), this.opts.namespace, name);
    if (!wf) {
      this.logger.info({ workflow: name }, 'Computes lists this node but its workflow does not exist');
      return;
    }
    const id = jobIdOfWorkflow(wf);
    const userID = wf.spec?.userID;
    if (id === undefined || typeof userID !== 'number') {
      this.logger.warn({ workflow: name, jobID: wf.spec?.jobID, userID }, 'workflow has no usable spec.jobID / spec.userID; not tracked');
      return;
    }
    try {
      await this.opts.jobs.track(id, userID, { source: 'computes', workflowName: name });
      this.tracked.set(name, id);
    } catch (err) {
      this.logger.warn({ workflow: name, err: errorMessage(err) }, 'could not track the job of a Computes that lists this node');
    }
    // The Computes may have changed while the workflow was read: the change queued another sync.
  }
}
