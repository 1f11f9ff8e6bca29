/**
 * `npm run soak`: the chaos run at full size (1,000 jobs by default) and a longer crash loop
 * (SIGKILL of the nnf-envd child at random moments, 100 times by default).
 *   node dist/bench/soak.js [--jobs N] [--kills N] [--only chaos|crash]
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
if (!process.env.TMPDIR && existsSync('/dev/shm')) process.env.TMPDIR = '/dev/shm';
const log = (s: string): void => void process.stderr.write(s + '\n');
let failed = false;

if (only === '' || only === 'chaos') {
  log('== chaos soak');
  const r = await runChaos({
    jobs: Number(arg('--jobs', '1000')),
    concurrency: 50,
    faultEveryMs: 500,
    minSeconds: 120,
    stallMs: 3000,
    restartMs: 1500,
    recoveryBoundMs: 15_000,
    silenceTimeout: '2s',
    backoffMax: '1s',
    log,
  });
  const q = (p: number) => (r.delays[Math.min(r.delays.length - 1, Math.floor((p / 100) * r.delays.length))] ?? 0).toFixed(0);
  log(`chaos: ${r.delivered}/${r.jobs} delivered in ${r.seconds.toFixed(0)} s; faults ${JSON.stringify(r.faults)}; PreRun finished -> delivered p50 ${q(50)} ms, p99 ${q(99)} ms, max ${q(100)} ms; longest degraded ${(r.degradedPeriods.at(-1) ?? 0).toFixed(0)} ms; ${r.filesSampled} env files sampled; ${r.problems.length} problems`);
  for (const p of r.problems.slice(0, 50)) log(`  PROBLEM ${p}`);
  process.stdout.write(JSON.stringify({ chaos: { ...r, delays: undefined, p50: q(50), p99: q(99), max: q(100) } }) + '\n');
  if (r.problems.length > 0 || r.delivered !== r.jobs) failed = true;
}
if (only === '' || only === 'crash') {
  log('== crash loop');
  const r = await runCrashLoop({ kills: Number(arg('--kills', '100')), jobsPerRound: 10, log });
  log(`crash: ${r.kills} kills (${r.midWrite} with a write in flight), ${r.jobs} jobs, converged in ${r.convergeMs.toFixed(0)} ms after the last restart; ${r.problems.length} problems`);
  for (const p of r.problems.slice(0, 50)) log(`  PROBLEM ${p}`);
  process.stdout.write(JSON.stringify({ crash: r }) + '\n');
  if (r.problems.length > 0) failed = true;
}
process.exitCode = failed ? 1 : 0;
