import type { Config } from '../config/schema.js';
import { errorMessage } from '../core/errors.js';
import type { KubeClient } from '../kube/client.js';
import { Informer } from '../kube/informer.js';
import { reflectorOptionsFromConfig, type ReflectorSettings } from '../kube/reflector.js';
import { dwsResource } from '../kube/resource.js';
import type { Computes, Workflow } from '../domain/dws-types.js';
import { assessWorkflow } from '../domain/workflow-assessment.js';
import { computesListsNode } from './computes-discovery.js';
import type { EnvWatch, JobEnvSource, ReadyExtras, SourceJob, SourceView } from './env-source.js';
import type { WatchStats } from './watch-stats.js';
import { readWorkflowToken, type TokenResult } from './workflow-token.js';

/**
 * The job's environment from its DWS Workflow: one watch per job, `fieldSelector` on the
 * workflow's name, so the API server sends this node nothing about other nodes' jobs. Reads
 * the workflow-token Secret only when WORKFLOW_TOKEN is on, and the workflow's Computes once
 * at delivery (a node that flux-coral2 took out under dw_failure_tolerance is not listed).
 */
export type KubeSourceConfig = Pick<Config, 'WLM_ID' | 'WORKFLOW_TOKEN' | 'NODE_NAME'> & ReflectorSettings;

export interface KubeEnvSourceOptions {
  client: KubeClient;
  dwsVersion: string;
  /** The settings in force now (SIGHUP changes them). */
  config: () => KubeSourceConfig;
  watchStats: WatchStats;
}

export class KubeEnvSource implements JobEnvSource {
  readonly name = 'kube';

  constructor(private readonly opts: KubeEnvSourceOptions) {}

  watch(job: SourceJob, changed: () => void): EnvWatch {
    const informer = new Informer<Workflow>({
      client: this.opts.client,
      resource: dwsResource('workflows', this.opts.dwsVersion),
      namespace: job.namespace,
      fieldSelector: `metadata.name=${job.workflowName}`,
      ...reflectorOptionsFromConfig(this.opts.config()),
      logger: job.logger,
    });
    this.opts.watchStats.add(informer.reflector);
    let synced = false;
    informer.addHandler((n) => {
      if (n.type === 'state') return;
      if (n.type === 'synced') synced = true;
      changed();
    });
    informer.start();
    return {
      view: () => (synced ? this.viewOf(job, informer.store.getObject(job.namespace, job.workflowName)) : undefined),
      workflowName: () => undefined,
      stop: async () => {
        await informer.stop();
        this.opts.watchStats.retire(informer.reflector);
      },
    };
  }

  private viewOf(job: SourceJob, wf: Workflow | undefined): SourceView {
    const a = assessWorkflow(wf, job.ident, this.opts.config().WLM_ID);
    switch (a.kind) {
      case 'absent':
        return { kind: 'absent' };
      case 'failed':
        return { kind: 'failed', workflow: wf, code: a.code, message: a.message };
      case 'waiting':
        return { kind: 'waiting', workflow: wf, reason: a.reason };
      case 'ready':
        return { kind: 'ready', workflow: wf, env: wf!.status?.env, extras: (signal) => this.extras(job, wf!, signal) };
    }
  }

  private async extras(job: SourceJob, wf: Workflow, signal: AbortSignal): Promise<ReadyExtras> {
    const [token, excluded] = await Promise.all([this.readToken(job, wf, signal), this.notInComputes(job, wf, signal)]);
    return { ...token, ...(excluded !== undefined ? { excluded } : {}) };
  }

  /**
   * flux-coral2 rewrites the Computes without the nodes whose rabbit failed Setup
   * (flux_k8s/workflow.py patch_computes_object): such a node gets no mounts. A Computes that
   * lists nobody, or that cannot be read, says nothing.
   */
  private async notInComputes(job: SourceJob, wf: Workflow, signal: AbortSignal): Promise<string | undefined> {
    const ref = wf.status?.computes;
    const node = this.opts.config().NODE_NAME;
    if (!ref?.name || !node) return undefined;
    const ns = ref.namespace || job.namespace;
    try {
      const c = await this.opts.client.tryGet<Computes>(dwsResource('computes', this.opts.dwsVersion), ns, ref.name, signal);
      if (!Array.isArray(c?.data) || c.data.length === 0 || computesListsNode(c, node)) return undefined;
      return `this node (${node}) is not in the workflow's Computes ${ns}/${ref.name}: its rabbit file systems are not mounted here (dw_failure_tolerance)`;
    } catch (err) {
      if (signal.aborted) throw err;
      job.logger.warn({ computes: `${ns}/${ref.name}`, err: errorMessage(err) }, 'cannot read the workflow\'s Computes; assuming this node is in it');
      return undefined;
    }
  }

  /** Only when WORKFLOW_TOKEN is on: reading Secrets is a privilege this node should not need. */
  private readToken(job: SourceJob, wf: Workflow, signal: AbortSignal): Promise<TokenResult> {
    if (!this.opts.config().WORKFLOW_TOKEN) return Promise.resolve({});
    return readWorkflowToken(this.opts.client, wf, job.namespace, signal, job.logger);
  }

  /** True only when the API server says the workflow does not exist (errors: keep the files). */
  async gone(_id: bigint, namespace: string, name: string): Promise<boolean> {
    try {
      return (await this.opts.client.tryGet<Workflow>(dwsResource('workflows', this.opts.dwsVersion), namespace, name)) === undefined;
    } catch {
      return false;
    }
  }
}
