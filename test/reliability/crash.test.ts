/**
 * SIGKILL of nnf-envd at random moments, 20 times (see ./crash.ts), on each backend (the
 * simulator; the real kube-apiserver when it can be built here); `npm run soak` does 100.
 */
import t from 'tap';
import { backends } from '../helpers/backends.js';
import { exitWhenDone } from '../helpers/exit-when-done.js';
import { runCrashLoop } from './crash.js';

const runs: Promise<unknown>[] = [];
for (const backend of await backends()) {
  runs.push(t.test(`${backend}: SIGKILL at random moments, 20 times: runtime dir and hosts file whole after each, then converge`, async (t) => {
    const r = await runCrashLoop({ backend, kills: 20, jobsPerRound: 4 });
    t.comment(`${backend}: ${r.kills} kills: ${r.midWrite} left a temp file (a write in flight), ${r.duringStart} during start; ${r.jobs} jobs converged ${r.convergeMs.toFixed(0)} ms after the last start`);
    t.same(r.problems.slice(0, 20), [], 'nothing partial, nothing lost');
    t.ok(r.jobs > 0, 'jobs were delivered across the kills');
  }));
}
exitWhenDone(runs);
