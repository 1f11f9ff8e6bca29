/**
 * Chaos, CI size: ~100 jobs through the simulated controllers and the real daemon while the API
 * side fails at random (see ./chaos.ts for what is injected and checked), on each backend: the
 * simulator (drops, stalls, 410s, 429/500/503, restarts through the proxy) and the real
 * kube-apiserver (drops and stalls through the proxy, etcd compaction, kube-apiserver restarted
 * on its etcd data). `npm run soak` runs 1,000 jobs.
 */
import t from 'tap';
import { backends } from '../helpers/backends.js';
import { exitWhenDone } from '../helpers/exit-when-done.js';
import { REAL_FAULT_KINDS, runChaos } from './chaos.js';

const runs: Promise<unknown>[] = [];
for (const backend of await backends()) {
  runs.push(t.test(`${backend}: every job delivered exactly once with the right content, through every fault the backend offers`, async (t) => {
    const r = await runChaos({
      backend,
      // The real server's half is smaller: each kube-apiserver restart costs ~7 s here.
      jobs: backend === 'sim' ? 100 : 60,
      concurrency: 20,
      faultEveryMs: 400,
      minSeconds: backend === 'sim' ? 12 : 15,
      stallMs: 2500,
      restartMs: 800,
      restartEveryMs: 10_000,
      // Silence 1 s, backoff <= 500 ms, Retry-After 1 s, restart 0.8 s (sim) or a real
      // kube-apiserver start (~6 s here): the bound leaves room for a few faults in a row on a
      // loaded CI machine.
      recoveryBoundMs: backend === 'sim' ? 10_000 : 25_000,
      silenceTimeout: '1s',
      backoffMax: '500ms',
    });
    const max = r.delays[r.delays.length - 1] ?? 0;
    t.comment(`${backend}: ${r.jobs} jobs in ${r.seconds.toFixed(1)} s; faults ${JSON.stringify(r.faults)}; PreRun finished -> delivered p50 ${(r.delays[Math.floor(r.delays.length / 2)] ?? 0).toFixed(0)} ms, max ${max.toFixed(0)} ms; degraded periods ${r.degradedPeriods.length}, longest ${(r.degradedPeriods.at(-1) ?? 0).toFixed(0)} ms; ${r.filesSampled} env files sampled mid-run; watches ${JSON.stringify(r.watchCounters)}`);
    t.same(r.problems.slice(0, 20), [], 'no problem found');
    t.equal(r.delivered, r.jobs, 'every job delivered');
    const kinds = backend === 'sim' ? Object.keys(r.faults) : REAL_FAULT_KINDS;
    t.ok(kinds.every((k) => (r.faults[k as keyof typeof r.faults] ?? 0) >= (k === 'restart' && backend === 'real' ? 1 : 2)), `every kind of fault was injected (${kinds.join(', ')})`);
    t.ok(r.filesSampled > 0, 'env files were sampled during the run');
  }));
}
exitWhenDone(runs);
