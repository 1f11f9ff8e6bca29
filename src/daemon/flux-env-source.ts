import type { Config } from '../config/schema.js';
import { sleep } from '../core/backoff.js';
import { errorMessage } from '../core/errors.js';
import { backoffOf } from '../core/retry.js';
import { formatJobId } from '../contract/jobid.js';
import { FluxCommand, fluxMessage } from '../flux/command.js';
import { parseEventLine, parseEventlog, type FluxEvent } from '../contract/flux-eventlog.js';
import type { Workflow } from '../domain/dws-types.js';
import { DWS_ENVIRONMENT_EVENT, assessEventlog, workflowNameFromEvents } from '../domain/eventlog-assessment.js';
import type { EnvWatch, JobEnvSource, SourceJob, SourceView } from './env-source.js';

/**
 * The job's environment from its Flux eventlog: the `dws_environment` event that flux-coral2's
 * dws-jobtap plugin posts once the workflow's PreRun is finished (the event its own shell
 * plugin, dws_environment.c, sets the job's variables from). Read with
 * `flux job wait-event -v -f json -t <WATCH_TIMEOUT> <id> dws_environment`, which prints every
 * event up to that one as it is posted (a fatal exception or a node failure shows on the
 * way), and is resumed after its timeout. No Kubernetes request at all.
 */
export type FluxSourceConfig = Pick<Config, 'NODE_NAME' | 'WATCH_TIMEOUT' | 'BACKOFF_INITIAL' | 'BACKOFF_MAX' | 'KUBE_REQUEST_TIMEOUT'>;

export interface FluxEnvSourceOptions {
  flux: FluxCommand;
  config: () => FluxSourceConfig;
}

/** Where users find what flux-coral2 recorded about the job (doc/guide/rabbit.rst). */
export function rabbitWorkflowHint(id: bigint): string {
  return `see flux job info ${formatJobId(id, 'f58')} rabbit_workflow`;
}

/** A Workflow-shaped summary for the status file (the eventlog carries no Workflow object). */
export function workflowSummary(namespace: string, name: string, status: NonNullable<Workflow['status']> | undefined): Workflow {
  return { apiVersion: 'flux-eventlog', kind: 'Workflow', metadata: { namespace, name }, ...(status ? { status } : {}) } as unknown as Workflow;
}

export class FluxEnvSource implements JobEnvSource {
  readonly name = 'flux';

  constructor(private readonly opts: FluxEnvSourceOptions) {}

  watch(job: SourceJob, changed: () => void): EnvWatch {
    const abort = new AbortController();
    let events: FluxEvent[] = [];
    let ended = false;
    let done = false;
    const node = () => this.opts.config().NODE_NAME;
    const current = (): SourceView => {
      const name = workflowNameFromEvents(events) ?? job.workflowName;
      const a = assessEventlog(events, node());
      if (a.kind === 'ready') {
        const wf = workflowSummary(job.namespace, name, { state: 'PreRun', ready: true, status: 'Completed' });
        const excluded = a.excluded ? `${a.excluded.replace(/\)$/, '')}; ${rabbitWorkflowHint(job.id)})` : undefined;
        // flux-coral2 saves the tail of a container's log in the job's KVS once the job ends (flux_k8s/cleanup.py).
        const containerLogHint = `the container's log: flux job info ${formatJobId(job.id, 'f58')} rabbit_container_log, once the job has ended`;
        return { kind: 'ready', workflow: wf, env: a.variables, extras: () => Promise.resolve({ containerLogHint, ...(excluded ? { excluded } : {}) }) };
      }
      if (a.kind === 'failed') return { kind: 'failed', workflow: workflowSummary(job.namespace, name, undefined), code: a.code, message: `${a.message} (${rabbitWorkflowHint(job.id)})` };
      if (ended) return { kind: 'failed', workflow: undefined, code: 'JOB_ENDED', message: `the job's eventlog ended without a dws_environment event (${rabbitWorkflowHint(job.id)})` };
      return { kind: 'waiting', workflow: undefined, reason: a.reason };
    };
    const run = async () => {
      const first = this.opts.config();
      // A failing flux is retried with the daemon's one policy (core/retry.ts), as the watches are.
      const backoff = backoffOf({ initialMs: first.BACKOFF_INITIAL, maxMs: Math.max(first.BACKOFF_MAX, first.BACKOFF_INITIAL) });
      while (!abort.signal.aborted && !done) {
        const cfg = this.opts.config();
        const seen: FluxEvent[] = [];
        let badLine: string | undefined;
        // Ends this run's child early once the answer is final (a fatal exception: no event will come).
        const runAbort = new AbortController();
        const args = ['job', 'wait-event', '-v', '-f', 'json', '-t', `${Math.max(1, Math.ceil(cfg.WATCH_TIMEOUT / 1000))}s`, formatJobId(job.id, 'dec'), DWS_ENVIRONMENT_EVENT];
        let result;
        try {
          result = await this.opts.flux.run(args, {
            signal: AbortSignal.any([abort.signal, runAbort.signal]),
            onLine: (line) => {
              try {
                seen.push(parseEventLine(line, `${this.opts.flux.command} job wait-event`));
              } catch (err) {
                badLine = errorMessage(err);
                return;
              }
              // A replay after a timeout starts from the first event: show nothing older than before.
              if (seen.length >= events.length) {
                events = [...seen];
                if (assessEventlog(events, node()).kind !== 'waiting') {
                  done = true;
                  runAbort.abort();
                }
                changed();
              }
            },
          });
        } catch (err) {
          if (abort.signal.aborted) return;
          result = undefined;
          job.logger.error({ err: errorMessage(err) }, 'cannot run the flux command; retrying');
        }
        if (abort.signal.aborted) return;
        if (badLine) job.logger.warn({ err: badLine }, 'skipped a line flux printed that is no eventlog entry');
        if (done) return;
        if (result && result.code === 0) {
          // The event came (done is set above); anything else is a flux we do not understand.
          events = [...seen];
          done = true;
          changed();
          return;
        }
        const why = result ? fluxMessage(result) : 'flux did not start';
        if (/never received/.test(why)) {
          ended = true;
          done = true;
          changed();
          return;
        }
        if (/timeout/.test(why)) {
          // wait-event's own -t ended it: no failure, resume at once.
          backoff.reset();
          continue;
        }
        const delay = backoff.next();
        job.logger.warn({ err: why, retryInMs: delay }, 'reading the job eventlog failed; retrying');
        await sleep(delay, abort.signal).catch(() => undefined);
      }
    };
    const running = run();
    return {
      view: current,
      workflowName: () => workflowNameFromEvents(events),
      stop: async () => {
        abort.abort();
        await running.catch(() => undefined);
      },
    };
  }

  /** The job is gone for Flux once it is clean (inactive) or unknown (purged). */
  async gone(id: bigint): Promise<boolean> {
    try {
      const r = await this.opts.flux.run(['job', 'eventlog', '-f', 'json', formatJobId(id, 'dec')], { timeoutMs: this.opts.config().KUBE_REQUEST_TIMEOUT });
      if (r.code !== 0) return /not found/.test(fluxMessage(r));
      return parseEventlog(r.stdout, 'flux job eventlog').some((e) => e.name === 'clean');
    } catch {
      return false;
    }
  }
}
