/**
 * `npm run soak`: the chaos run at full size (1,000 jobs by default) and a longer crash loop
 * (SIGKILL of the nnf-envd child at random moments, 100 times by default).
 *   node dist/bench/soak.js [--jobs N] [--kills N] [--only chaos|crash] [--backend sim|real|both]
 * Exits non-zero when a check fails; the report is printed as JSON.
 */
import { runChaos } from '../test/reliability/chaos.js';
import { runCrashLoop } from '../test/reliability/crash.js';
import { existsSync } from 'node:fs';

const argv = process.argv.slice(2);
const arg = (name: string, def: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] ?? def : def;
};
const only = arg('--only', '');
// sim, real (kube-apiserver from test/apiserver, needs Go) or both.
const backendArg = arg('--backend', 'sim');
const chaosBackends: Array<'sim' | 'real'> = backendArg === 'both' ? ['sim', 'real'] : [backendArg === 'real' ? 'real' : 'sim'];
if (!['sim', 'real', 'both'].includes(backendArg)) throw new RangeError(`--backend must be sim, real or both (got ${backendArg})`);
if (!process.env.TMPDIR && existsSync('/dev/shm')) process.env.TMPDIR = '/dev/shm';
const log = (s: string): void => void process.stderr.write(s + '\n');
let failed = false;

if (only === '' || only === 'chaos') {
  for (const backend of chaosBackends) {
    log(`== chaos soak (${backend})`);
    const r = await runChaos({
      backend,
      jobs: Number(arg('--jobs', '1000')),
      concurrency: 50,
      faultEveryMs: 500,
      minSeconds: 120,
      stallMs: 3000,
      restartMs: 1500,
      // A real kube-apiserver restart costs ~7 s of start here: one each 30 s at most, and the bound allows for it.
      restartEveryMs: 30_000,
      recoveryBoundMs: backend === 'sim' ? 15_000 : 30_000,
      silenceTimeout: '2s',
      backoffMax: '1s',
      log,
    });
    const q = (p: number) => (r.delays[Math.min(r.delays.length - 1, Math.floor((p / 100) * r.delays.length))] ?? 0).toFixed(0);
    log(`chaos (${backend}): ${r.delivered}/${r.jobs} delivered in ${r.seconds.toFixed(0)} s; faults ${JSON.stringify(r.faults)}; PreRun finished -> delivered p50 ${q(50)} ms, p99 ${q(99)} ms, max ${q(100)} ms; longest degraded ${(r.degradedPeriods.at(-1) ?? 0).toFixed(0)} ms; ${r.filesSampled} env files sampled; ${r.problems.length} problems`);
    for (const p of r.problems.slice(0, 50)) log(`  PROBLEM ${p}`);
    process.stdout.write(JSON.stringify({ chaos: { ...r, delays: undefined, degradedPeriods: undefined, p50: q(50), p99: q(99), max: q(100) } }) + '\n');
    if (r.problems.length > 0 || r.delivered !== r.jobs) failed = true;
  }
}
if (only === '' || only === 'crash') {
  log('== crash loop');
  const r = await runCrashLoop({ kills: Number(arg('--kills', '100')), jobsPerRound: 10, log });
  log(`crash: ${r.kills} kills (${r.midWrite} with a write in flight), ${r.jobs} jobs, converged in ${r.convergeMs.toFixed(0)} ms after the last restart; ${r.problems.length} problems`);
  for (const p of r.problems.slice(0, 50)) log(`  PROBLEM ${p}`);
  process.stdout.write(JSON.stringify({ crash: r }) + '\n');
  if (r.problems.length > 0) failed = true;
}
// Exit once the report is out: a soak run once stayed alive (busy) after printing its report,
// with nothing of its own left to do (not found); the report is what counts.
process.stdout.write('', () => process.exit(failed ? 1 : 0));
