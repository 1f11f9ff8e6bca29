// prom-client's classes from their own files: its index also loads the Pushgateway (https,
// zlib), the cluster aggregator (cluster) and every default metric, ~2 MiB of the daemon's RSS.
import Counter from 'prom-client/lib/counter.js';
import Gauge from 'prom-client/lib/gauge.js';
import Histogram from 'prom-client/lib/histogram.js';
import Registry from 'prom-client/lib/registry.js';
// prom-client's default metrics one by one: it has no switch per metric (see runtimeMetrics()).
import processCpuTotal from 'prom-client/lib/metrics/processCpuTotal.js';
import processStartTime from 'prom-client/lib/metrics/processStartTime.js';
import osMemoryHeap from 'prom-client/lib/metrics/osMemoryHeap.js';
import processOpenFileDescriptors from 'prom-client/lib/metrics/processOpenFileDescriptors.js';
import processMaxFileDescriptors from 'prom-client/lib/metrics/processMaxFileDescriptors.js';
import processHandles from 'prom-client/lib/metrics/processHandles.js';
import processRequests from 'prom-client/lib/metrics/processRequests.js';
import heapSizeAndUsed from 'prom-client/lib/metrics/heapSizeAndUsed.js';
import heapSpacesSizeAndUsed from 'prom-client/lib/metrics/heapSpacesSizeAndUsed.js';
import version from 'prom-client/lib/metrics/version.js';
import eventLoopLag from 'prom-client/lib/metrics/eventLoopLag.js';
import gc from 'prom-client/lib/metrics/gc.js';
import type { JobPhase, PortResult } from '../contract/job-status.js';
import type { WatchTotals } from '../contract/control-api.js';

/**
 * prom-client's process and heap metrics that are computed when /metrics is scraped (no
 * timer): CPU, memory, file descriptors, handles, heap (spaces), start time, Node version.
 * Its event-loop lag (a 10 ms sampling timer: ~100 wakeups/s) and GC observer are left out
 * unless METRICS_RUNTIME_INTERVAL asks for them.
 */
function runtimeMetrics(sampling: boolean): PromClientMetric[] {
  const scrapeTime = [processCpuTotal, processStartTime, osMemoryHeap, processOpenFileDescriptors, processMaxFileDescriptors, processHandles, processRequests, heapSizeAndUsed, heapSpacesSizeAndUsed, version];
  return sampling ? [...scrapeTime, eventLoopLag, gc] : scrapeTime;
}

/**
 * The daemon's Prometheus metrics, on a registry of its own (several daemons may share a
 * process in tests and in `nnf-env demo`). Served by GET /metrics.
 */
export interface MetricsSources {
  /** Totals over every watch the daemon ran (live and stopped). */
  watchTotals: () => WatchTotals;
  /** Tracked jobs by phase. */
  jobsByPhase: () => Partial<Record<JobPhase, number>>;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export class DaemonMetrics {
  readonly registry = new Registry();
  private sources: MetricsSources = {
    watchTotals: () => ({ events: 0, relists: 0, reconnects: 0, bytes: 0 }),
    jobsByPhase: () => ({}),
  };

  readonly filesWritten: Histogram<never>;
  readonly delivered: Histogram<never>;
  readonly probeResults: Counter<'result'>;
  readonly probeTimeToSuccess: Histogram<never>;
  readonly hostsWrites: Counter<'result'>;
  readonly jobOutcomes: Counter<'phase'>;
  readonly apiRequests: Counter<'method' | 'route' | 'code'>;

  /**
   * defaultMetrics: prom-client's process and heap metrics (computed on scrape). runtimeSampleMs:
   * above 0, also event-loop lag sampled at that resolution and GC pauses (METRICS_RUNTIME_INTERVAL).
   */
  constructor(opts: { defaultMetrics?: boolean; runtimeSampleMs?: number } = {}) {
    const registers = [this.registry];
    const self = this;
    if (opts.defaultMetrics !== false) {
      const sampleMs = opts.runtimeSampleMs ?? 0;
      for (const metric of runtimeMetrics(sampleMs > 0)) metric(this.registry, { prefix: 'nnf_envd_', ...(sampleMs > 0 ? { eventLoopMonitoringPrecision: sampleMs } : {}) });
    }

    const totalCounter = (name: string, help: string, pick: (t: WatchTotals) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(pick(self.sources.watchTotals()));
        },
      });
    totalCounter('nnf_envd_watch_events_total', 'Watch events received (all watches, including stopped ones).', (t) => t.events);
    totalCounter('nnf_envd_watch_relists_total', 'Lists done by watches (initial and after 410 Expired).', (t) => t.relists);
    totalCounter('nnf_envd_watch_reconnects_total', 'Watches re-established after an end, error or silence.', (t) => t.reconnects);
    totalCounter('nnf_envd_watch_bytes_total', 'Bytes received on watches.', (t) => t.bytes);

    new Gauge({
      name: 'nnf_envd_tracked_jobs',
      help: 'Jobs tracked now, by phase.',
      labelNames: ['phase'],
      registers,
      collect() {
        this.reset();
        const byPhase = self.sources.jobsByPhase();
        for (const phase of ['waiting', 'probing', 'delivered', 'failed', 'no-workflow'] as const) this.set({ phase }, byPhase[phase] ?? 0);
      },
    });

    this.filesWritten = new Histogram({
      name: 'nnf_envd_delivery_files_written_seconds',
      help: 'From seeing PreRun finished to the job\'s files written.',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.delivered = new Histogram({
      name: 'nnf_envd_delivery_seconds',
      help: 'From seeing PreRun finished to the job delivered (files written and ports probed).',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.probeResults = new Counter({
      name: 'nnf_envd_port_probes_total',
      help: 'Ports probed, by result (reachable, unreachable).',
      labelNames: ['result'],
      registers,
    });
    this.probeTimeToSuccess = new Histogram({
      name: 'nnf_envd_port_time_to_reachable_seconds',
      help: 'Time from the start of a probe to the first successful connect of a port.',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.hostsWrites = new Counter({
      name: 'nnf_envd_hosts_writes_total',
      help: 'Writes of the managed hosts block, by result (written, unchanged, error).',
      labelNames: ['result'],
      registers,
    });
    this.jobOutcomes = new Counter({
      name: 'nnf_envd_job_outcomes_total',
      help: 'Jobs that reached a final phase, by phase.',
      labelNames: ['phase'],
      registers,
    });
    this.apiRequests = new Counter({
      name: 'nnf_envd_api_requests_total',
      help: 'Control socket requests, by method, route and status code.',
      labelNames: ['method', 'route', 'code'],
      registers,
    });
  }

  setSources(sources: Partial<MetricsSources>): void {
    this.sources = { ...this.sources, ...sources };
  }

  recordProbe(results: readonly PortResult[]): void {
    for (const r of results) {
      this.probeResults.inc({ result: r.reachable ? 'reachable' : 'unreachable' });
      if (r.timeToFirstSuccessMs !== null) this.probeTimeToSuccess.observe(r.timeToFirstSuccessMs / 1000);
    }
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
