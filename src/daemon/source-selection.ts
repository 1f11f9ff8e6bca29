import type { Config } from '../config/schema.js';
import { errorMessage } from '../core/errors.js';
import { formatJobId } from '../contract/jobid.js';
import { FluxCommand, fluxMessage } from '../flux/command.js';
import { parseEventlog } from '../contract/flux-eventlog.js';
import { coral2HandlesJob, jobspecHasDw } from '../domain/eventlog-assessment.js';
import type { EnvWatch, JobEnvSource, SourceJob, SourceView } from './env-source.js';

/**
 * The source the job controller uses, as ENV_SOURCE says, with the jobspec read first: a job
 * without `attributes.system.dw` (no #DW directive; most jobs) has no workflow, whatever the
 * source, and is answered `absent` after one `flux job info <id> jobspec`, with no API
 * request (flux-coral2's shell plugin and prolog check the same attribute first).
 *
 * - kube: then the Workflow watch. A failing flux command (no Flux here, wrong FLUX_URI) only
 *   costs the check: the watch answers as before.
 * - flux: then the eventlog. No Kubernetes source exists at all.
 * - auto: then one `flux job eventlog`: a job that flux-coral2 handles (its marks, or the
 *   event itself, are there) gets the eventlog source, others (and any job whose eventlog flux
 *   cannot show) the Workflow watch.
 */
export type SelectionConfig = Pick<Config, 'ENV_SOURCE' | 'JOBSPEC_CHECK' | 'KUBE_REQUEST_TIMEOUT'>;

export interface SelectingSourceOptions {
  mode: 'kube' | 'flux' | 'auto';
  flux: FluxCommand | undefined;
  fluxSource: JobEnvSource | undefined;
  kubeSource: JobEnvSource | undefined;
  config: () => SelectionConfig;
}

const flux = (f: FluxCommand | undefined) => f?.command ?? null;

type Decision = { kind: 'absent' } | { kind: 'use'; source: JobEnvSource; why: string };

export class SelectingSource implements JobEnvSource {
  readonly name: 'kube' | 'flux' | 'auto';
  /** kube mode says once that the jobspec check does not work here, not for every job. */
  private checkFailureLogged = false;

  constructor(private readonly opts: SelectingSourceOptions) {
    this.name = opts.mode;
    if (opts.mode !== 'flux' && !opts.kubeSource) throw new Error(`ENV_SOURCE=${opts.mode} needs the Kubernetes source`);
    if (opts.mode !== 'kube' && (!opts.flux || !opts.fluxSource)) throw new Error(`ENV_SOURCE=${opts.mode} needs the flux command`);
  }

  watch(job: SourceJob, changed: () => void): EnvWatch {
    let inner: EnvWatch | undefined;
    let absent = false;
    let stopped = false;
    const deciding = this.decide(job)
      .then((d) => {
        if (stopped) return;
        if (d.kind === 'absent') absent = true;
        else {
          job.logger.debug({ source: d.source.name, why: d.why }, 'environment source chosen');
          inner = d.source.watch(job, changed);
        }
        changed();
      })
      .catch((err: unknown) => job.logger.error({ err: errorMessage(err) }, 'choosing the environment source failed'));
    return {
      view: (): SourceView | undefined => (absent ? { kind: 'absent' } : inner?.view()),
      workflowName: () => inner?.workflowName(),
      stop: async () => {
        stopped = true;
        await deciding;
        await inner?.stop();
      },
    };
  }

  private async decide(job: SourceJob): Promise<Decision> {
    const { mode, kubeSource, fluxSource } = this.opts;
    const cfg = this.opts.config();
    // Found through its Computes: it has a workflow by definition.
    if (job.trackedBy === 'computes') return { kind: 'use', source: kubeSource ?? fluxSource!, why: 'tracked through Computes' };
    // The prolog script read the jobspec already and found #DW directives.
    const check = !job.hasDw && (mode !== 'kube' || cfg.JOBSPEC_CHECK);
    if (check) {
      const dw = await this.jobspecDw(job);
      if (dw === false) return { kind: 'absent' };
      if (dw === undefined && mode === 'kube') return { kind: 'use', source: kubeSource!, why: 'jobspec unreadable' };
      if (dw === undefined) job.logger.warn('the jobspec could not be read; waiting for the eventlog anyway');
    }
    if (mode === 'kube') return { kind: 'use', source: kubeSource!, why: 'ENV_SOURCE=kube' };
    if (mode === 'flux' || !kubeSource) return { kind: 'use', source: fluxSource!, why: 'ENV_SOURCE=flux' };
    // An eventlog flux cannot show: the Workflow watch, which needs no flux, answers.
    const handled = await this.coral2Handles(job);
    return handled === true
      ? { kind: 'use', source: fluxSource!, why: 'flux-coral2 handles this job' }
      : { kind: 'use', source: kubeSource, why: handled === false ? 'flux-coral2 does not handle this job' : 'eventlog unreadable' };
  }

  /** true/false: the jobspec has / has not `attributes.system.dw`; undefined: unreadable. */
  private async jobspecDw(job: SourceJob): Promise<boolean | undefined> {
    const flux = this.opts.flux;
    if (!flux) return undefined;
    try {
      const r = await flux.run(['job', 'info', formatJobId(job.id, 'dec'), 'jobspec'], { timeoutMs: this.opts.config().KUBE_REQUEST_TIMEOUT });
      if (r.code !== 0) return this.checkFailed(job, fluxMessage(r));
      return jobspecHasDw(JSON.parse(r.stdout));
    } catch (err) {
      return this.checkFailed(job, errorMessage(err));
    }
  }

  private checkFailed(job: SourceJob, why: string): undefined {
    if (this.opts.mode !== 'kube' || !this.checkFailureLogged) {
      const fallback = this.opts.mode === 'kube' ? '; jobs are looked up in Kubernetes instead (set JOBSPEC_CHECK=false to stop trying)' : '';
      job.logger.warn({ err: why, flux: flux(this.opts.flux) }, `cannot read the job's jobspec with flux${fallback}`);
      this.checkFailureLogged = true;
    } else job.logger.debug({ err: why }, 'jobspec check failed');
    return undefined;
  }

  private async coral2Handles(job: SourceJob): Promise<boolean | undefined> {
    try {
      const r = await this.opts.flux!.run(['job', 'eventlog', '-f', 'json', formatJobId(job.id, 'dec')], { timeoutMs: this.opts.config().KUBE_REQUEST_TIMEOUT });
      if (r.code !== 0) return undefined;
      return coral2HandlesJob(parseEventlog(r.stdout, 'flux job eventlog'));
    } catch {
      return undefined;
    }
  }

  async gone(id: bigint, namespace: string, name: string): Promise<boolean> {
    const { fluxSource, kubeSource, mode } = this.opts;
    if (mode === 'kube') return kubeSource!.gone(id, namespace, name);
    if (await fluxSource!.gone(id, namespace, name)) return true;
    return mode === 'auto' && kubeSource ? kubeSource.gone(id, namespace, name) : false;
  }
}
