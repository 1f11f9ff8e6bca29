import t from 'tap';
import { retry } from '../../src/core/retry.js';

const policy = { initialMs: 5, maxMs: 20 };

t.test('retries until success, with growing jittered pauses', async (t) => {
  const delays: number[] = [];
  let n = 0;
  const v = await retry(async (attempt) => {
    n = attempt;
    if (attempt < 4) throw new Error(`fail ${attempt}`);
    return 'ok';
  }, { policy, attempts: 10, onRetry: (_e, d) => delays.push(d), random: () => 0.999 });
  t.equal(v, 'ok');
  t.equal(n, 4);
  t.same(delays, [5, 10, 20], 'ceilings double up to maxMs (random near 1)');
});

t.test('gives up after the last attempt, and at once on a non-retryable error', async (t) => {
  let calls = 0;
  await t.rejects(retry(async () => { calls++; throw new Error('down'); }, { policy, attempts: 3 }), /down/);
  t.equal(calls, 3);
  calls = 0;
  await t.rejects(retry(async () => { calls++; throw new Error('forbidden'); }, { policy, attempts: 3, retryable: (e) => !/forbidden/.test(String(e)) }), /forbidden/);
  t.equal(calls, 1);
});

t.test('an abort ends the pause', async (t) => {
  const ac = new AbortController();
  const started = Date.now();
  const p = retry(async () => { throw new Error('down'); }, { policy: { initialMs: 60_000, maxMs: 60_000 }, attempts: 5, signal: ac.signal });
  setTimeout(() => ac.abort(new Error('stopped')), 20);
  await t.rejects(p, /stopped/);
  t.ok(Date.now() - started < 30_000, 'did not wait out the minute');
});
