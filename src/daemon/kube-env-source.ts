import type { Config } from '../config/schema.js';
import { errorMessage } from '../core/errors.js';
import type { KubeClient } from '../kube/client.js';
import { KubeApiError } from '../kube/errors.js';
import { Reflector, reflectorOptionsFromConfig, type ReflectorSettings } from '../kube/reflector.js';
import { SECRETS, dwsResource } from '../kube/resource.js';
import type { Computes, Secret, Workflow } from '../domain/dws-types.js';
import { assessWorkflow } from '../domain/workflow-assessment.js';
import { computesListsNode } from './computes-discovery.js';
import type { EnvWatch, JobEnvSource, ReadyExtras, SourceJob, SourceView } from './env-source.js';
import type { WatchStats } from './watch-stats.js';

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
    const reflector = new Reflector<Workflow>({
      client: this.opts.client,
      resource: dwsResource('workflows', this.opts.dwsVersion),
      namespace: job.namespace,
      fieldSelector: `metadata.name=${job.workflowName}`,
      ...reflectorOptionsFromConfig(this.opts.config()),
      logger: job.logger,
    });
    this.opts.watchStats.add(reflector);
    let synced = false;
    reflector.on('synced', () => {
      synced = true;
      changed();
    });
    reflector.on('added', changed);
    reflector.on('updated', changed);
    reflector.on('deleted', changed);
    reflector.start();
    return {
      view: () => (synced ? this.viewOf(job, reflector.store.getObject(job.namespace, job.workflowName)) : undefined),
      workflowName: () => undefined,
      stop: async () => {
        await reflector.stop();
        this.opts.watchStats.retire(reflector);
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

  private async readToken(job: SourceJob, wf: Workflow, signal: AbortSignal): Promise<{ token?: string; warning?: string }> {
    const ref = wf.status?.workflowToken;
    if (!ref || !this.opts.config().WORKFLOW_TOKEN) return {};
    if (typeof ref.secretName !== 'string' || ref.secretName === '') return { warning: 'status.workflowToken names no secret: DW_WORKFLOW_TOKEN not set' };
    const ns = typeof ref.secretNamespace === 'string' && ref.secretNamespace !== '' ? ref.secretNamespace : job.namespace;
    for (let attempt = 1; ; attempt++) {
      try {
        const secret = await this.opts.client.get<Secret>(SECRETS, ns, ref.secretName, signal);
        const b64 = secret.data?.token;
        const token = b64 !== undefined ? Buffer.from(b64, 'base64').toString('utf8') : secret.stringData?.token;
        if (token === undefined || token === '') return { warning: `secret ${ns}/${ref.secretName} has no "token" key: DW_WORKFLOW_TOKEN not set` };
        return { token };
      } catch (err) {
        if (signal.aborted) throw err;
        if (err instanceof KubeApiError && (err.status === 403 || err.status === 404)) {
          const why = err.status === 403 ? 'this node may not read it (grant get on secrets)' : 'it does not exist';
          job.logger.warn({ secret: `${ns}/${ref.secretName}`, status: err.status }, 'workflow token secret unavailable');
          return { warning: `workflow token secret ${ns}/${ref.secretName} unavailable, ${why}: DW_WORKFLOW_TOKEN not set` };
        }
        if (attempt >= 3) return { warning: `reading workflow token secret ${ns}/${ref.secretName} failed: ${errorMessage(err)}; DW_WORKFLOW_TOKEN not set` };
        await new Promise((r) => setTimeout(r, 250 * attempt));
      }
    }
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
