/**
 * Chaos, CI size: ~100 jobs through the simulator and the real daemon while the API side fails
 * at random (see ./chaos.ts for what is injected and checked). `npm run soak` runs 1,000.
 */
import t from 'tap';
import { runChaos } from './chaos.js';

t.test('every job delivered exactly once with the right content, through drops, stalls, 410s, 429/500/503 and restarts', async (t) => {
  const r = await runChaos({
    jobs: 100,
    concurrency: 20,
    faultEveryMs: 400,
    minSeconds: 12,
    stallMs: 2500,
    restartMs: 800,
    // Silence 1 s, backoff <= 500 ms, Retry-After 1 s, restart 0.8 s: 10 s leaves room for a
    // few faults in a row on a loaded CI machine.
    recoveryBoundMs: 10_000,
    silenceTimeout: '1s',
    backoffMax: '500ms',
  });
  const max = r.delays[r.delays.length - 1] ?? 0;
  t.comment(`${r.jobs} jobs in ${r.seconds.toFixed(1)} s; faults ${JSON.stringify(r.faults)}; PreRun finished -> delivered p50 ${(r.delays[Math.floor(r.delays.length / 2)] ?? 0).toFixed(0)} ms, max ${max.toFixed(0)} ms; degraded periods ${r.degradedPeriods.length}, longest ${(r.degradedPeriods.at(-1) ?? 0).toFixed(0)} ms; ${r.filesSampled} env files sampled mid-run; watches ${JSON.stringify(r.watchCounters)}`);
  t.same(r.problems.slice(0, 20), [], 'no problem found');
  t.equal(r.delivered, r.jobs, 'every job delivered');
  t.ok(Object.values(r.faults).every((n) => n >= 2), 'every kind of fault was injected, twice or more');
  t.ok(r.filesSampled > 0, 'env files were sampled during the run');
});
